"""The fake StarVideos service in a process of its own, driven over stdin/stdout.

Started by ``run.py``; not meant to be run by hand (but ``python benchmarks/fake_server.py
--mode per-poll`` works and prints its port). On start it prints one JSON line
``{"base_url": ..., "pid": ...}``; then it reads one JSON command per line on stdin and
answers one JSON line on stdout:

- ``{"cmd": "stats"}``: request counters, peak in-flight, tasks held, and this
  process's CPU seconds (``resource.getrusage``) and RSS, so that the parent can compute
  the fake's CPU share over a client run.
- ``{"cmd": "reset", "number": N}``: forget counters, arrival times and tasks; with
  ``number``, number the next tasks from N (a task's duration follows from its number).
- ``{"cmd": "create_held", "n": N}``: create N tasks that stay ``processing`` until
  released; answers their ids.
- ``{"cmd": "release_all"}``: let every held task finish (its timeline has run out, so
  the next query answers ``completed``).
- ``{"cmd": "max_in_window", "endpoint": "status", "window": 1.0}``: the most requests
  seen in any window (the rate-cap check).
- ``{"cmd": "status_counts"}``: status queries received, per task id.
- ``{"cmd": "completion_times"}``: for every task, the ``time.monotonic()`` moment its
  timeline reaches a terminal status (the clock is system-wide, so the client process
  can subtract it from its own ``time.monotonic()`` readings).
- ``{"cmd": "quit"}``.

Modes:

- ``per-poll``: every status query moves its task one step, queued -> processing ->
  completed, whatever the clock says. A client that polls until a terminal status
  therefore makes exactly three status calls per task, with any poll interval.
- ``clock``: the fake's own clock; ``--lognormal MEDIAN SIGMA`` draws each task's total
  duration (simulated seconds) and ``--time-scale`` sets real seconds per simulated one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import sys
import time
from collections import Counter
from typing import Any

from starvideos_async.testing import FakeStarVideos

_NEXT_STEP = {None: "queued", "queued": "processing", "processing": "completed"}


class BenchFake(FakeStarVideos):
    """The fake, counting status queries per task; optionally one step per query.

    With ``per_poll=True`` each status query moves its task one step: queued,
    processing, completed. The public fake has neither a per-task query count nor an
    "advance per query" timeline, so this hooks the one private method that answers a
    status query (``_status_reply``); it pins the status with the field ``set_status()``
    uses.
    """

    def __init__(self, *, per_poll: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.per_poll = per_poll
        #: Status queries received, per task id.
        self.status_counts: Counter[str] = Counter()

    def _status_reply(self, request: Any, task_id: str) -> Any:
        self.status_counts[task_id] += 1
        if self.per_poll:
            task = self.tasks.get(task_id)
            if task is not None:
                task.pinned_status = _NEXT_STEP.get(task.pinned_status, task.pinned_status)
        return super()._status_reply(request, task_id)


def _lognormal_sampler(median: float, sigma: float, queued_share: float) -> Any:
    mu = math.log(median)

    def sample(rng: Any, _request: Any) -> tuple[float, float]:
        total = rng.lognormvariate(mu, sigma)
        return total * queued_share, total * (1.0 - queued_share)

    return sample


def _build(args: argparse.Namespace) -> BenchFake:
    common: dict[str, Any] = {
        "record_requests": False,
        "latency": args.latency,
        "seed": args.seed,
        "video_size": 1024,
    }
    if args.mode == "per-poll":
        # The clock plays no part; a long timeline keeps it out of the way.
        return BenchFake(
            per_poll=True, time_scale=1.0, queued_seconds=1e9, processing_seconds=1e9, **common
        )
    sampler = None
    if args.lognormal is not None:
        median, sigma = args.lognormal
        sampler = _lognormal_sampler(median, sigma, args.queued_share)
    return BenchFake(
        time_scale=args.time_scale,
        queued_seconds=args.queued_seconds,
        processing_seconds=args.processing_seconds,
        duration_sampler=sampler,
        **common,
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: the peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _handle(fake: BenchFake, command: dict[str, Any]) -> dict[str, Any]:
    cmd = command["cmd"]
    if cmd == "stats":
        return {
            "counters": dict(fake.counters),
            "max_in_flight": fake.max_in_flight,
            "tasks": len(fake.tasks),
            "cpu": _cpu_seconds(),
            "rss": _rss_bytes(),
            "monotonic": time.monotonic(),
        }
    if cmd == "reset":
        fake.reset_stats()
        fake.tasks.clear()
        fake.status_counts.clear()
        if "number" in command:  # durations follow from task numbers: replay a draw
            fake.created = int(command["number"])
        return {"ok": True}
    if cmd == "create_held":
        ids = []
        for _ in range(int(command["n"])):
            task = fake.create_task()
            fake.hold(task.id)
            ids.append(task.id)
        return {"ids": ids}
    if cmd == "release_all":
        for task_id in fake.tasks:
            fake.release(task_id)
        return {"released": len(fake.tasks)}
    if cmd == "max_in_window":
        endpoint = command.get("endpoint", "status")
        return {"max": fake.max_calls_in_window(endpoint, float(command.get("window", 1.0)))}
    if cmd == "status_counts":
        return {"counts": dict(fake.status_counts)}
    if cmd == "completion_times":
        sim_now, mono_now = fake.sim_now(), time.monotonic()
        scale = fake.time_scale
        return {
            "times": {
                task_id: mono_now
                + (task.created_at + task.queued_seconds + task.processing_seconds - sim_now)
                * scale
                for task_id, task in fake.tasks.items()
            }
        }
    return {"error": f"unknown command {cmd!r}"}


async def _serve(args: argparse.Namespace) -> None:
    fake = _build(args)
    await fake.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout
    out.write(json.dumps({"base_url": fake.base_url, "api_key": fake.api_key}) + "\n")
    out.flush()
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "quit":
                break
            out.write(json.dumps(_handle(fake, command)) + "\n")
            out.flush()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("per-poll", "clock"), default="per-poll")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds each answer takes (default 0)"
    )
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--queued-seconds", type=float, default=3.0)
    parser.add_argument("--processing-seconds", type=float, default=27.0)
    parser.add_argument("--queued-share", type=float, default=0.1)
    parser.add_argument("--lognormal", type=float, nargs=2, metavar=("MEDIAN", "SIGMA"))
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(_serve(args))
    else:
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
