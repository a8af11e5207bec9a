"""Task handles and the ways to wait on one task: ``wait()`` and ``watch()``.

Every wait here is a subscription to the client's one :class:`~._polling.Scheduler`;
nothing in this module sleeps or polls on its own. A handle knows its client only
through a :class:`TaskContext` (the scheduler, the status fetchers, the client to hand
back). Waiting on many tasks at once is in :mod:`._outcomes`.

An iterator that is dropped without being closed (``break`` out of ``async for``)
stops its polling from its finaliser, on the next turn of the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
import anyio.lowlevel
import attrs

from ._errors import TaskFailedError, TaskTimeoutError
from ._models import ProgressCallback, TaskStatus, Video
from ._poll_policy import PollPolicy
from ._polling import Scheduler
from ._requests import VideoRequest, check_timeout
from ._subscriptions import (
    Sink,
    StatusCallback,
    StatusFetcher,
    Subscription,
    Update,
    close_soon,
)

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from ._models import Estimate

__all__ = [
    "ClosesOnExit",
    "Item",
    "StatusStream",
    "TaskClient",
    "TaskContext",
    "VideoTask",
]


class TaskClient(Protocol):
    """What a handle uses of its :class:`AsyncStarVideos`; the type of :attr:`VideoTask.client`.

    Not the client's class: this module, which the client's imports, does not import it.
    """

    @property
    def poll_policy(self) -> PollPolicy: ...

    async def download(
        self,
        video_or_task: Video | VideoTask | str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Path: ...


@attrs.frozen(eq=False)
class TaskContext:
    """What task handles need of the client that made them.

    Attributes:
        client: The client, handed back by :attr:`VideoTask.client`.
        scheduler: Where waits subscribe.
        status_fetcher: The client's status fetcher (its own ``retrieve``, or the one
            given to it).
        own_fetcher: The client's ``retrieve``: it passes the rate gate and retries by
            itself; any other fetcher is gated and retried by the scheduler.
    """

    client: TaskClient
    scheduler: Scheduler
    status_fetcher: StatusFetcher
    own_fetcher: StatusFetcher

    def subscribe(
        self,
        task: VideoTask,
        policy: PollPolicy | None,
        fetcher: StatusFetcher | None,
        sink: Sink,
        tag: object = None,
    ) -> Subscription:
        """Start waiting on ``task`` through the scheduler."""
        fetcher = fetcher if fetcher is not None else self.status_fetcher
        return self.scheduler.subscribe(
            task.id,
            fetcher=fetcher,
            gated=fetcher == self.own_fetcher,
            policy=policy or self.client.poll_policy,
            origin=task._origin(),
            duration=task.request.duration if task.request is not None else None,
            sink=sink,
            poll_now=task.latest is None,
            running_since=task._running_seen,
            tag=tag,
        )


#: A queued update: a snapshot, or an error with the traceback it was raised with.
Item = tuple[Update, TracebackType | None]


async def _notify(on_status: StatusCallback, video: Video) -> None:
    result = on_status(video)
    if inspect.isawaitable(result):
        await result


class VideoTask:
    """A handle on one task on the service. Cheap; holds no resources.

    Made by the client (``submit()``, ``task(id)``...), not directly.

    Attributes:
        id: The task id (save it: it is the only handle on a paid job).
        latest: The newest :class:`Video` seen for this task, or ``None``.
        request: The :class:`VideoRequest` it was created from, when known.
        submitted_at: Wall-clock time this process created the task, or ``None``.
    """

    __slots__ = ("_context", "_running_seen", "id", "latest", "request", "submitted_at")

    def __init__(
        self,
        context: TaskContext,
        task_id: str,
        *,
        latest: Video | None = None,
        request: VideoRequest | None = None,
    ) -> None:
        self._context = context
        self.id = task_id
        self.latest = latest
        self.request = request
        self.submitted_at: float | None = time.time() if request is not None else None
        # Wall time the task was last seen running (the poll policy learns from it).
        self._running_seen: float | None = None
        if latest is not None and not latest.is_terminal:
            self._running_seen = self.submitted_at

    def __repr__(self) -> str:
        status = self.latest.status_value if self.latest is not None else "unknown"
        return f"<VideoTask {self.id!r} {status}>"

    @property
    def status(self) -> TaskStatus | str | None:
        """The newest status seen, or ``None`` before any was."""
        return self.latest.status if self.latest is not None else None

    @property
    def client(self) -> TaskClient:
        """The client this handle belongs to (the :class:`AsyncStarVideos` that made it).

        Typed by what a handle uses of it; ``isinstance()`` narrows it to the client.
        """
        return self._context.client

    def _seen(self, video: Video) -> None:
        # An unchanged snapshot keeps the one held: the new one is freed at once, while
        # a snapshot kept per poll would pile up for the garbage collector to walk
        # (with a hundred thousand waits, its full passes would stall the event loop).
        if video != self.latest:
            self.latest = video
        if not video.is_terminal:
            self._running_seen = time.time()

    def _origin(self) -> float | None:
        if self.submitted_at is not None:
            return self.submitted_at
        if self.latest is not None and self.latest.created is not None:
            return float(self.latest.created)
        return None

    async def download(
        self,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Path:
        """Download this task's video to ``dest`` (see :meth:`AsyncStarVideos.download`).

        Uses :attr:`latest` when it is completed, else queries the task once first.
        """
        return await self._context.client.download(
            self, dest, overwrite=overwrite, on_progress=on_progress, timeout=timeout
        )

    async def refresh(self, *, status_fetcher: StatusFetcher | None = None) -> Video:
        """One status fetch now; updates and returns :attr:`latest`.

        It does not go through the scheduler: no coalescing and, for a custom fetcher,
        no retries (the client's own fetcher retries by itself and keeps
        ``max_status_rate``).
        """
        fetcher = status_fetcher or self._context.status_fetcher
        video = await fetcher(self.id)
        self._seen(video)
        return video

    def watch(
        self,
        *,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> StatusStream:
        """Iterate over the task's statuses: one item per change, ending at a terminal one.

        The newest known snapshot (if any) comes first. Breaking out of the loop or
        cancelling it stops the polling; ``async with task.watch() as stream:`` stops it
        at the end of the block even if the stream is kept.
        """
        return StatusStream(self, poll_policy, status_fetcher)

    async def wait(
        self,
        timeout: float | None = None,
        poll_policy: PollPolicy | None = None,
        on_status: StatusCallback | None = None,
        *,
        status_fetcher: StatusFetcher | None = None,
    ) -> Video:
        """Wait until the task finishes; return the completed :class:`Video`.

        Args:
            timeout: Seconds to wait at most (``None``: no limit), ``on_status`` included:
                a call still running when it passes is cancelled. Once the final status
                has arrived, that is the outcome, even if ``on_status`` overran.
            poll_policy: Overrides the client's poll policy for this wait.
            on_status: Called (plain or async) with each status change, the newest
                known status first. What it raises ends the wait and propagates.
            status_fetcher: Overrides the client's status fetcher for this wait.

        Raises:
            TaskFailedError: The task ended ``failed`` (or ``cancelled``).
            TaskTimeoutError: ``timeout`` passed; the task still runs and this handle
                can ``wait()`` again.
            APIError: Status calls kept failing (after retries), e.g.
                :class:`NotFoundError` when the service forgot the id.
            ClientClosedError: The client was closed during the wait.
        """
        check_timeout(timeout)
        final: Video | None = None
        stream = StatusStream(self, poll_policy, status_fetcher)
        try:
            with anyio.move_on_after(timeout):
                async for video in stream:
                    if video.is_terminal:
                        final = video  # before on_status, which may outlast the timeout
                    if on_status is not None:
                        await _notify(on_status, video)
        finally:
            stream.close()
        if final is None and self.latest is not None and self.latest.is_terminal:
            final = self.latest  # seen as the timeout passed: the task is over
        if final is None:
            raise TaskTimeoutError(self.id, self.latest, timeout or 0.0)
        if final.is_completed:
            return final
        raise TaskFailedError(final)

    def estimate(self, *, poll_policy: PollPolicy | None = None) -> Estimate | None:
        """When this task will likely be done: a median and a 90th percentile, or ``None``.

        Asked of the client's poll policy (or ``poll_policy``), which learns when this
        client's tasks of the same requested duration finish; conditional on the task's
        age now. No network call. ``None`` before the policy has seen enough
        completions of that kind (the default policy: 8), for a task older than nearly
        every one it remembers, for a finished task, for a policy that learns nothing
        (a fixed one), and when the task's creation time is unknown (a handle from
        ``client.task(id)`` before its first status).
        """
        latest = self.latest
        origin = self._origin()
        if origin is None or (latest is not None and latest.is_terminal):
            return None
        policy = poll_policy if poll_policy is not None else self._context.client.poll_policy
        duration = self.request.duration if self.request is not None else None
        return policy.estimate(age=max(time.time() - origin, 0.0), duration=duration)


_ClosingT = TypeVar("_ClosingT", bound="ClosesOnExit")


class ClosesOnExit:
    """``async with`` support for the wait iterators: leaving the block closes them."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _ClosingT) -> _ClosingT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StatusStream(ClosesOnExit):
    """The async iterator returned by :meth:`VideoTask.watch`.

    One consumer at a time. It yields the newest known snapshot first, then one
    snapshot per status change; it ends after a terminal status, and raises the error
    that ends the wait otherwise (then ends). Closing it (``close()``, ``aclose()``,
    the end of ``async with``, or dropping it) stops the polling.
    """

    __slots__ = (
        "__weakref__",
        "_fetcher",
        "_finished",
        "_last",
        "_loop",
        "_policy",
        "_started",
        "_subscription",
        "_task",
        "_updates",
        "_waiter",
    )

    def __init__(
        self,
        task: VideoTask,
        policy: PollPolicy | None,
        fetcher: StatusFetcher | None,
    ) -> None:
        self._task = task
        self._policy = policy
        self._fetcher = fetcher
        self._subscription: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._updates: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._last: TaskStatus | str | None = None
        self._started = False
        self._finished = False

    def __aiter__(self) -> StatusStream:
        return self

    def __del__(self) -> None:
        subscription = getattr(self, "_subscription", None)
        if subscription is not None:
            close_soon([subscription], self._loop)

    def close(self) -> None:
        """Stop polling for this stream; iterating it further ends at once."""
        self._finished = True
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def aclose(self) -> None:
        """Async spelling of :meth:`close`."""
        self.close()

    async def __anext__(self) -> Video:
        if not self._started:
            self._started = True
            latest = self._task.latest
            if latest is not None:
                self._last = latest.status
                if latest.is_terminal:
                    self._finished = True
                    return latest
            self._start()
            if latest is not None:
                return latest
        while not self._updates:
            if self._finished:
                raise StopAsyncIteration
            await self._wait()
        if self._finished:
            raise StopAsyncIteration
        update, traceback = self._updates.popleft()
        if isinstance(update, BaseException):
            self.close()
            raise update.with_traceback(traceback)
        if update.is_terminal:
            self.close()
        return update

    def _start(self) -> None:
        ref = weakref.ref(self)

        def sink(_: Subscription, update: Update) -> None:
            stream = ref()
            if stream is not None:
                stream._push(update)

        self._loop = asyncio.get_running_loop()
        self._subscription = self._task._context.subscribe(
            self._task, self._policy, self._fetcher, sink
        )

    def _push(self, update: Update) -> None:
        if isinstance(update, Video):
            self._task._seen(update)
            if not update.is_terminal and update.status == self._last:
                return  # not a change
            self._last = update.status
            self._updates.append((update, None))
        else:
            self._updates.append((update, update.__traceback__))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._waiter is not None:
            raise RuntimeError("this status stream is already being iterated by another task")
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None
