"""One status scheduler per client: every ``wait()``/``watch()`` of the client is served here.

Not one sleeping loop per waiter: a heap of next-due times, one timer
(``loop.call_at``), one driver task that dispatches due status calls (at most
``max_in_flight`` at once, each through the client's rate gate), and subscriptions that
receive each new snapshot. Waiters on the same task id with the same status fetcher
share one entry, hence one status call per due time.

The driver task only lives while someone waits: when the last subscription closes
(finished, cancelled, broken out of), the entry's in-flight call is cancelled and the
driver exits, so nothing is left running. :meth:`Scheduler.aclose` cancels and awaits
whatever is left.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from . import _retry
from ._errors import RateLimitError, StarVideosError
from ._limiter import RateGate
from ._models import TaskStatus, Video
from ._poll_policy import PollPolicy

__all__ = ["PollPolicy", "Scheduler", "StatusCallback", "StatusFetcher", "Subscription"]

logger = logging.getLogger("starvideos_async")

#: Any ``async (task_id) -> Video``: where ``wait()`` gets statuses from.
StatusFetcher = Callable[[str], Awaitable[Video]]
#: Called with each new status; may be a plain or an async function.
StatusCallback = Callable[[Video], Awaitable[object] | object]
Update = Video | BaseException
Sink = Callable[["Subscription", Update], None]


class _Entry:
    """One (fetcher, task id) being polled, and everyone waiting on it."""

    __slots__ = (
        "due",
        "duration",
        "failures",
        "fetcher",
        "gated",
        "key",
        "last_pending",
        "scope",
        "subscribers",
        "task_id",
        "token",
    )

    def __init__(self, key: tuple[object, str], fetcher: StatusFetcher, gated: bool) -> None:
        self.key = key
        self.task_id = key[1]
        self.fetcher = fetcher
        self.gated = gated
        self.subscribers: list[Subscription] = []
        self.token = 0  # bumped on every (re)schedule: older heap items are stale
        self.due: float | None = None  # when the next call is planned, if one is
        self.scope: anyio.CancelScope | None = None  # set while a call is in flight
        self.failures = 0
        self.last_pending: float | None = None  # wall time of the last running status
        self.duration: int | None = None


class Subscription:
    """One waiter's interest in one task; receives every snapshot through ``sink``."""

    __slots__ = ("__weakref__", "entry", "origin", "policy", "polls", "scheduler", "sink")

    def __init__(
        self,
        scheduler: Scheduler,
        entry: _Entry,
        policy: PollPolicy,
        origin: float,
        sink: Sink,
    ) -> None:
        self.scheduler = scheduler
        self.entry: _Entry | None = entry
        self.policy = policy
        self.origin = origin  # wall-clock creation time of the task
        self.polls = 0
        self.sink = sink

    def next_delay(self) -> float:
        """This subscriber's wish for the next poll, from its policy."""
        duration = self.entry.duration if self.entry is not None else None
        return self.policy.next_delay(
            age=time.time() - self.origin, polls=self.polls, duration=duration
        )

    def close(self) -> None:
        """Stop receiving; the last subscriber of a task stops its polling at once."""
        if self.entry is not None:
            self.scheduler._unsubscribe(self)


