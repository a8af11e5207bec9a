"""The default poll policy against ``fixed(30)``, on a virtual clock (no sleeping).

Tasks take lognormal times (median 90 s, sigma 0.5: most between 40 s and 200 s). Each
task is waited from its creation, one after another, and the policy learns from every
completion as the scheduler would tell it: between the age of the last poll that saw
the task running (0 for its creation) and the age of the poll that saw it completed.
After a warm-up, two numbers per policy: status calls per task, and the detection lag
(from the real completion to the poll that sees it).

Run with ``-s`` to see the figures. For reference, the best schedule possible for these
durations (dynamic programming with the true distribution known) has a mean lag of
about 10.3 s for fixed(30)'s 3.84 calls per task, 31 % below fixed(30); the assertion
below asks for 25 %.
"""

from __future__ import annotations

import math
import random
import statistics

import attrs
import pytest

from starvideos_async import AdaptivePollPolicy, PollPolicy

WARM_UP = 500
MEASURED = 3000


@attrs.frozen
class Figures:
    calls_per_task: float
    mean_lag: float
    p95_lag: float

    def __str__(self) -> str:
        return (
            f"{self.calls_per_task:.2f} calls/task, lag mean {self.mean_lag:.1f} s, "
            f"p95 {self.p95_lag:.1f} s"
        )


def durations(seed: int, median: float, sigma: float, count: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(count)]


def simulate(policy: PollPolicy, task_durations: list[float], warm_up: int = WARM_UP) -> Figures:
    """Wait on each task from its creation, as the scheduler drives a policy."""
    calls: list[int] = []
    lags: list[float] = []
    for number, duration in enumerate(task_durations):
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
    lags.sort()
    return Figures(statistics.fmean(calls), statistics.fmean(lags), lags[int(0.95 * len(lags))])


def compare(seed: int, median: float, sigma: float) -> tuple[Figures, Figures]:
    work = durations(seed, median, sigma, WARM_UP + MEASURED)
    fixed = simulate(PollPolicy.fixed(30), work)
    default = simulate(AdaptivePollPolicy(seed=seed), work)
    print(  # noqa: T201 - the figures are the point of this test (run with -s)
        f"\nlognormal median {median:g} s sigma {sigma:g} seed {seed}:"
        f"\n  fixed(30): {fixed}\n  default:   {default}"
        f"\n  default/fixed: calls x{default.calls_per_task / fixed.calls_per_task:.2f}, "
        f"mean lag x{default.mean_lag / fixed.mean_lag:.2f}"
    )
    return fixed, default


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_policy_beats_fixed_30_on_lag_for_no_more_calls(seed: int) -> None:
    fixed, default = compare(seed, median=90, sigma=0.5)
    assert default.calls_per_task <= fixed.calls_per_task
    assert default.mean_lag <= 0.75 * fixed.mean_lag
    assert default.p95_lag < fixed.p95_lag


@pytest.mark.slow
@pytest.mark.parametrize(("median", "sigma"), [(90, 0.3), (90, 0.8), (60, 0.5), (180, 0.5)])
def test_default_policy_stays_sensible_on_other_durations(median: float, sigma: float) -> None:
    """Reported, loosely checked: one call is worth ``call_cost`` seconds of lag here too.

    Narrow distributions get far lower lag; wide or long ones trade lag for calls
    differently from fixed(30) (fewer calls for the same lag at a 180 s median, more
    calls for a much lower lag at 60 s), never both worse.
    """
    fixed, default = compare(1, median, sigma)
    assert default.mean_lag < fixed.mean_lag or default.calls_per_task < fixed.calls_per_task
    assert default.calls_per_task < 1.25 * fixed.calls_per_task
    assert default.mean_lag < 1.1 * fixed.mean_lag


def test_before_learning_the_default_is_in_the_range_the_service_asks_for() -> None:
    """Unlearned (a fresh client): no status call before 45 s, none more often than 5 s."""
    policy = AdaptivePollPolicy(seed=1, min_samples=10**9)  # never trusts what it learns
    cold = simulate(policy, durations(1, 90, 0.5, 2000), warm_up=0)
    fixed = simulate(PollPolicy.fixed(30), durations(1, 90, 0.5, 2000), warm_up=0)
    print(f"\nunlearned default: {cold}\nfixed(30):         {fixed}")  # noqa: T201
    assert cold.calls_per_task < 1.3 * fixed.calls_per_task
    assert cold.mean_lag < fixed.mean_lag
