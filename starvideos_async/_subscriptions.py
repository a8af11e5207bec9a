"""Who waits on what, and when: entries, subscriptions, and the plan of their calls.

An entry per task being polled, a subscription per waiter, a heap of next calls. The
scheduler (:mod:`._polling`) keeps one entry per (status fetcher, task id), so that
waiters on the same task share its status calls; each waiter's subscription carries its
poll policy and where its updates go. An entry also tells those policies what the task
shows of its duration (still running at an age, finished between two ages).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ._models import Video
from ._poll_policy import PollPolicy

__all__ = [
    "Entry",
    "Plan",
    "Sink",
    "StatusCallback",
    "StatusFetcher",
    "Subscription",
    "Update",
    "close_all",
    "close_soon",
    "void",
]


logger = logging.getLogger("starvideos_async")


class _Scheduler(Protocol):
    """What a subscription asks of its scheduler."""

    def unsubscribe(self, subscription: Subscription) -> None: ...


#: Any ``async (task_id) -> Video``: where ``wait()`` gets statuses from.
StatusFetcher = Callable[[str], Awaitable[Video]]
#: Called with each new status; may be a plain or an async function.
StatusCallback = Callable[[Video], Awaitable[object] | object]
#: An item of the plan: ``[due time, ticket, entry or None once void]``.
PlanItem = list[Any]
#: Void items of the plan dropped at most at once.
_VOID_SLICE = 1000
#: What a subscriber receives: a snapshot, or the error that ends its wait.
Update = Video | BaseException
Sink = Callable[["Subscription", Update], None]


class Entry:
    """One (fetcher, task id) being polled, and everyone waiting on it."""

    __slots__ = (
        "call",
        "duration",
        "fetcher",
        "gated",
        "last_running",
        "live",
        "plan",
        "subscribers",
        "task_id",
        "tracking",
    )

    def __init__(
        self, task_id: str, fetcher: StatusFetcher, gated: bool, duration: int | None
    ) -> None:
        self.task_id = task_id
        self.fetcher = fetcher
        self.gated = gated  # the fetcher passes the rate gate itself
        self.duration = duration
        self.subscribers: list[Subscription] = []
        self.live = True  # until the scheduler drops it
        self.plan: PlanItem | None = None  # its next call's item in the plan
        self.call: asyncio.Task[None] | None = None  # its call in flight
        self.last_running: float | None = None  # wall time it was last seen running
        self.tracking: list[PollPolicy] | None = None  # policies told it runs

    # What the waiters' poll policies learn from this task (each policy told once, however
    # many of its waiters wait here). Learning is a bonus: a policy that fails to take it
    # is logged, and never costs a caller its wait.

    def tell_running(self, now_wall: float) -> None:
        """Tell each learning policy that the task still runs, at its age now."""
        self.last_running = now_wall
        told: list[PollPolicy] = []
        for subscriber in self.subscribers:
            policy = subscriber.policy
            if type(policy).running is PollPolicy.running or any(p is policy for p in told):
                continue  # (a policy that learns nothing from running tasks)
            told.append(policy)
            if self.tracking is None:
                self.tracking = [policy]
            elif policy not in self.tracking:
                self.tracking.append(policy)
            try:
                age = max(now_wall - subscriber.origin, 0.0)
                policy.running(key=self, age=age, duration=self.duration)
            except Exception:
                logger.exception("%s.running() failed", type(policy).__name__)

    def tell_finished(self, now_wall: float) -> None:
        """Tell each policy between which ages the task finished."""
        told: list[PollPolicy] = []
        for subscriber in self.subscribers:
            policy = subscriber.policy
            running = self.last_running or subscriber.running_since
            if running is None or not subscriber.origin_known or any(p is policy for p in told):
                continue  # e.g. an old task whose first answer was already final
            told.append(policy)
            try:
                policy.observe(
                    running_at=max(running - subscriber.origin, 0.0),
                    finished_by=max(now_wall - subscriber.origin, 0.0),
                    duration=self.duration,
                )
            except Exception:
                logger.exception("%s.observe() failed", type(policy).__name__)

    def tell_ended(self) -> None:
        """Tell the policies told it runs that nobody waits on it any more."""
        for policy in self.tracking or ():
            try:
                policy.ended(key=self)
            except Exception:
                logger.exception("%s.ended() failed", type(policy).__name__)
        self.tracking = None


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
        scheduler: _Scheduler,
        policy: PollPolicy,
        origin: float | None,
        running_since: float | None,
        sink: Sink,
        tag: object,
    ) -> None:
        self.scheduler = scheduler
        self.entry: Entry | None = None
        self.policy = policy
        self.origin_known = origin is not None
        self.origin = origin if origin is not None else time.time()
        self.running_since = running_since
        self.polls = 0
        self.sink = sink
        self.tag = tag

    def next_delay(self, duration: int | None, now_wall: float) -> float:
        """This subscriber's wish for the next poll, from its policy, checked."""
        age = now_wall - self.origin
        delay = self.policy.next_delay(age=age, polls=self.polls, duration=duration)
        if type(delay) is float and delay >= 0.0:  # the usual answer (NaN fails >=)
            return delay
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay != delay:
            raise TypeError(
                f"{type(self.policy).__name__}.next_delay() returned {delay!r}, "
                "not a number of seconds"
            )
        return max(float(delay), 0.0)

    def close(self) -> None:
        """Stop receiving; the last subscriber of a task stops its polling at once."""
        if self.entry is not None:
            self.scheduler.unsubscribe(self)


