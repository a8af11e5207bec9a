"""The default poll policy against ``fixed(30)`` end to end: a real client, the fake service.

``test_poll_policy_overlap.py``'s workload, live instead of on a virtual clock: 400
tasks with lognormal durations (median 90 s, sigma 0.5), one created every 1.2 s, each
awaited with ``task.wait()`` through a client on 127.0.0.1, the fake's clock sped up
50 times (``SCALE``: a median task takes 1.8 s). Both policies run at once, each
with a client and a fake of its own, on the same durations (task ``n`` takes as long on
both fakes) and in the same event loop: the figures pair task by task, and a loaded
machine slows both alike. The first 150 tasks are the learning phase; the other 250
are measured.

The figures come from the fake, not from the policy: status calls per task are the
status requests it recorded for that task, and the detection lag is the fake's clock
when ``wait()`` returned minus the moment the task's timeline completed, in simulated
seconds. Run with ``-s`` to see them (about 20 s of wall time).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from poll_simulation import Figures

from starvideos_async import AdaptivePollPolicy, PollPolicy
from starvideos_async.testing import FakeStarVideos

SCALE = 0.02  # real seconds per simulated second
MEDIAN = 90.0  # simulated seconds, as every time below unless said otherwise
SIGMA = 0.5
TASKS = 400
SPACING = 1.2  # between two creations: about 80 waits in flight at once
WARM_UP = 150  # the first tasks, while the default learns; not measured
INTERVAL = 30.0  # fixed(30), the docs' advice


def draw_durations(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(MEDIAN), SIGMA) for _ in range(TASKS)]


def fake_for(durations: list[float]) -> FakeStarVideos:
    """A fake whose task with the prompt ``task N`` takes ``durations[N]`` in all."""

    def timeline(_: random.Random, body: Mapping[str, Any]) -> tuple[float, float]:
        total = durations[int(body["prompt"].removeprefix("task "))]
        return 0.1 * total, 0.9 * total  # queued, then processing

    return FakeStarVideos(time_scale=SCALE, duration_sampler=timeline)


def scaled_default() -> AdaptivePollPolicy:
    """``PollPolicy.default()``'s settings with every time in it scaled (shares, counts not)."""
    default = PollPolicy.default()

    def scaled(seconds: float | None) -> float | None:
        return None if seconds is None else seconds * SCALE

    return AdaptivePollPolicy(
        interval=default.interval * SCALE,
        calls_per_task=default.calls_per_task,
        call_cost=scaled(default.call_cost),
        first_poll=default.first_poll * SCALE,
        min_interval=default.min_interval * SCALE,
        max_interval=default.max_interval * SCALE,
        jitter=default.jitter,
        memory=default.memory,
        min_samples=default.min_samples,
        seed=7,
    )


async def run(fake: FakeStarVideos, policy: PollPolicy) -> Figures:
    """Create ``TASKS`` tasks, one every ``SPACING``, each awaited from its creation."""
    ids = [""] * TASKS
    returned = [0.0] * TASKS  # the fake's clock when each wait() returned
    async with fake.client(poll_policy=policy, max_concurrency=32) as client:

        async def one(number: int) -> None:
            task = await client.submit(f"task {number}")
            ids[number] = task.id
            video = await task.wait()
            returned[number] = fake.sim_now()
            assert video.is_completed

        loop = asyncio.get_running_loop()
        start = loop.time()
        waits = []
        for number in range(TASKS):
            await asyncio.sleep(max(0.0, start + number * SPACING * SCALE - loop.time()))
            waits.append(asyncio.ensure_future(one(number)))
        await asyncio.gather(*waits)

    calls = Counter(r.task_id for r in fake.requests if r.endpoint == "status")
    lags = []
    for task_id, at in zip(ids, returned, strict=True):
        task = fake.tasks[task_id]
        lags.append(at - (task.created_at + task.queued_seconds + task.processing_seconds))
    return Figures([calls[task_id] for task_id in ids], lags)


@pytest.mark.slow
async def test_the_default_polls_as_often_as_fixed_30_and_sees_completions_sooner() -> None:
    durations = draw_durations(seed=1)
    fixed_fake, default_fake = fake_for(durations), fake_for(durations)
    wall = time.perf_counter()
    async with fixed_fake, default_fake:
        fixed, default = await asyncio.gather(
            run(fixed_fake, PollPolicy.fixed(INTERVAL * SCALE)),
            run(default_fake, scaled_default()),
        )
    wall = time.perf_counter() - wall

    learned = default.part(WARM_UP), fixed.part(WARM_UP)
    learning = default.part(0, WARM_UP), fixed.part(0, WARM_UP)
    lines = [f"\nlive, {TASKS} tasks, time scale {SCALE:g}, {wall:.1f} s of wall time:"]
    for label, (d, f) in (
        (f"first {WARM_UP} (learning)", learning),
        (f"last {TASKS - WARM_UP} (learned)", learned),
    ):
        lines += [
            f"  {label}:",
            f"    fixed(30): {f}",
            f"    default:   {d}",
            f"    default/fixed: calls x{d.calls_per_task / f.calls_per_task:.3f}, "
            f"mean lag x{d.mean_lag / f.mean_lag:.3f}",
        ]
    print("\n".join(lines))  # noqa: T201 - the figures are the point of this test (-s)

    # The fake's figures are the truth the assertions rest on: a wait returns only once
    # the fake answered completed (no negative lag), and fixed(30) polls at ages 30,
    # 60, ... at the earliest, so a task of D seconds costs it at most ceil(D / 30) calls.
    for figures in (fixed, default):
        assert min(figures.lags) >= 0
        assert min(figures.calls) >= 1
    assert all(
        calls <= math.ceil(d / INTERVAL) for calls, d in zip(fixed.calls, durations, strict=True)
    )
    default_learned, fixed_learned = learned
    # Calls: by default the policy spends 98.5 % of the calls fixed(30) would make on
    # the durations it learnt: on average, not on every sample. On these durations the
    # virtual-clock simulation gives 0.977x (+- 0.005 over policy seeds, at most
    # 0.987x), live runs gave 0.97x to 1.00x (the polls' timing varies a little). 2 %
    # above fixed(30) is noise this run should not reach; a policy that spends more
    # than its budget would.
    assert default_learned.calls_per_task <= 1.02 * fixed_learned.calls_per_task
    # Lag: the simulation gives 0.68x on these durations (+- 0.03 over policy seeds, at
    # most 0.73x), live runs 0.68x to 0.73x on a 2-core machine shared with other jobs
    # (load 2 to 4) and under coverage. Every poll the event loop serves late adds as
    # much lag to either policy, which brings the ratio towards 1: runs at a time scale
    # of 0.015 with the machine four times oversubscribed saw 0.82x, and once could not
    # keep time at all (fixed(30) polled every 60 s). 0.85x leaves room for a loaded
    # machine and still fails a policy that is not clearly better than fixed(30).
    assert default_learned.mean_lag <= 0.85 * fixed_learned.mean_lag
