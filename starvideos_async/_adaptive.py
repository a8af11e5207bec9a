"""The adaptive poll policy: it learns when this client's tasks finish.

The default policy (:meth:`PollPolicy.default`) learns, per client and per requested
duration, when tasks finish, and polls where completions are likely. The next poll
comes when waiting any longer would cost more detection delay than one status call is
worth (``call_cost`` seconds): the expected delay piles up fast where many tasks finish,
so polls are dense there and sparse elsewhere. Before it has seen ``min_samples``
completions it polls first at ``first_poll`` and then every quarter of the task's age.
Every delay is clamped to ``[min_interval, max_interval]`` and jittered so that a batch
does not poll in lockstep.

The rule is the marginal one of the classic inspection problem: with ``F`` the learnt
distribution of completion ages and ``S(t)`` its mass beyond the age ``t`` of the task
(the chance it is still running), the next poll is at the first ``x`` with
``integral of (F(a) - F(t)) for a from t to x >= call_cost * S(t)``: the detection delay
expected to pile up by ``x`` pays for one call. It comes within a few per cent of the
optimal schedule (found by dynamic programming) for the same number of calls.
``tests/test_poll_policy_simulation.py`` (one task at a time) and
``tests/test_poll_policy_overlap.py`` (tasks overlapping) compare it with ``fixed(30)``
on lognormal task durations on a virtual clock.

How ``F`` is learnt, per bucket:

* Censoring (Kaplan-Meier). When tasks overlap, the completions seen so far lean
  towards short tasks: the long ones started at the same time have not finished yet.
  So the waits still in flight count too, as censored observations: each task is known
  to take longer than the age at which it was last seen running
  (:meth:`PollPolicy.running`), until its wait ends (:meth:`PollPolicy.ended`). A
  completion at age ``a`` weighs ``S(a-) / (tasks at risk at a)``: the weight of a
  censored task goes to the completions later than it (redistribution to the right),
  and what is left past the last completion is a tail of unknown ages, which counts in
  ``S`` but not in the pile. With nothing in flight every completion weighs the same.
* Window (left truncation). A bucket keeps its last ``memory`` completions, or twice
  the most waits it has had in flight at once if that is more (a window much shorter
  than the tasks could not tell the hazard of long ones). Once older completions are
  forgotten, the window starts when the newest forgotten one was seen, and each task
  counts only for the ages it went through inside the window: else many long waits in
  flight would outweigh a window of quick completions. The policy has no clock of its
  own (simulations drive it on virtual time): it keeps one from the ages it is told,
  ticking at every call of :meth:`~PollPolicy.running` and
  :meth:`~PollPolicy.observe` by the seconds a call takes lately (the age a wait gained
  between two sightings over the calls in between). Without :meth:`~PollPolicy.running`
  calls there is no clock and the window simply holds the last ``memory`` completions.
* Smoothing. Each completion ``a`` is spread evenly over ``a * (1 ± h)``, ``h`` from
  the spread of the log ages of its ``2 sqrt(n)`` neighbours (a point when they are all
  the same age): a few hundred samples are noisy, and the rule polls better on a
  smooth ``F``.

Cost: the estimate of a bucket (``n`` completions and waits) is cached and rebuilt in
``O(n log n)`` only once ``n / 4`` changes (completions, sightings, ends) piled up since
the last build; ``F`` has at most 256 pieces, so a call costs ``O(log n)`` amortised.
:meth:`~PollPolicy.running` and :meth:`~PollPolicy.ended` are ``O(1)``.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import random
from collections import deque
from collections.abc import Hashable

from ._errors import ConfigurationError
from ._poll_policy import PollPolicy, _is_positive

__all__ = ["AdaptivePollPolicy"]


_SMOOTHING = 1.0  # the width of a completion's piece: see _pieces
_PIECES = 256  # at most, per estimate
_GROW = 2  # a bucket's window holds at least _GROW times the most waits seen in flight
_DECAY = 1 - 1 / 64  # of the clock's pace: about the last 64 sightings count
_STALE_SHARE = 4  # rebuild a bucket's estimate once len(data) / 4 changes piled up


class _History:
    """One bucket: its latest completions, its waits in flight, the cached estimate.

    Times (``origin``, ``seen``, ``start``) are on the owning policy's clock; a
    completion is ``(age, origin, seen)``: its learnt age, the task's creation and when
    the completion was seen. A wait in flight is ``key -> (age, origin)``: the age at
    which it was last seen running. ``capacity``: completions kept (see the module).
    """

    __slots__ = ("_changes", "_curve", "capacity", "inflight", "recent", "sorted", "start")

    def __init__(self) -> None:
        self.recent: deque[tuple[float, float, float]] = deque()
        self.sorted: list[float] = []  # the ages in ``recent``, sorted
        self.inflight: dict[Hashable, tuple[float, float]] = {}
        # The window start: when the newest forgotten completion was seen. Every task
        # counts only for the ages it went through after it (-inf: nothing forgotten).
        self.start = -math.inf
        self.capacity = 0
        self._changes = 0
        self._curve: _Curve | None = None  # the cached estimate

    def add(self, age: float, memory: int, origin: float = 0.0, seen: float = -math.inf) -> None:
        """Remember a completion (``seen=-inf``: no clock, the window never moves)."""
        self.capacity = max(self.capacity, memory, _GROW * len(self.inflight))
        while len(self.recent) >= self.capacity:
            old, _, old_seen = self.recent.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
            self.start = max(self.start, old_seen)
        self.recent.append((age, origin, seen))
        bisect.insort(self.sorted, age)
        self._changes += 1

    def changed(self) -> None:
        self._changes += 1

    def _rebuild(self) -> _Curve:
        """The Kaplan-Meier estimate of the completion ages, as a smoothed curve."""
        start = self.start
        entries: list[float] = []  # ages at which tasks entered the window, when > 0
        if start == -math.inf:
            ages = self.sorted.copy()  # it changes after the build, not the estimate
            censored = sorted([age for age, _ in self.inflight.values()])
        else:
            ages, censored = [], []
            for age, origin, _ in self.recent:
                entry = start - origin
                if entry <= age:  # else it finished before the window
                    ages.append(age)
                    if entry > 0:
                        entries.append(entry)
            for age, origin in self.inflight.values():
                entry = start - origin
                if entry <= age:  # else not seen running inside the window
                    censored.append(age)
                    if entry > 0:
                        entries.append(entry)
            ages.sort()
            censored.sort()
            entries.sort()
        # At risk at the i-th completion age a: the tasks that went through a inside the
        # window and ended at a or after, counting the completions at a after the i-th
        # as later (the product over tied ages comes out the same).
        n, n_out = len(ages) + len(censored), len(entries)
        left = bisect.bisect_left
        at_risk = [n - i - left(censored, a) for i, a in enumerate(ages)]
        if entries:
            right = bisect.bisect_right
            at_risk = [
                max(r - n_out + right(entries, a), 1) for r, a in zip(at_risk, ages, strict=True)
            ]
        factors = [1.0 - 1.0 / r for r in at_risk]
        survival = list(itertools.accumulate(factors, operator.mul, initial=1.0))
        weights = [s / r for s, r in zip(survival[:-1], at_risk, strict=True)]
        return _Curve(ages, weights, survival[-1])

    def next_poll(self, age: float, call_cost: float) -> float | None:
        """The age of the next poll by the marginal rule; ``None`` past every sample."""
        curve = self._curve
        if curve is None or (
            self._changes and self._changes * _STALE_SHARE >= len(self.recent) + len(self.inflight)
        ):
            curve = self._curve = self._rebuild()
            self._changes = 0
        return curve.next_poll(age, call_cost)


class _Curve:
    """A learnt distribution of completion ages, piecewise: the marginal rule on it.

    Each completion ``a`` of weight ``w`` is spread evenly over ``a * (1 ± spread)`` (a
    point when ``spread`` is 0), with ``spread`` from a rule of thumb (the spread of the
    log ages, shrinking with the number of completions). ``xs`` are the ends of those
    pieces, sorted; on ``[xs[k], xs[k + 1])`` the mass finished by age ``x`` is
    ``F(x) = fs[k] + rho[k] * (x - xs[k])`` and ``gs[k]`` is the integral of ``F`` up to
    ``xs[k]``. ``total`` is the mass of the completions, ``tail`` the rest (tasks
    censored past the last completion).
    """

    __slots__ = ("fs", "gs", "rho", "tail", "total", "xs")

    def __init__(self, ages: list[float], weights: list[float], tail: float) -> None:
        steps: list[tuple[float, float, float]] = []  # (x, mass at x, change of density)
        for low, high, weight in _pieces(ages, weights):
            if high > low:
                density = weight / (high - low)
                steps.append((low, 0.0, density))
                steps.append((high, 0.0, -density))
            else:
                steps.append((low, weight, 0.0))
        steps.sort()
        xs: list[float] = []
        fs: list[float] = []
        gs: list[float] = []
        rhos: list[float] = []
        f = g = rho = 0.0
        for x, mass, change in steps:
            if xs:
                dx = x - xs[-1]
                g += (f + rho * dx / 2) * dx
                f += rho * dx
            f += mass
            rho += change
            if xs and x == xs[-1]:
                fs[-1], rhos[-1] = f, max(rho, 0.0)
            else:
                xs.append(x)
                fs.append(f)
                gs.append(g)
                rhos.append(max(rho, 0.0))
        if rhos:
            rhos[-1] = 0.0  # every piece is over past the last end (rounding aside)
        self.xs, self.fs, self.gs, self.rho = xs, fs, gs, rhos
        self.total, self.tail = f, tail

    def _at(self, x: float) -> tuple[float, float]:
        """``F(x)`` and its integral up to ``x``."""
        k = bisect.bisect_right(self.xs, x) - 1
        if k < 0:
            return 0.0, 0.0
        dx, f, rho = x - self.xs[k], self.fs[k], self.rho[k]
        return f + rho * dx, self.gs[k] + (f + rho * dx / 2) * dx

    def next_poll(self, age: float, call_cost: float) -> float | None:
        """The first age ``x`` whose piled-up delay reaches ``call_cost * S(age)``."""
        f_age, g_age = self._at(age)
        if self.total - f_age <= 1e-12 * self.total:
            return None
        budget = call_cost * (self.total - f_age + self.tail)  # call_cost * S(age)
        xs, fs, gs = self.xs, self.fs, self.gs
        # Piled up by x: integral of F(a) - F(age) from age to x (continuous, convex).
        first = bisect.bisect_right(xs, age)
        lo, hi = first, len(xs)  # the first piece end whose pile reaches the budget
        while lo < hi:
            mid = (lo + hi) // 2
            if gs[mid] - g_age - (xs[mid] - age) * f_age >= budget:
                hi = mid
            else:
                lo = mid + 1
        if lo == first:
            x0, f0, pile, rho = age, f_age, 0.0, self.rho[first - 1] if first else 0.0
        else:
            x0, f0, rho = xs[lo - 1], fs[lo - 1], self.rho[lo - 1]
            pile = gs[lo - 1] - g_age - (x0 - age) * f_age
        # Solve pile + (f0 - f_age) * d + rho * d * d / 2 = budget for d >= 0.
        rate, rest = f0 - f_age, budget - pile
        root = rate + math.sqrt(rate * rate + 2 * rho * rest)
        return x0 + (2 * rest / root if root > 0 else 0.0)


def _pieces(ages: list[float], weights: list[float]) -> list[tuple[float, float, float]]:
    """Spread the completions (ages sorted) into at most ``_PIECES`` pieces, evenly.

    Each completion ``a`` covers ``a * (1 ± h)``, ``h`` in proportion to the spread of
    the log ages of its ``2k`` neighbours (``k`` the square root of their number; at
    most 0.5): wide where completions are sparse, a point where they are all the same
    age. Beyond ``_PIECES`` completions, runs of neighbours make one piece each, as
    wide as their own span plus that ``h``. Returns ``(low, high, weight)`` triples.
    """
    n = len(ages)
    k = max(1, round(math.sqrt(n)))
    size = -(-n // _PIECES)
    cum_w = list(itertools.accumulate(weights, initial=0.0))
    cum_wa = list(
        itertools.accumulate([w * a for w, a in zip(weights, ages, strict=True)], initial=0.0)
    )
    pieces = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        if stop - start == 1:
            weight, middle = weights[start], ages[start]
        else:
            weight = cum_w[stop] - cum_w[start]
            middle = (cum_wa[stop] - cum_wa[start]) / weight if weight > 0 else 0.0
        if weight <= 0:
            continue
        centre = (start + stop - 1) // 2  # its 2k neighbours: ages[first] to ages[last]
        first, last = max(centre - k, 0), min(centre + k, n - 1)
        low, high = ages[first], ages[last]
        if low > 0 and high > low:
            h = min(_SMOOTHING * k * (math.log(high) - math.log(low)) / (last - first), 0.5)
        else:  # the log spread is infinite when an age is 0
            h = 0.5 if low <= 0 < high and _SMOOTHING > 0 else 0.0
        half = middle * h + (ages[stop - 1] - ages[start]) / 2
        if half <= 1e-9 * max(middle, 1.0):  # a point, rather than a piece of 1 ns
            half = 0.0
        pieces.append((middle - half, middle + half, weight))
    return pieces


class AdaptivePollPolicy(PollPolicy):
    """Polls densely where this client has seen tasks finish, sparsely elsewhere.

    See the module docstring for the rule. Learning is online, from this client's own
    completions and waits in flight (the scheduler reports them through
    :meth:`running` and :meth:`ended`), per requested duration (with all durations
    together as a fallback), over the last ``memory`` completions, so it follows the
    service when it speeds up or slows down.

    Args:
        first_poll: Age of the first poll before anything has been learned, seconds.
        min_interval: The shortest delay between two polls of one task.
        max_interval: The longest delay between two polls of one task.
        call_cost: Seconds of detection delay (per task) one status call is worth:
            higher means fewer calls and later detection.
        jitter: Relative spread applied to every delay (0.1 = ±10 %).
        seed: Seed of the random generator (jitter, learning), for simulations.
        memory: Completions remembered per duration bucket (more when many waits
            overlap: twice the most in flight at once).
        min_samples: Completions needed before a bucket's history is trusted.
    """

    def __init__(
        self,
        *,
        first_poll: float = 45.0,
        min_interval: float = 5.0,
        max_interval: float = 60.0,
        call_cost: float = 2.95,
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
                raise ConfigurationError(name, value, "a positive number of seconds")
        if not min_interval <= max_interval:
            raise ConfigurationError("max_interval", max_interval, ">= min_interval")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise ConfigurationError("jitter", jitter, "a share in [0, 1)")
        for name, count in (("memory", memory), ("min_samples", min_samples)):
            if type(count) is not int or count < 1:
                raise ConfigurationError(name, count, "an int >= 1")
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
        # Waits in flight: key -> (duration, age last seen running, call number then).
        self._waits: dict[Hashable, tuple[int | None, float, int]] = {}
        # The policy's own clock (see the module docstring): it ticks at every call of
        # running() and observe() by the seconds a call takes lately, measured by the
        # waits themselves (age gained between two sightings / calls in between).
        self._calls = 0
        self._clock = -math.inf  # until a wait was seen running twice
        self._seconds = 0.0  # decaying sums: seconds and calls between two sightings
        self._ticks = 0.0

    def _tick(self) -> float:
        self._calls += 1
        if self._ticks > 0:
            self._clock += self._seconds / self._ticks
        return self._clock

    def __repr__(self) -> str:
        overall = self._buckets.get(None)
        return (
            f"<AdaptivePollPolicy first_poll={self.first_poll:g} min={self.min_interval:g} "
            f"max={self.max_interval:g} call_cost={self.call_cost:g} "
            f"learned={len(overall.recent) if overall else 0} in_flight={len(self._waits)}>"
        )

    @property
    def learned(self) -> int:
        """Completions remembered (all durations together)."""
        overall = self._buckets.get(None)
        return len(overall.recent) if overall is not None else 0

    @property
    def in_flight(self) -> int:
        """Waits seen running and not ended yet (all durations together)."""
        return len(self._waits)

    def _bucket(self, duration: int | None) -> _History:
        history = self._buckets.get(duration)
        if history is None:
            history = self._buckets[duration] = _History()
        return history

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
        now = self._tick()
        for bucket in {duration, None}:
            self._bucket(bucket).add(age, self.memory, now - finished_by, now)

    def running(self, *, key: Hashable, age: float, duration: int | None) -> None:
        """Count the wait ``key`` as censored at ``age`` until it ends (see the module)."""
        if not 0 <= age < math.inf:
            return
        now = self._tick()
        wait = self._waits.get(key)
        if wait is not None:
            if wait[0] != duration:  # cannot happen with the SDK's scheduler
                self.ended(key=key)
            elif age > wait[1]:  # the seconds this many calls took
                self._seconds = self._seconds * _DECAY + (age - wait[1])
                self._ticks = self._ticks * _DECAY + (self._calls - wait[2])
                if now == -math.inf:
                    now = self._clock = 0.0  # the clock starts
        self._waits[key] = (duration, age, self._calls)
        seen = (age, now - age)  # the age, and the task's creation on the clock
        for bucket in {duration, None}:
            history = self._bucket(bucket)
            history.inflight[key] = seen
            history.changed()

    def ended(self, *, key: Hashable) -> None:
        """Stop counting the wait ``key`` (nothing happens for a key never seen)."""
        wait = self._waits.pop(key, None)
        if wait is None:
            return
        for bucket in {wait[0], None}:
            history = self._buckets.get(bucket)
            if history is not None and history.inflight.pop(key, None) is not None:
                history.changed()

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
