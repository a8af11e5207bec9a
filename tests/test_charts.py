"""``benchmarks/charts.py``: SVG charts from a results file of ``benchmarks/run.py``.

The charts are drawn from a small synthetic results file; each must be well-formed SVG
and print the figures it is drawn from. The committed charts of the performance page
must be what the committed results file gives.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "docs" / "_static"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def charts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_charts", ROOT / "benchmarks/charts.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _phase(calls: float, lag: float) -> dict[str, float]:
    return {
        "tasks": 450,
        "calls_per_task": calls,
        "lag_mean": lag,
        "lag_p50": lag,
        "lag_p95": 2 * lag,
        "lag_max": 3 * lag,
    }


def _client(rps: float, cpu: float, base: tuple[float, float]) -> dict[str, float]:
    return {
        "tasks": 2000,
        "requests": 8000,
        "rps": rps,
        "cpu_us": cpu,
        "rps_ratio": rps / base[0],
        "cpu_ratio": cpu / base[1],
    }


RESULTS: dict[str, Any] = {
    "date": "2026-01-01T00:00:00+00:00",
    "command": "python benchmarks/run.py",
    "machine": {"cpu": "test", "cores": 2, "loadavg_at_start": [0.5, 0.5, 0.5]},
    "versions": {"python": "3.11.0"},
    "settings": {"tasks": 2000, "httpx_tasks": 250, "repeats": 3, "concurrency": 64},
    "throughput": {
        "runs": {"sdk": [{"rps": 1.0}] * 4},
        "summary": {
            "sdk": _client(8412.0, 118.0, (9650.0, 104.0)),
            "aiohttp": _client(9650.0, 104.0, (9650.0, 104.0)),
            "httpx": _client(342.0, 2890.0, (9650.0, 104.0)),
        },
    },
    "polling": {
        "warm_up": 150,
        "lognormal": [90.0, 0.5],
        "summary": {
            "default": {"learning": _phase(4.1, 12.0), "learned": _phase(3.77, 10.7)},
            "fixed:30": {"learning": _phase(3.9, 15.0), "learned": _phase(3.86, 15.2)},
            "fixed:1": {"learning": _phase(95.0, 0.6), "learned": _phase(96.4, 0.55)},
        },
    },
    "scale": {
        "runs": [
            {
                "tasks": 100_000,
                "rate": None,
                "rss_per_task": 1374.0,
                "baseline_rss": 49_500_000,
                "cpu_us_per_call": 332.0,
                "probe_late_p99": 0.0046,
                "probe_late_max": 0.35,
                "lateness": [0.001] * 50,
            }
        ]
    },
}


def _texts(path: Path) -> str:
    root = ET.parse(path).getroot()  # noqa: S314 - the charts this test just wrote
    assert root.tag == f"{SVG}svg"
    return " ".join(node.text or "" for node in root.iter(f"{SVG}text"))


def test_each_chart_is_svg_with_its_figures(charts: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(RESULTS), encoding="utf-8")
    out = tmp_path / "svg"

    assert charts.main([str(results), "--out", str(out)]) == 0

    assert sorted(p.name for p in out.iterdir()) == ["memory.svg", "polling.svg", "throughput.svg"]
    throughput = _texts(out / "throughput.svg")
    for figure in (
        "8,412/s",
        "9,650/s",
        "342/s",
        "0.87\N{MULTIPLICATION SIGN} aiohttp",
        "118 µs",
        "2,890 µs",
    ):
        assert figure in throughput
    polling = _texts(out / "polling.svg")
    for figure in ("default (adaptive)", "3.77 calls, 10.7 s", "fixed(30)", "96.40 calls"):
        assert figure in polling
    assert "1,374 B" in _texts(out / "memory.svg")


def test_a_missing_workload_is_skipped(charts: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    results.write_text(json.dumps({**RESULTS, "polling": None, "scale": None}), "utf-8")

    assert charts.main([str(results), "--out", str(tmp_path)]) == 0

    assert sorted(p.name for p in tmp_path.glob("*.svg")) == ["throughput.svg"]


def test_summary_merges_runs_and_draws_the_same_charts(charts: ModuleType, tmp_path: Path) -> None:
    short = {k: v for k, v in RESULTS.items() if k != "scale"}
    long = {k: v for k, v in RESULTS.items() if k not in ("throughput", "polling")}
    long["command"] = "python benchmarks/run.py scale"
    paths = []
    for name, report in (("short.json", short), ("long.json", long)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(report), encoding="utf-8")
    summary = tmp_path / "summary.json"

    charts.main([*map(str, paths), "--out", str(tmp_path / "a"), "--summary", str(summary)])
    charts.main([str(summary), "--out", str(tmp_path / "b")])

    merged = json.loads(summary.read_text(encoding="utf-8"))
    assert merged["scale"]["source"]["command"] == "python benchmarks/run.py scale"
    assert "runs" not in merged["throughput"]
    assert "lateness" not in merged["scale"]["runs"][0]  # samples are left out
    for name in ("throughput.svg", "polling.svg", "memory.svg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_committed_charts_are_drawn_from_the_committed_results(
    charts: ModuleType, tmp_path: Path
) -> None:
    results = STATIC / "benchmark-results.json"
    if not results.exists():
        pytest.skip("no committed results")

    charts.main([str(results), "--out", str(tmp_path)])

    for chart in tmp_path.glob("*.svg"):
        assert chart.read_bytes() == (STATIC / chart.name).read_bytes(), chart.name


def test_the_committed_policy_chart_is_drawn_from_the_committed_grid(tmp_path: Path) -> None:
    """``benchmarks/policy_grid.py --chart-only`` redraws ``policy-trade.svg`` as committed;
    and the figures the performance page quotes from it are the ones in the file."""
    script = ROOT / "benchmarks" / "policy_grid.py"
    spec = importlib.util.spec_from_file_location("policy_grid", script)
    assert spec is not None
    assert spec.loader is not None
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    results = json.loads((STATIC / "policy-grid.json").read_text(encoding="utf-8"))
    (tmp_path / "policy-grid.json").write_text(json.dumps(results), encoding="utf-8")

    grid.main(["--chart-only", "--out", str(tmp_path)])

    drawn = (tmp_path / "policy-trade.svg").read_text(encoding="utf-8")
    assert drawn == (STATIC / "policy-trade.svg").read_text(encoding="utf-8")
    ET.fromstring(drawn)  # noqa: S314 - the chart this test just drew
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert grid.table(results["grid"]) in page
