"""A FastAPI (Starlette) backend: one StarVideos client per app, made in the lifespan.

    pip install fastapi uvicorn
    export STARVIDEOS_API_KEY=sk-...
    python examples/fastapi_backend.py --port 8000
    # or several workers sharing the limits (pip install 'starvideos-async[redis]'):
    STARVIDEOS_REDIS_URL=redis://127.0.0.1:6379/0 \\
        uvicorn --factory fastapi_backend:create_app --app-dir examples --workers 4
    curl -X POST localhost:8000/videos -H 'content-type: application/json' \\
         -d '{"prompt": "a fox in snow"}'
    curl 'localhost:8000/videos/video_starvideos_123?wait=30'

The lifespan creates the client at startup, hands it to every request through the
lifespan state, and closes it at shutdown.

Uvicorn (like other ASGI servers) does not cancel a handler whose client went away: a
long-poll would go on polling for nobody until its timeout. ``wait_while_connected()``
races the wait against the client's disconnection and cancels the wait when it comes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from starvideos_async import (
    APIError,
    AsyncStarVideos,
    InvalidRequestError,
    NotFoundError,
    PollPolicy,
    TaskFailedError,
    TaskTimeoutError,
    Video,
    VideoRequest,
)


class VideoIn(BaseModel):
    prompt: str
    duration: int = 5
    ratio: str = "16:9"
    images: list[str] = []


class VideoOut(BaseModel):
    id: str
    status: str
    video_url: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, video: Video) -> VideoOut:
        return cls(
            id=video.id, status=video.status_value, video_url=video.video_url, error=video.error
        )


def starvideos(request: Request) -> AsyncStarVideos:
    """The app's one client, from the lifespan state."""
    client: AsyncStarVideos = request.state.starvideos
    return client


Client = Annotated[AsyncStarVideos, Depends(starvideos)]
router = APIRouter()
T = TypeVar("T")


async def disconnected(request: Request, stop: asyncio.Event, every: float = 0.5) -> bool:
    """True once the client of ``request`` has closed its connection, False once ``stop`` is set.

    Starlette has no event for a disconnection: this asks every ``every`` seconds.
    """
    while not stop.is_set():
        if await request.is_disconnected():
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return False


async def wait_while_connected(request: Request, wait: Awaitable[T]) -> T | None:
    """``await wait``, or ``None`` as soon as the client goes away (the wait is cancelled)."""
    waiting = asyncio.ensure_future(wait)
    # The watcher is stopped by an event, not cancelled: on Python 3.10 a cancellation
    # that comes while it is inside is_disconnected() can be lost.
    stop = asyncio.Event()
    watching = asyncio.ensure_future(disconnected(request, stop))
    try:
        await asyncio.wait((waiting, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        waiting.cancel()  # a no-op if it finished
        await asyncio.gather(waiting, watching, return_exceptions=True)
    return None if waiting.cancelled() else waiting.result()


@router.post("/videos", status_code=202)
async def submit(body: VideoIn, client: Client) -> VideoOut:
    """Create a task; answer at once with its id (the video comes minutes later)."""
    try:
        request = VideoRequest(
            prompt=body.prompt, duration=body.duration, ratio=body.ratio, images=body.images
        )
    except InvalidRequestError as exc:  # checked before anything is sent
        raise HTTPException(422, str(exc)) from exc
    task = await client.submit(request)
    # Store task.id with your user's data here: it is the only handle on a paid job.
    return VideoOut(id=task.id, status=str(task.status))


@router.get("/videos/{task_id}")
async def status(
    request: Request,
    task_id: str,
    client: Client,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
) -> VideoOut:
    """The task's status now, or (with ``?wait=SECONDS``) when it ends, if sooner."""
    try:
        if not wait:
            return VideoOut.of(await client.retrieve(task_id))
        try:
            video = await wait_while_connected(request, client.task(task_id).wait(timeout=wait))
        except (TaskFailedError, TaskTimeoutError) as exc:
            if exc.video is None:  # timed out before the first status arrived
                return VideoOut(id=task_id, status="unknown")
            return VideoOut.of(exc.video)
        if video is None:  # the client went away: nobody reads this answer
            return VideoOut(id=task_id, status="unknown")
        return VideoOut.of(video)
    except InvalidRequestError as exc:
        raise HTTPException(400, str(exc)) from exc
    except NotFoundError as exc:
        raise HTTPException(404, f"no task {task_id}") from exc


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    """The API failing (after the SDK's retries) is a bad gateway, not our bug."""
    return JSONResponse({"detail": str(exc)}, status_code=502)


def create_app(
    *,
    poll_policy: PollPolicy | None = None,
    max_concurrency: int = 8,
    max_status_rate: float | None = None,
) -> FastAPI:
    """The app; the key, base URL and Redis URL come from the environment (STARVIDEOS_*).

    With ``$STARVIDEOS_REDIS_URL`` set, the limits hold for every worker process on the
    key together (``uvicorn --workers 4``), not for each one (see the deployment guide).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        coordinator = None
        if redis_url := os.environ.get("STARVIDEOS_REDIS_URL"):
            from starvideos_async.redis import RedisCoordinator  # the [redis] extra

            coordinator = RedisCoordinator(redis_url, lease=30.0)
        async with AsyncStarVideos(
            poll_policy=poll_policy,
            max_concurrency=max_concurrency,
            max_status_rate=max_status_rate,
            coordinator=coordinator,
        ) as client:
            yield {"starvideos": client}  # request.state.starvideos in every request

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(APIError, api_error)
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--poll-interval", type=float, help="fixed polling, in seconds")
    args = parser.parse_args(argv)
    policy = PollPolicy.fixed(args.poll_interval) if args.poll_interval else None
    uvicorn.run(create_app(poll_policy=policy), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
