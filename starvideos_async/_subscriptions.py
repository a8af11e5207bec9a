"""Who waits on what: an entry per task being polled, a subscription per waiter.

The scheduler (:mod:`._polling`) keeps one entry per (status fetcher, task id), so that
waiters on the same task share its status calls; each waiter's subscription carries its
poll policy and where its updates go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ._models import Video
from ._poll_policy import PollPolicy

__all__ = [
    "Entry",
    "Sink",
    "StatusCallback",
    "StatusFetcher",
    "Subscription",
    "Update",
]


class _Scheduler(Protocol):
    """What a subscription asks of its scheduler."""

    def unsubscribe(self, subscription: Subscription) -> None: ...


#: Any ``async (task_id) -> Video``: where ``wait()`` gets statuses from.
StatusFetcher = Callable[[str], Awaitable[Video]]
#: Called with each new status; may be a plain or an async function.
StatusCallback = Callable[[Video], Awaitable[object] | object]
#: What a subscriber receives: a snapshot, or the error that ends its wait.
Update = Video | BaseException
Sink = Callable[["Subscription", Update], None]


class Entry:
    """One (fetcher, task id) being polled, and everyone waiting on it."""

    __slots__ = (
        "call",
        "due",
        "duration",
        "fetcher",
        "gated",
        "key",
        "last_running",
        "subscribers",
        "task_id",
        "ticket",
        "tracking",
    )

    def __init__(
        self, key: tuple[object, str], fetcher: StatusFetcher, gated: bool, duration: int | None
    ) -> None:
        self.key = key
        self.task_id = key[1]
        self.fetcher = fetcher
        self.gated = gated  # the fetcher passes the rate gate itself
        self.duration = duration
        self.subscribers: list[Subscription] = []
        self.due: float | None = None  # when its next call is planned
        self.ticket = -1  # its place in the plan
        self.call: asyncio.Task[None] | None = None  # its call in flight
        self.last_running: float | None = None  # wall time it was last seen running
        self.tracking: list[PollPolicy] | None = None  # policies told it runs


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
