"""An aiohttp.web backend: one StarVideos client per app, shared by every request.

    export STARVIDEOS_API_KEY=sk-...
    python examples/aiohttp_backend.py --port 8080
    curl -X POST localhost:8080/videos -d '{"prompt": "a fox in snow", "duration": 5}'
    curl localhost:8080/videos/video_starvideos_123            # the status now
    curl 'localhost:8080/videos/video_starvideos_123?wait=30'  # or when done, 30 s at most

The client is created when the app starts and closed when it stops (``cleanup_ctx``).
Every ``?wait=`` of every request is served by that client's one poll scheduler: a
thousand browsers waiting on the same task cost one status call per poll.

aiohttp does not cancel a handler whose client went away unless told to: without
``handler_cancellation=True`` (given to ``web.run_app`` below, or to ``web.AppRunner``),
a long-poll would go on polling for nobody until its timeout.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

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

STARVIDEOS = web.AppKey("starvideos", AsyncStarVideos)
_FIELDS = ("prompt", "duration", "ratio", "images")
routes = web.RouteTableDef()


def as_json(video: Video) -> dict[str, Any]:
    return {
        "id": video.id,
        "status": video.status_value,
        "video_url": video.video_url,
        "error": video.error,
    }


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@routes.post("/videos")
async def submit(request: web.Request) -> web.Response:
    """Create a task; answer at once with its id (the video comes minutes later)."""
    try:
        body = await request.json()
    except ValueError:
        return error(400, "the body must be JSON")
    if not isinstance(body, dict) or "prompt" not in body:
        return error(400, "a JSON object with a prompt is required")
    try:
        video_request = VideoRequest(**{k: body[k] for k in _FIELDS if k in body})
    except InvalidRequestError as exc:  # checked before anything is sent
        return error(422, str(exc))
    task = await request.app[STARVIDEOS].submit(video_request)
    # Store task.id with your user's data here: it is the only handle on a paid job.
    return web.json_response({"id": task.id, "status": str(task.status)}, status=202)


@routes.get("/videos/{task_id}")
async def status(request: web.Request) -> web.Response:
    """The task's status now, or (with ``?wait=SECONDS``) when it ends, if sooner."""
    client = request.app[STARVIDEOS]
    task_id = request.match_info["task_id"]
    try:
        wait = float(request.query.get("wait", 0))
        if wait > 0:
            try:
                video = await client.task(task_id).wait(timeout=min(wait, 60))
            except (TaskFailedError, TaskTimeoutError) as exc:
                if exc.video is None:  # timed out before the first status arrived
                    return web.json_response({"id": task_id, "status": "unknown"})
                video = exc.video
        else:
            video = await client.retrieve(task_id)
    except (InvalidRequestError, ValueError) as exc:
        return error(400, str(exc))
    except NotFoundError:
        return error(404, f"no task {task_id}")
    return web.json_response(as_json(video))


@web.middleware
async def api_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """The API failing (after the SDK's retries) is a bad gateway, not our bug."""
    try:
        response: web.StreamResponse = await handler(request)
    except APIError as exc:
        return error(502, str(exc))
    return response


def create_app(*, poll_policy: PollPolicy | None = None) -> web.Application:
    """The app; the key and base URL come from the environment (STARVIDEOS_*)."""

    async def starvideos_client(app: web.Application) -> AsyncIterator[None]:
        async with AsyncStarVideos(poll_policy=poll_policy) as client:
            app[STARVIDEOS] = client
            yield  # the app serves requests here; the client closes at shutdown

    app = web.Application(middlewares=[api_errors])
    app.cleanup_ctx.append(starvideos_client)
    app.add_routes(routes)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--poll-interval", type=float, help="fixed polling, in seconds")
    args = parser.parse_args(argv)
    policy = PollPolicy.fixed(args.poll_interval) if args.poll_interval else None
    # handler_cancellation: a long-poll stops polling when its client disconnects.
    app = create_app(poll_policy=policy)
    web.run_app(app, host=args.host, port=args.port, handler_cancellation=True)


if __name__ == "__main__":
    main()
