"""Poll policies on a virtual clock, and the best schedule any policy could follow.

Support for ``tests/test_poll_policy_simulation.py`` and ``benchmarks/policy_grid.py``
(not a test module itself). Task durations are lognormal; each task is waited from its
creation, one after another, and the policy learns from every completion as the
scheduler would tell it: between the age of the last poll that saw the task running (0
for its creation) and the age of the poll that saw it completed.

The optimum: for a known distribution of durations, the schedule of poll ages that
makes the least mean detection lag for a given mean number of status calls per task.
It is found by dynamic programming over poll ages on a grid, for the Lagrangian
``lag + cost * calls`` (``cost`` found by bisection so that the calls match), as in the
classic inspection problem. The grid step is a hundredth of the median: halving it
changes the optimum by less than 0.5 %.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import attrs
import numpy as np

from starvideos_async import AdaptivePollPolicy, PollPolicy

_NORMAL = statistics.NormalDist()


@attrs.frozen
class Figures:
    """What a policy did on a run of tasks: status calls and detection lag per task."""

    calls: list[int]
    lags: list[float]

    @property
    def calls_per_task(self) -> float:
        return statistics.fmean(self.calls)

    @property
    def mean_lag(self) -> float:
        return statistics.fmean(self.lags)

    def part(self, start: int, stop: int | None = None) -> Figures:
        return Figures(self.calls[start:stop], self.lags[start:stop])

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.calls + other.calls, self.lags + other.lags)

    def __str__(self) -> str:
        lags = sorted(self.lags)
        return (
            f"{self.calls_per_task:.2f} calls/task, lag mean {self.mean_lag:.1f} s, "
            f"p95 {lags[int(0.95 * len(lags))]:.1f} s, max {lags[-1]:.1f} s"
        )


@attrs.frozen
class Lognormal:
    """Task durations: lognormal with this median (seconds) and sigma (of the log)."""

    median: float
    sigma: float

    def draw(self, seed: int, count: int) -> list[float]:
        rng = random.Random(seed)
        return [rng.lognormvariate(math.log(self.median), self.sigma) for _ in range(count)]

    def cdf(self, t: float) -> float:
        """The share of tasks done by age ``t``."""
        return _NORMAL.cdf(math.log(t / self.median) / self.sigma) if t > 0 else 0.0

    def partial_mean(self, t: float) -> float:
        """The integral of ``a f(a)`` from 0 to ``t``: the mean of the durations below."""
        if t <= 0:
            return 0.0
        mean = self.median * math.exp(self.sigma**2 / 2)
        return mean * _NORMAL.cdf(math.log(t / self.median) / self.sigma - self.sigma)

    def fixed(self, interval: float) -> tuple[float, float]:
        """``fixed(interval)``'s expected status calls per task and mean lag, exactly."""
        calls, k = 1.0, 1
        while (survival := 1 - self.cdf(k * interval)) > 1e-12:
            calls += survival  # the call at (k + 1) * interval, if still running at k
            k += 1
        mean = self.median * math.exp(self.sigma**2 / 2)
        return calls, interval * calls - mean  # the mean poll that sees it, minus D


def simulate(policy: PollPolicy, durations: Sequence[float], warm_up: int = 0) -> Figures:
    """Wait on each task from its creation, one after another, as the scheduler would."""
    calls: list[int] = []
    lags: list[float] = []
    for number, duration in enumerate(durations):
        age = running_at = 0.0
        polls = 0
        while True:
            age += policy.next_delay(age=age, polls=polls, duration=5)
            polls += 1
            if age >= duration:
                break
            running_at = age
        policy.observe(running_at=running_at, finished_by=age, duration=5)
        if number >= warm_up:
            calls.append(polls)
            lags.append(age - duration)
    return Figures(calls, lags)


def against_fixed_30(
    shape: Lognormal, seed: int, warm_up: int, measured: int
) -> tuple[Figures, Figures]:
    """``fixed(30)`` and the default policy on the same ``warm_up + measured`` tasks."""
    work = shape.draw(seed, warm_up + measured)
    fixed = simulate(PollPolicy.fixed(30), work, warm_up)
    default = simulate(AdaptivePollPolicy(seed=seed), work, warm_up)
    return fixed, default


def optimum(shape: Lognormal, calls: float) -> float:
    """The least mean lag any schedule of poll ages reaches with ``calls`` per task.

    With the poll ages on a grid ``t``, ``W[i]`` (the expected cost still to come of a
    task seen running at ``t[i]``, times the chance it is) is the least over the next
    poll ``t[j]`` of ``cost * S[i]`` (the call) plus the lag of the tasks that finish in
    between plus ``W[j]``. Bisection on ``cost`` brings the schedule's calls to
    ``calls``; the last step is closed by the slope of the lag against the calls at the
    optimum, which is ``-cost``.
    """
    step = shape.median / 100
    end = shape.median * math.exp(4 * shape.sigma)  # 3e-5 of the tasks run longer
    t = np.arange(0.0, end + step, step)
    done = np.array([shape.cdf(x) for x in t])
    mean_below = np.array([shape.partial_mean(x) for x in t])
    cheap, dear = math.log(1e-3), math.log(1e4)
    for _ in range(30):
        cost = math.exp((cheap + dear) / 2)
        made, _ = _schedule(t, done, mean_below, cost)
        if made > calls:
            cheap = math.log(cost)
        else:
            dear = math.log(cost)
    cost = math.exp(dear)
    made, lag = _schedule(t, done, mean_below, cost)
    return lag + cost * (made - calls)


def _schedule(
    t: np.ndarray, done: np.ndarray, mean_below: np.ndarray, cost: float
) -> tuple[float, float]:
    """The optimal schedule for ``cost`` per call: its calls per task and mean lag."""
    n = len(t)
    running = 1 - done
    total = np.zeros(n)  # W
    calls = np.zeros(n)  # expected calls still to come, times S[i]
    lags = np.zeros(n)  # expected lag still to come, times S[i]
    for i in range(n - 2, -1, -1):
        nxt = t[i + 1 :]
        lag = nxt * (done[i + 1 :] - done[i]) - (mean_below[i + 1 :] - mean_below[i])
        options = cost * running[i] + lag + total[i + 1 :]
        k = int(np.argmin(options))
        j = i + 1 + k
        total[i] = options[k]
        calls[i] = running[i] + calls[j]
        lags[i] = lag[k] + lags[j]
    return float(calls[0]), float(lags[0])
