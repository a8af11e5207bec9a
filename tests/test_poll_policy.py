"""PollPolicy.fixed and the adaptive default, driven directly (no clock, no network)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starvideos_async import (
    AdaptivePollPolicy,
    FixedPollPolicy,
    InvalidRequestError,
    PollPolicy,
    _poll_policy,
)
from starvideos_async._poll_policy import _Curve, _History, _pieces


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
    with pytest.raises(InvalidRequestError, match="seconds"):
        PollPolicy.fixed(seconds)


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
    with pytest.raises(InvalidRequestError) as excinfo:
        AdaptivePollPolicy(**kwargs)
    assert excinfo.value.field == field


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


# -- adaptive: before learning ---------------------------------------------------------


def test_unlearned_policy_polls_first_late_then_every_quarter_of_the_age() -> None:
    policy = AdaptivePollPolicy(jitter=0)
    assert policy.next_delay(age=0, polls=0, duration=5) == 45  # first_poll
    assert policy.next_delay(age=15, polls=0, duration=5) == 30  # the first poll at age 45
    assert policy.next_delay(age=45, polls=1, duration=5) == pytest.approx(11.25)
    assert policy.next_delay(age=100, polls=3, duration=5) == 25
    assert policy.next_delay(age=4, polls=2, duration=5) == 5  # min_interval
    assert policy.next_delay(age=1000, polls=9, duration=5) == 60  # max_interval


def test_a_resumed_wait_of_an_old_task_does_not_wait_for_the_first_poll_again() -> None:
    policy = AdaptivePollPolicy(jitter=0)
    assert policy.next_delay(age=200, polls=0, duration=5) == 50  # age / 4, not 45 - 200


@pytest.mark.parametrize("age", [-5.0, math.nan])
def test_a_nonsense_age_counts_as_a_brand_new_task(age: float) -> None:
    policy = AdaptivePollPolicy(jitter=0)
    assert policy.next_delay(age=age, polls=0, duration=None) == 45


def test_jitter_spreads_delays_within_its_share_and_is_seeded() -> None:
    policy = AdaptivePollPolicy(jitter=0.1, seed=3, min_interval=1, max_interval=100)
    delays = [policy.next_delay(age=0, polls=0, duration=None) for _ in range(500)]
    assert min(delays) >= 45 * 0.9
    assert max(delays) <= 45 * 1.1
    assert max(delays) - min(delays) > 45 * 0.15  # actually spread, not in lockstep
    again = AdaptivePollPolicy(jitter=0.1, seed=3, min_interval=1, max_interval=100)
    assert [again.next_delay(age=0, polls=0, duration=None) for _ in range(500)] == delays


# -- adaptive: learning ----------------------------------------------------------------


def test_learned_policy_polls_where_tasks_finish() -> None:
    policy = AdaptivePollPolicy(jitter=0, call_cost=2, min_interval=1)
    _learn(policy, [100.0 + i * 0.1 for i in range(50)])  # everything ends at 100-105 s
    first = policy.next_delay(age=0, polls=0, duration=5)
    assert first == 60  # the rule wants ~100 s, the max_interval caps the first delay
    at_60 = policy.next_delay(age=60, polls=1, duration=5)
    assert 100 <= 60 + at_60 <= 105.1  # then straight into the cluster
    inside = policy.next_delay(age=101, polls=2, duration=5)
    assert inside <= 4  # dense where completions are


def test_next_poll_comes_when_the_piled_up_delay_is_worth_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_poll_policy, "_SMOOTHING", 0.0)  # the rule on the samples as such
    history = _History()
    for age in (10.0, 20.0, 30.0, 40.0):
        history.add(age, memory=10)
    # From age 0, by age x the four tasks piled up sum(x - a) of delay; with
    # call_cost 5 the budget is 5 * 4 = 20: at x = 30 the pile is 20 + 10 = 30 > 20,
    # at x = 20 it is 10, so the poll is between: 10 + 2 * (x - 20) = 20 -> x = 25.
    assert history.next_poll(0.0, call_cost=5) == pytest.approx(25.0)
    assert history.next_poll(40.0, call_cost=5) is None  # past every sample


@settings(max_examples=60)
@given(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=60),
    st.floats(0, 1000, allow_nan=False),
    st.floats(0.01, 100, allow_nan=False),
)
def test_next_poll_matches_a_brute_force_walk(ages: list[float], age: float, cost: float) -> None:
    history = _History()
    for a in ages:
        history.add(a, memory=100)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_poll_policy, "_SMOOTHING", 0.0)
        got = history.next_poll(age, call_cost=cost)
    ahead = sorted(a for a in ages if a > age)
    if not ahead:
        assert got is None
        return
    budget = cost * len(ahead)
    pile = lambda x: sum(x - a for a in ahead if a <= x)  # noqa: E731
    assert got is not None
    assert got >= ahead[0]
    assert pile(got) == pytest.approx(budget, rel=1e-6, abs=1e-6) or (
        got == ahead[0] and pile(got) == 0
    )


def _uniform_pile(low: float, high: float, x: float) -> float:
    """Integral up to ``x`` of the distribution function of one piece."""
    if high <= low:
        return max(x - low, 0.0)
    if x <= low:
        return 0.0
    if x >= high:
        return x - (low + high) / 2
    return (x - low) ** 2 / (2 * (high - low))


def _uniform_cdf(low: float, high: float, x: float) -> float:
    if high <= low:
        return 1.0 if x >= low else 0.0
    return min(max((x - low) / (high - low), 0.0), 1.0)


@settings(max_examples=80)
@given(
    st.lists(st.floats(1, 1000, allow_nan=False), min_size=2, max_size=400),
    st.floats(0, 1200, allow_nan=False),
    st.floats(0.01, 100, allow_nan=False),
    st.floats(0, 1),
)
def test_smoothed_next_poll_matches_a_brute_force_pile(
    ages: list[float], age: float, cost: float, tail: float
) -> None:
    """The curve's answer solves ``pile(x) = call_cost * S(age)`` over its pieces."""
    ages.sort()
    weights = [(1 - tail) / len(ages)] * len(ages)
    curve = _Curve(ages, weights, tail)
    pieces = _pieces(ages, weights)
    assert len(pieces) <= _poll_policy._PIECES
    assert math.fsum(w for _, _, w in pieces) == pytest.approx(1 - tail)
    got = curve.next_poll(age, call_cost=cost)
    done = math.fsum(w * _uniform_cdf(lo, hi, age) for lo, hi, w in pieces)
    if 1 - tail - done <= 1e-9:
        assert got is None or got >= age
        return
    assert got is not None
    assert got >= age
    budget = cost * (1 - done)

    def pile(x: float) -> float:
        return math.fsum(
            w * (_uniform_pile(lo, hi, x) - _uniform_pile(lo, hi, age) - (x - age) * c)
            for lo, hi, w in pieces
            for c in [_uniform_cdf(lo, hi, age)]
        )

    assert pile(got) == pytest.approx(budget, rel=1e-6, abs=1e-9)


