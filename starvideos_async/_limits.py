"""Limits on how hard one client presses on the service.

* :class:`Limiter`: what every API request holds while it is on the wire (one slot per
  request). The default is an :class:`asyncio.Semaphore`; anything with ``async with``
  semantics fits, e.g. a limiter shared between processes.
* :class:`RateGate`: no window of one second sees more than ``rate`` status calls, and a
  429 pauses every status call of the client at once.
* :class:`Coordinator`: where a client gets limits shared with other processes (a
  limiter, a gate whose passes take an async step, a status fetcher that shares polls);
  ``starvideos_async.redis`` has one. Without it nothing here leaves the process.
* :class:`ClientLimits`: the limiter and the gate of one client, its own or shared
  through its coordinator, and the status fetcher that goes with them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._models import Video

__all__ = [
    "ClientLimits",
    "Coordinated",
    "Coordinator",
    "Limiter",
    "RateGate",
    "check_limits",
    "default_limiter",
]


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
    """``slots`` requests in flight at once, first come first served.

    An :class:`asyncio.Semaphore`: the SDK runs on asyncio (aiohttp), and every request
    enters it, so the cheapest fair one (a free slot is taken without a turn of the
    event loop; a slot is not tied to the task that took it).
    """
    return asyncio.Semaphore(slots)


class RateGate:
    """Status calls evenly spaced, ``rate`` a second at the most; a 429 pauses them all.

    Passes follow a grid ``(1 + SLACK) / rate`` seconds apart. A pass taken late (the
    event loop was busy, a sleep ended late) is made up by the next ones, which may
    then come closer together, as long as the grid lags the clock by at most
    ``SLACK / 2`` seconds less one spacing: so no one-second window holds more than
    ``rate`` passes, even after a little jitter on the way to the service, and the
    rate is reached (passes spaced from the moment each was taken lose every lateness:
    about 60 % of a 1,000/s cap beside a busy loop). ``rate=None`` means no cap
    (pauses still apply).

    Two ways through: :meth:`wait` queues for a pass and takes it; a caller that must
    not wait while holding something (an HTTP request holding its connection slot)
    calls :meth:`try_pass`, and when refused, lets go, waits for :meth:`ready` and
    tries again.
    """

    #: Whether a pass :meth:`try_pass` gave must also be confirmed by :meth:`confirm`
    #: (an async step: the cap is shared with other processes). Never for this class.
    shared: ClassVar[bool] = False

    #: Spacing slack, so that transit jitter cannot squeeze ``rate + 1`` arrivals
    #: into one of the service's one-second windows.
    SLACK: ClassVar[float] = 0.02

    #: Whether passes taken late are made up by the next ones (see the class docstring).
    CATCH_UP: ClassVar[bool] = True

    def __init__(self, rate: float | None) -> None:
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf
        ):
            raise ValueError(f"max_status_rate must be a positive number or None, got {rate!r}")
        self.rate = rate
        self._spacing = (1 + self.SLACK) / rate if rate is not None else 0.0
        # how far the grid may lag the clock (no cap: no grid)
        catches_up = self.CATCH_UP and rate is not None
        self._catch_up = max(self.SLACK / 2 - self._spacing, 0.0) if catches_up else 0.0
        self._next = -math.inf  # the earliest time of the next pass (on the grid)
        self._paused_until = -math.inf
        self._queue = asyncio.Lock()  # callers wait for their turn in arrival order

    def __repr__(self) -> str:
        return f"<RateGate rate={self.rate}>"

    def pause(self, seconds: float) -> None:
        """Hold every pass until ``seconds`` from now (a 429 asked for it)."""
        self._paused_until = max(self._paused_until, _now() + seconds)
        self._next = max(self._next, self._paused_until)  # no catching up on the pause

    def delay(self) -> float:
        """Seconds until the next pass may happen (0: now)."""
        until = max(self._next, self._paused_until)
        return until - _now() if until > -math.inf else 0.0  # (never capped nor paused)

    def try_pass(self) -> bool:
        """Take a pass now if one is free; ``False`` when the cap or a pause says no."""
        if self.rate is None and self._paused_until == -math.inf:
            return True  # no cap, never paused: nothing to check
        now = _now()
        if max(self._next, self._paused_until) > now:
            return False
        self._next = max(self._next, now - self._catch_up) + self._spacing
        return True

    async def confirm(self) -> bool:
        """Confirm a pass :meth:`try_pass` gave, where the cap is shared (see :attr:`shared`).

        ``False``: another process took the pass; :meth:`delay` then says how long to wait.
        """
        return True

    async def ready(self) -> None:
        """Return once a pass may be free (takes none); callers queue in arrival order."""
        async with self._queue:
            while (delay := self.delay()) > 0:  # noqa: ASYNC110 - a clock, no event
                # (at least a millisecond: uvloop's clock counts whole milliseconds and
                # its timers may fire a little early, which would spin on tiny sleeps)
                await asyncio.sleep(max(delay, 0.001))

    async def wait(self) -> None:
        """Queue for a pass and take it."""
        while not (self.try_pass() and (not self.shared or await self.confirm())):
            await self.ready()


class Coordinated(Protocol):
    """What a :class:`Coordinator` gives one client: its shared limits, and their end."""

    #: Holds a slot of the shared concurrency limit per request.
    limiter: Limiter
    #: The shared status-rate cap (its :attr:`RateGate.shared` is true).
    gate: RateGate

    def share_polls(
        self,
        fetch: Callable[[str], Awaitable[Video]],
        offer: Callable[[str, Callable[[], Video]], None],
    ) -> Callable[[str], Awaitable[Video]]:
        """``fetch`` (the client's status call) made once per due time for all processes.

        ``offer(task_id, answer)`` is called with each status another process fetched
        (``answer()`` reads it), so that a final one can end this process's waits at once.
        """
        ...

    async def aclose(self) -> None:
        """The client closes: let go of what was taken for it."""
        ...


@runtime_checkable
class Coordinator(Protocol):
    """Shares a client's limits with the other clients on the same key (other processes).

    :class:`starvideos_async.redis.RedisCoordinator` is one.
    """

    def coordinate(
        self,
        *,
        api_key: str,
        base_url: str,
        max_concurrency: int,
        max_status_rate: float | None,
    ) -> Coordinated:
        """The shared limits of one client with this key, base URL and limits."""
        ...


class ClientLimits:
    """One client's limits: its own, or shared with other processes through a coordinator.

    Its arguments are checked by :func:`check_limits` first (the client does it before
    it reads the API key).

    Attributes:
        limiter: What every API request of the client holds while on the wire: the
            shared limiter with a coordinator, else ``limiter`` or the default one.
        gate: Every status call of the client passes it (the shared one with a
            coordinator).
        coordinator: The coordinator given, or ``None``.
    """

    def __init__(
        self,
        limiter: Limiter | None,
        coordinator: Coordinator | None,
        *,
        api_key: str,
        base_url: str,
        max_concurrency: int,
        max_status_rate: float | None,
    ) -> None:
        self.coordinator = coordinator
        self._shared: Coordinated | None = None
        if coordinator is None:
            self.limiter = limiter if limiter is not None else default_limiter(max_concurrency)
            self.gate = RateGate(max_status_rate)
            return
        self._shared = coordinator.coordinate(
            api_key=api_key,
            base_url=base_url,
            max_concurrency=max_concurrency,
            max_status_rate=max_status_rate,
        )
        self.limiter = self._shared.limiter
        self.gate = self._shared.gate

    def status_fetcher(
        self,
        retrieve: Callable[[str], Awaitable[Video]],
        offer: Callable[[Callable[[str], Awaitable[Video]], str, Callable[[], Video]], None],
    ) -> Callable[[str], Awaitable[Video]]:
        """The client's own status fetcher: ``retrieve``, or its polls shared by a coordinator.

        Shared, each final status another process fetched is passed on to
        ``offer(fetcher, task_id, answer)`` (the scheduler's), under the fetcher returned
        here, so that it ends this client's waits on the task at once.
        """
        if self._shared is None:
            return retrieve

        def offered(task_id: str, answer: Callable[[], Video]) -> None:
            offer(shared, task_id, answer)

        shared = self._shared.share_polls(retrieve, offered)
        return shared

    async def aclose(self) -> None:
        """The client closed (after its last request): let go of the shared limits."""
        if self._shared is not None:
            await self._shared.aclose()


def check_limits(limiter: Limiter | None, coordinator: Coordinator | None) -> None:
    """Refuse a coordinator that is not one, or a limiter beside a coordinator."""
    if coordinator is None:
        return
    if not isinstance(coordinator, Coordinator):
        raise ConfigurationError("coordinator", coordinator, "a RedisCoordinator")
    if limiter is not None:
        raise ConfigurationError("limiter", limiter, "None with a coordinator")


def _now() -> float:
    """The event loop's clock: the one its sleeps and timers follow."""
    return asyncio.get_running_loop().time()
