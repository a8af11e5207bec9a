"""PollPolicy.fixed and the adaptive default, driven directly (no clock, no network).

Only the public interface: ``next_delay``, ``observe``, ``running``, ``ended``,
``learned`` and ``in_flight``. The learnt distribution is seen through the delays it
gives: with ``jitter=0`` and completions taught at exact ages (``running_at ==
finished_by``), the marginal rule has closed forms (see ``_exact``).
"""

from __future__ import annotations

import gc
import logging
import math
import tracemalloc
import warnings
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from starvideos_async import AdaptivePollPolicy, ConfigurationError, FixedPollPolicy, PollPolicy


def _delays(policy: PollPolicy, ages: list[float], duration: int | None = 5) -> list[float]:
    return [policy.next_delay(age=a, polls=i, duration=duration) for i, a in enumerate(ages)]


def _learn(policy: AdaptivePollPolicy, ages: list[float], duration: int | None = 5) -> None:
    """Teach exact completion ages (a zero-width interval leaves no room for guessing)."""
    for age in ages:
        policy.observe(running_at=age, finished_by=age, duration=duration)


# -- fixed -----------------------------------------------------------------------------


def test_fixed_always_answers_its_interval() -> None:
    policy = PollPolicy.fixed(30)
    assert isinstance(policy, FixedPollPolicy)
    assert _delays(policy, [0, 1, 500, 1e6]) == [30.0] * 4


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf, True, "30", None])
def test_fixed_refuses_a_non_positive_or_non_number_interval(seconds: Any) -> None:
    with pytest.raises(ConfigurationError, match="seconds") as excinfo:
        PollPolicy.fixed(seconds)
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.field == "seconds"


def test_base_policy_must_be_subclassed() -> None:
    with pytest.raises(NotImplementedError):
        PollPolicy().next_delay(age=0, polls=0, duration=None)
    PollPolicy().observe(running_at=0, finished_by=1, duration=None)  # learning is optional
    PollPolicy().running(key=object(), age=1.0, duration=None)  # and so is counting waits
    PollPolicy().ended(key=object())


# -- adaptive: construction ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"first_poll": 0}, "first_poll"),
        ({"first_poll": math.nan}, "first_poll"),
        ({"min_interval": -1}, "min_interval"),
        ({"max_interval": math.inf}, "max_interval"),
        ({"min_interval": 10, "max_interval": 5}, "max_interval"),
        ({"call_cost": 0}, "call_cost"),
        ({"jitter": 1}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": True}, "jitter"),
        ({"memory": 0}, "memory"),
        ({"min_samples": 2.5}, "min_samples"),
    ],
)
def test_adaptive_refuses_bad_settings_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        AdaptivePollPolicy(**kwargs)
    assert excinfo.value.field == field
    assert excinfo.value.value is kwargs[field]


def test_default_is_a_fresh_adaptive_policy_each_time() -> None:
    first, second = PollPolicy.default(), PollPolicy.default()
    assert isinstance(first, AdaptivePollPolicy)
    assert first is not second
    _learn(first, [60.0] * 20)
    assert (first.learned, second.learned) == (20, 0)


def test_adaptive_shortcut_passes_its_arguments() -> None:
    policy = PollPolicy.adaptive(
        first_poll=10, min_interval=1, max_interval=20, call_cost=2, jitter=0, seed=1
    )
    assert (policy.first_poll, policy.min_interval, policy.max_interval) == (10, 1, 20)
    assert (policy.call_cost, policy.jitter, policy.seed) == (2, 0, 1)
    assert "call_cost=2" in repr(policy)
    assert "learned=0" in repr(policy)
    budget = PollPolicy.adaptive(calls_per_task=4, interval=20)
    assert (budget.calls_per_task, budget.interval, budget.call_cost) == (4, 20, None)
    assert "calls_per_task=4" in repr(budget)
    assert "interval=30" in repr(PollPolicy.default())