class Scheduler:
    """Serves every wait of one client; see the module docstring."""

    def __init__(
        self,
        *,
        gate: RateGate,
        max_in_flight: int = 8,
        retry: _retry.RetryPolicy | None = None,
    ) -> None:
        self._gate = gate
        self._max_in_flight = max_in_flight
        self._retry = retry or _retry.RetryPolicy()
        self._entries: dict[tuple[object, str], _Entry] = {}
        self._heap: list[tuple[float, int, int, _Entry]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._drivers: set[asyncio.Task[None]] = set()
        self._wakeup: asyncio.Future[None] | None = None
        self._sleep_until = float("inf")
        self._closed = False
        self.status_calls = 0

    @property
    def waiting(self) -> int:
        """Number of tasks being polled now."""
        return len(self._entries)

    def subscribe(
        self,
        task_id: str,
        *,
        fetcher: StatusFetcher,
        gated: bool,
        policy: PollPolicy,
        origin: float,
        duration: int | None,
        sink: Sink,
        poll_now: bool,
    ) -> Subscription:
        """Start (or join) polling ``task_id``; updates go to ``sink``.

        Args:
            task_id: The task.
            fetcher: Where statuses come from; the entry key with ``task_id``.
            gated: Whether ``fetcher`` passes the rate gate itself (the HTTP one does).
            policy: This subscriber's poll policy.
            origin: Wall-clock time the task was created.
            duration: Requested duration, for the policy's learning buckets.
            sink: Called (synchronously) with each snapshot or the final error.
            poll_now: Poll at once (nothing is known of the task yet).
        """
        if self._closed:
            from ._http import ClientClosedError

            raise ClientClosedError("this StarVideos client is closed")
        key = (fetcher, task_id)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(key, fetcher, gated)
            entry.duration = duration
        subscription = Subscription(self, entry, policy, origin, sink)
        entry.subscribers.append(subscription)
        if entry.scope is None:  # nothing in flight: (re)plan the next call
            delay = 0.0 if poll_now else subscription.next_delay()
            self._schedule(entry, anyio.current_time() + delay, only_earlier=True)
        self._ensure_driver()
        return subscription

    def _schedule(self, entry: _Entry, due: float, *, only_earlier: bool = False) -> None:
        if only_earlier and entry.due is not None and entry.due <= due:
            return
        entry.token += 1
        entry.due = due
        heapq.heappush(self._heap, (due, next(self._seq), entry.token, entry))
        if due < self._sleep_until and self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _unsubscribe(self, subscription: Subscription) -> None:
        entry = subscription.entry
        subscription.entry = None
        if entry is None:
            return
        try:
            entry.subscribers.remove(subscription)
        except ValueError:
            return
        if not entry.subscribers:
            self._drop(entry)

    def _drop(self, entry: _Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.token += 1
        entry.due = None
        if entry.scope is not None:
            entry.scope.cancel()
        if not self._entries:
            self._heap.clear()
            if self._wakeup is not None and not self._wakeup.done():
                self._wakeup.set_result(None)

    def _ensure_driver(self) -> None:
        if self._driver is None:
            driver = asyncio.get_running_loop().create_task(self._run())
            self._driver = driver
            self._drivers.add(driver)
            driver.add_done_callback(self._drivers.discard)

    async def aclose(self) -> None:
        """Stop every wait (their subscribers see nothing more) and the driver."""
        self._closed = True
        for entry in list(self._entries.values()):
            self._drop(entry)
        drivers = list(self._drivers)
        for driver in drivers:
            driver.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        slots = anyio.Semaphore(self._max_in_flight)
        try:
            async with anyio.create_task_group() as group:
                while self._entries:
                    entry, due = self._next_due()
                    due = max(due, self._gate.paused_until)
                    if entry is None or due > loop.time():
                        await self._sleep(loop, due)
                        continue
                    heapq.heappop(self._heap)
                    entry.due = None
                    await slots.acquire()
                    if not entry.subscribers:  # abandoned while we waited for a slot
                        slots.release()
                        continue
                    entry.scope = anyio.CancelScope()  # marks the entry as in flight
                    group.start_soon(self._poll, entry, entry.scope, slots)
                self._driver = None
                group.cancel_scope.cancel()
        finally:
            if self._driver is asyncio.current_task():
                self._driver = None

    def _next_due(self) -> tuple[_Entry | None, float]:
        heap = self._heap
        while heap:
            due, _, token, entry = heap[0]
            if token == entry.token and entry.scope is None and entry.subscribers:
                return entry, due
            heapq.heappop(heap)
        return None, float("inf")

    async def _sleep(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        wakeup: asyncio.Future[None] = loop.create_future()
        self._wakeup = wakeup
        self._sleep_until = until
        handle = None
        if until != float("inf"):
            handle = loop.call_at(until, _resolve, wakeup)
        try:
            await wakeup
        finally:
            self._wakeup = None
            self._sleep_until = float("inf")
            if handle is not None:
                handle.cancel()

    async def _poll(self, entry: _Entry, scope: anyio.CancelScope, slots: anyio.Semaphore) -> None:
        outcome: Update | None = None
        try:
            with scope:
                if not entry.gated:
                    await self._gate.wait()
                self.status_calls += 1
                for subscriber in entry.subscribers:
                    subscriber.polls += 1
                try:
                    outcome = await entry.fetcher(entry.task_id)
                except Exception as exc:
                    outcome = exc
        finally:
            entry.scope = None
            slots.release()
        if outcome is None or not entry.subscribers:
            return  # abandoned while in flight
        if isinstance(outcome, BaseException):
            self._failed(entry, outcome)
        else:
            self._delivered(entry, outcome)

    def _failed(self, entry: _Entry, error: BaseException) -> None:
        retryable = isinstance(error, StarVideosError) and _retry.should_retry(error, method="GET")
        if not entry.gated and retryable and entry.failures < self._retry.max_retries:
            # A custom fetcher's error gets the same retry policy as HTTP status calls.
            entry.failures += 1
            hint = error.retry_after if isinstance(error, RateLimitError) else None
            delay = self._retry.backoff(entry.failures, hint)
            if isinstance(error, RateLimitError):
                self._gate.pause(delay)
            self._schedule(entry, anyio.current_time() + delay)
            return
        self._drop(entry)
        for subscriber in list(entry.subscribers):
            subscriber.entry = None
            subscriber.sink(subscriber, error)
        entry.subscribers.clear()

    def _delivered(self, entry: _Entry, video: Video) -> None:
        entry.failures = 0
        now_wall = time.time()
        subscribers = list(entry.subscribers)
        if video.is_terminal:
            self._drop(entry)
            entry.subscribers.clear()
            if video.status is TaskStatus.COMPLETED and subscribers:
                self._learn(entry, subscribers, now_wall)
            for subscriber in subscribers:
                subscriber.entry = None
                subscriber.sink(subscriber, video)
            return
        entry.last_pending = now_wall
        for subscriber in subscribers:
            subscriber.sink(subscriber, video)
        if entry.subscribers and entry.scope is None:
            delay = min(s.next_delay() for s in entry.subscribers)
            self._schedule(entry, anyio.current_time() + delay)

    def _learn(self, entry: _Entry, subscribers: list[Subscription], now_wall: float) -> None:
        # The task finished between the last "running" answer and this one.
        finished = now_wall if entry.last_pending is None else (entry.last_pending + now_wall) / 2
        seen: set[int] = set()
        for subscriber in subscribers:
            if id(subscriber.policy) not in seen:
                seen.add(id(subscriber.policy))
                subscriber.policy.observe(
                    finished_after=finished - subscriber.origin, duration=entry.duration
                )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
