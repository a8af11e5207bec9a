"""The poll policies on a virtual clock: the grid of task shapes, and lag against calls.

No network and no sleeping: the simulation of ``tests/test_poll_policy_simulation.py``
(``tests/poll_simulation.py``), run over the grid of lognormal task shapes (medians 60,
90, 180 and 300 s; sigma 0.3, 0.5 and 0.8; seeds 1-3) and over a range of trades (fixed
intervals, the default with the same ``interval``, and the optimum) at median 90 s,
sigma 0.5; and the longest the default policy holds the event loop with 100,000 waits
in flight. Writes the figures as JSON and draws ``policy-trade.svg`` from them::

    python benchmarks/policy_grid.py                 # about a minute
    python benchmarks/policy_grid.py --chart-only    # redraw from the JSON

By default both go to ``docs/_static`` (the performance page shows them); ``--out``
writes elsewhere. Prints the grid as a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from charts import MUTED, Svg, _linear_ticks, axes  # noqa: E402
from poll_simulation import Lognormal, against_fixed_30, optimum, simulate  # noqa: E402

from starvideos_async import AdaptivePollPolicy, PollPolicy  # noqa: E402

MEDIANS = (60, 90, 180, 300)
SIGMAS = (0.3, 0.5, 0.8)
SEEDS = (1, 2, 3)
WARM_UP, MEASURED = 500, 3000  # as in the tests
INTERVALS = (10, 15, 20, 30, 45, 60, 90)
TRADE_SHAPE = Lognormal(90, 0.5)
RESULTS = "policy-grid.json"
CHART = "policy-trade.svg"
COLOURS = {"fixed": "#8a8f98", "default": "#2f6fde", "optimum": "#1a1a1a"}


def grid() -> list[dict[str, Any]]:
    rows = []
    for median in MEDIANS:
        for sigma in SIGMAS:
            shape = Lognormal(median, sigma)
            best = optimum(shape, shape.fixed(30)[0])
            for seed in SEEDS:
                fixed, default = against_fixed_30(shape, seed, WARM_UP, MEASURED)
                rows.append(
                    {
                        "median": median,
                        "sigma": sigma,
                        "seed": seed,
                        "fixed_calls": fixed.calls_per_task,
                        "fixed_lag": fixed.mean_lag,
                        "default_calls": default.calls_per_task,
                        "default_lag": default.mean_lag,
                        "optimum_lag": best,
                    }
                )
                print(f"median {median} s, sigma {sigma}, seed {seed}: done", file=sys.stderr)
    return rows


def trade() -> dict[str, list[list[float]]]:
    work = TRADE_SHAPE.draw(1, WARM_UP + MEASURED)
    fixed, default = [], []
    for interval in INTERVALS:
        f = simulate(PollPolicy.fixed(interval), work, WARM_UP)
        d = simulate(AdaptivePollPolicy(seed=1, interval=interval), work, WARM_UP)
        fixed.append([interval, f.calls_per_task, f.mean_lag])
        default.append([interval, d.calls_per_task, d.mean_lag])
    low, high = min(c for _, c, _ in fixed), max(c for _, c, _ in fixed)
    steps = 24
    best = []
    for i in range(steps + 1):
        calls = low * (high / low) ** (i / steps)
        best.append([calls, optimum(TRADE_SHAPE, calls)])
    return {"fixed": fixed, "default": default, "optimum": best}


def steps(waits: int = 100_000, rounds: int = 3) -> dict[str, float]:
    """The default policy's calls with ``waits`` waits in flight, as the scheduler makes
    them: for each answer, ``running()`` then ``next_delay()``, or ``observe()`` then
    ``ended()`` for a completion (one in ten). The time of each pair, in ms."""
    rng = random.Random(1)
    policy = AdaptivePollPolicy(seed=1)
    shape = Lognormal(90, 0.5)
    for duration in shape.draw(1, 512):
        policy.observe(running_at=duration * 0.9, finished_by=duration, duration=5)
    keys = [object() for _ in range(waits)]
    took = []
    for number in range(rounds):
        for key in keys:
            age = 30.0 * (number + 1) + rng.random()
            started = time.perf_counter()
            if rng.random() < 0.1:
                policy.observe(running_at=age - 20, finished_by=age, duration=5)
                policy.ended(key=key)
            else:
                policy.running(key=key, age=age, duration=5)
                policy.next_delay(age=age, polls=number + 1, duration=5)
            took.append(time.perf_counter() - started)
    took.sort()
    return {
        "waits": waits,
        "calls": len(took),
        "mean_us": statistics.fmean(took) * 1e6,
        "p99_us": took[int(0.99 * len(took))] * 1e6,
        "max_ms": took[-1] * 1e3,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The grid, one line per shape: seeds 1-3 as ``a / b / c``, all against fixed(30)."""

    def triple(values: list[float]) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    lines = [
        "| median | sigma | default: calls vs fixed(30) | default: lag vs fixed(30) "
        "| default: lag vs optimum | optimum: lag vs fixed(30) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for median in MEDIANS:
        for sigma in SIGMAS:
            runs = [r for r in rows if r["median"] == median and r["sigma"] == sigma]
            lines.append(
                f"| {median} s | {sigma} "
                f"| {triple([r['default_calls'] / r['fixed_calls'] for r in runs])} "
                f"| {triple([r['default_lag'] / r['fixed_lag'] for r in runs])} "
                f"| {triple([r['default_lag'] / r['optimum_lag'] for r in runs])} "
                f"| {triple([r['optimum_lag'] / r['fixed_lag'] for r in runs])} |"
            )
    worst = max(r["default_lag"] / r["optimum_lag"] for r in rows)
    calls = max(r["default_calls"] / r["fixed_calls"] for r in rows)
    mean = statistics.fmean(r["default_lag"] / r["fixed_lag"] for r in rows)
    lines.append("")
    lines.append(
        f"Worst: {worst:.3f}x the optimum's lag; most calls {calls:.3f}x fixed(30)'s; "
        f"mean lag {mean:.2f}x fixed(30)'s over the grid."
    )
    return "\n".join(lines)


def chart(results: dict[str, Any]) -> str:
    """Mean lag against status calls per task: fixed intervals, the default, the optimum."""
    data = results["trade"]
    title = "Polling: the lag each number of status calls buys"
    svg = Svg(760, 480, title)
    svg.text(24, 30, title, size=16, bold=True)
    left, right, top, bottom = 90.0, 700.0, 60.0, 380.0
    points = [(c, lag) for series in data.values() for *_, c, lag in series]
    xticks = _linear_ticks(max(c for c, _ in points) * 1.05)
    yticks = _linear_ticks(max(lag for _, lag in points) * 1.05)

    def x_of(value: float) -> float:
        return left + value / xticks[-1] * (right - left)

    def y_of(value: float) -> float:
        return bottom - value / yticks[-1] * (bottom - top)

    axes(
        svg,
        (left, right, top, bottom),
        (xticks, yticks),
        (x_of, y_of),
        ("status calls per task", "mean detection lag, s"),
    )
    optimum_line = [(x_of(c), y_of(lag)) for c, lag in data["optimum"]]
    for (x1, y1), (x2, y2) in itertools.pairwise(optimum_line):
        svg.line(x1, y1, x2, y2, colour=COLOURS["optimum"])
    for name in ("fixed", "default"):
        series = [(x_of(c), y_of(lag), interval) for interval, c, lag in data[name]]
        for (x1, y1, _), (x2, y2, _) in itertools.pairwise(series):
            svg.line(x1, y1, x2, y2, colour=COLOURS[name])
        for x, y, interval in series:
            svg.circle(x, y, 5, COLOURS[name])
            if name == "fixed":
                svg.text(x + 8, y - 6, f"{interval:g} s", size=11, colour=MUTED)
    legend = [
        ("fixed(interval)", COLOURS["fixed"]),
        ("default, same interval: as many calls, where tasks finish", COLOURS["default"]),
        ("optimum: the best schedule knowing the true durations", COLOURS["optimum"]),
    ]
    for i, (label, colour) in enumerate(legend):
        y = top + 8 + 20 * i
        svg.rect(right - 330, y - 9, 10, 10, colour)
        svg.text(right - 314, y, label, size=12)
    shape = results["shape"]
    note = (
        f"Task durations lognormal, median {shape['median']:g} s, sigma {shape['sigma']:g}; "
        f"{results['measured']:,} tasks per point, after the first {results['warm_up']:,}."
    )
    svg.text(24, bottom + 72, note, size=12, colour=MUTED)
    return svg.render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_static")
    parser.add_argument("--chart-only", action="store_true", help="redraw from the JSON")
    args = parser.parse_args(argv)
    path = args.out / RESULTS
    if args.chart_only:
        results = json.loads(path.read_text(encoding="utf-8"))
    else:
        results = {
            "shape": {"median": TRADE_SHAPE.median, "sigma": TRADE_SHAPE.sigma},
            "warm_up": WARM_UP,
            "measured": MEASURED,
            "grid": grid(),
            "trade": trade(),
            "steps": steps(),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (args.out / CHART).write_text(chart(results), encoding="utf-8")
    print(table(results["grid"]))
    step = results["steps"]
    print(
        f"\nWith {step['waits']:,} waits in flight, the default policy's calls for one "
        f"answer: mean {step['mean_us']:.1f} us, p99 {step['p99_us']:.1f} us, "
        f"max {step['max_ms']:.1f} ms ({step['calls']:,} answers)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
