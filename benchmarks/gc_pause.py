"""How long one full pass of Python's garbage collector holds the event loop beside many waits.

With ``wait_all()`` over 100,000 tasks, the caller holds 100,000 handles (``VideoTask``)
and, once each task was polled, its latest snapshot (``Video``); the SDK holds its own
record of each wait. CPython 3.10 to 3.13 collect the oldest generation in one pass
that walks every tracked object of the process, and the event loop waits meanwhile.
This measures that pass in four steps, without network (the waits are planned an hour
out, so no status call is made):

1. the process after ``import starvideos_async`` and a client;
2. with the task handles;
3. with a snapshot in each handle (what every wait holds after its first answer);
4. with every task awaited by ``wait_all()`` (the SDK's bookkeeping for the waits).

::

    python benchmarks/gc_pause.py                  # 100,000 tasks, a few seconds
    python benchmarks/gc_pause.py --tasks 10000

Prints a Markdown table: the tracked objects, the shortest of five full collections
(``gc.collect()``), and what each step added per task. Run it under each Python to
compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import time

from starvideos_async import AsyncStarVideos, PollPolicy, Video

#: Full collections timed per step (the shortest is reported: the others met other load).
REPEATS = 5


def full_pass() -> tuple[int, float]:
    """Tracked objects, and the shortest full collection in milliseconds."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return len(gc.get_objects()), min(times)


async def measure(tasks: int) -> list[tuple[str, int, float]]:
    steps = []
    # Nothing listens there: no call is made, the waits are planned an hour out.
    async with AsyncStarVideos(api_key="benchmark", base_url="http://127.0.0.1:9") as client:
        steps.append(("after import, one client", *full_pass()))
        handles = [client.task(f"video_starvideos_{i:09d}") for i in range(tasks)]
        steps.append(("+ a handle per task", *full_pass()))
        for handle in handles:
            handle.latest = Video(
                id=handle.id, status="processing", created=1_700_000_000, model="starvideos_v3"
            )
        steps.append(("+ each handle's latest snapshot", *full_pass()))
        waiting = asyncio.create_task(client.wait_all(handles, poll_policy=PollPolicy.fixed(3600)))
        while client._scheduler.waiting < tasks:  # noqa: ASYNC110 - subscribed a slice per step
            await asyncio.sleep(0)
        steps.append(("+ wait_all() over every task", *full_pass()))
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    steps = asyncio.run(measure(args.tasks))
    print(
        f"Python {platform.python_version()}, {args.tasks:,} tasks; "
        f"full collection: the shortest of {REPEATS}\n"
    )
    print("| step | tracked objects | full collection | added per task |")
    print("| --- | ---: | ---: | ---: |")
    before = None
    for name, objects, ms in steps:
        added = "" if before is None else f"{(objects - before) / args.tasks:.1f} objects"
        print(f"| {name} | {objects:,} | {ms:.1f} ms | {added} |")
        before = objects


if __name__ == "__main__":
    main()
