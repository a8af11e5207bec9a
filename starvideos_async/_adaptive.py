"""What the adaptive poll policy learns: when this client's tasks finish, and when to poll.

The default policy (:meth:`PollPolicy.default`) learns, per client and per requested
duration, when tasks finish, and polls where completions are likely. The next poll
comes when waiting any longer would cost more detection delay than one status call is
worth (``call_cost`` seconds): the expected delay piles up fast where many tasks finish,
so polls are dense there and sparse elsewhere. Before it has seen ``min_samples``
completions it polls as ``fixed(interval)`` does. Learnt delays are clamped to
``[min_interval, max_interval]`` and jittered so that a batch does not poll in lockstep.

The rule is the marginal one of the classic inspection problem: with ``F`` the learnt
distribution of completion ages and ``S(t)`` its mass beyond the age ``t`` of the task
(the chance it is still running), the next poll is at the first ``x`` with
``integral of (F(a) - F(t)) for a from t to x >= call_cost * S(t)``: the detection delay
expected to pile up by ``x`` pays for one call. Given the true distribution and the
``call_cost`` that spends a given number of calls, it comes within 1 % of the optimal
schedule (dynamic programming) for those calls. So a budget (:class:`Trade`: calls per
task, or by default the calls ``fixed(interval)`` would make on the learnt ``F``) is
turned into a ``call_cost`` by bisection over the schedules it gives, once per build of
the estimate. ``tests/test_poll_policy_simulation.py`` compares the result with the
optimum on a grid of lognormal task shapes, and ``tests/test_poll_policy_overlap.py``
with ``fixed(30)`` with tasks overlapping.

A completion is known only to lie between two polls; it is learnt at a point drawn in
between: uniformly, except before the first poll, where the density is taken to grow
as a power of the age that joins the density learnt just after the first poll (see
:meth:`History.lean`): a first poll late in the body of the distribution would
otherwise teach that many tasks finish early.

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
from collections import deque
from collections.abc import Hashable, Iterable
from typing import TypeVar

import attrs

__all__ = ["DECAY", "LEAN", "History", "Trade"]

_T = TypeVar("_T")


_SMOOTHING = 1.0  # the width of a completion's piece: see _pieces
_PIECES = 256  # at most, per estimate
_SAMPLE = 1024  # completions (and waits) counted one by one in an estimate; more: sampled
_GROW = 2  # a bucket's window holds at least _GROW times the most waits seen in flight
DECAY = 1 - 1 / 64  # of the clock's pace: about the last 64 sightings count
_STALE_SHARE = 4  # rebuild a bucket's estimate once len(data) / 4 changes piled up
LEAN = 3.0  # k + 1 before anything is learnt: durations thin out towards zero
BUDGET_SHARE = 0.98  # of fixed(interval)'s calls: the default trade's budget
_RARE = 0.01  # budgets are counted up to the age past which this share of tasks runs
_STEPS = 2000  # polls counted in one schedule at the most


class History:
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
        """The Kaplan-Meier estimate of the completion ages, as a smoothed curve.

        Beyond ``_SAMPLE`` completions (or waits in flight), an even sample of them
        stands for all, each counting for as many: with 100,000 waits in flight (and a
        window twice that) a build stays a few milliseconds of the event loop.
        """
        start = self.start
        waits, running = _thin(self.inflight.values())
        done_entries: list[float] = []  # ages at which tasks entered the window, when > 0
        running_entries: list[float] = []
        if start == -math.inf:
            ages, done = _thin(self.sorted)
            censored = sorted([age for age, _ in waits])
        else:
            recent, done = _thin(self.recent)
            ages, censored = [], []
            for age, origin, _ in recent:
                entry = start - origin
                if entry <= age:  # else it finished before the window
                    ages.append(age)
                    if entry > 0:
                        done_entries.append(entry)
            for age, origin in waits:
                entry = start - origin
                if entry <= age:  # else not seen running inside the window
                    censored.append(age)
                    if entry > 0:
                        running_entries.append(entry)
            ages.sort()
            censored.sort()
            done_entries.sort()
            running_entries.sort()
        # At risk at the i-th completion age a: the tasks that went through a inside the
        # window and ended at a or after, counting the completions at a after the i-th
        # as later (the product over tied ages comes out the same), less those that
        # entered the window after a.
        left, right = bisect.bisect_left, bisect.bisect_right
        at_risk = []
        for i, a in enumerate(ages):
            risk = done * (len(ages) - i) + running * (len(censored) - left(censored, a))
            if done_entries or running_entries:
                risk -= done * (len(done_entries) - right(done_entries, a))
                risk -= running * (len(running_entries) - right(running_entries, a))
            at_risk.append(max(risk, done))
        factors = [1.0 - done / r for r in at_risk]
        survival = list(itertools.accumulate(factors, operator.mul, initial=1.0))
        weights = [s * done / r for s, r in zip(survival[:-1], at_risk, strict=True)]
        return _Curve(ages, weights, survival[-1])

    def _estimate(self) -> _Curve:
        curve = self._curve
        if curve is None or (
            self._changes and self._changes * _STALE_SHARE >= len(self.recent) + len(self.inflight)
        ):
            curve = self._curve = self._rebuild()
            self._changes = 0
        return curve

    def next_poll(self, age: float, call_cost: float) -> float | None:
        """The age of the next poll by the marginal rule; ``None`` past every sample."""
        return self._estimate().next_poll(age, call_cost)

    def call_cost(self, trade: Trade) -> tuple[float, float | None]:
        """The ``call_cost`` that spends ``trade``'s calls per task on this estimate.

        Computed once per build of the estimate (a bisection over schedules). Second, as
        :meth:`Trade.cost_on` tells: the calls per task that make a ``calls_per_task``
        budget unreachable, else ``None``.
        """
        curve = self._estimate()
        if curve.cost is None:
            curve.cost = trade.cost_on(curve)
        return curve.cost

    def lean(self, age: float) -> float:
        """How a completion before the first poll (at ``age``) leans late: ``k + 1``.

        Its density in ``[0, age]`` is taken as growing like ``a ** k``, joining the
        density learnt just after ``age`` with the mass learnt before it:
        ``k + 1 = age * f(age) / F(age)``, kept in ``[1, 20]``.
        """
        curve = self._estimate()
        before = curve._at(age)[0]
        after = curve._at(age * 1.1)[0]
        if before <= 0 or after <= before:  # nothing learnt on one side: the prior
            return LEAN
        return min(max((after - before) / (0.1 * before), 1.0), 20.0)

    def quantile(self, age: float, share: float) -> float | None:
        """The age by which ``share`` of the tasks still running at ``age`` are done.

        ``None`` when that age lies past every completion remembered (in the tail of
        tasks seen running longer than any seen to finish: nothing says when they end).
        """
        return self._estimate().quantile(age, share)


@attrs.frozen
class Trade:
    """How much a status call is worth, said one of three ways (the first one set).

    ``call_cost``: seconds of detection delay per task one call is worth (the marginal
    rule's own unit). ``calls_per_task``: a budget, the mean status calls per task.
    Else ``interval``: the calls polling every ``interval`` seconds would make on the
    same tasks. Budgets are turned into a ``call_cost`` on each estimate, counting the
    schedule with its delays clamped to ``[low, high]`` as the policy will clamp them.
    """

    call_cost: float | None
    calls_per_task: float | None
    interval: float
    low: float
    high: float

    def cost_on(self, curve: _Curve) -> tuple[float, float | None]:
        """The ``call_cost`` on ``curve``, and whether a ``calls_per_task`` is too low.

        Second: when ``calls_per_task`` is too low for ``high``, the fewest calls per task
        the clamps allow (else ``None``; always for ``interval`` and ``call_cost``).
        """
        if self.call_cost is not None:
            return self.call_cost, None
        if self.calls_per_task is not None:
            return curve.cost_for(self.calls_per_task, self.low, self.high)
        # fixed(interval)'s calls, a little under so as not to exceed them by chance. Not
        # reachable when interval is high itself: the dearest cost is then the right one.
        budget = curve.fixed_calls(self.interval) * BUDGET_SHARE
        return curve.cost_for(budget, self.low, self.high)[0], None

    def __str__(self) -> str:
        """The trade as the policy's argument that says it (for reprs)."""
        if self.call_cost is not None:
            return f"call_cost={self.call_cost:g}"
        if self.calls_per_task is not None:
            return f"calls_per_task={self.calls_per_task:g}"
        return f"interval={self.interval:g}"

    def budget_warning(self, fewest: float) -> str:
        """Why a ``calls_per_task`` budget cannot be kept (``fewest``: from :meth:`cost_on`)."""
        every = f"{self.high:g} s"
        return (
            f"AdaptivePollPolicy(calls_per_task={self.calls_per_task:g}) cannot keep its "
            f"budget with max_interval={self.high:g}: even polling every {every} makes "
            f"about {fewest:.3g} status calls per task on the tasks learnt so far, so it "
            f"polls about every {every}, over budget. Raise max_interval or "
            "calls_per_task. (Warned once per policy.)"
        )


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

    __slots__ = ("_horizon", "cost", "fs", "gs", "rho", "tail", "total", "xs")

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
        # The call_cost of the policy's trade, and the fewest calls when its budget is
        # too low (see Trade.cost_on), once asked.
        self.cost: tuple[float, float | None] | None = None
        self._horizon: float | None = None  # see horizon(), once asked

    def survival(self, x: float) -> float:
        """``S(x)``: the share of tasks still running at age ``x``."""
        mass = self.total + self.tail
        return (mass - self._at(x)[0]) / mass if mass > 0 else 0.0

    def horizon(self) -> float:
        """The age past which at most 1 % of the tasks still run (or the last completion).

        Budgets are counted up to it: a rare task of hours would otherwise make the calls
        ``fixed(interval)`` spends on it count as everyone's budget. Computed once per
        curve: each schedule the bisection of :meth:`cost_for` counts asks for it.
        """
        horizon = self._horizon
        if horizon is None:
            mass = self.total + self.tail
            if not self.xs or self.total < (1 - _RARE) * mass:
                horizon = self.xs[-1] if self.xs else 0.0
            else:
                horizon = min(self._inverse((1 - _RARE) * mass), self.xs[-1])
            self._horizon = horizon
        return horizon

    def fixed_calls(self, interval: float) -> float:
        """The mean status calls per task of polling every ``interval`` seconds.

        Counted up to :meth:`horizon`, as :meth:`schedule_calls` counts.
        """
        calls, k, end = 0.0, 0, self.horizon()
        while k * interval < end and k < _STEPS:
            calls += self.survival(k * interval)  # a call at (k + 1) * interval
            k += 1
        return max(calls, 1.0)

    def schedule_calls(self, call_cost: float, low: float, high: float, limit: float) -> float:
        """The mean status calls per task of the marginal rule from age 0 (up to ``limit``).

        Each delay is clamped to ``[low, high]``; counting stops past :meth:`horizon`, or
        as soon as the count exceeds ``limit``.
        """
        age = calls = 0.0
        end = self.horizon()
        for _ in range(_STEPS):
            calls += self.survival(age)  # the next call is made if still running at age
            target = self.next_poll(age, call_cost)
            if calls > limit or target is None:
                break
            age += min(max(target - age, low), high)
            if age >= end:
                break
        return calls

    def cost_for(self, calls: float, low: float, high: float) -> tuple[float, float | None]:
        """The ``call_cost`` whose schedule makes ``calls`` calls per task (bisection).

        The calls fall as the cost grows; the result errs on the side of fewer calls. A
        budget the clamps make unreachable gets the nearest end of the range tried (too
        few calls for ``low``, too many for ``high``). Second: when ``calls`` is too few,
        the calls of the dearest schedule (its delays mostly ``high``), else ``None``.
        """
        scale = max(self.horizon(), 1e-9)
        cheap, dear = math.log(scale * 1e-7), math.log(scale * 10)
        dearest = dear
        for _ in range(16):
            middle = (cheap + dear) / 2
            if self.schedule_calls(math.exp(middle), low, high, calls) > calls:
                cheap = middle
            else:
                dear = middle
        if dear == dearest:  # every schedule tried made too many calls: maybe all do
            fewest = self.schedule_calls(math.exp(dear), low, high, math.inf)
            if fewest > calls:
                return math.exp(dear), fewest
        return math.exp(dear), None

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
        target = x0 + (2 * rest / root if root > 0 else 0.0)
        # Past the last completion nothing is known (the tasks seen running longer, the
        # tail, pile up no delay in the rule): no further than half of it (or of the
        # age) past it.
        return min(target, max(xs[-1], age) * 1.5)

    def quantile(self, age: float, share: float) -> float | None:
        """The first ``x >= age`` with ``F(x) - F(age) >= share * S(age)``, or ``None``."""
        f_age, _ = self._at(age)
        rest = self.total - f_age + self.tail  # S(age): the mass still to finish
        if rest <= 1e-12 * max(self.total + self.tail, 1e-300):
            return None
        target = f_age + share * rest
        if target > self.total * (1 + 1e-12):
            return None  # in the tail: later than every completion remembered
        return max(self._inverse(target), age)

    def _inverse(self, target: float) -> float:
        """The first age ``x`` with ``F(x) >= target`` (``target`` at most the total)."""
        xs, fs, rho = self.xs, self.fs, self.rho
        k = bisect.bisect_left(fs, target)  # F reaches the target on [xs[k-1], xs[k]]
        if k >= len(xs):
            return xs[-1]
        if k == 0:
            return xs[0]
        x0, f0, slope = xs[k - 1], fs[k - 1], rho[k - 1]
        if slope > 0 and f0 + slope * (xs[k] - x0) >= target:
            return x0 + (target - f0) / slope
        return xs[k]  # a completion's point mass at xs[k] reaches it


def _thin(values: Iterable[_T]) -> tuple[list[_T], float]:
    """At most about ``_SAMPLE`` of ``values``, evenly spaced, and how many each stands for."""
    every = list(values)
    step = max(1, -(-len(every) // _SAMPLE))
    sample = every[::step]
    return sample, len(every) / len(sample) if sample else 1.0


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
        pieces.append((max(middle - half, 0.0), middle + half, weight))  # no age below 0
    return pieces