@pytest.mark.parametrize(
    "name",
    [
        "interval",
        "calls_per_task",
        "call_cost",
        "first_poll",
        "min_interval",
        "max_interval",
        "jitter",
        "seed",
        "memory",
        "min_samples",
    ],
)
def test_adaptive_settings_are_read_only(name: str) -> None:
    """The trade is built from them once: a setting changed later would only show."""
    policy = AdaptivePollPolicy(calls_per_task=4, jitter=0, seed=1)
    _learn(policy, [60.0] * 20)
    before, shown = getattr(policy, name), repr(policy)
    delays = _delays(policy, [0, 30, 60])

    with pytest.raises(AttributeError, match=name):
        setattr(policy, name, 2)

    assert getattr(policy, name) == before
    assert repr(policy) == shown
    assert _delays(policy, [0, 30, 60]) == delays


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"calls_per_task": 0.5}, "calls_per_task"),
        ({"calls_per_task": math.inf}, "calls_per_task"),
        ({"interval": 0}, "interval"),
        ({"calls_per_task": 3, "call_cost": 2}, "call_cost"),
        ({"calls_per_task": True}, "calls_per_task"),
        ({"calls_per_task": math.nan}, "calls_per_task"),
    ],
)
def test_the_trade_is_said_one_way_and_sensibly(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        AdaptivePollPolicy(**kwargs)
    assert excinfo.value.field == field


# -- adaptive: before learning ---------------------------------------------------------


def test_unlearned_policy_polls_as_fixed_interval_on_the_tasks_own_grid() -> None:
    policy = AdaptivePollPolicy()  # no jitter before learning: the polls are fixed(30)'s
    assert policy.next_delay(age=0, polls=0, duration=5) == 30  # first_poll = interval
    assert policy.next_delay(age=30, polls=1, duration=5) == 30
    assert policy.next_delay(age=31.5, polls=1, duration=5) == 28.5  # late answer: on grid
    assert policy.next_delay(age=59, polls=2, duration=5) == 5  # min_interval
    own = AdaptivePollPolicy(first_poll=45, interval=20, max_interval=25)
    assert _delays(own, [0, 25, 45]) == [25, 20, 20]  # first_poll clamped to max_interval
    wide = AdaptivePollPolicy(interval=600, first_poll=1)  # both clamped: 5 and 300 s
    assert (wide.first_poll, wide.interval) == (5, 300)
    assert _delays(wide, [0, 5, 305]) == [5, 300, 300]


def test_a_resumed_wait_of_an_old_task_polls_at_the_next_grid_age() -> None:
    policy = AdaptivePollPolicy()
    assert policy.next_delay(age=200, polls=0, duration=5) == 10  # at 210, not 30 - 200


@pytest.mark.parametrize("age", [-5.0, math.nan])
def test_a_nonsense_age_counts_as_a_brand_new_task(age: float) -> None:
    policy = AdaptivePollPolicy(jitter=0)
    assert policy.next_delay(age=age, polls=0, duration=None) == 30


def test_jitter_spreads_learnt_delays_within_its_share_and_is_seeded() -> None:
    def delays(policy: AdaptivePollPolicy) -> list[float]:
        _learn(policy, [100.0 + i for i in range(20)], duration=None)
        return [policy.next_delay(age=0, polls=0, duration=None) for _ in range(500)]

    plain = delays(AdaptivePollPolicy(jitter=0, call_cost=2))[0]
    jittered = delays(AdaptivePollPolicy(jitter=0.1, seed=3, call_cost=2))
    assert min(jittered) >= plain * 0.9
    assert max(jittered) <= plain * 1.1
    assert max(jittered) - min(jittered) > plain * 0.15  # actually spread, not in lockstep
    assert delays(AdaptivePollPolicy(jitter=0.1, seed=3, call_cost=2)) == jittered


# -- adaptive: learning ----------------------------------------------------------------


def test_learned_policy_polls_where_tasks_finish() -> None:
    policy = AdaptivePollPolicy(jitter=0, call_cost=2, min_interval=1)
    _learn(policy, [100.0 + i * 0.1 for i in range(50)])  # everything ends at 100-105 s
    first = policy.next_delay(age=0, polls=0, duration=5)
    assert 100 <= first <= 105.1  # straight into the cluster
    capped = AdaptivePollPolicy(jitter=0, call_cost=2, min_interval=1, max_interval=60)
    _learn(capped, [100.0 + i * 0.1 for i in range(50)])
    assert capped.next_delay(age=0, polls=0, duration=5) == 60  # max_interval caps it
    assert 100 <= 60 + capped.next_delay(age=60, polls=1, duration=5) <= 105.1
    inside = policy.next_delay(age=101, polls=2, duration=5)
    assert inside <= 4  # dense where completions are


def test_a_budget_too_low_for_max_interval_warns_once_per_policy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Tasks of 10 minutes polled at most 10 s apart take about 60 calls, not 2."""
    caplog.set_level(logging.WARNING, logger="starvideos_async")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a log record, never a Python warning
        policy = AdaptivePollPolicy(calls_per_task=2, max_interval=10, jitter=0)
        _learn(policy, [600.0] * 20)
        delays = _delays(policy, [0, 10, 20, 300, 590])
        _learn(policy, [500.0] * 40)  # a new estimate, still out of reach
        delays += _delays(policy, [0, 10, 20])
        other = AdaptivePollPolicy(calls_per_task=2, max_interval=10)
        _learn(other, [600.0] * 20)
        other.next_delay(age=0, polls=0, duration=5)

    assert delays == [10.0] * 8  # it polls as sparsely as it may, over budget
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2  # one per policy
    message = warned[0].getMessage()
    assert "calls_per_task=2" in message
    assert "max_interval=10" in message
    assert "about 60 status calls per task" in message


def test_a_budget_within_reach_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="starvideos_async")
    for budget in (3, 8):
        policy = AdaptivePollPolicy(calls_per_task=budget, max_interval=300)
        _learn(policy, [600.0] * 20)
        policy.next_delay(age=0, polls=0, duration=5)
    interval = AdaptivePollPolicy(interval=10, max_interval=10)  # its own budget
    _learn(interval, [600.0] * 20)
    interval.next_delay(age=0, polls=0, duration=5)
    assert not caplog.records


def _exact(**kwargs: Any) -> AdaptivePollPolicy:
    """A policy whose delays are the rule's targets as such: no jitter, no clamping."""
    settings_: dict[str, Any] = {
        "jitter": 0,
        "min_interval": 1e-6,
        "max_interval": 1e9,
        "min_samples": 1,
        "memory": 10_000,
        "seed": 1,
    }
    return AdaptivePollPolicy(**{**settings_, **kwargs})


@settings(max_examples=60, deadline=None)
@given(
    finish=st.floats(1, 1000),
    done=st.integers(1, 30),
    running=st.lists(st.floats(0, 2000), max_size=30),
    cost=st.floats(0.01, 100),
    age=st.floats(0, 1, exclude_max=True),
)
def test_the_next_poll_pays_one_call_with_the_delay_piled_up_and_censoring_counts(
    finish: float, done: int, running: list[float], cost: float, age: float
) -> None:
    """``done`` tasks finished at ``finish``; more are in flight, seen running at ``running``.

    Kaplan-Meier: the waits seen running at ``finish`` or later were at risk there, so the
    completions weigh ``1 / (done + later)`` each and ``S = 1`` before ``finish``. The
    delay piled up by ``x > finish`` is ``done / (done + later) * (x - finish)``; the
    poll comes when it reaches ``call_cost * S``, but no later than half of ``finish``
    past it: beyond the last completion nothing is known. Waits seen only younger change
    nothing.
    """
    age *= finish  # somewhere before the completions
    policy = _exact(call_cost=cost)
    _learn(policy, [finish] * done)
    _run(policy, running)
    later = sum(r >= finish for r in running)
    want = min(finish + cost * (done + later) / done, 1.5 * finish) - age
    assert policy.next_delay(age=age, polls=1, duration=5) == pytest.approx(want, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    ages=st.lists(st.floats(1, 1000), min_size=1, max_size=300),
    at=st.floats(0, 1.2),
    cost=st.floats(0.01, 50),
    scale=st.floats(1, 20),
)
def test_the_rule_does_not_depend_on_the_unit_of_time(
    ages: list[float], at: float, cost: float, scale: float
) -> None:
    """Ages and ``call_cost`` in minutes instead of seconds: the same schedule, in minutes.

    (The piled-up delay scales as time squared, its budget ``call_cost * S`` as time:
    a rule that integrated or smoothed wrongly would not scale.)
    """
    age = at * max(ages)
    seconds = _exact(call_cost=cost * scale, interval=30 * scale)
    minutes = _exact(call_cost=cost, interval=30)
    _learn(seconds, [a * scale for a in ages])
    _learn(minutes, ages)
    in_seconds = seconds.next_delay(age=age * scale, polls=1, duration=5)
    in_minutes = minutes.next_delay(age=age, polls=1, duration=5)
    assert in_seconds == pytest.approx(in_minutes * scale, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    ages=st.lists(st.floats(1, 1000), min_size=1, max_size=200),
    costs=st.lists(st.floats(0.01, 50), min_size=2, max_size=2).map(sorted),
)
def test_the_first_poll_is_later_the_more_a_call_costs_and_within_the_learnt_ages(
    ages: list[float], costs: list[float]
) -> None:
    """A call worth more waits for more piled-up delay; the pile starts at the earliest
    completion (smoothed by at most half of it) and grows by one per second past the last;
    past the last (smoothed) completion the poll comes at the latest half its age later.
    """
    cheap, dear = _exact(call_cost=costs[0]), _exact(call_cost=costs[1])
    _learn(cheap, ages)
    _learn(dear, ages)
    first_cheap = cheap.next_delay(age=0, polls=0, duration=5)
    first_dear = dear.next_delay(age=0, polls=0, duration=5)
    assert first_cheap <= first_dear * (1 + 1e-9)
    for first, cost in ((first_cheap, costs[0]), (first_dear, costs[1])):
        assert math.isfinite(first)
        assert min(min(ages) / 2 + cost, max(ages) * 1.5) <= first * (1 + 1e-9)
        # (a completion is smoothed over up to half its age on either side)
        assert first <= min(max(ages) * 1.5 + cost, max(ages) * 1.5 * 1.5) * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@example(ages=[0.0], running=[], age=math.inf, polls=0)  # an infinite age once gave NaN
@given(
    ages=st.lists(st.floats(0, 1e4), max_size=50),
    running=st.lists(st.floats(0, 1e4), max_size=20),
    age=st.floats(allow_nan=True, allow_infinity=True),
    polls=st.integers(0, 100),
)
def test_any_history_gives_a_delay_within_the_bounds(
    ages: list[float], running: list[float], age: float, polls: int
) -> None:
    policy = AdaptivePollPolicy(seed=1, min_samples=1)
    _learn(policy, ages)
    _run(policy, running)
    delay = policy.next_delay(age=age, polls=polls, duration=5)
    assert policy.min_interval <= delay <= policy.max_interval


def test_buckets_learn_apart_and_fall_back_to_everything() -> None:
    policy = AdaptivePollPolicy(jitter=0, min_interval=1, max_interval=200, call_cost=1)
    _learn(policy, [30.0] * 10, duration=5)
    _learn(policy, [150.0] * 10, duration=15)
    short = policy.next_delay(age=0, polls=0, duration=5)
    long = policy.next_delay(age=0, polls=0, duration=15)
    # Tasks that all end at x pile up delay n times as fast past x: poll at x + call_cost.
    assert short == pytest.approx(31)
    assert long == pytest.approx(151)
    unknown = policy.next_delay(age=0, polls=0, duration=10)  # no bucket: all of them
    assert 30 <= unknown <= 150
    assert policy.learned == 20


def test_a_bucket_is_trusted_only_after_min_samples() -> None:
    policy = AdaptivePollPolicy(
        jitter=0, min_samples=5, min_interval=1, max_interval=200, call_cost=1
    )
    _learn(policy, [120.0] * 4)
    assert policy.next_delay(age=0, polls=0, duration=5) == 30  # still the unlearned rule
    _learn(policy, [120.0])
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(121)


def test_memory_forgets_the_oldest_completions() -> None:
    policy = AdaptivePollPolicy(jitter=0, memory=10, min_interval=1, max_interval=300, call_cost=1)
    _learn(policy, [200.0] * 10)
    _learn(policy, [50.0] * 10)  # the service got faster
    assert policy.learned == 10
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(51)


def test_past_every_completion_seen_it_backs_off_with_the_age() -> None:
    policy = AdaptivePollPolicy(jitter=0, max_interval=100)
    _learn(policy, [60.0] * 10)
    assert policy.next_delay(age=200, polls=5, duration=5) == 50  # a quarter of the age
    assert policy.next_delay(age=1000, polls=9, duration=5) == 60  # at most 2 intervals


@pytest.mark.parametrize(
    ("running_at", "finished_by"),
    [(-1.0, 5.0), (10.0, 5.0), (0.0, math.inf), (math.nan, 5.0), (0.0, math.nan)],
)
def test_impossible_observations_are_ignored(running_at: float, finished_by: float) -> None:
    policy = AdaptivePollPolicy()
    policy.observe(running_at=running_at, finished_by=finished_by, duration=5)
    assert policy.learned == 0


@pytest.mark.parametrize(
    ("running_at", "finished_by", "low", "high"),
    [
        # Uniform between the polls: the pile grows as (x - 100)^2 / 60, so the poll is
        # at 100 + sqrt(60 * 2.95) = 113.3; drawn at either poll it would be 102.95 or
        # 132.95.
        pytest.param(100.0, 130.0, 107, 120, id="between two polls"),
        # Before the first poll, with nothing learnt after it: spread evenly (drawn
        # leaning late, F = (x / 60)^3, the pile x^4 / (4 * 60^3) would reach 2.95 at
        # 40.0), so the next poll, at sqrt(120 * 2.95) = 18.8, finds out where.
        pytest.param(0.0, 60.0, 15, 22, id="before the first poll"),
    ],
)
def test_an_observed_completion_is_placed_between_the_two_polls(
    running_at: float, finished_by: float, low: float, high: float
) -> None:
    policy = _exact(call_cost=2.95)
    for _ in range(300):
        policy.observe(running_at=running_at, finished_by=finished_by, duration=5)
    assert low <= policy.next_delay(age=0, polls=0, duration=5) <= high


def test_completions_before_the_first_poll_lean_towards_those_learnt_just_after_it() -> None:
    """Where many finish right after the first poll, those before it finished late too."""
    dense_after, even = _exact(call_cost=2.95), _exact(call_cost=2.95)
    _learn(dense_after, [61.0 + i / 10 for i in range(100)])
    _learn(even, [61.0 + 6 * i for i in range(100)])
    for policy in (dense_after, even):
        for _ in range(100):
            policy.observe(running_at=0.0, finished_by=60.0, duration=5)
    # The same 100 completions before 60 s, drawn later where the density after 60 s is
    # high: less delay piles up early, so the first poll comes later.
    assert dense_after.next_delay(age=0, polls=0, duration=5) > even.next_delay(
        age=0, polls=0, duration=5
    )


# -- adaptive: waits in flight (censoring) ------------------------------------------------


def _run(policy: PollPolicy, ages: list[float], duration: int | None = 5) -> list[object]:
    """Waits seen running at these ages (one key each); returns the keys."""
    keys = [object() for _ in ages]
    for key, age in zip(keys, ages, strict=True):
        policy.running(key=key, age=age, duration=duration)
    return keys


def test_waits_in_flight_push_the_next_poll_later_until_they_end() -> None:
    policy = AdaptivePollPolicy(jitter=0, call_cost=1, min_interval=1, max_interval=200)
    _learn(policy, [60.0] * 10)
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(61)
    keys = _run(policy, [100.0] * 30)  # 30 more tasks, all longer than 100 s
    # Only a quarter of the tasks finish at 60 s: the pile grows 4 times slower there.
    assert policy.in_flight == 30
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(64)
    for key in keys:
        policy.ended(key=key)  # e.g. cancelled: what they showed is forgotten
    assert policy.in_flight == 0
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(61)


def test_hooks_take_unknown_keys_and_nonsense_ages_quietly() -> None:
    policy = AdaptivePollPolicy()
    policy.ended(key=object())  # never seen: nothing to do
    policy.ended(key="never")
    for age in (-1.0, math.nan, math.inf):
        policy.running(key=object(), age=age, duration=5)
    assert policy.in_flight == 0
    key = object()
    policy.running(key=key, age=10.0, duration=5)
    policy.ended(key=key)
    policy.ended(key=key)  # twice: harmless
    assert policy.in_flight == 0


@pytest.mark.parametrize(
    ("sightings", "ended", "poll"),
    [
        pytest.param([(10.0, 5)], False, 40, id="younger than the completions"),
        pytest.param([(10.0, 5), (35.0, 5), (45.0, 5)], False, 41, id="once, at 45"),
        pytest.param([(35.0, 5), (40.0, 5), (50.0, 10)], False, 40, id="moved to 10 s"),
        pytest.param([(35.0, 5), (45.0, 5)], True, 40, id="ended"),
    ],
)
def test_a_wait_is_counted_once_at_its_latest_age_in_its_buckets(
    sightings: list[tuple[float, int]], ended: bool, poll: float
) -> None:
    """Ten tasks of 5 s videos finished at 30 s; call_cost 10: alone, they put the first
    poll at 40 s. A wait last seen running at 30 s or later makes it 30 + 10 * 11 / 10 = 41
    (counted twice, 42)."""
    policy = _exact(call_cost=10)
    _learn(policy, [30.0] * 10)
    key = object()
    for age, duration in sightings:  # (moving a wait to another duration cannot happen)
        policy.running(key=key, age=age, duration=duration)
    if ended:
        policy.ended(key=key)
    assert policy.in_flight == (0 if ended else 1)
    # (asked once per policy: the estimate is rebuilt only after enough changes)
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(poll)


def _churn(policy: AdaptivePollPolicy, waits: int) -> None:
    """Waits seen running thrice, then completed and ended, in three duration buckets."""
    for number in range(waits):
        key = object()
        for age in (45.0, 60.0, 75.0):
            policy.running(key=key, age=age, duration=number % 3)
        policy.observe(running_at=75.0, finished_by=90.0, duration=number % 3)
        policy.ended(key=key)


def test_memory_does_not_grow_with_waits_that_ended() -> None:
    policy = AdaptivePollPolicy(seed=1, memory=100)
    _churn(policy, 1000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _churn(policy, 3000)
        policy.next_delay(age=0, polls=0, duration=1)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert policy.in_flight == 0
    assert policy.learned == 100
    # 3000 waits kept at ~100 bytes or more each would be 300 KB
    assert grown < 60_000


def test_the_window_grows_to_twice_the_waits_in_flight() -> None:
    """Hundreds of tasks at once: a window of 512 completions would be too short."""
    policy = AdaptivePollPolicy(seed=1, memory=50)
    keys = _run(policy, [50.0] * 400)
    _learn(policy, [60.0] * 1000)
    assert policy.learned == 800
    for key in keys:
        policy.ended(key=key)
    _learn(policy, [60.0] * 1000)
    assert policy.learned == 800  # it does not shrink back: the load may come back


def test_the_window_keeps_time_from_the_ages_it_is_told() -> None:
    """Once completions are forgotten, a wait counts only for the ages it went through
    after the window started; the policy tells when that was from the ages alone.

    Virtual time: every call is 0.5 s. Twenty tasks finish at 30 s, memory 10: the window
    starts when the tenth was seen, at t = 6. Wait ``young`` was created at t = 0 (aged 6
    then), ``old`` at t = -100 (aged 106 then). So ``young`` ran through 30 s inside the
    window and dilutes the completions (30 + 10 * 11 / 10 = 41), ``old`` did not. A clock
    running half as fast would leave ``young`` out (40); twice as fast, or no window at
    all, would count ``old`` in (42).
    """
    policy = _exact(call_cost=10, memory=10)
    young, old = object(), object()
    now = 0.0

    def tick() -> float:
        nonlocal now
        now += 0.5
        return now

    for _ in range(2):  # seen twice: the policy's clock starts
        policy.running(key=young, age=tick(), duration=5)
    for _ in range(20):
        tick()
        policy.observe(running_at=30.0, finished_by=30.0, duration=5)
    for _ in range(150):
        policy.running(key=young, age=tick(), duration=5)
        policy.running(key=old, age=tick() + 100, duration=5)
    assert (policy.learned, policy.in_flight) == (10, 2)
    assert policy.next_delay(age=0, polls=0, duration=5) == pytest.approx(41)
