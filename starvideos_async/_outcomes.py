"""Waiting on many tasks at once: ``wait_all()`` and ``as_completed()``.

Waiting on ten thousand tasks costs one small subscription per task to the client's
scheduler and one shared wake-up, not one coroutine per task; subscriptions are made in
slices so that the event loop never stalls.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Sequence

import anyio.lowlevel

from ._errors import StarVideosError, TaskFailedError
from ._models import Video
from ._poll_policy import PollPolicy
from ._subscriptions import StatusFetcher, Subscription, Update, close_all, close_soon
from ._task import ClosesOnExit, Item, VideoTask

__all__ = ["AsCompleted", "Outcomes", "wait_all"]

#: Subscriptions made in one step of the event loop when waiting on many tasks.
_SUBSCRIBE_SLICE = 500


class Outcomes:
    """Waits on many tasks through their clients' schedulers; yields ``(index, outcome)``.

    The outcome is the terminal :class:`Video`, or the error that ended that task's
    wait, in the order they come. Each task's :attr:`VideoTask.latest` follows every
    snapshot. One subscription per task and one shared wake-up: waiting on ten
    thousand tasks costs ten thousand small objects, not ten thousand coroutines.
    """

    __slots__ = (
        "__weakref__",
        "_fetcher",
        "_loop",
        "_policy",
        "_ready",
        "_remaining",
        "_started",
        "_subscriptions",
        "_tasks",
        "_waiter",
    )

    def __init__(
        self,
        tasks: Sequence[VideoTask],
        policy: PollPolicy | None,
        fetcher: StatusFetcher | None,
    ) -> None:
        self._tasks = list(tasks)
        self._policy = policy
        self._fetcher = fetcher
        self._ready: deque[tuple[int, Item]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._subscriptions: list[Subscription | None] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._remaining = len(self._tasks)

    def __aiter__(self) -> AsyncIterator[tuple[int, Video | BaseException]]:
        return self

    def __del__(self) -> None:
        subscriptions = getattr(self, "_subscriptions", None)
        if subscriptions:
            close_soon(subscriptions, self._loop)

    def close(self) -> None:
        """Stop waiting on every task still running; iterating further ends at once."""
        self._remaining = 0
        subscriptions, self._subscriptions = self._subscriptions, []
        close_all(subscriptions)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _start(self) -> None:
        ref = weakref.ref(self)

        def sink(subscription: Subscription, update: Update) -> None:
            outcomes = ref()
            if outcomes is not None:
                outcomes._push(subscription.tag, update)  # type: ignore[arg-type]

        self._loop = asyncio.get_running_loop()
        subscriptions = self._subscriptions
        try:
            for index, task in enumerate(self._tasks):
                if index and not index % _SUBSCRIBE_SLICE:
                    await anyio.lowlevel.checkpoint()  # let the loop breathe
                    if self._remaining == 0:
                        return  # closed meanwhile
                latest = task.latest
                if latest is not None and latest.is_terminal:
                    subscriptions.append(None)
                    self._ready.append((index, (latest, None)))
                else:
                    subscription = task._context.subscribe(
                        task, self._policy, self._fetcher, sink, index
                    )
                    subscriptions.append(subscription)
        except BaseException:
            self.close()
            raise

    def _push(self, index: int, update: Update) -> None:
        if isinstance(update, Video):
            task = self._tasks[index]
            task._seen(update)
            if not update.is_terminal:
                return
            self._ready.append((index, (update, None)))
        else:
            self._ready.append((index, (update, update.__traceback__)))
        if index < len(self._subscriptions):
            self._subscriptions[index] = None  # over: the scheduler ended it
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def __anext__(self) -> tuple[int, Video | BaseException]:
        if not self._started:
            self._started = True
            await self._start()
        while self._remaining:
            if self._ready:
                index, (outcome, traceback) = self._ready.popleft()
                self._remaining -= 1
                if isinstance(outcome, BaseException):
                    outcome = outcome.with_traceback(traceback)
                return index, outcome
            if self._waiter is not None:
                raise RuntimeError("these outcomes are already being iterated by another task")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        raise StopAsyncIteration


class AsCompleted(ClosesOnExit):
    """The async iterator returned by :meth:`AsyncStarVideos.as_completed`.

    Yields each task as it finishes (completed or failed: ``await task.wait()`` on it
    returns or raises at once). An error that ends a wait otherwise is raised, and the
    remaining waits stop. Breaking out, ``close()`` or ``async with`` stop them too.
    """

    __slots__ = ("_outcomes", "_tasks")

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


async def wait_all(
    tasks: Sequence[VideoTask],
    *,
    return_exceptions: bool,
    poll_policy: PollPolicy | None,
    status_fetcher: StatusFetcher | None,
) -> list[Video] | list[Video | StarVideosError]:
    """``AsyncStarVideos.wait_all()``: the completed videos, in input order."""
    results: list[Video | StarVideosError | None] = [None] * len(tasks)
    outcomes = Outcomes(tasks, poll_policy, status_fetcher)
    try:
        async for index, outcome in outcomes:
            error: BaseException | None = None
            if isinstance(outcome, Video):
                if outcome.is_completed:
                    results[index] = outcome
                    continue
                error = TaskFailedError(outcome)
            else:
                error = outcome
            if not return_exceptions or not isinstance(error, StarVideosError):
                raise error
            results[index] = error
    finally:
        outcomes.close()
    return [r for r in results if r is not None]
