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
)
from starvideos_async._poll_policy import _History


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


def test_next_poll_comes_when_the_piled_up_delay_is_worth_one_call() -> None:
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
    learned = list(policy._buckets[None].recent)
    for (running_at, finished_by), age in zip(spans, learned, strict=True):
        assert running_at <= age <= finished_by
    first = learned[300:]
    assert sum(first) / len(first) == pytest.approx(45, abs=3)  # E[60 * U ** (1/3)] = 45
