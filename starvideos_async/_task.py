"""Task handles and the ways to wait on them: ``wait()``, ``watch()``, many at once.

Every wait here is a subscription to the client's one :class:`~._polling.Scheduler`;
nothing in this module sleeps or polls on its own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import anyio

from ._errors import InvalidRequestError, TaskFailedError, TaskTimeoutError
from ._models import TaskStatus, Video, VideoRequest
from ._polling import PollPolicy, StatusCallback, StatusFetcher, Subscription, Update

if TYPE_CHECKING:
    from ._client import AsyncStarVideos

__all__ = ["AsCompleted", "Outcomes", "StatusStream", "VideoTask"]


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise InvalidRequestError("timeout", timeout, "a positive number of seconds or None")


class VideoTask:
    """A handle on one task on the service. Cheap; holds no resources.

    Attributes:
        id: The task id (save it: it is the only handle on a paid job).
        latest: The newest :class:`Video` seen for this task, or ``None``.
        request: The :class:`VideoRequest` it was created from, when known.
    """

    __slots__ = ("_client", "id", "latest", "request", "submitted_at")

    def __init__(
        self,
        client: AsyncStarVideos,
        task_id: str,
        *,
        latest: Video | None = None,
        request: VideoRequest | None = None,
    ) -> None:
        self._client = client
        self.id = task_id
        self.latest = latest
        self.request = request
        #: Wall-clock time this process created the task, or ``None``.
        self.submitted_at: float | None = time.time() if request is not None else None

    def __repr__(self) -> str:
        status = self.latest.status_value if self.latest is not None else "unknown"
        return f"<VideoTask {self.id!r} {status}>"

    @property
    def status(self) -> TaskStatus | str | None:
        """The newest status seen, or ``None`` before any was."""
        return self.latest.status if self.latest is not None else None

    @property
    def client(self) -> AsyncStarVideos:
        """The client this handle belongs to."""
        return self._client

    def _origin(self) -> float:
        if self.submitted_at is not None:
            return self.submitted_at
        if self.latest is not None and self.latest.created is not None:
            return float(self.latest.created)
        return time.time()

    async def refresh(self, *, status_fetcher: StatusFetcher | None = None) -> Video:
        """One status fetch now; updates and returns :attr:`latest`."""
        fetcher, _ = self._client._fetcher(status_fetcher)
        self.latest = await fetcher(self.id)
        return self.latest

    def watch(
        self,
        *,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> StatusStream:
        """Iterate over the task's statuses: one item per change, ending at a terminal one.

        The newest known snapshot (if any) comes first. Breaking out of the loop or
        cancelling it stops the polling at once.
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
            timeout: Seconds to wait at most (``None``: no limit).
            poll_policy: Overrides the client's poll policy for this wait.
            on_status: Called (plain or async) with each status change.
            status_fetcher: Overrides the client's status fetcher for this wait.

        Raises:
            TaskFailedError: The task ended ``failed`` (or ``cancelled``).
            TaskTimeoutError: ``timeout`` passed; the task still runs and this handle
                can ``wait()`` again.
            APIError: Status calls kept failing (after retries), e.g. 404 when the
                id is unknown to the service.
        """
        _check_timeout(timeout)
        final = self.latest if self.latest is not None and self.latest.is_terminal else None
        if final is None:
            stream = self.watch(poll_policy=poll_policy, status_fetcher=status_fetcher)
            try:
                with anyio.move_on_after(timeout):
                    async for video in stream:
                        if on_status is not None:
                            result = on_status(video)
                            if inspect.isawaitable(result):
                                await result
                        if video.is_terminal:
                            final = video
            finally:
                stream.close()
            if final is None:
                raise TaskTimeoutError(self.id, self.latest, timeout or 0.0)
        elif on_status is not None:
            result = on_status(final)
            if inspect.isawaitable(result):
                await result
        if final.is_completed:
            return final
        raise TaskFailedError(final)


class StatusStream:
    """The async iterator returned by :meth:`VideoTask.watch`."""

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
        self._updates: deque[Update] = deque()
        self._future: asyncio.Future[None] | None = None
        self._last: TaskStatus | str | None = None
        self._started = False
        self._finished = False

    def __aiter__(self) -> StatusStream:
        return self

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop polling for this stream (also done by breaking out of ``async for``)."""
        self._finished = True
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()

    async def aclose(self) -> None:
        """Async spelling of :meth:`close`."""
        self.close()

    async def __anext__(self) -> Video:
        task = self._task
        if not self._started:
            self._started = True
            latest = task.latest
            if latest is not None:
                self._last = latest.status
                self._finished = latest.is_terminal
                return latest
        while not self._finished:
            if self._subscription is None:
                self._subscription = self._subscribe()
            update = await self._next_update()
            if isinstance(update, BaseException):
                self.close()
                raise update
            task.latest = update
            if update.is_terminal:
                self.close()
            if update.status != self._last or update.is_terminal:
                self._last = update.status
                return update
        raise StopAsyncIteration

    def _subscribe(self) -> Subscription:
        task = self._task
        fetcher, gated = task.client._fetcher(self._fetcher)
        ref = weakref.ref(self)

        def sink(_: Subscription, update: Update) -> None:
            stream = ref()
            if stream is not None:
                stream._push(update)

        return task.client._scheduler.subscribe(
            task.id,
            fetcher=fetcher,
            gated=gated,
            policy=self._policy or task.client.poll_policy,
            origin=task._origin(),
            duration=task.request.duration if task.request is not None else None,
            sink=sink,
            poll_now=task.latest is None,
        )

    def _push(self, update: Update) -> None:
        self._updates.append(update)
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def _next_update(self) -> Update:
        if not self._updates:
            future = self._future = asyncio.get_running_loop().create_future()
            try:
                await future
            finally:
                self._future = None
        return self._updates.popleft()