class Plan:
    """The entries' next calls by due time: a heap of ``[due time, ticket, entry]`` items.

    The :mod:`heapq` documentation's recipe: planning an entry anew or dropping it sets
    its older item's entry to ``None`` (:func:`void`), skipped when it comes up; the
    ticket keeps equal due times in order. (Not a table of tickets beside the heap:
    with a hundred thousand waits, a dict whose keys are always new is rebuilt every so
    often, and each rebuild held the event loop for milliseconds.)
    """

    __slots__ = ("_heap", "_tickets")

    def __init__(self) -> None:
        self._heap: list[PlanItem] = []
        self._tickets = itertools.count()

    def put(self, entry: Entry, due: float) -> bool:
        """Plan ``entry``'s next call at ``due``, its older plan void; True if now first."""
        void(entry)
        item = entry.plan = [due, next(self._tickets), entry]
        heapq.heappush(self._heap, item)
        return self._heap[0] is item

    def next_due(self) -> float:
        """When the first item is due (inf: none), void items dropped first.

        At most a slice of them per call: the items of a hundred thousand waits dropped
        at once, popped together, held the loop for most of a tenth of a second. A void
        item still first is due no later than any live one: the driver looks again then.
        """
        heap = self._heap
        for _ in range(_VOID_SLICE):
            if not heap or heap[0][2] is not None:
                break
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def take(self, now: float) -> Entry | None:
        """The entry due first if it is due by ``now``, taken off the plan; else None."""
        if self.next_due() > now or self._heap[0][2] is None:
            return None
        entry: Entry = heapq.heappop(self._heap)[2]
        entry.plan = None
        return entry

    def cut(self, count: int) -> None:
        """Drop the last ``count`` items, whatever they are (still a heap after).

        For the client's close, which ends every entry anyway.
        """
        del self._heap[-count:]

    def clear(self) -> None:
        self._heap.clear()


def void(entry: Entry) -> None:
    """Void ``entry``'s item in the plan, if any (it holds the entry no more)."""
    if entry.plan is not None:
        entry.plan[2] = None
        entry.plan = None


def close_soon(
    subscriptions: list[Subscription | None], loop: asyncio.AbstractEventLoop | None
) -> None:
    """Close subscriptions from a finaliser: on the loop's thread, at its next turn.

    A finaliser can run in the middle of the scheduler's own bookkeeping (a garbage
    collection triggered there), so it never touches the scheduler directly.
    """
    if loop is None or not any(subscriptions):
        return
    with contextlib.suppress(RuntimeError):  # a closed loop: nothing polls any more
        loop.call_soon_threadsafe(close_all, subscriptions)


#: Subscriptions closed in one step of the event loop; the rest in the next ones.
_CLOSE_SLICE = 1000


def close_all(subscriptions: list[Subscription | None]) -> None:
    """Close (and take out) every subscription of the list, a slice per event-loop step.

    Closing a hundred thousand at once (a ``wait_all()`` cancelled) would hold the loop
    for tens of milliseconds, and so would freeing them all at once: each is let go of
    once closed. Until its slice comes, a subscription may still be polled.
    """
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:  # no loop running here: nothing to hold up, all at once
        loop = None
    for _ in range(min(len(subscriptions), _CLOSE_SLICE) if loop else len(subscriptions)):
        subscription = subscriptions.pop()
        if subscription is not None:
            subscription.close()
    if loop is not None and subscriptions:
        loop.call_soon(close_all, subscriptions)
