"""Charts of a benchmark run, as SVG files: ``python benchmarks/charts.py RESULTS.json``.

Reads a results file written by ``run.py`` (``benchmarks/results/bench-<time>.json``, or
the summary that ``--summary`` writes) and draws, for each workload the file holds:

- ``throughput.svg``: requests per second and client CPU per request of the SDK, the
  hand-written aiohttp loop and the httpx loop (and any other client of the run);
- ``polling.svg``: status calls per task against mean detection lag, one point per poll
  policy (the tasks measured after the default policy's learning phase);
- ``memory.svg``: memory per awaited task in the scale workload, one bar per status-rate
  cap.

A chart whose workload is missing from the file is skipped. Usage::

    python benchmarks/charts.py RESULTS.json [MORE.json ...] [--out DIR] [--summary FILE]

``--out`` is the folder of the SVG files (default: ``docs/_static``). With several
results files, each workload is taken from the first file that holds it, so a short run
of ``throughput polling import`` and a long run of ``scale`` make one set of charts.
``--summary FILE`` also writes the figures the charts and the performance page use (the
medians and summaries, without the individual runs) as one JSON file; the charts drawn
from that file are the same. The SVG files are hand-written (no plotting library), with
a white background so that they read on light and dark pages alike, and the same input
always gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "_static"
WORKLOADS = ("throughput", "polling", "scale", "import", "instructions")

TIMES = "\N{MULTIPLICATION SIGN}"
FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d0d7de"
SDK = "#2f6db5"
OTHER = "#8c959f"
POLICY_COLOURS = {"default": "#2f6db5", "fixed:30": "#d4762c"}


# -- reading and summarising -------------------------------------------------------------


def load(paths: Sequence[Path]) -> dict[str, Any]:
    """One report from one or more results files: each workload from the first holding it.

    Each workload keeps where it came from (``source``: date and command of its run) and
    the settings of that run, so a merged report says how each figure was measured.
    """
    merged: dict[str, Any] = {}
    for path in paths:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        for key in ("machine", "versions"):
            if key in report:
                merged.setdefault(key, report[key])
        for workload in WORKLOADS:
            if report.get(workload) and workload not in merged:
                section = dict(report[workload])
                section.setdefault(
                    "source",
                    {
                        "date": report.get("date"),
                        "command": report.get("command"),
                        "loadavg_at_start": report.get("machine", {}).get("loadavg_at_start"),
                    },
                )
                section.setdefault("settings", report.get("settings", {}))
                merged[workload] = section
    return merged


def _prune(value: Any) -> Any:
    """Drop lists of samples (anything longer than three items); round floats."""
    if isinstance(value, dict):
        return {
            k: _prune(v)
            for k, v in value.items()
            if not (isinstance(v, list) and len(v) > 3 and k != "policies")
        }
    if isinstance(value, list | tuple):
        return [_prune(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return value


def _without_out(command: str | None) -> str | None:
    """The command without ``--out DIR``: where a run wrote its files is no result."""
    if not command:
        return command
    words, kept = command.split(), []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--out":
            skip = True
        elif not word.startswith("--out="):
            kept.append(word)
    return " ".join(kept)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the charts and the performance page need, without individual runs."""
    summary: dict[str, Any] = {
        "about": "Summary of benchmark runs of benchmarks/run.py, written by "
        "benchmarks/charts.py --summary: medians and pooled figures, not every sample.",
    }
    for key in ("machine", "versions"):
        if key in report:
            summary[key] = report[key]
    for workload in WORKLOADS:
        if workload not in report:
            continue
        section = {k: v for k, v in report[workload].items() if k not in ("cpu_runs",)}
        if workload != "scale":
            section.pop("runs", None)
        section["settings"] = _relevant_settings(workload, section.get("settings", {}))
        if "source" in section:
            source = dict(section["source"])
            source["command"] = _without_out(source.get("command"))
            section["source"] = source
        summary[workload] = _prune(section)
    return summary


def _relevant_settings(workload: str, settings: dict[str, Any]) -> dict[str, Any]:
    names = {
        "throughput": ("tasks", "httpx_tasks", "repeats", "concurrency", "clients", "fake_loop"),
        "polling": (
            "poll_tasks",
            "poll_warmup",
            "poll_repeats",
            "poll_scale",
            "poll_spread",
            "lognormal",
            "policies",
            "concurrency",
        ),
        "scale": ("scale_tasks", "scale_rates", "concurrency", "tasks"),
        "import": ("import_runs",),
        "instructions": ("concurrency", "clients"),
    }[workload]
    return {name: settings[name] for name in names if name in settings}


