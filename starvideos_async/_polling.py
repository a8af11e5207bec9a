"""One status scheduler per client: every ``wait()``/``watch()`` of the client is served here.

Not one sleeping loop per waiter: a heap of next-due times, one timer
(``loop.call_at``), one driver task that hands the due status calls to workers, and
subscriptions that receive each new snapshot. Workers are long-lived tasks (at most
``max_in_flight``) that make one call after another: a worker whose call ends takes
the next due one itself and parks on a future when none is due, so a status call costs
no task of its own. Calls start only when the client's rate gate is open (calls of a
custom fetcher pass it here, the HTTP fetcher passes it per attempt); while the gate
sets the pace, the driver waits until a batch of passes is open (``RateGate.batch``)
and starts them together, since calls sent together share a turn of the event loop.
Waiters on the same task id with the same status fetcher share one entry, hence one
status call per due time.

Lifetimes, which is where the races hide:

* The driver task and the workers only live while someone waits. When the last
  subscription of an entry closes (finished, cancelled, broken out of), the entry's
  in-flight call is cancelled (it ends within a turn of the loop; its worker withdraws
  the cancel request and goes on), or taken back if its worker has not begun it; when
  no entry is left, the driver and the parked workers exit, so nothing is left
  running. A subscription arriving as the driver exits starts a new one.
* Subscribing to an entry whose call is in flight joins that call: the answer goes to
  every subscriber of the moment.
* Whatever goes wrong inside the driver (a policy that raises, a bug) ends the waits
  concerned with that error instead of leaving them waiting forever.
* :meth:`Scheduler.aclose` ends every wait with :class:`ClientClosedError`, then
  cancels and awaits the driver and the workers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable

from . import _retry
from ._errors import ClientClosedError, RateLimitError, StarVideosError
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

#: ``PollPolicy.running`` as inherited: a policy that does not track running tasks.
_NO_TRACKING = PollPolicy.running

#: Wait before polling again after a status call was cancelled by someone else.
_AFTER_STRAY_CANCEL = 1.0

if sys.version_info >= (3, 11):

    def _uncancel(task: asyncio.Task[None]) -> int:
        """Withdraw one cancel request; the number still pending."""
        return task.uncancel()

else:

    def _uncancel(task: asyncio.Task[None]) -> int:
        return 0  # cancel requests are not counted before 3.11: nothing to withdraw


class _Entry:
    """One (fetcher, task id) being polled, and everyone waiting on it."""

    __slots__ = (
        "call",
        "cancelled",
        "due",
        "duration",
        "failures",
        "fetcher",
        "gated",
        "key",
        "last_pending",
        "live",
        "subscribers",
        "task_id",
        "token",
        "tracking",
    )

    def __init__(
        self, key: tuple[object, str], fetcher: StatusFetcher, gated: bool, duration: int | None
    ) -> None:
        self.key = key
        self.task_id = key[1]
        self.fetcher = fetcher
        self.gated = gated
        self.duration = duration
        self.subscribers: list[Subscription] = []
        self.token = 0  # bumped on every (re)schedule: older heap items are stale
        self.due: float | None = None  # when the next call is planned, if one is
        self.call: _Worker | None = None  # the worker making (or about to make) its call
        self.cancelled = False  # _drop cancelled the call in flight
        self.failures = 0
        self.last_pending: float | None = None  # wall time of the last running status
        self.live = True  # False once dropped: a later subscriber gets a new entry
        # Policies told it runs, to be told when it ends (None, not a list per entry:
        # most policies do not track).
        self.tracking: list[PollPolicy] | None = None


class Subscription:
    """One waiter's interest in one task; receives every snapshot through ``sink``.

    Attributes:
        tag: Anything the subscriber wants back in its sink (e.g. an index).
        polls: Status calls made for this subscription.
    """

    __slots__ = (
        "entry",
        "origin",
        "origin_known",
        "policy",
        "polls",
        "running_since",
        "scheduler",
        "sink",
        "tag",
    )

    def __init__(
        self,
        scheduler: Scheduler,
        policy: PollPolicy,
        origin: float | None,
        running_since: float | None,
        sink: Sink,
        tag: object,
    ) -> None:
        self.scheduler = scheduler
        self.entry: _Entry | None = None
        self.policy = policy
        self.origin_known = origin is not None
        self.origin = origin if origin is not None else time.time()
        self.running_since = running_since
        self.polls = 0
        self.sink = sink
        self.tag = tag

    def next_delay(self, duration: int | None, now_wall: float | None = None) -> float:
        """This subscriber's wish for the next poll, from its policy, checked.

        ``now_wall``: the wall-clock time, when the caller has just read it.
        """
        policy = self.policy
        age = (time.time() if now_wall is None else now_wall) - self.origin
        delay = policy.next_delay(age=age, polls=self.polls, duration=duration)
        if type(delay) is float and delay >= 0.0:  # the usual answer (NaN fails >=)
            return delay
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay != delay:
            raise TypeError(
                f"{type(policy).__name__}.next_delay() returned {delay!r}, not a number of seconds"
            )
        return max(float(delay), 0.0)

    def close(self) -> None:
        """Stop receiving; the last subscriber of a task stops its polling at once."""
        if self.entry is not None:
            self.scheduler._unsubscribe(self)


class Scheduler:
    """Serves every wait of one client; see the module docstring.

    Args:
        gate: The client's status rate gate (``max_status_rate`` and 429 pauses).
        max_in_flight: Status calls in flight at once.
        retry: How failures of custom fetchers are retried (the HTTP fetcher retries
            by itself).
    """

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
        self._workers: set[asyncio.Task[None]] = set()  # at most max_in_flight
        self._idle: list[_Worker] = []  # workers parked until a call is handed over
        self._wakeup: asyncio.Future[None] | None = None
        self._sleep_until = math.inf
        self._blocked = False  # the driver waits for a free call slot
        self._in_flight = 0
        # Calls handed to a worker that has not begun them: they have not passed the
        # rate gate yet, so the gate's state does not show them.
        self._handed = 0
        self._closed = False
        #: Status calls started (fetcher invocations), for benchmarks and tests.
        self.status_calls = 0

    @property
    def waiting(self) -> int:
        """Number of tasks being polled now."""
        return len(self._entries)

    @property
    def running(self) -> bool:
        """Whether a driver or a status call task is running (none should when idle)."""
        return any(not task.done() for task in (*self._drivers, *self._workers))

    def subscribe(
        self,
        task_id: str,
        *,
        fetcher: StatusFetcher,
        gated: bool,
        policy: PollPolicy,
        origin: float | None,
        duration: int | None,
        sink: Sink,
        poll_now: bool,
        running_since: float | None = None,
        tag: object = None,
    ) -> Subscription:
        """Start (or join) polling ``task_id``; updates go to ``sink``.

        Args:
            task_id: The task.
            fetcher: Where statuses come from; the entry key with ``task_id``.
            gated: Whether ``fetcher`` passes the rate gate itself (the HTTP one does).
            policy: This subscriber's poll policy.
            origin: Wall-clock time the task was created, or ``None`` when unknown
                (then taken from the first snapshot's ``created``).
            duration: Requested duration, for the policy's learning buckets.
            sink: Called (synchronously, from the event loop) with each snapshot, or
                the error that ends the wait. After a terminal snapshot or an error
                the subscription is over.
            poll_now: Poll at once (nothing is known of the task yet).
            running_since: Wall time the task was last known running, if known (for
                learning when the first answer is already final).
            tag: Stored on the subscription for the sink.

        Raises:
            ClientClosedError: The client was closed.
        """
        if self._closed:
            raise ClientClosedError("this StarVideos client is closed")
        loop = asyncio.get_running_loop()
        subscription = Subscription(self, policy, origin, running_since, sink, tag)
        key = (fetcher, task_id)
        entry = self._entries.get(key)
        # Ask the policy before registering anything: if it raises, nothing is left over.
        delay = 0.0 if poll_now else subscription.next_delay(duration)
        if entry is None:
            entry = self._entries[key] = _Entry(key, fetcher, gated, duration)
        subscription.entry = entry
        entry.subscribers.append(subscription)
        if entry.call is None:  # nothing in flight: (re)plan the next call
            self._schedule(entry, loop.time() + delay, only_earlier=True)
        self._ensure_driver(loop)
        return subscription

    # -- bookkeeping (all synchronous: no await between a check and its action) -------

    def _schedule(self, entry: _Entry, due: float, *, only_earlier: bool = False) -> None:
        if only_earlier and entry.due is not None and entry.due <= due:
            return
        entry.token += 1
        entry.due = due
        heapq.heappush(self._heap, (due, next(self._seq), entry.token, entry))
        if due < self._sleep_until and not self._blocked:
            self._wake()  # a blocked driver is woken by the call that frees a slot

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

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
        """Stop polling ``entry``: forget it, cancel its call (subscribers keep theirs)."""
        if not entry.live:
            return
        entry.live = False
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.token += 1
        entry.due = None
        tracking, entry.tracking = entry.tracking, None
        for policy in tracking or ():
            try:
                policy.ended(key=entry)
            except Exception:
                logger.exception("%s.ended() failed", type(policy).__name__)
        worker = entry.call
        if worker is not None:
            if worker.started:
                entry.cancelled = True
                worker.task.cancel()  # it ends within a turn; the worker lives on
            else:  # handed over but not begun: take it back
                entry.call = worker.entry = None
                self._in_flight -= 1
                self._unhand(worker)
                if self._blocked or self._sleep_until == -math.inf:
                    self._wake()  # (asleep on the gate: one pass fewer is spoken for)
        if not self._entries:
            self._heap.clear()
            self._wake()
            self._dismiss_idle()

    def _end(self, entry: _Entry, update: Update) -> None:
        """Drop ``entry`` and give every subscriber its last update."""
        self._drop(entry)
        subscribers, entry.subscribers = entry.subscribers, []
        for subscriber in subscribers:
            subscriber.entry = None
        for subscriber in subscribers:
            _send(subscriber, update)

    def _ensure_driver(self, loop: asyncio.AbstractEventLoop) -> None:
        driver = self._driver
        if driver is None or driver.done() or driver.get_loop() is not loop:
            driver = loop.create_task(self._run(), name="starvideos-async scheduler")
            self._driver = driver
            self._drivers.add(driver)
            driver.add_done_callback(self._drivers.discard)

    async def aclose(self) -> None:
        """End every wait with :class:`ClientClosedError`, then stop the drivers."""
        self._closed = True
        if self._entries:
            error = ClientClosedError("the StarVideos client was closed during the wait")
            for entry in list(self._entries.values()):
                self._end(entry, error)
        loop = asyncio.get_running_loop()
        tasks = [t for t in (*self._drivers, *self._workers) if t.get_loop() is loop]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the driver -------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._entries:
                if self._in_flight >= self._max_in_flight:
                    await self._sleep(loop, math.inf, blocked=True)
                    continue
                entry, due = self._next_due()
                now = loop.time()
                if entry is not None:
                    gate = self._gate
                    opens = gate.opens_at(self._handed + 1, now)
                    if opens > due and opens > now:
                        # The rate cap, not the due time, holds the calls back: wake
                        # when a batch of passes is open and start them together (a
                        # call falling due meanwhile could not start any sooner).
                        await self._sleep(
                            loop, gate.opens_at(self._handed + gate.batch, now), gated=True
                        )
                        continue
                if entry is None or due > now:
                    await self._sleep(loop, due)
                    continue
                heapq.heappop(self._heap)
                entry.due = None
                self._start_call(loop, entry)
        except Exception as exc:  # a bug: end the waits with it rather than hang them
            logger.exception("the status scheduler failed; ending every wait")
            for entry in list(self._entries.values()):
                self._end(entry, exc)
        finally:
            if self._driver is asyncio.current_task():
                self._driver = None  # synchronously with the last check of _entries
            # Calls still running belong to dropped entries and are cancelled already,
            # unless the driver itself was cancelled: then cancel the workers here. They
            # end within a turn of the loop on their own; aclose() awaits them.
            if self._entries:
                for worker in self._workers:
                    worker.cancel()
            self._dismiss_idle()

    def _next_due(self) -> tuple[_Entry | None, float]:
        heap = self._heap
        while heap:
            due, _, token, entry = heap[0]
            if token == entry.token and entry.live and entry.call is None:
                return entry, due
            heapq.heappop(heap)
        return None, math.inf

    async def _sleep(
        self,
        loop: asyncio.AbstractEventLoop,
        until: float,
        *,
        blocked: bool = False,
        gated: bool = False,
    ) -> None:
        wakeup: asyncio.Future[None] = loop.create_future()
        self._wakeup = wakeup
        # What falls due before ``until`` wakes the driver, unless the rate gate set
        # the time: then nothing can start sooner anyway.
        self._sleep_until = -math.inf if gated else until
        self._blocked = blocked
        handle = loop.call_at(until, _resolve, wakeup) if until < math.inf else None
        try:
            await wakeup
        finally:
            self._wakeup = None
            self._sleep_until = math.inf
            self._blocked = False
            if handle is not None:
                handle.cancel()

    def _start_call(self, loop: asyncio.AbstractEventLoop, entry: _Entry) -> None:
        """Hand ``entry``'s call to a parked worker, or to a new one."""
        self._count_call(entry)
        self._handed += 1  # until the worker begins it (in _Worker.run)
        if self._idle:
            worker = self._idle.pop()
            worker.hand_over(entry)
            return
        worker = _Worker(self, entry)
        task = loop.create_task(worker.run(), name="starvideos-async status calls")
        worker.task = task
        self._workers.add(task)
        task.add_done_callback(worker.over)

    def _unhand(self, worker: _Worker) -> None:
        """``worker``'s handed call began, was taken back, or died: it is not pending."""
        if worker.handed:
            worker.handed = False
            self._handed -= 1

    def _count_call(self, entry: _Entry) -> None:
        self._in_flight += 1
        for subscriber in entry.subscribers:
            subscriber.polls += 1

    def _take_next(self, worker: _Worker) -> _Entry | None:
        """The next due call, for a worker whose call just ended; else wake the driver.

        A worker goes from one due call to the next without a task or a turn of the
        loop per call: the driver only plans its next sleep when nothing is due now.
        """
        if self._in_flight < self._max_in_flight and not self._closed:
            entry, due = self._next_due()
            # Not while the rate cap sets the pace: then the driver starts the calls,
            # a batch at a time, rather than each worker one call per pass.
            gate = self._gate
            now = worker.loop.time()
            if (
                entry is not None
                and due <= now
                and gate.opens_at(self._handed + gate.batch, now) <= now
            ):
                heapq.heappop(self._heap)
                entry.due = None
                self._count_call(entry)
                entry.call = worker
                worker.entry = entry
                return entry
        if self._blocked:
            self._wake()
        return None

    def _dismiss_idle(self) -> None:
        idle, self._idle = self._idle, []
        for worker in idle:
            worker.hand_over(None)

    def _finish(self, worker: _Worker, entry: _Entry, outcome: Update | None) -> None:
        """``worker``'s call for ``entry`` ended with ``outcome``: free it, deliver it.

        The call itself is awaited in :meth:`_Worker.run` (no coroutine of its own:
        a frame less on every resume of the request); ``None`` means it was cancelled
        by :meth:`_drop`.
        """
        if entry.cancelled:  # cancelled, but the fetcher swallowed it
            entry.cancelled = False
            _uncancel(worker.task)
        worker.started = False
        worker.entry = None
        if entry.call is worker:
            entry.call = None
            self._in_flight -= 1
        if outcome is None or not entry.live:
            return  # abandoned while in flight
        try:
            if isinstance(outcome, BaseException):
                self._failed(entry, outcome)
            else:
                self._delivered(entry, outcome, worker.loop)
        except Exception as exc:  # a policy raised: end these waits with its error
            if entry.subscribers:
                self._end(entry, exc)
            else:
                self._drop(entry)

    def _failed(self, entry: _Entry, error: BaseException) -> None:
        if isinstance(error, StarVideosError):
            retryable = _retry.should_retry(error, method="GET")
        else:  # a custom fetcher's own trouble (a database, a cache): transient, maybe
            retryable = isinstance(error, Exception)
        if not entry.gated and retryable and entry.failures < self._retry.max_retries:
            # A custom fetcher's error gets the same retry policy as HTTP status calls,
            # then surfaces as itself.
            entry.failures += 1
            hint = _retry.server_hint(error)
            delay = self._retry.backoff(entry.failures, hint)
            if isinstance(error, RateLimitError):
                self._gate.pause(delay)
            logger.debug(
                "status of %s failed (%s), retry %d/%d in %.2fs",
                entry.task_id,
                type(error).__name__,
                entry.failures,
                self._retry.max_retries,
                delay,
            )
            self._schedule(entry, asyncio.get_running_loop().time() + delay)
            return
        self._end(entry, error)

    def _delivered(self, entry: _Entry, video: Video, loop: asyncio.AbstractEventLoop) -> None:
        entry.failures = 0
        now_wall = time.time()
        subscribers = list(entry.subscribers)
        if video.created is not None:
            for subscriber in subscribers:
                if not subscriber.origin_known:
                    subscriber.origin = float(video.created)
                    subscriber.origin_known = True
        if video.is_terminal:
            if video.status is TaskStatus.COMPLETED:
                self._learn(entry, subscribers, now_wall)
            self._end(entry, video)
            return
        entry.last_pending = now_wall
        told: list[PollPolicy] = []  # once per policy, even with several waiters
        for subscriber in subscribers:
            policy = subscriber.policy
            if type(policy).running is not _NO_TRACKING and (
                not told or all(p is not policy for p in told)
            ):
                told.append(policy)
                self._track(entry, policy, now_wall - subscriber.origin)
            try:  # (_send, inlined: once per status call)
                subscriber.sink(subscriber, video)
            except Exception:
                logger.exception("a status subscriber failed to take an update")
        remaining = entry.subscribers
        if entry.live and entry.call is None and remaining:
            delay = (
                remaining[0].next_delay(entry.duration, now_wall)
                if len(remaining) == 1
                else min(s.next_delay(entry.duration, now_wall) for s in remaining)
            )
            self._schedule(entry, loop.time() + delay)

    def _track(self, entry: _Entry, policy: PollPolicy, age: float) -> None:
        """Tell a learning policy the task still runs (it learns from unfinished tasks)."""
        if entry.tracking is None:
            entry.tracking = [policy]
        elif policy not in entry.tracking:
            entry.tracking.append(policy)
        try:
            policy.running(key=entry, age=max(age, 0.0), duration=entry.duration)
        except Exception:  # learning is a bonus: never cost the caller its wait
            logger.exception("%s.running() failed", type(policy).__name__)

    def _learn(self, entry: _Entry, subscribers: list[Subscription], now_wall: float) -> None:
        """Tell each policy (once) between which ages the task finished."""
        seen: set[int] = set()
        for subscriber in subscribers:
            policy = subscriber.policy
            running = entry.last_pending
            if running is None:
                running = subscriber.running_since
            if running is None or not subscriber.origin_known or id(policy) in seen:
                continue  # e.g. an old task whose first answer was already final
            seen.add(id(policy))
            try:
                policy.observe(
                    running_at=max(running - subscriber.origin, 0.0),
                    finished_by=max(now_wall - subscriber.origin, 0.0),
                    duration=entry.duration,
                )
            except Exception:  # learning is a bonus: never cost the caller its video
                logger.exception("%s.observe() failed", type(policy).__name__)


class _Worker:
    """One task that makes status calls one after another: no task per call.

    It takes the next due call itself when its call ends, parks (awaits a future) when
    none is due, and is handed a call by the driver when one falls due. At most
    ``max_in_flight`` workers exist; they end when no task is being polled any more.
    """

    __slots__ = ("entry", "handed", "loop", "parked", "scheduler", "started", "task")

    def __init__(self, scheduler: Scheduler, entry: _Entry) -> None:
        self.scheduler = scheduler
        self.loop = asyncio.get_running_loop()
        self.entry: _Entry | None = entry
        self.started = False  # the current entry's call has begun (it can be cancelled)
        self.handed = True  # given a call by the driver, not begun yet
        self.parked: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None]
        entry.call = self

    def hand_over(self, entry: _Entry | None) -> None:
        """Give a parked worker its next call (``None``: stop)."""
        self.entry = entry
        if entry is not None:
            entry.call = self
            self.handed = True
        parked, self.parked = self.parked, None
        if parked is not None and not parked.done():
            parked.set_result(None)

    async def run(self) -> None:
        scheduler = self.scheduler
        while True:
            entry = self.entry
            if entry is not None:  # make its status call
                scheduler._unhand(self)
                self.started = True
                outcome: Update | None
                try:
                    if not entry.gated:
                        await scheduler._gate.wait()
                    scheduler.status_calls += 1
                    answer: object = await entry.fetcher(entry.task_id)
                    outcome = (
                        answer
                        if isinstance(answer, Video)
                        else TypeError(
                            f"the status fetcher returned {type(answer).__name__}, not a Video"
                        )
                    )
                except asyncio.CancelledError:
                    if not entry.cancelled:
                        raise  # not ours: the worker ends, its done-callback cleans up
                    entry.cancelled = False
                    if _uncancel(self.task):
                        raise  # someone else cancelled the worker as well
                    outcome = None
                except Exception as exc:
                    outcome = exc
                scheduler._finish(self, entry, outcome)
            if scheduler._take_next(self) is not None:
                continue
            if not scheduler._entries or scheduler._closed:
                return
            # Parked, it holds no answer: an error's traceback would keep frames alive.
            entry = answer = outcome = None
            parked = self.parked = self.loop.create_future()
            scheduler._idle.append(self)
            try:
                await parked
            finally:
                self.parked = None
                if self in scheduler._idle:
                    scheduler._idle.remove(self)

    def over(self, task: asyncio.Task[None]) -> None:
        """Done-callback: release the call a dying worker held.

        A task cancelled before its first step never runs its coroutine (no ``try``,
        no ``finally``): this is the one place sure to run.
        """
        scheduler = self.scheduler
        scheduler._workers.discard(task)
        scheduler._unhand(self)  # it may die before beginning the call it was handed
        entry, self.entry = self.entry, None
        if entry is None or entry.call is not self:
            return
        entry.call = None
        entry.cancelled = False
        scheduler._in_flight -= 1
        if scheduler._blocked:
            scheduler._wake()
        if entry.live and not scheduler._closed:
            # Cancelled, but not by _drop (the fetcher raised CancelledError, or the
            # loop is shutting down): poll again later rather than hang the waiters.
            scheduler._schedule(entry, task.get_loop().time() + _AFTER_STRAY_CANCEL)


def _send(subscriber: Subscription, update: Update) -> None:
    """Hand one update to a subscriber; a failing sink must not starve the others."""
    try:
        subscriber.sink(subscriber, update)
    except Exception:
        logger.exception("a status subscriber failed to take an update")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