def test_pieces_are_points_for_equal_ages_and_wider_where_ages_are_sparse() -> None:
    assert _pieces([30.0] * 10, [0.1] * 10) == [(30.0, 30.0, 0.1)] * 10
    ages = [100.0 + i for i in range(50)] + [300.0, 400.0]  # a cluster and two stragglers
    widths = [hi - lo for lo, hi, _ in _pieces(ages, [1 / 52] * 52)]
    assert max(widths[:40]) < 20  # (those closest to the stragglers widen too)
    assert min(widths[50:]) > 100


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
    assert policy.next_delay(age=0, polls=0, duration=5) == 45  # still the unlearned rule
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
    assert policy.next_delay(age=200, polls=5, duration=5) == 50


@pytest.mark.parametrize(
    ("running_at", "finished_by"),
    [(-1.0, 5.0), (10.0, 5.0), (0.0, math.inf), (math.nan, 5.0), (0.0, math.nan)],
)
def test_impossible_observations_are_ignored(running_at: float, finished_by: float) -> None:
    policy = AdaptivePollPolicy()
    policy.observe(running_at=running_at, finished_by=finished_by, duration=5)
    assert policy.learned == 0


def test_observed_ages_are_drawn_between_the_two_polls() -> None:
    policy = AdaptivePollPolicy(seed=1, memory=1000)
    rng = random.Random(2)
    spans = [(a, a + rng.uniform(0, 30)) for a in (rng.uniform(0, 200) for _ in range(300))]
    spans += [(0.0, 60.0)] * 300  # the first interval leans late
    for running_at, finished_by in spans:
        policy.observe(running_at=running_at, finished_by=finished_by, duration=None)
    learned = [age for age, _, _ in policy._buckets[None].recent]
    for (running_at, finished_by), age in zip(spans, learned, strict=True):
        assert running_at <= age <= finished_by
    first = learned[300:]
    assert sum(first) / len(first) == pytest.approx(45, abs=3)  # E[60 * U ** (1/3)] = 45


# -- adaptive: waits in flight (censoring) ------------------------------------------------


