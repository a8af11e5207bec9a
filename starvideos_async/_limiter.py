"""Limits on how hard one client presses on the service.

* :class:`Limiter` is the small interface every API request passes through (one slot
  per request in flight). The default is an :class:`anyio.Semaphore`; anything
  with ``async with`` semantics fits, e.g. a limiter shared between processes.
* :class:`RateGate` spaces status calls evenly so that no one-second window sees more than
  ``rate`` of them, and lets a 429 pause every status call of the client at once.
"""

from __future__ import annotations

import collections
import math
from types import TracebackType
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Limiter", "RateGate", "default_limiter"]


@runtime_checkable
class Limiter(Protocol):
    """An async context manager that holds one request slot while entered."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool | None: ...


def default_limiter(slots: int) -> Limiter:
    """``slots`` requests in flight at once, first come first served (an anyio semaphore)."""
    return _Slots(slots)


class _Slots:
    """An :class:`anyio.Semaphore` entered without a checkpoint when a slot is free.

    Every API request enters it, so its cost counts: ``anyio.CapacityLimiter`` yields to
    the event loop on every acquire (a task switch per request), and even
    ``Semaphore(fast_acquire=True)`` looks up the current task's cancel scope. A free
    slot is taken with ``acquire_nowait`` (a free slot means nobody queues: a release
    hands its slot straight to the first waiter); otherwise the caller queues in
    ``acquire``, in arrival order.
    """

    __slots__ = ("_semaphore",)

    def __init__(self, slots: int) -> None:
        self._semaphore = anyio.Semaphore(slots, max_value=slots, fast_acquire=True)

    def __repr__(self) -> str:
        semaphore = self._semaphore
        return f"<limiter {semaphore.value} of {semaphore.max_value} slots free>"

    async def __aenter__(self) -> None:
        semaphore = self._semaphore
        try:
            semaphore.acquire_nowait()
        except anyio.WouldBlock:
            await semaphore.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._semaphore.release()


class RateGate:
    """At most ``rate`` passes in any window of ``window`` seconds, plus shared pauses.

    Passes also follow an even schedule (one per ``window / rate``, each allowed up to
    :attr:`BURST` early): a cap enforced in bursts (a window's worth at once, then
    nothing) lets the jitter between here and the service push part of one burst into
    the next window the service counts, whereas evenly spaced calls only gain as many
    as arrive early by the slack. ``rate=None``
    means no cap (pauses still apply). Passing is fair in arrival order: one lock
    queues the callers and the holder sleeps until its turn.
    """

    #: A little slack so that transit jitter between here and the service cannot
    #: squeeze ``rate + 1`` arrivals into one of the service's windows.
    SLACK = 0.02
    #: How early a pass may come on the even schedule (half the slack: the other half
    #: absorbs jitter on the way to the service).
    BURST = 0.01
    #: The most passes :attr:`batch` suggests taking at once.
    MAX_BATCH = 10

    def __init__(self, rate: float | None, *, window: float = 1.0) -> None:
        if rate is not None and (isinstance(rate, bool) or not rate > 0 or math.isinf(rate)):
            raise ValueError(f"max_status_rate must be a positive number or None, got {rate!r}")
        self.rate = rate
        if rate is not None and rate < 1:
            window, slots = window / rate, 1  # e.g. 0.5/s: one pass per 2 s
        else:
            slots = math.floor(rate) if rate is not None else 0
        self._window = window + self.SLACK
        self._slots = slots
        self._spacing = self._window / slots if slots else 0.0
        # Passes follow a schedule one spacing apart (GCRA); a pass may come up to
        # ``BURST`` early, so that a loop whose timers fire a millisecond late still
        # keeps the pace, and at high rates a few passes may come together (at most
        # ``1 + BURST / spacing``, e.g. 10 at 1,000/s): in any window the count stays
        # below ``rate`` by the slack, and the window below is checked as well.
        self._due = -math.inf  # the next pass's place on the schedule
        self._early = self.BURST
        #: How many passes a caller starting calls on its own clock should wait for
        #: and take at once (see :meth:`opens_at`): calls sent together share a turn
        #: of the event loop, evenly spaced single calls each pay a whole turn. As many
        #: as fit in the early allowance, up to :attr:`MAX_BATCH`; 1 at low rates.
        self.batch = (
            max(1, min(self.MAX_BATCH, slots, 1 + math.floor(self._early / self._spacing)))
            if slots
            else self.MAX_BATCH
        )
        self._recent: collections.deque[float] = collections.deque(maxlen=self._slots or 1)
        self._lock = anyio.Lock()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every later pass until ``seconds`` from now (a 429 asked for it)."""
        self._paused_until = max(self._paused_until, anyio.current_time() + seconds)

    @property
    def paused_until(self) -> float:
        """The event-loop time before which nothing passes."""
        return self._paused_until

    def try_pass(self) -> float:
        """Pass now and return 0, or return the seconds until a pass may be possible.

        For callers that must not wait while holding something (the HTTP transport
        holds a limiter slot): release it, wait for :meth:`ready`, try again.
        """
        if not self._slots and not self._paused_until:
            return 0.0  # no cap and never paused: no clock read
        now = anyio.current_time()
        delay = self._delay(now)
        if delay > 0:
            return delay
        if self._slots:
            self._recent.append(now)
            self._due = max(self._due, now) + self._spacing
        return 0.0

    def _delay(self, now: float) -> float:
        return self.opens_at(1, now) - now

    def opens_at(self, count: int = 1, now: float = -math.inf) -> float:
        """The event-loop time from which ``count`` passes may happen at once (past: now).

        The scheduler starts a status call only then, so that the call passes at once
        instead of queueing in :meth:`ready`; ``count`` counts the calls it started
        that have not passed yet, plus the ones it means to start. ``now``, the event
        loop's time, makes the answer exact when the gate has been idle (more than a
        few passes cannot come at once then either: the schedule restarts from now).
        """
        slots = self._slots
        if not slots:
            return self._paused_until
        due = self._due if self._due > now else now
        ready = due + (count - 1) * self._spacing - self._early
        # The sliding window: the count-th pass from now must come a window after the
        # pass ``slots`` places before it (when that is one of the count, the even
        # schedule above already spaces them a window apart).
        recent = self._recent
        index = len(recent) + count - 1 - slots
        if 0 <= index < len(recent) and recent[index] + self._window > ready:
            ready = recent[index] + self._window
        return ready if ready > self._paused_until else self._paused_until

    async def ready(self) -> None:
        """Return when a pass may be possible; takes nothing (then :meth:`try_pass`).

        Callers queue in arrival order and only the first one sleeps on the clock, so
        each pass wakes one or two of them, not all: with passes spaced evenly, every
        caller sleeping on its own would wake every caller at every pass.
        """
        async with self._lock:
            while (delay := self._delay(anyio.current_time())) > 0:  # noqa: ASYNC110
                await anyio.sleep(delay)

    async def wait(self) -> None:
        """Return when one more call may start now (callers pass in arrival order)."""
        if self.rate is None and (
            not self._paused_until or self._paused_until <= anyio.current_time()
        ):
            return  # no cap and never paused: no clock read, no lock
        async with self._lock:
            while delay := self.try_pass():  # noqa: ASYNC110 - a timed window, no event to wait on
                await anyio.sleep(delay)
