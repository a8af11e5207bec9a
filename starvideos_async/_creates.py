"""Creating tasks so that no id the service returns is ever lost.

A create costs money and cannot be un-sent. So every create runs in a task owned by
:class:`Creates` (the client awaits them all in ``aclose()``), never in the caller's
task: cancelling ``submit()`` or ``submit_many()`` stops the *caller* waiting, while
a create already on the wire runs to its answer; the task it made is then logged at
WARNING and kept in ``orphaned_tasks``. A create not yet sent when its caller left
is not sent at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import (
    APIError,
    APIStatusError,
    InvalidRequestError,
    MalformedResponseError,
    StarVideosError,
    SubmitManyError,
)
from ._http import CREATE_PATH, Abandoned, HTTPTransport, result_path
from ._requests import VideoRequest
from ._serde import request_body, structure_video
from ._task import TaskContext, VideoTask

__all__ = ["Creates"]

logger = logging.getLogger("starvideos_async")


class Creates:
    """The creates of one client: on the wire, and the tasks orphaned by their callers.

    Args:
        http: The client's transport.
        tasks: The context the new task handles get.
        workers: Creates sent at once by :meth:`many` (the client's concurrency).
    """

    def __init__(self, http: HTTPTransport, tasks: TaskContext, workers: int) -> None:
        self._http = http
        self._tasks = tasks
        self._workers = workers
        self._on_the_wire: set[asyncio.Future[Any]] = set()
        self.orphans: list[VideoTask] = []

    async def drain(self) -> None:
        """Let every create on the wire land (``aclose()``); cancelling this cancels none."""
        if self._on_the_wire:
            await asyncio.shield(asyncio.gather(*self._on_the_wire, return_exceptions=True))

    async def one(self, request: VideoRequest, max_retries: int | None) -> VideoTask:
        """Create one task (``submit()``)."""
        # The caller awaits a future of its own, resolved when the create ends (what
        # asyncio.shield does, with one done-callback instead of three).
        loop = asyncio.get_running_loop()
        stopped: list[bool] = []  # [True] once the caller stopped waiting
        call = loop.create_task(self._send(request, max_retries, lambda: bool(stopped)))
        self._on_the_wire.add(call)
        over = loop.create_future()
        call.add_done_callback(functools.partial(self._over, over))
        try:
            await over
        except asyncio.CancelledError:
            stopped.append(True)  # not sent if it still waits for a slot or a retry
            call.add_done_callback(self._adopt_orphan)
            raise
        return call.result()

    async def many(
        self, batch: Sequence[VideoRequest], *, return_exceptions: bool, max_retries: int | None
    ) -> list[VideoTask] | list[VideoTask | StarVideosError]:
        """Create every task of ``batch`` (``submit_many()``), in input order."""
        self._http.api_session()  # a closed client fails here, not once per request
        results: list[VideoTask | StarVideosError | None] = [None] * len(batch)
        pending = iter(enumerate(batch))
        stopped: list[bool] = []  # [True] once the caller stopped waiting: no new
        # create, and what lands is adopted (a list: mypy can't see the closure set it)

        def abandoned() -> bool:
            return bool(stopped)

        async def worker() -> None:
            # Creates are awaited here directly, not in a task each: the workers are
            # the client's (drain() awaits them), so cancelling the caller never
            # cancels a create on the wire; once it stopped, a create not yet sent
            # (waiting for a slot, or for a retry) is not sent.
            try:
                for index, request in pending:
                    if stopped:
                        return
                    try:
                        task = await self._send(request, max_retries, abandoned)
                    except Abandoned:
                        return
                    except StarVideosError as exc:
                        results[index] = exc
                        if stopped:
                            _warn_if_sent(exc, "a stopped submit_many()")
                        continue
                    results[index] = task
                    if stopped:
                        self._adopt(task, "submit_many() was stopped")
            except BaseException:  # a bug, not a failed create: stop the others too
                stopped.append(True)
                raise

        loop = asyncio.get_running_loop()
        workers = [
            loop.create_task(worker(), name="starvideos-async creates")
            for _ in range(min(len(batch), self._workers))
        ]
        for task in workers:
            self._on_the_wire.add(task)
            task.add_done_callback(self._on_the_wire.discard)
        try:
            if workers:
                await asyncio.wait(workers)  # (cancelling this wait cancels no worker)
            for task in workers:
                if not task.cancelled():
                    task.exception()  # every error retrieved: no "never retrieved" noise
            for task in workers:
                task.result()  # a worker's unexpected error (a bug) surfaces here
        except BaseException:
            stopped.append(True)
            created = [r for r in results if isinstance(r, VideoTask)]
            if created:
                self.orphans.extend(created)
                logger.warning(
                    "submit_many() stopped early; these tasks were created and are kept "
                    "in client.orphaned_tasks: %s",
                    ", ".join(t.id for t in created),
                )
            raise
        done = [r for r in results if r is not None]
        if not return_exceptions and any(isinstance(r, StarVideosError) for r in done):
            raise SubmitManyError(done)
        return done

    async def _send(
        self,
        request: VideoRequest,
        max_retries: int | None,
        abandoned: Callable[[], bool] | None = None,
    ) -> VideoTask:
        """Send one create; the task, also when its answer broke after naming it."""
        try:
            video = await self._http.request(
                "POST",
                CREATE_PATH,
                body=request_body(request),
                parse=structure_video,
                max_retries=max_retries,
                abandoned=abandoned,
            )
        except APIError as exc:
            # (a create's error carries an id only when the service's answer named one)
            if exc.task_id is None or not _queryable(exc.task_id):
                raise
            logger.warning(
                "the service created task %s, but its answer broke off or was malformed "
                "(%s); the task is kept, its status comes with the next poll",
                exc.task_id,
                exc.message,
            )
            return VideoTask(self._tasks, exc.task_id, request=request)
        return VideoTask(self._tasks, video.id, latest=video, request=request)

    def _over(self, over: asyncio.Future[None], call: asyncio.Task[VideoTask]) -> None:
        self._on_the_wire.discard(call)
        if not over.done():
            over.set_result(None)

    def _adopt_orphan(self, call: asyncio.Future[VideoTask]) -> None:
        if call.cancelled():
            return
        error = call.exception()  # also marks it retrieved: no "never retrieved" noise
        if isinstance(error, Abandoned):
            return  # never sent: nothing was created
        if error is not None:
            _warn_if_sent(error, "a cancelled submit()")
            return
        self._adopt(call.result(), "submit() was cancelled")

    def _adopt(self, task: VideoTask, why: str) -> None:
        self.orphans.append(task)
        logger.warning(
            "%s, but the service created task %s; it is kept in client.orphaned_tasks",
            why,
            task.id,
        )


def _warn_if_sent(error: BaseException, who: str) -> None:
    """A create nobody awaits failed after it may have reached the service: say so.

    That is a connection lost once the request was sent, a ``5xx``, or a ``2xx`` answer
    too broken (or too long) to read that named no task (see "When a create's outcome
    is unknown" in the docs).
    """
    unknown = (
        getattr(error, "request_sent", False)
        or (isinstance(error, APIStatusError) and not 400 <= error.status_code < 500)
        or isinstance(error, MalformedResponseError)
    )
    if unknown:
        logger.warning("%s may have created a task (outcome unknown): %s", who, error)


def _queryable(task_id: str) -> bool:
    try:
        result_path(task_id)
    except InvalidRequestError:
        return False
    return True
