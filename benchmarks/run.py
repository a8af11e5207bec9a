"""Benchmarks of starvideos-async against a raw aiohttp loop and an httpx loop.

Usage::

    python benchmarks/run.py                      # every workload, full size
    python benchmarks/run.py --quick              # a smoke run of everything, ~2 minutes
    python benchmarks/run.py throughput --tasks 2000 --repeats 5
    python benchmarks/run.py import scale --scale-tasks 20000
    python benchmarks/run.py shared --shared-tasks 2500 --shared-processes 1,2,4
    nox -s bench -- --quick                       # the same, in a nox venv

The fake service runs in a process of its own (``fake_server.py``); every client run is
a fresh process (``clients.py``); repeats are interleaved in a rotating order (A B C,
B C A, C A B ...); every table gives medians and ratios against the raw aiohttp loop
measured in the same run. Results go to ``benchmarks/results/`` (JSON with every run,
and the Markdown tables). See ``benchmarks/README.md`` for what each number means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redis_server import RedisServer, redis_server

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
WORKLOADS = ("throughput", "polling", "scale", "shared", "import", "instructions")
#: Run when none is named (``instructions`` needs valgrind and is asked for by name).
DEFAULT_WORKLOADS = WORKLOADS[:-1]


# -- processes -----------------------------------------------------------------------


class Fake:
    """The fake service's process and its stdin/stdout command channel."""

    def __init__(self, *args: str) -> None:
        command = [PYTHON, str(HERE / "fake_server.py"), *args]
        self.process = subprocess.Popen(  # noqa: S603 - our own script, no shell
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        hello = self._read()
        self.base_url: str = hello["base_url"]
        self.api_key: str = hello["api_key"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake service exited ({self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write('{"cmd": "quit"}\n')
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def fake_service(*args: str) -> Iterator[Fake]:
    fake = Fake(*args)
    try:
        yield fake
    finally:
        fake.close()


def start_client(spec: dict[str, Any], hash_seed: int | None = None) -> subprocess.Popen[str]:
    """A client process; ``hash_seed`` fixes its ``PYTHONHASHSEED`` (see the README)."""
    command = [PYTHON, str(HERE / "clients.py"), json.dumps(spec)]
    env = None if hash_seed is None else {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)  # noqa: S603


#: Seconds a client run may take before it is killed (a hung wait must not hang the run).
CLIENT_TIMEOUT = 900.0


def finish_client(process: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, _ = process.communicate(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"client run took over {CLIENT_TIMEOUT:g} s: killed") from None
    if process.returncode != 0:
        raise RuntimeError(f"client run failed (exit {process.returncode}): {out[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def measured_run(fake: Fake, spec: dict[str, Any], hash_seed: int | None = None) -> dict[str, Any]:
    """One client process against ``fake``: its own numbers plus the fake's side."""
    before = fake.command("stats")
    load = os.getloadavg()[0]
    result = finish_client(start_client(spec, hash_seed))
    after = fake.command("stats")
    counters = {
        key: after["counters"].get(key, 0) - before["counters"].get(key, 0)
        for key in ("create", "status", "file", "other")
    }
    result["fake"] = {
        "counters": counters,
        "cpu": after["cpu"] - before["cpu"],
        "rss": after["rss"],
    }
    result["loadavg"] = (load, os.getloadavg()[0])
    return result


# -- statistics and tables -----------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return value if isinstance(value, str) else f"{value}"

    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(headers))) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- workload 1: throughput ----------------------------------------------------------


def throughput_spec(args: argparse.Namespace, fake: Fake, kind: str, tasks: int) -> dict[str, Any]:
    """The client spec of a throughput run of ``kind`` (``name`` or ``name+loop``)."""
    name, _, loop = kind.partition("+")
    return {
        "workload": "throughput",
        "kind": name,
        "loop": loop or "asyncio",
        "tasks": tasks,
        "concurrency": args.concurrency,
        "base_url": fake.base_url,
        "api_key": fake.api_key,
    }


def throughput_run(
    args: argparse.Namespace, fake: Fake, kind: str, tasks: int, hash_seed: int | None = None
) -> dict[str, Any]:
    """One throughput run of ``kind`` against ``fake``.

    Checks that it made exactly create + 3 polls per task; adds ``requests``.
    """
    result = measured_run(fake, throughput_spec(args, fake, kind, tasks), hash_seed)
    requests = result["fake"]["counters"]["create"] + result["fake"]["counters"]["status"]
    if requests != 4 * tasks:
        raise RuntimeError(f"{kind}: {requests} requests, expected {4 * tasks}")
    result["requests"] = requests
    return result


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    kinds = args.clients
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    fake_args = ["--mode", "per-poll", "--loop", args.fake_loop]
    with fake_service(*fake_args) as fake:
        for repeat in range(args.repeats):
            # Interleaved, and each repeat starts one client later (A B C, B C A, C A B,
            # ...): no client always runs first or always follows the slow httpx run.
            # Every client of a repeat runs with the same hash seed, a new one per repeat:
            # the seed alone moves a client's CPU per request by up to 15 % here.
            shift = repeat % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                tasks = args.httpx_tasks if kind.partition("+")[0] == "httpx" else args.tasks
                result = throughput_run(args, fake, kind, tasks, hash_seed=repeat + 1)
                requests = result["requests"]
                result.update(
                    hash_seed=repeat + 1,
                    tasks=tasks,
                    rps=requests / result["wall"],
                    cpu_us=result["cpu"] / requests * 1e6,
                    fake_share=result["fake"]["cpu"] / result["wall"],
                    fake_cpu_us=result["fake"]["cpu"] / requests * 1e6,
                    client_share=result["cpu"] / result["wall"],
                )
                runs[kind].append(result)
                log(
                    f"throughput {repeat + 1}/{args.repeats} {kind:>14}: "
                    f"{result['rps']:7.0f} req/s, {result['cpu_us']:6.0f} us CPU/req, "
                    f"fake CPU {result['fake_share']:.0%}, load {result['loadavg'][0]:.1f}"
                )
    summary = {}
    base = runs.get("aiohttp")
    base_rps = median([r["rps"] for r in base]) if base else float("nan")
    base_cpu = median([r["cpu_us"] for r in base]) if base else float("nan")
    for kind, results in runs.items():
        rps = median([r["rps"] for r in results])
        cpu_us = median([r["cpu_us"] for r in results])
        summary[kind] = {
            "tasks": results[0]["tasks"],
            "requests": results[0]["requests"],
            "wall": median([r["wall"] for r in results]),
            "rps": rps,
            "cpu_us": cpu_us,
            "peak_rss_mb": median([r["peak_rss"] for r in results]) / 2**20,
            "fake_share": median([r["fake_share"] for r in results]),
            "fake_share_max": max(r["fake_share"] for r in results),
            "fake_cpu_us": median([r["fake_cpu_us"] for r in results]),
            "client_share": median([r["client_share"] for r in results]),
            "rps_ratio": rps / base_rps,
            "cpu_ratio": cpu_us / base_cpu,
        }
    return {"runs": runs, "summary": summary}


def throughput_table(data: dict[str, Any]) -> str:
    rows = []
    for kind, s in data["summary"].items():
        rows.append(
            (
                kind,
                f"{s['tasks']:,} ({s['requests']:,})",
                f"{s['wall']:.2f}",
                f"{s['rps']:,.0f}",
                f"{s['rps_ratio']:.2f}x",
                f"{s['cpu_us']:,.0f}",
                f"{s['cpu_ratio']:.2f}x",
                f"{s['peak_rss_mb']:.1f}",
                f"{s['client_share']:.0%}",
                f"{s['fake_share']:.0%} (max {s['fake_share_max']:.0%})",
                f"{s['fake_cpu_us']:,.0f}",
            )
        )
    return table(
        (
            "client",
            "tasks (requests)",
            "wall s",
            "requests/s",
            "vs aiohttp",
            "client CPU µs/request",
            "vs aiohttp",
            "peak RSS MB",
            "client CPU share",
            "fake CPU share",
            "fake CPU µs/request",
        ),
        rows,
    )


# -- workload 2: polling efficiency --------------------------------------------------


def _lag_figures(lags: list[float], calls: list[int]) -> dict[str, Any]:
    return {
        "tasks": len(lags),
        "calls_per_task": statistics.fmean(calls),
        "lag_mean": statistics.fmean(lags),
        "lag_p50": percentile(lags, 0.5),
        "lag_p95": percentile(lags, 0.95),
        "lag_max": max(lags),
        "lags": lags,
        "calls": calls,
    }


def polling(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.poll_scale
    median_s, sigma = args.lognormal
    gap = args.poll_spread * scale / args.poll_tasks
    warm_up = args.poll_warmup
    fake_args = [
        "--mode",
        "clock",
        "--time-scale",
        str(scale),
        "--lognormal",
        str(median_s),
        str(sigma),
        "--loop",
        args.fake_loop,
    ]
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in args.policies}
    with fake_service(*fake_args) as fake:
        for repeat in range(args.poll_repeats):
            for policy in args.policies:
                # Paired runs: within a repeat every policy waits on the same tasks (a
                # task's duration follows from its number), so the differences between
                # policies are not the luck of the draw; each repeat draws new ones.
                fake.command("reset", number=repeat * args.poll_tasks)
                spec = {
                    "workload": "polling",
                    "policy": policy,
                    "scale": scale,
                    "tasks": args.poll_tasks,
                    "gap": gap,
                    "concurrency": args.concurrency,
                    "base_url": fake.base_url,
                    "api_key": fake.api_key,
                }
                result = measured_run(fake, spec)
                done = fake.command("completion_times")["times"]
                calls = fake.command("status_counts")["counts"]
                returned, ids = result.pop("returned"), result.pop("ids")
                lags = {i: (returned[i] - done[i]) / scale for i in ids}
                for phase, part in (("learning", ids[:warm_up]), ("learned", ids[warm_up:])):
                    result[phase] = _lag_figures(
                        [lags[i] for i in part], [calls.get(i, 0) for i in part]
                    )
                result["fake_share"] = result["fake"]["cpu"] / result["wall"]
                runs[policy].append(result)
                for phase in ("learning", "learned"):
                    f = result[phase]
                    log(
                        f"polling {repeat + 1}/{args.poll_repeats} {policy:>10} {phase:>8}: "
                        f"{f['calls_per_task']:.2f} calls/task, lag mean {f['lag_mean']:.2f} s, "
                        f"p95 {f['lag_p95']:.2f} s; fake CPU {result['fake_share']:.0%}"
                    )
    # Pooled over the repeats: every measured task counts once (a median of a few
    # 150-task means would throw most of the evidence away).
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for policy, results in runs.items():
        summary[policy] = {}
        for phase in ("learning", "learned"):
            pooled = _lag_figures(
                [lag for r in results for lag in r[phase]["lags"]],
                [c for r in results for c in r[phase]["calls"]],
            )
            del pooled["lags"], pooled["calls"]
            summary[policy][phase] = pooled
    return {
        "runs": runs,
        "summary": summary,
        "scale": scale,
        "spread": args.poll_spread,
        "warm_up": warm_up,
        "lognormal": [median_s, sigma],
    }


def polling_table(data: dict[str, Any]) -> str:
    rows = []
    for phase, label in (("learned", "after"), ("learning", "first")):
        ref = data["summary"].get("fixed:30", {}).get(phase)
        for policy, by_phase in data["summary"].items():
            s = by_phase[phase]
            calls = "" if ref is None else f"{s['calls_per_task'] / ref['calls_per_task']:.2f}x"
            vs = "" if ref is None else f"{s['lag_mean'] / ref['lag_mean'] - 1:+.0%}"
            rows.append(
                (
                    f"{_policy_label(policy)}, {label} {data['warm_up']} tasks",
                    f"{s['calls_per_task']:.2f}",
                    calls,
                    f"{s['lag_mean']:.2f}",
                    vs,
                    f"{s['lag_p50']:.2f}",
                    f"{s['lag_p95']:.2f}",
                    f"{s['lag_max']:.2f}",
                )
            )
    return table(
        (
            "policy, tasks measured",
            "status calls/task",
            "vs fixed(30)",
            "mean lag s",
            "vs fixed(30)",
            "p50 lag s",
            "p95 lag s",
            "max lag s",
        ),
        rows,
    )


def _policy_label(policy: str) -> str:
    if policy.startswith("fixed:"):
        return f"fixed({policy.partition(':')[2]})"
    return "default (adaptive)" if policy == "default" else policy


# -- workload 3: scale ---------------------------------------------------------------


def scale(args: argparse.Namespace) -> dict[str, Any]:
    """The scale workload once per cap of ``--scale-rates``, each on a fake of its own."""
    return {"runs": [scale_at(args, rate) for rate in args.scale_rates]}


def scale_at(args: argparse.Namespace, rate: int | None) -> dict[str, Any]:
    """``--scale-tasks`` waits under ``max_status_rate=rate`` (``None``: no cap), with
    the raw loop's reference and the adjacent throughput runs."""
    n = args.scale_tasks
    cap = "no cap" if rate is None else f"cap {rate}/s"
    fake_args = [
        "--mode",
        "clock",
        "--queued-seconds",
        "0",
        "--processing-seconds",
        "0",
        "--loop",
        args.fake_loop,
    ]
    with fake_service(*fake_args) as fake, tempfile.TemporaryDirectory() as tmp:
        ids = fake.command("create_held", n=n)["ids"]
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(ids), encoding="utf-8")
        before = fake.command("stats")
        spec = {
            "workload": "scale",
            "tasks": n,
            "rate": rate,
            "concurrency": args.concurrency,
            "ids_file": str(ids_file),
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "gc": args.scale_gc,
            "steps": args.scale_steps,
        }
        load = os.getloadavg()[0]
        started = time.monotonic()
        process = start_client(spec)
        released_at = None
        while process.poll() is None:
            time.sleep(0.2)
            if released_at is None:
                stats = fake.command("stats")
                # +1: the client's first retrieve() that opens its session.
                if stats["counters"].get("status", 0) >= n + 1:
                    fake.command("release_all")
                    released_at = time.monotonic() - started
                    log(f"scale, {cap}: first pass over {n:,} tasks done at {released_at:.1f} s")
        result = finish_client(process)
        after = fake.command("stats")
        status_calls = after["counters"].get("status", 0) - before["counters"].get("status", 0)
        peak_window = fake.command("max_in_window", endpoint="status", window=1.0)["max"]
        calls = status_calls - 1  # the warm-up retrieve is outside the measured window
        # The machine drifts over minutes (the throughput section ran long before):
        # each scale run (capped or not) and each raw loop run is paired with an unpaced
        # throughput run of the same client right after it, so that each ratio compares
        # numbers of the same minutes.
        adjacent = {"sdk": adjacent_throughput(args, "sdk")}
        # The reference: a raw aiohttp loop making as many calls at the same pace
        # (without a cap: as fast as it can).
        paced = finish_client(
            start_client(
                {**spec, "workload": "paced", "kind": "aiohttp", "calls": calls, "rate": rate}
            )
        )
        paced["cpu_us_per_call"] = paced["cpu"] / paced["calls"] * 1e6
        adjacent["aiohttp"] = adjacent_throughput(args, "aiohttp")
        log(
            f"scale, {cap}: raw aiohttp loop: {paced['cpu_us_per_call']:.0f} us CPU/call, "
            f"{paced['calls'] / paced['wall']:.0f} calls/s"
        )
    result.update(
        paced=paced,
        adjacent=adjacent,
        tasks=n,
        rate=rate,
        status_calls=calls,
        cpu_us_per_call=result["cpu"] / calls * 1e6,
        rss_per_task=(result["max_sampled_rss"] - result["baseline_rss"]) / n,
        peak_rss_per_task=(result["peak_rss"] - result["baseline_rss"]) / n,
        max_status_in_1s=peak_window,
        released_at=released_at,
        fake_share=(after["cpu"] - before["cpu"]) / result["wall"],
        loadavg=(load, os.getloadavg()[0]),
    )
    log(
        f"scale, {cap}: {result['completed']:,}/{n:,} completed in {result['wall']:.1f} s, "
        f"{calls:,} status calls, {result['cpu_us_per_call']:.0f} us CPU/call, "
        f"{result['rss_per_task']:.0f} B RSS/task, max {peak_window} status calls in 1 s, "
        f"loop probe late p99 {result.get('probe_late_p99', 0) * 1000:.1f} ms, "
        f"max {result.get('probe_late_max', 0) * 1000:.1f} ms"
    )
    return result


def adjacent_throughput(args: argparse.Namespace, kind: str) -> float:
    """One throughput run of ``kind`` (the throughput section's shape): CPU µs/request."""
    with fake_service("--mode", "per-poll", "--loop", args.fake_loop) as fake:
        result = throughput_run(args, fake, kind, args.tasks)
    cpu_us: float = result["cpu"] / result["requests"] * 1e6
    log(f"scale: {kind} throughput run right after its scale run: {cpu_us:.0f} us CPU/req")
    return cpu_us


def scale_table(
    data: dict[str, Any], throughput_cpu_us: float | None, raw_cpu_us: float | None = None
) -> str:
    """One column per cap; the ratios against the throughput section's medians if given."""
    runs: list[dict[str, Any]] = data["runs"]

    def row(label: str, cell: Any) -> tuple[str, ...]:
        return (label, *(cell(run) for run in runs))

    def against(value: float, base: float | None) -> str:
        return f"{value / base:.2f}x ({value / base:.3f})" if base else "(run throughput too)"

    rows = [
        row("tasks awaited at once", lambda r: f"{r['tasks']:,}"),
        row("completed", lambda r: f"{r['completed']:,}"),
        row("wall time", lambda r: f"{r['wall']:.1f} s"),
        row("status calls", lambda r: f"{r['status_calls']:,}"),
        row("status calls per task", lambda r: f"{r['status_calls'] / r['tasks']:.2f}"),
        row(
            "first pass over every task done at",
            lambda r: f"{r['released_at'] or float('nan'):.0f} s",
        ),
        row("client CPU per status call", lambda r: f"{r['cpu_us_per_call']:.0f} µs"),
        row(
            "... vs SDK throughput CPU per request",
            lambda r: against(r["cpu_us_per_call"], throughput_cpu_us),
        ),
        row(
            "SDK throughput CPU per request, run right after the scale run",
            lambda r: f"{r['adjacent']['sdk']:.0f} µs",
        ),
        row(
            "... scale CPU per status call vs it (same minutes)",
            lambda r: against(r["cpu_us_per_call"], r["adjacent"]["sdk"]),
        ),
        row(
            "raw aiohttp loop, as many GETs under the same cap (none: flat out): CPU per call",
            lambda r: f"{r['paced']['cpu_us_per_call']:.0f} µs",
        ),
        row(
            "... vs its throughput CPU per request (the throughput section)",
            lambda r: against(r["paced"]["cpu_us_per_call"], raw_cpu_us),
        ),
        row(
            "... vs its throughput run right after it (same minutes)",
            lambda r: against(r["paced"]["cpu_us_per_call"], r["adjacent"]["aiohttp"]),
        ),
        row(
            "SDK CPU per status call vs the raw loop's under the same cap",
            lambda r: f"{r['cpu_us_per_call'] / r['paced']['cpu_us_per_call']:.2f}x",
        ),
        row(
            "RSS baseline (ids loaded, session open)",
            lambda r: f"{r['baseline_rss'] / 2**20:.1f} MB",
        ),
        row(
            "RSS per awaited task (max sampled - baseline)",
            lambda r: f"{r['rss_per_task']:,.0f} B",
        ),
        row(
            "peak RSS per awaited task (ru_maxrss - baseline)",
            lambda r: f"{r['peak_rss_per_task']:,.0f} B",
        ),
        row(
            "status-rate cap",
            lambda r: "(no cap)" if r["rate"] is None else f"{r['rate']:,} / s",
        ),
        row(
            "most status calls started in any 1 s (client, aiohttp trace)",
            lambda r: f"{r['max_starts_in_1s']:,}",
        ),
        row(
            "most status calls arriving in any 1 s (fake handler)",
            lambda r: f"{r['max_status_in_1s']:,}",
        ),
        row(
            "raw loop: most calls started in any 1 s",
            lambda r: f"{r['paced']['max_starts_in_1s']:,}",
        ),
        row(
            "event loop: a 1 ms probe's lateness, p99 / max",
            lambda r: (
                f"{r.get('probe_late_p99', 0) * 1000:.1f} / "
                f"{r.get('probe_late_max', 0) * 1000:.1f} ms"
            ),
        ),
        row("garbage collector during the waits", lambda r: r.get("gc", "on")),
        row(
            "longest event-loop step (CPU): all / without collector passes / longest pass",
            lambda r: (
                f"{r['longest_step_cpu'] * 1000:.1f} / "
                f"{r['longest_step_cpu_without_gc'] * 1000:.1f} / "
                f"{r['longest_gc_pass_cpu'] * 1000:.1f} ms"
                if "longest_step_cpu" in r
                else "(--scale-steps)"
            ),
        ),
        row("fake CPU share", lambda r: f"{r['fake_share']:.0%}"),
    ]
    headers = ("scale", *("no cap" if r["rate"] is None else f"cap {r['rate']:,}/s" for r in runs))
    return table(headers, rows)


# -- workload 5: several processes sharing limits through Redis ----------------------


def shared_run(
    args: argparse.Namespace, fake: Fake, redis: RedisServer | None, processes: int
) -> dict[str, Any]:
    """``processes`` client processes at once, each ``--shared-tasks`` tasks; with
    ``redis``, every one has a coordinator on it (one shared cap), else its own limits."""
    fake.command("reset")
    before = fake.command("stats")
    info_before = None
    if redis is not None:
        redis.command("CONFIG RESETSTAT")
        info_before = redis.info()
    load = os.getloadavg()[0]
    start_at = time.monotonic() + args.shared_start_delay
    spec = {
        "workload": "shared",
        "tasks": args.shared_tasks,
        "concurrency": args.concurrency,
        "rate": args.shared_rate,
        "start_at": start_at,
        "redis_url": redis.url if redis is not None else None,
        "base_url": fake.base_url,
        "api_key": fake.api_key,
    }
    clients = [finish_client(p) for p in [start_client(spec) for _ in range(processes)]]
    after = fake.command("stats")
    info_after = redis.info() if redis is not None else None
    counters = {
        key: after["counters"].get(key, 0) - before["counters"].get(key, 0)
        for key in ("create", "status")
    }
    requests = counters["create"] + counters["status"]
    expected = 4 * args.shared_tasks * processes
    if requests != expected:
        raise RuntimeError(f"shared x{processes}: {requests} requests, expected {expected}")
    started = min(c["started"] for c in clients)
    wall = max(c["ended"] for c in clients) - started
    cpu = sum(c["cpu"] for c in clients)
    result: dict[str, Any] = {
        "processes": processes,
        "redis": redis is not None,
        "clients": clients,
        "requests": requests,
        "wall": wall,
        "rps": requests / wall,
        "cpu_us": cpu / requests * 1e6,
        "late_max": max(c["late"] for c in clients),
        "max_in_flight": after["max_in_flight"],
        "max_status_in_1s": fake.command("max_in_window", endpoint="status", window=1.0)["max"],
        "fake_share": (after["cpu"] - before["cpu"]) / wall,
        "loadavg": (load, os.getloadavg()[0]),
    }
    if info_before is not None and info_after is not None:
        assert redis is not None
        round_trips, commands = redis.round_trips()
        redis_cpu = sum(
            float(info_after[k]) - float(info_before[k]) for k in ("used_cpu_user", "used_cpu_sys")
        )
        result.update(
            redis_round_trips=round_trips,
            redis_per_request=round_trips / requests,
            redis_commands=commands,
            redis_commands_per_request=commands / requests,
            redis_cpu_us=redis_cpu / requests * 1e6,
            redis_share=redis_cpu / wall,
        )
    return result


def shared(args: argparse.Namespace) -> dict[str, Any]:
    """The single process without Redis (the reference), then N = 1, 2, 4... processes
    with a coordinator; repeats interleaved in a rotating order."""
    kinds: list[tuple[str, int]] = [("local", 1)] + [
        (f"redis x{n}", n) for n in args.shared_processes
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in kinds}
    fake_args = ["--mode", "per-poll", "--loop", args.fake_loop, "--latency"]
    with fake_service(*fake_args, str(args.shared_latency)) as fake, redis_server() as redis:
        for repeat in range(args.shared_repeats):
            shift = repeat % len(kinds)
            for name, n in kinds[shift:] + kinds[:shift]:
                result = shared_run(args, fake, None if name == "local" else redis, n)
                runs[name].append(result)
                log(
                    f"shared {repeat + 1}/{args.shared_repeats} {name:>9}: "
                    f"{result['rps']:6.0f} req/s, {result['cpu_us']:5.0f} us CPU/req, "
                    f"{result.get('redis_per_request', 0):.2f} Redis round trips/req, "
                    f"max in flight {result['max_in_flight']}, max status/s "
                    f"{result['max_status_in_1s']}, fake CPU {result['fake_share']:.0%}, "
                    f"load {result['loadavg'][0]:.1f}"
                )
    base_cpu = median([r["cpu_us"] for r in runs["local"]])
    summary = {}
    for name, results in runs.items():
        cpu_us = median([r["cpu_us"] for r in results])
        summary[name] = {
            "processes": results[0]["processes"],
            "requests": results[0]["requests"],
            "wall": median([r["wall"] for r in results]),
            "rps": median([r["rps"] for r in results]),
            "cpu_us": cpu_us,
            "cpu_ratio": cpu_us / base_cpu,
            "redis_per_request": median([r.get("redis_per_request", 0.0) for r in results]),
            "redis_commands_per_request": median(
                [r.get("redis_commands_per_request", 0.0) for r in results]
            ),
            "redis_cpu_us": median([r.get("redis_cpu_us", 0.0) for r in results]),
            "redis_share": median([r.get("redis_share", 0.0) for r in results]),
            "max_in_flight": max(r["max_in_flight"] for r in results),
            "max_status_in_1s": max(r["max_status_in_1s"] for r in results),
            "fake_share": median([r["fake_share"] for r in results]),
            "late_max": max(r["late_max"] for r in results),
        }
    return {"runs": runs, "summary": summary}


def shared_table(data: dict[str, Any], args: argparse.Namespace) -> str:
    rows = []
    for name, s in data["summary"].items():
        redis = name != "local"
        rows.append(
            (
                "1, no Redis" if not redis else f"{s['processes']}, Redis",
                f"{s['requests']:,}",
                f"{s['wall']:.1f}",
                f"{s['rps']:,.0f}",
                f"{s['cpu_us']:,.0f}",
                f"{s['cpu_ratio']:.2f}x",
                f"{s['redis_per_request']:.2f} ({s['redis_commands_per_request']:.1f})"
                if redis
                else "-",
                f"{s['redis_cpu_us']:,.0f} ({s['redis_share']:.0%})" if redis else "-",
                f"{s['max_in_flight']}",
                f"{s['max_status_in_1s']:,}",
                f"{s['fake_share']:.0%}",
            )
        )
    return table(
        (
            "processes",
            "requests",
            "wall s",
            "requests/s",
            "client CPU µs/request",
            "vs 1, no Redis",
            "Redis round trips/request (commands, scripts' included)",
            "Redis CPU µs/request (share)",
            f"max in flight (cap {args.concurrency})",
            "max status calls in 1 s"
            + ("" if args.shared_rate is None else f" (cap {args.shared_rate:g})"),
            "fake CPU share",
        ),
        rows,
    )


# -- workload 4: import time ---------------------------------------------------------


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


# -- workload 6: instructions per request ---------------------------------------------------

#: Tasks of the two runs whose difference gives the instructions per request (the
#: smaller one takes the process's start, imports and the session's set-up away).
INSTRUCTION_TASKS = (200, 1200)


def instructions_run(fake: Fake, spec: dict[str, Any]) -> int:
    """The instructions one client process executes, counted by valgrind (callgrind).

    Checks, as the throughput runs do, that it made exactly create + 3 polls per task.
    """
    before = fake.command("stats")["counters"]
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        PYTHON,
        str(HERE / "clients.py"),
        json.dumps(spec),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # both runs alike, so start-up cancels out
    out = subprocess.run(  # noqa: S603 - our own script, no shell
        command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=True, env=env
    )
    after = fake.command("stats")["counters"]
    requests = sum(after.get(k, 0) - before.get(k, 0) for k in ("create", "status"))
    if requests != 4 * spec["tasks"]:
        raise RuntimeError(f"{spec['kind']}: {requests} requests, expected {4 * spec['tasks']}")
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-2000:]}")
    return int(found.group(1))


def instructions(args: argparse.Namespace) -> dict[str, Any]:
    """Instructions per request of each client (httpx left out: too slow under valgrind).

    Steady where CPU time is not: the load and the hash seed move it by about 1 %, not 15 %.
    """
    small, large = INSTRUCTION_TASKS
    counts: dict[str, float] = {}
    with fake_service("--mode", "per-poll", "--loop", args.fake_loop) as fake:
        for kind in args.clients:
            if kind.partition("+")[0] == "httpx":
                continue
            runs = [
                instructions_run(fake, throughput_spec(args, fake, kind, n))
                for n in (small, large)
            ]
            counts[kind] = (runs[1] - runs[0]) / (4 * (large - small))
            log(f"instructions {kind:>14}: {counts[kind] / 1000:,.0f}k per request")
    base = counts.get("aiohttp", float("nan"))
    return {
        "tasks": INSTRUCTION_TASKS,
        "summary": {
            kind: {"per_request": count, "ratio": base / count} for kind, count in counts.items()
        },
    }


def instructions_table(data: dict[str, Any]) -> str:
    rows = [
        (
            kind,
            f"{s['per_request'] / 1000:,.0f}k",
            f"{s['ratio']:.2f}x" if s["ratio"] == s["ratio"] else "(run aiohttp too)",
        )
        for kind, s in data["summary"].items()
    ]
    return table(("client", "instructions per request", "aiohttp's / this client's"), rows)


def import_once(
    module: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, tuple[int, int]]]:
    """``python -X importtime -c 'import module'``: (cumulative µs, every module's times)."""
    out = subprocess.run(  # noqa: S603 - our own interpreter, no shell
        [PYTHON, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    modules: dict[str, tuple[int, int]] = {}
    for line in out.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            modules[match.group(4)] = (int(match.group(1)), int(match.group(2)))
    return modules[module][1], modules


def stale_bytecode(package: str) -> list[str]:
    """The package's modules imported at ``import package`` that have no fresh bytecode."""
    code = (
        "import importlib.util, json, os, sys\n"
        f"import {package}\n"
        "stale = []\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        f"    if not (name == {package!r} or name.startswith({package!r} + '.')):\n"
        "        continue\n"
        "    src = getattr(mod, '__file__', None)\n"
        "    if not src or not src.endswith('.py'):\n"
        "        continue\n"
        "    pyc = importlib.util.cache_from_source(src)\n"
        "    if not os.path.exists(pyc) or os.path.getmtime(pyc) < os.path.getmtime(src):\n"
        "        stale.append(name)\n"
        "print(json.dumps(stale))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, no shell
        [PYTHON, "-c", code], capture_output=True, text=True, check=True
    )
    stale: list[str] = json.loads(out.stdout)
    return stale


def import_cpu(code: str) -> float:
    """CPU seconds (user + system) of ``python -c code``, from the children's rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([PYTHON, "-c", code], check=True)  # noqa: S603 - our own interpreter
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def import_time(args: argparse.Namespace) -> dict[str, Any]:
    targets = ("aiohttp", "starvideos_async")
    # Warm the bytecode caches and the page cache. With PYTHONDONTWRITEBYTECODE set (or
    # a package from a source checkout never imported before), every import would
    # compile the SDK from source while aiohttp's bytecode was written by pip at install:
    # an unfair comparison, so the warm-up writes bytecode whatever the environment says.
    writing = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for module in targets:
        import_once(module, env=writing)
    stale = stale_bytecode("starvideos_async")
    if stale:
        log(
            f"import: no bytecode cached for {len(stale)} modules (e.g. {stale[0]}): "
            "the SDK's figures include compiling them"
        )
    times: dict[str, list[int]] = {m: [] for m in targets}
    cpu: dict[str, list[float]] = {m: [] for m in ("pass", *targets)}
    last: dict[str, dict[str, tuple[int, int]]] = {}
    for _ in range(args.import_runs):
        for module in targets:  # interleaved
            total, last[module] = import_once(module)
            times[module].append(total)
        for module in cpu:
            cpu[module].append(import_cpu("pass" if module == "pass" else f"import {module}"))
    aiohttp_us, sdk_us = median(times["aiohttp"]), median(times["starvideos_async"])
    bare = median(cpu["pass"])
    aiohttp_cpu = median(cpu["aiohttp"]) - bare
    sdk_cpu = median(cpu["starvideos_async"]) - bare
    extra = sorted(
        (
            (self_us, name)
            for name, (self_us, _) in last["starvideos_async"].items()
            if name not in last["aiohttp"]
        ),
        reverse=True,
    )
    lazy = ("rich", "sqlite3", "aiosqlite", "starvideos_async._cli", "starvideos_async.testing")
    result = {
        "runs": times,
        "cpu_runs": cpu,
        "aiohttp_ms": aiohttp_us / 1000,
        "sdk_ms": sdk_us / 1000,
        "ratio": sdk_us / aiohttp_us,
        "aiohttp_cpu_ms": aiohttp_cpu * 1000,
        "sdk_cpu_ms": sdk_cpu * 1000,
        "cpu_ratio": sdk_cpu / aiohttp_cpu,
        "top_extra_modules": [(name, us) for us, name in extra[:12]],
        "extra_self_ms": sum(us for us, _ in extra) / 1000,
        "eagerly_imported_lazy_parts": [m for m in lazy if m in last["starvideos_async"]],
        "stale_bytecode": stale,
    }
    log(
        f"import: aiohttp {result['aiohttp_ms']:.1f} ms, starvideos_async "
        f"{result['sdk_ms']:.1f} ms ({result['ratio']:.2f}x); CPU {aiohttp_cpu * 1000:.1f} "
        f"and {sdk_cpu * 1000:.1f} ms ({result['cpu_ratio']:.2f}x)"
    )
    return result


def import_table(data: dict[str, Any]) -> str:
    rows = [
        (
            "`import aiohttp`",
            f"{data['aiohttp_ms']:.1f}",
            "1.00x",
            f"{data['aiohttp_cpu_ms']:.1f}",
            "1.00x",
        ),
        (
            "`import starvideos_async`",
            f"{data['sdk_ms']:.1f}",
            f"{data['ratio']:.2f}x",
            f"{data['sdk_cpu_ms']:.1f}",
            f"{data['cpu_ratio']:.2f}x",
        ),
    ]
    text = table(
        (
            "import",
            "-X importtime cumulative ms",
            "vs aiohttp",
            "process CPU ms (minus `python -c pass`)",
            "vs aiohttp",
        ),
        rows,
    )
    extra = ", ".join(f"`{name}` {us / 1000:.1f}" for name, us in data["top_extra_modules"])
    text += (
        f"\n\nModules the SDK imports beyond aiohttp's (self ms, largest first; "
        f"{data['extra_self_ms']:.1f} ms in all): {extra}."
    )
    eager = data["eagerly_imported_lazy_parts"]
    text += "\n\nCLI, SQLite, rich and the fake: " + (
        "imported eagerly: " + ", ".join(eager) if eager else "not imported (lazy)."
    )
    stale = data.get("stale_bytecode", [])
    text += "\n\nBytecode: " + (
        f"**not cached** for {', '.join(stale)}: those figures include compiling them."
        if stale
        else "cached for every SDK module (as after `pip install`), as for aiohttp."
    )
    return text


# -- main ------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for dist in (
        "starvideos-async",
        "aiohttp",
        "httpx",
        "httpcore",
        "anyio",
        "attrs",
        "cattrs",
        "yarl",
        "multidict",
        "uvloop",
    ):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "-"
    return found


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmarks of starvideos-async (see benchmarks/README.md)."
    )
    p.add_argument("workloads", nargs="*", help=f"any of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run, ~2 minutes")
    p.add_argument("--repeats", type=int, help="throughput repeats per client (default 5)")
    p.add_argument("--tasks", type=int, help="throughput tasks per run (default 5000)")
    p.add_argument("--httpx-tasks", type=int, help="tasks per httpx run (default 250)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument(
        "--clients",
        help="comma-separated throughput clients: sdk, sdk-per-task, aiohttp, httpx, each "
        "optionally +uvloop (default: sdk,aiohttp,httpx)",
    )
    p.add_argument("--fake-loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--poll-tasks", type=int, help="polling: tasks per run (default 600)")
    p.add_argument("--poll-warmup", type=int, help="polling: first tasks, learning (150)")
    p.add_argument("--poll-scale", type=float, help="polling: real s per simulated s (0.05)")
    p.add_argument("--poll-spread", type=float, help="polling: simulated s of arrivals (1200)")
    p.add_argument("--poll-repeats", type=int, help="polling: repeats per policy (default 3)")
    p.add_argument("--lognormal", type=float, nargs=2, default=(90.0, 0.5))
    p.add_argument("--policies", default="default,fixed:30,fixed:1")
    p.add_argument("--scale-tasks", type=int, help="scale: tasks awaited (default 100000)")
    p.add_argument(
        "--scale-rates",
        help="scale: comma-separated max_status_rate values, 'none' for no cap, one run "
        "each (default 1000,2000,none)",
    )
    p.add_argument(
        "--scale-gc",
        choices=("on", "off", "freeze"),
        default="on",
        help="scale: the garbage collector during the waits: on, off, or gc.freeze() once "
        "every wait has started (tells its pauses from the SDK's steps)",
    )
    p.add_argument(
        "--scale-steps",
        action="store_true",
        help="scale: time each event-loop step (CPU), the collector's passes apart",
    )
    p.add_argument("--shared-tasks", type=int, help="shared: tasks per process (default 2500)")
    p.add_argument(
        "--shared-processes",
        default="1,2,4",
        help="shared: comma-separated process counts, one run each with Redis (default 1,2,4)",
    )
    p.add_argument(
        "--shared-rate", type=float, help="shared: max_status_rate of every client (default none)"
    )
    p.add_argument("--shared-repeats", type=int, help="shared: repeats of each (default 3)")
    p.add_argument(
        "--shared-latency",
        type=float,
        default=0.005,
        help="shared: seconds each answer of the fake takes (default 0.005; with none, "
        "the fake handles one request at a time and nothing is ever in flight at once)",
    )
    p.add_argument(
        "--shared-start-delay",
        type=float,
        default=3.0,
        help="shared: seconds from starting the processes to their common start (imports)",
    )
    p.add_argument("--import-runs", type=int, help="import: runs per module (default 15)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "repeats": 2 if quick else 5,
        "tasks": 500 if quick else 5000,
        "httpx_tasks": 100 if quick else 250,
        "poll_tasks": 60 if quick else 600,
        "poll_warmup": 20 if quick else 150,
        "poll_spread": 120.0 if quick else 1200.0,
        "poll_scale": 0.02 if quick else 0.05,
        "poll_repeats": 1 if quick else 3,
        "scale_tasks": 5000 if quick else 100_000,
        "scale_rates": "1000,2000,none",
        "import_runs": 5 if quick else 15,
        "shared_tasks": 500 if quick else 2500,
        "shared_repeats": 1 if quick else 3,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.clients = (args.clients or "sdk,aiohttp,httpx").split(",")
    args.policies = args.policies.split(",")
    try:
        args.scale_rates = [
            None if rate.strip().lower() == "none" else int(rate)
            for rate in args.scale_rates.split(",")
        ]
    except ValueError:
        p.error(f"--scale-rates: integers or 'none', not {args.scale_rates!r}")
    if any(rate is not None and rate <= 0 for rate in args.scale_rates):
        p.error(f"--scale-rates: caps must be positive, not {args.scale_rates!r}")
    args.workloads = args.workloads or list(DEFAULT_WORKLOADS)
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    try:
        args.shared_processes = [int(n) for n in args.shared_processes.split(",")]
    except ValueError:
        p.error(f"--shared-processes: integers, not {args.shared_processes!r}")
    if any(n < 1 for n in args.shared_processes):
        p.error(f"--shared-processes: at least 1, not {args.shared_processes!r}")
    if "instructions" in args.workloads and shutil.which("valgrind") is None:
        p.error("the instructions workload needs valgrind on PATH (apt-get install valgrind)")
    if "shared" in args.workloads and shutil.which("redis-server") is None:
        p.error("the shared workload needs redis-server on PATH (apt-get install redis-server)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "versions": versions(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    sections = [
        f"Run {report['date']} on {report['machine']['cpu']} "
        f"({report['machine']['cores']} cores), Python {report['versions']['python']}, "
        f"load average at start {report['machine']['loadavg_at_start'][0]:.2f}.",
        "Command: `" + report["command"] + "`",
    ]
    if "throughput" in args.workloads:
        report["throughput"] = throughput(args)
        sections.append(
            f"### Throughput ({args.tasks:,} tasks x (create + 3 polls), concurrency "
            f"{args.concurrency}, medians of {args.repeats})\n\n"
            + throughput_table(report["throughput"])
        )
    if "polling" in args.workloads:
        report["polling"] = polling(args)
        sections.append(
            f"### Polling efficiency (lognormal median {args.lognormal[0]:g} s, sigma "
            f"{args.lognormal[1]:g}; {args.poll_tasks} tasks arriving over "
            f"{args.poll_spread:g} s, the first {args.poll_warmup} while the policy learns; "
            f"time scale {args.poll_scale:g}; simulated seconds; {args.poll_repeats} "
            "paired repeats, pooled)\n\n" + polling_table(report["polling"])
        )
    if "scale" in args.workloads:
        report["scale"] = scale(args)
        summary = report.get("throughput", {}).get("summary", {})
        sdk, raw = summary.get("sdk"), summary.get("aiohttp")
        sections.append(
            "### Scale\n\n"
            + scale_table(
                report["scale"], sdk["cpu_us"] if sdk else None, raw["cpu_us"] if raw else None
            )
        )
    if "shared" in args.workloads:
        report["shared"] = shared(args)
        rate = "none" if args.shared_rate is None else f"{args.shared_rate:g}/s"
        sections.append(
            f"### Several processes on one key ({args.shared_tasks:,} tasks x (create + 3 "
            f"polls) per process, max_concurrency {args.concurrency} and max_status_rate "
            f"{rate} shared through Redis; fake latency {args.shared_latency * 1000:g} ms; "
            f"medians of {args.shared_repeats})\n\n" + shared_table(report["shared"], args)
        )
    if "instructions" in args.workloads:
        report["instructions"] = instructions(args)
        small, large = INSTRUCTION_TASKS
        sections.append(
            f"### Instructions per request (valgrind; runs of {large:,} minus {small:,} "
            f"tasks x (create + 3 polls), concurrency {args.concurrency})\n\n"
            + instructions_table(report["instructions"])
        )
    if "import" in args.workloads:
        report["import"] = import_time(args)
        sections.append(
            f"### Import time (medians of {args.import_runs}, interleaved)\n\n"
            + import_table(report["import"])
        )
    report["loadavg_at_end"] = os.getloadavg()
    markdown = "\n\n".join(sections) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(report, indent=1), "utf-8")
    (args.out / f"bench-{stamp}.md").write_text(markdown, "utf-8")
    print(markdown)
    log(f"results: {args.out / f'bench-{stamp}.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