# -- SVG -------------------------------------------------------------------------------


class Svg:
    """A few SVG elements, written out in the order they were added."""

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height, self.title = width, height, title
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, **extra: str) -> None:
        attrs = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in extra.items())
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
            f'fill="{fill}"{attrs}/>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str = GRID) -> None:
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{colour}" stroke-width="1"/>'
        )

    def circle(self, x: float, y: float, r: float, fill: str) -> None:
        self.parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" '
            'stroke="#ffffff" stroke-width="1.5"/>'
        )

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        size: int = 13,
        anchor: str = "start",
        colour: str = INK,
        bold: bool = False,
        rotate: bool = False,
    ) -> None:
        attrs = f' text-anchor="{anchor}"' if anchor != "start" else ""
        if bold:
            attrs += ' font-weight="600"'
        if rotate:
            attrs += f' transform="rotate(-90 {x:.1f} {y:.1f})"'
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{colour}"{attrs}>'
            f"{escape(content)}</text>"
        )

    def render(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'font-family="{FONT}">\n<title>{escape(self.title)}</title>\n'
            f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


def _client_label(kind: str) -> str:
    name, _, loop = kind.partition("+")
    label = {
        "sdk": "starvideos-async",
        "sdk-per-task": "SDK, task.wait() each",
        "sdk-direct": "SDK, retrieve() loop",
        "aiohttp": "aiohttp loop",
        "httpx": "httpx loop",
    }.get(name, name)
    return f"{label} (uvloop)" if loop else label


def _policy_label(policy: str) -> str:
    if policy.startswith("fixed:"):
        return f"fixed({policy.partition(':')[2]})"
    return "default (adaptive)" if policy == "default" else policy


def _bars(
    svg: Svg,
    top: float,
    heading: str,
    rows: Iterable[tuple[str, float, str, str]],
    *,
    label_width: float = 170,
    bar_width: float = 360,
) -> float:
    """Horizontal bars under ``heading``: (label, value, text after the bar, colour).

    Returns the y just below the last bar.
    """
    rows = list(rows)
    svg.text(24, top, heading, size=14, bold=True)
    most = max((value for _, value, _, _ in rows), default=0) or 1
    y = top + 14
    left = 24 + label_width
    for label, value, after, colour in rows:
        width = bar_width * value / most
        svg.text(left - 10, y + 17, label, anchor="end")
        svg.rect(left, y + 3, width, 20, colour, rx="2")
        svg.text(left + width + 8, y + 17, after)
        y += 30
    svg.line(left, top + 14, left, y, colour=MUTED)
    return y


# -- the charts ------------------------------------------------------------------------


def throughput_chart(report: dict[str, Any]) -> str | None:
    data = report.get("throughput")
    if not data or not data.get("summary"):
        return None
    summary: dict[str, dict[str, Any]] = data["summary"]
    settings = data.get("settings", {})
    has_base = "aiohttp" in summary
    svg = Svg(760, 120 + 60 * 2 + 60 * len(summary), "Throughput: the SDK against raw loops")
    svg.text(
        24, 30, "Throughput against a hand-written aiohttp loop and httpx", size=16, bold=True
    )

    def colour(kind: str) -> str:
        return SDK if kind.startswith("sdk") else OTHER

    def vs(ratio: Any) -> str:
        return f"  ({ratio:.2f}{TIMES} aiohttp)" if has_base and isinstance(ratio, float) else ""

    y = _bars(
        svg,
        62,
        "Requests per second (higher is better)",
        (
            (_client_label(k), s["rps"], f"{s['rps']:,.0f}/s{vs(s.get('rps_ratio'))}", colour(k))
            for k, s in summary.items()
        ),
    )
    y = _bars(
        svg,
        y + 30,
        "Client CPU per request, µs (lower is better)",
        (
            (
                _client_label(k),
                s["cpu_us"],
                f"{s['cpu_us']:,.0f} µs{vs(s.get('cpu_ratio'))}",
                colour(k),
            )
            for k, s in summary.items()
        ),
    )
    tasks = settings.get("tasks") or next(iter(summary.values()))["tasks"]
    note = (
        f"Each task: 1 create + 3 status calls; {tasks:,} tasks per run"
        + (f" ({settings['httpx_tasks']:,} for httpx)" if "httpx" in summary else "")
        + f", {settings.get('concurrency', 64)} in flight"
        + (f"; medians of {settings['repeats']} runs." if "repeats" in settings else ".")
    )
    svg.text(24, y + 26, note, size=12, colour=MUTED)
    svg.height = int(y + 44)
    return svg.render()


def _nice_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks of a log axis, from the last at or below ``low`` to the first at or
    above ``high``."""
    exponent = math.floor(math.log10(low))
    series = [m * 10.0**e for e in range(exponent, exponent + 12) for m in (1, 2, 5)]
    first = max(i for i, tick in enumerate(series) if tick <= low * (1 + 1e-9))
    last = min(i for i, tick in enumerate(series) if tick >= high * (1 - 1e-9))
    return series[first : last + 1]


def _linear_ticks(high: float) -> list[float]:
    step = 10 ** math.floor(math.log10(high / 4)) if high > 0 else 1
    for factor in (1, 2, 5, 10):
        if high / (step * factor) <= 6:
            step *= factor
            break
    count = math.ceil(high / step - 1e-9)
    return [step * i for i in range(count + 1)]


def axes(
    svg: Svg,
    box: tuple[float, float, float, float],
    ticks: tuple[list[float], list[float]],
    place: tuple[Callable[[float], float], Callable[[float], float]],
    labels: tuple[str, str],
) -> None:
    """Grid lines at the ticks, tick labels, the two axes and their labels.

    ``box`` is ``(left, right, top, bottom)``; ``place`` maps an x and a y value to the
    drawing; ``ticks`` and ``labels`` are x's then y's.
    """
    (left, right, top, bottom), (xticks, yticks), (x_of, y_of) = box, ticks, place
    for tick in xticks:
        svg.line(x_of(tick), top, x_of(tick), bottom)
        svg.text(x_of(tick), bottom + 18, f"{tick:g}", anchor="middle", colour=MUTED)
    for tick in yticks:
        svg.line(left, y_of(tick), right, y_of(tick))
        svg.text(left - 8, y_of(tick) + 4, f"{tick:g}", anchor="end", colour=MUTED)
    svg.line(left, bottom, right, bottom, colour=MUTED)
    svg.line(left, top, left, bottom, colour=MUTED)
    svg.text((left + right) / 2, bottom + 40, labels[0], anchor="middle")
    svg.text(30, (top + bottom) / 2, labels[1], anchor="middle", rotate=True)


def polling_chart(report: dict[str, Any]) -> str | None:
    data = report.get("polling")
    if not data or not data.get("summary"):
        return None
    phase = "learned"
    points = [
        (policy, figures.get(phase) or figures.get("learning"))
        for policy, figures in data["summary"].items()
    ]
    points = [(p, f) for p, f in points if f and f.get("tasks")]
    if not points:
        return None
    svg = Svg(760, 470, "Polling: status calls per task against detection lag")
    svg.text(24, 30, "Polling: status calls per task against detection lag", size=16, bold=True)
    left, right, top, bottom = 90.0, 700.0, 60.0, 380.0
    calls = [f["calls_per_task"] for _, f in points]
    lags = [f["lag_mean"] for _, f in points]
    xticks = _nice_ticks(min(calls), max(calls))
    yticks = _linear_ticks(max(lags) * 1.1)
    lx0, lx1 = math.log10(xticks[0]), math.log10(xticks[-1])

    def x_of(value: float) -> float:
        return left + (math.log10(value) - lx0) / (lx1 - lx0) * (right - left)

    def y_of(value: float) -> float:
        return bottom - value / yticks[-1] * (bottom - top)

    axes(
        svg,
        (left, right, top, bottom),
        (xticks, yticks),
        (x_of, y_of),
        (
            "status calls per task (log scale; fewer is cheaper)",
            "mean detection lag, s (lower is sooner)",
        ),
    )
    for policy, f in points:
        x, y = x_of(f["calls_per_task"]), y_of(f["lag_mean"])
        colour = POLICY_COLOURS.get(policy, OTHER)
        svg.circle(x, y, 7, colour)
        side, anchor = (12, "start") if x < right - 200 else (-12, "end")
        # Two lines of label beside the point; above it when the point sits on the axis.
        first = y - 4 if y < bottom - 24 else y - 26
        lag = f["lag_mean"]
        svg.text(x + side, first, _policy_label(policy), anchor=anchor, bold=True)
        svg.text(
            x + side,
            first + 17,
            f"{f['calls_per_task']:.2f} calls, {lag:.{1 if lag >= 10 else 2}f} s mean lag",
            anchor=anchor,
            colour=MUTED,
        )
    settings = data.get("settings", {})
    median_s, sigma = data.get("lognormal") or settings.get("lognormal") or (90, 0.5)
    measured = points[0][1]["tasks"]
    warm_up = data.get("warm_up", settings.get("poll_warmup"))
    note = f"Task durations lognormal, median {median_s:g} s, sigma {sigma:g}; {measured:,} tasks"
    note += f" per policy, after the first {warm_up:,}." if warm_up else " per policy."
    svg.text(24, bottom + 72, note, size=12, colour=MUTED)
    return svg.render()


def memory_chart(report: dict[str, Any]) -> str | None:
    data = report.get("scale")
    runs = [r for r in (data or {}).get("runs", []) if r.get("rss_per_task") is not None]
    if not runs:
        return None
    svg = Svg(760, 120 + 30 * len(runs), "Memory per awaited task")
    tasks = runs[0]["tasks"]
    svg.text(24, 30, f"Memory per awaited task, {tasks:,} waits at once", size=16, bold=True)
    rows = []
    for run in runs:
        cap = "no status-rate cap" if run["rate"] is None else f"cap {run['rate']:,}/s"
        total = run["rss_per_task"] * run["tasks"] / 2**20
        rows.append(
            (
                cap,
                run["rss_per_task"],
                f"{run['rss_per_task']:,.0f} B  ({total:,.0f} MB in all)",
                SDK,
            )
        )
    y = _bars(svg, 62, "Resident memory per wait, bytes (lower is better)", rows)
    baseline = runs[0].get("baseline_rss")
    note = "Highest RSS while waiting, minus the process's RSS before the waits"
    note += f" ({baseline / 2**20:,.0f} MB)." if baseline else "."
    svg.text(24, y + 26, note, size=12, colour=MUTED)
    svg.height = int(y + 44)
    return svg.render()


CHARTS = {
    "throughput.svg": throughput_chart,
    "polling.svg": polling_chart,
    "memory.svg": memory_chart,
}


def write_charts(report: dict[str, Any], out: Path) -> list[Path]:
    """Write every chart the report has data for into ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        content = draw(report)
        if content is None:
            continue
        path = out / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def headline(report: dict[str, Any]) -> str:
    """The key figures as a few lines of text."""
    lines = []
    for kind, s in report.get("throughput", {}).get("summary", {}).items():
        lines.append(
            f"throughput {kind}: {s['rps']:,.0f} req/s ({s['rps_ratio']:.2f}x aiohttp), "
            f"{s['cpu_us']:,.0f} us CPU/request ({s['cpu_ratio']:.2f}x)"
        )
    for policy, by_phase in report.get("polling", {}).get("summary", {}).items():
        f = by_phase.get("learned") or by_phase.get("learning")
        lines.append(
            f"polling {policy}: {f['calls_per_task']:.2f} calls/task, lag mean "
            f"{f['lag_mean']:.2f} s, p95 {f['lag_p95']:.2f} s"
        )
    lines.extend(
        f"scale {run['tasks']:,} waits, cap {run['rate']}: {run['rss_per_task']:,.0f} B/wait, "
        f"{run['cpu_us_per_call']:.0f} us CPU/status call, probe late p99 "
        f"{run.get('probe_late_p99', 0) * 1000:.1f} ms, max "
        f"{run.get('probe_late_max', 0) * 1000:.1f} ms"
        for run in report.get("scale", {}).get("runs", [])
    )
    imp = report.get("import")
    if imp:
        lines.append(
            f"import: aiohttp {imp['aiohttp_ms']:.0f} ms, SDK {imp['sdk_ms']:.0f} ms "
            f"({imp['ratio']:.2f}x)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SVG charts of benchmark results.")
    parser.add_argument("results", nargs="+", type=Path, help="results JSON of run.py")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the SVGs")
    parser.add_argument("--summary", type=Path, help="also write the summary JSON here")
    args = parser.parse_args(argv)
    report = load(args.results)
    if args.summary:
        report = summarize(report)
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"summary: {args.summary}")
    written = write_charts(report, args.out)
    for path in written:
        print(f"chart: {path}")
    if not written:
        print("no chart: the results hold none of throughput, polling, scale", file=sys.stderr)
        return 1
    print(headline(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