def _run(policy: PollPolicy, ages: list[float], duration: int | None = 5) -> list[object]:
    """Waits seen running at these ages (one key each); returns the keys."""
    keys = [object() for _ in ages]
    for key, age in zip(keys, ages, strict=True):
        policy.running(key=key, age=age, duration=duration)
    return keys


def _masses(history: _History) -> list[tuple[float, float]]:
    """(age, mass finished by that age) at each end of the learnt distribution's pieces."""
    curve = history._rebuild()
    return list(zip(curve.xs, curve.fs, strict=True))


def test_censored_waits_move_weight_to_later_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_poll_policy, "_SMOOTHING", 0.0)
    policy = AdaptivePollPolicy(seed=1)
    _learn(policy, [10.0, 20.0, 30.0, 40.0])
    _run(policy, [25.0, 25.0])  # two tasks still running at 25 s: longer than that
    # Kaplan-Meier: at risk 6, 5, 2, 1 -> survival 5/6, 4/6, 1/3, 0.
    got = _masses(policy._buckets[5])
    want = [(10.0, 1 / 6), (20.0, 1 / 3), (30.0, 2 / 3), (40.0, 1.0)]
    assert got == [(a, pytest.approx(m)) for a, m in want]
    naive = AdaptivePollPolicy(seed=1)
    _learn(naive, [10.0, 20.0, 30.0, 40.0])
    assert [m for _, m in _masses(naive._buckets[5])] == pytest.approx([0.25, 0.5, 0.75, 1.0])


@settings(max_examples=60)
@given(
    st.lists(st.floats(0, 500, allow_nan=False), min_size=1, max_size=40),
    st.lists(st.floats(0, 500, allow_nan=False), max_size=40),
)
def test_weights_match_a_brute_force_kaplan_meier(done: list[float], running: list[float]) -> None:
    policy = AdaptivePollPolicy(seed=1)
    _learn(policy, done)
    _run(policy, running)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_poll_policy, "_SMOOTHING", 0.0)
        curve = policy._buckets[5]._rebuild()
    survival, finished = 1.0, {}
    for age in sorted(set(done)):
        at_risk = sum(a >= age for a in done) + sum(a >= age for a in running)
        dead = done.count(age)
        finished[age] = 1 - survival * (1 - dead / at_risk)
        survival *= 1 - dead / at_risk
    assert dict(zip(curve.xs, curve.fs, strict=True)) == pytest.approx(finished)
    assert curve.tail == pytest.approx(survival, abs=1e-12)


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


def test_a_wait_is_counted_once_at_its_latest_age_in_its_buckets() -> None:
    policy = AdaptivePollPolicy()
    key = object()
    policy.running(key=key, age=10.0, duration=5)
    policy.running(key=key, age=30.0, duration=5)
    assert policy.in_flight == 1
    assert policy._buckets[5].inflight[key][0] == 30.0
    assert policy._buckets[None].inflight[key][0] == 30.0
    policy.running(key=key, age=40.0, duration=10)  # cannot happen, but moves it
    assert key not in policy._buckets[5].inflight
    assert policy._buckets[10].inflight[key][0] == 40.0
    policy.ended(key=key)
    assert all(not history.inflight for history in policy._buckets.values())


def test_memory_does_not_grow_with_waits_that_ended() -> None:
    policy = AdaptivePollPolicy(seed=1, memory=100)
    for number in range(3000):
        key = object()
        for age in (45.0, 60.0, 75.0):
            policy.running(key=key, age=age, duration=number % 3)
        policy.observe(running_at=75.0, finished_by=90.0, duration=number % 3)
        policy.ended(key=key)
    assert policy.in_flight == 0
    assert not policy._waits
    assert all(not history.inflight for history in policy._buckets.values())
    assert policy.learned == 100
    assert all(len(history.recent) <= 100 for history in policy._buckets.values())


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


def test_the_policy_keeps_time_from_the_ages_it_is_told() -> None:
    """The clock ticks at every call by the seconds a call takes lately."""
    policy = AdaptivePollPolicy(seed=1)
    keys = [object() for _ in range(20)]
    now = 0.0
    for _ in range(30):  # 20 waits polled in turn, one every 0.5 s
        for number, key in enumerate(keys):
            now += 0.5
            policy.running(key=key, age=now + number, duration=5)
    start = policy._clock
    for number, key in enumerate(keys):
        policy.running(key=key, age=now + 0.5 * (number + 1) + number, duration=5)
    assert policy._clock - start == pytest.approx(10.0, rel=0.02)
