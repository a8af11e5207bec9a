"""When to ask for a task's status next.

Two policies:

* :meth:`PollPolicy.fixed` polls at a constant interval (the service's docs suggest
  30-60 s; tests use tiny values).
* :meth:`PollPolicy.default` (an :class:`AdaptivePollPolicy`) learns, per client and per
  requested duration, when tasks finish, and polls where completions are likely. The
  next poll comes when waiting any longer would cost more detection delay than one
  status call is worth (``call_cost`` seconds): the expected delay piles up fast where
  many tasks finish, so polls are dense there and sparse elsewhere. Before it has seen
  ``min_samples`` completions it polls first at ``first_poll`` and then every quarter
  of the task's age. Every delay is clamped to ``[min_interval, max_interval]`` and
  jittered so that a batch does not poll in lockstep.

The rule is the marginal one of the classic inspection problem: with ``S`` the tasks
still running at age ``t`` and ``F`` the completion ages learnt, the next poll is at the
first ``x`` with ``sum(x - a for a in F if t < a <= x) >= call_cost * |S|``. It comes
within a few per cent of the optimal schedule (found by dynamic programming) for the
same number of calls. ``tests/test_poll_policy_simulation.py`` compares it with
``fixed(30)`` on lognormal task durations on a virtual clock.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import deque
from typing import Any

import attrs

from ._errors import InvalidRequestError

__all__ = ["AdaptivePollPolicy", "FixedPollPolicy", "PollPolicy"]


class PollPolicy:
    """Decides the delay before each status call of ``wait()``/``watch()``.

    Subclass and override :meth:`next_delay` (and optionally :meth:`observe`) for a
    policy of your own; the scheduler calls them from the event loop, so they must be
    quick and must not block. An exception they raise ends the waits that use them.
    """

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """Seconds from now until the next status call.

        Args:
            age: Seconds since the task was created.
            polls: Status calls already made for this wait.
            duration: The requested video duration, when known (a learning bucket).
        """
        raise NotImplementedError

    def observe(self, *, running_at: float, finished_by: float, duration: int | None) -> None:
        """Learn from one completed task: it finished between two ages (seconds).

        Args:
            running_at: The task's age when it was last seen running (0: only at
                creation).
            finished_by: Its age when it was first seen completed.
            duration: The requested video duration, when known.
        """

    @staticmethod
    def fixed(seconds: float) -> FixedPollPolicy:
        """Poll every ``seconds``, the first time ``seconds`` after the wait starts."""
        return FixedPollPolicy(seconds)

    @staticmethod
    def adaptive(
        *,
        first_poll: float = 45.0,
        min_interval: float = 5.0,
        max_interval: float = 60.0,
        call_cost: float = 2.85,
        jitter: float = 0.1,
        seed: int | None = None,
    ) -> AdaptivePollPolicy:
        """A learning policy; see :class:`AdaptivePollPolicy` for the arguments."""
        return AdaptivePollPolicy(
            first_poll=first_poll,
            min_interval=min_interval,
            max_interval=max_interval,
            call_cost=call_cost,
            jitter=jitter,
            seed=seed,
        )

    @staticmethod
    def default() -> AdaptivePollPolicy:
        """A fresh adaptive policy with the defaults (each client learns on its own)."""
        return PollPolicy.adaptive()


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _is_positive(value):
        raise InvalidRequestError(attribute.name, value, "a positive number of seconds")


def _is_positive(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and 0 < value < math.inf  # also refuses NaN
    )


@attrs.frozen
class FixedPollPolicy(PollPolicy):
    """A constant interval.

    Attributes:
        seconds: The interval.
    """

    seconds: float = attrs.field(validator=_positive)

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """Always :attr:`seconds`."""
        return float(self.seconds)


class _History:
    """The latest completion ages of one bucket: sorted, with prefix sums for the rule."""

    __slots__ = ("_prefix", "recent", "sorted")

    def __init__(self) -> None:
        self.recent: deque[float] = deque()
        self.sorted: list[float] = []
        self._prefix: list[float] | None = None

    def add(self, age: float, memory: int) -> None:
        if len(self.recent) >= memory:
            old = self.recent.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        self.recent.append(age)
        bisect.insort(self.sorted, age)
        self._prefix = None

    def next_poll(self, age: float, call_cost: float) -> float | None:
        """The age of the next poll by the marginal rule; ``None`` past every sample."""
        ages = self.sorted
        n = len(ages)
        start = bisect.bisect_right(ages, age)
        m = n - start
        if m == 0:
            return None
        prefix = self._prefix
        if prefix is None:
            prefix = self._prefix = list(itertools.accumulate(ages, initial=0.0))
        budget = call_cost * m
        base = prefix[start]
        # Delay piled up by the time age ages[start + j] is reached (nondecreasing in j):
        # (j + 1) * ages[start + j] - sum(ages[start : start + j + 1]).
        lo, hi = 0, m  # the first j whose pile reaches the budget; m when none does
        while lo < hi:
            mid = (lo + hi) // 2
            if (mid + 1) * ages[start + mid] - (prefix[start + mid + 1] - base) >= budget:
                hi = mid
            else:
                lo = mid + 1
        if lo == 0:
            return ages[start]
        # Between ages[start + lo - 1] and the next sample the pile grows at rate lo.
        return (budget + prefix[start + lo] - base) / lo


class AdaptivePollPolicy(PollPolicy):
    """Polls densely where this client has seen tasks finish, sparsely elsewhere.

    See the module docstring for the rule. Learning is online, from this client's own
    completions, per requested duration (with all durations together as a fallback),
    over the last ``memory`` completions, so it follows the service when it speeds
    up or slows down.

    Args:
        first_poll: Age of the first poll before anything has been learned, seconds.
        min_interval: The shortest delay between two polls of one task.
        max_interval: The longest delay between two polls of one task.
        call_cost: Seconds of detection delay (per task) one status call is worth:
            higher means fewer calls and later detection.
        jitter: Relative spread applied to every delay (0.1 = ±10 %).
        seed: Seed of the random generator (jitter, learning), for simulations.
        memory: Completions remembered per duration bucket.
        min_samples: Completions needed before a bucket's history is trusted.
    """

    def __init__(
        self,
        *,
        first_poll: float = 45.0,
        min_interval: float = 5.0,
        max_interval: float = 60.0,
        call_cost: float = 2.85,
        jitter: float = 0.1,
        seed: int | None = None,
        memory: int = 512,
        min_samples: int = 8,
    ) -> None:
        for name, value in (
            ("first_poll", first_poll),
            ("min_interval", min_interval),
            ("max_interval", max_interval),
            ("call_cost", call_cost),
        ):
            if not _is_positive(value):
                raise InvalidRequestError(name, value, "a positive number of seconds")
        if not min_interval <= max_interval:
            raise InvalidRequestError("max_interval", max_interval, ">= min_interval")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise InvalidRequestError("jitter", jitter, "a share in [0, 1)")
        for name, count in (("memory", memory), ("min_samples", min_samples)):
            if type(count) is not int or count < 1:
                raise InvalidRequestError(name, count, "an int >= 1")
        self.first_poll = float(first_poll)
        self.min_interval = float(min_interval)
        self.max_interval = float(max_interval)
        self.call_cost = float(call_cost)
        self.jitter = float(jitter)
        self.seed = seed
        self.memory = memory
        self.min_samples = min_samples
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography
        self._buckets: dict[int | None, _History] = {}

    def __repr__(self) -> str:
        overall = self._buckets.get(None)
        return (
            f"<AdaptivePollPolicy first_poll={self.first_poll:g} min={self.min_interval:g} "
            f"max={self.max_interval:g} call_cost={self.call_cost:g} "
            f"learned={len(overall.recent) if overall else 0}>"
        )

    @property
    def learned(self) -> int:
        """Completions remembered (all durations together)."""
        overall = self._buckets.get(None)
        return len(overall.recent) if overall is not None else 0

    def observe(self, *, running_at: float, finished_by: float, duration: int | None) -> None:
        """Remember one completion, in its duration bucket and overall.

        The exact age is unknown, only that it lies between the two polls: a point is
        drawn in between: uniformly, except in the first interval (from creation to the
        first poll), where it leans late (density growing as the square of the age),
        since durations that are mostly minutes thin out towards zero.
        """
        if not 0 <= running_at <= finished_by < math.inf:
            return
        u = self._rng.random()
        if running_at == 0:
            u **= 1 / 3
        age = running_at + (finished_by - running_at) * u
        for bucket in {duration, None}:
            history = self._buckets.get(bucket)
            if history is None:
                history = self._buckets[bucket] = _History()
            history.add(age, self.memory)

    def _history(self, duration: int | None) -> _History | None:
        for bucket in (duration, None):
            history = self._buckets.get(bucket)
            if history is not None and len(history.recent) >= self.min_samples:
                return history
        return None

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """See the class docstring."""
        age = max(age, 0.0) if age == age else 0.0  # NaN (a broken clock) counts as 0
        history = self._history(duration)
        target = None if history is None else history.next_poll(age, self.call_cost)
        if target is not None:
            delay = target - age
        elif history is None and polls == 0 and age < self.first_poll:
            delay = self.first_poll - age
        else:  # nothing learnt yet, or older than every task seen: a quarter of the age
            delay = age * 0.25
        delay *= 1.0 + self.jitter * (2.0 * self._rng.random() - 1.0)
        return min(max(delay, self.min_interval), self.max_interval)