class Outcomes:
    """Waits on many tasks through one scheduler; yields ``(index, outcome)`` as they end.

    The outcome is the terminal :class:`Video` or the error that ended the wait.
    One subscription per task, one shared wake-up: waiting on ten thousand tasks costs
    ten thousand small objects, not ten thousand coroutines.
    """

    def __init__(
        self,
        tasks: Sequence[VideoTask],
        policy: PollPolicy | None,
        fetcher: StatusFetcher | None,
    ) -> None:
        self._tasks = list(tasks)
        self._policy = policy
        self._fetcher = fetcher
        self._ready: deque[tuple[int, Update]] = deque()
        self._future: asyncio.Future[None] | None = None
        self._subscriptions: dict[int, Subscription] = {}
        self._started = False
        self._remaining = len(self._tasks)

    def __aiter__(self) -> AsyncIterator[tuple[int, Video | BaseException]]:
        return self

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop waiting on every task still running."""
        subscriptions, self._subscriptions = self._subscriptions, {}
        for subscription in subscriptions.values():
            subscription.close()

    def _start(self) -> None:
        ref = weakref.ref(self)
        for index, task in enumerate(self._tasks):
            latest = task.latest
            if latest is not None and latest.is_terminal:
                self._ready.append((index, latest))
                continue
            client = task.client
            fetcher, gated = client._fetcher(self._fetcher)

            def sink(_: Subscription, update: Update, index: int = index) -> None:
                outcomes = ref()
                if outcomes is not None:
                    outcomes._push(index, update)

            self._subscriptions[index] = client._scheduler.subscribe(
                task.id,
                fetcher=fetcher,
                gated=gated,
                policy=self._policy or client.poll_policy,
                origin=task._origin(),
                duration=task.request.duration if task.request is not None else None,
                sink=sink,
                poll_now=latest is None,
            )

    def _push(self, index: int, update: Update) -> None:
        self._ready.append((index, update))
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def __anext__(self) -> tuple[int, Video | BaseException]:
        if not self._started:
            self._started = True
            self._start()
        while self._remaining:
            if not self._ready:
                future = self._future = asyncio.get_running_loop().create_future()
                try:
                    await future
                finally:
                    self._future = None
            index, update = self._ready.popleft()
            if isinstance(update, Video):
                self._tasks[index].latest = update
                if not update.is_terminal:
                    continue
            self._subscriptions.pop(index, None)
            self._remaining -= 1
            return index, update
        raise StopAsyncIteration


class AsCompleted:
    """The async iterator returned by :meth:`AsyncStarVideos.as_completed`."""

    def __init__(self, outcomes: Outcomes, tasks: Sequence[VideoTask]) -> None:
        self._outcomes = outcomes
        self._tasks = tasks

    def __aiter__(self) -> AsCompleted:
        return self

    def close(self) -> None:
        """Stop waiting on the tasks not yet yielded."""
        self._outcomes.close()

    async def aclose(self) -> None:
        """Async spelling of :meth:`close`."""
        self.close()

    async def __anext__(self) -> VideoTask:
        index, outcome = await self._outcomes.__anext__()
        if isinstance(outcome, BaseException):
            self.close()
            raise outcome
        return self._tasks[index]
