"""The kill test's subprocess: run one batch against a StarVideos service to its end.

Not collected by pytest (the name does not start with ``test_``). The requests come from
:func:`make_requests`, so every run (and the test) sees the same batch. Writes one JSON
line per result to stdout, then a ``{"summary": ...}`` line, and exits 0.

Usage::

    STARVIDEOS_API_KEY=... python tests/batch_worker.py --base-url URL --journal FILE \\
        --download-dir DIR --count 200 --max-in-flight 25 [--retry KEY ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import attrs

from starvideos_async import AsyncStarVideos, PollPolicy, VideoRequest
from starvideos_async.batch import run_batch

_IMAGES = (
    (),
    ("https://images.example/a.png",),
    ("https://images.example/a.png", "https://images.example/b.png"),
)


def make_requests(count: int) -> list[VideoRequest]:
    """The batch: unique prompts, cycling through the three modes."""
    return [
        VideoRequest(
            f"kill test shot {i}: a lighthouse in a storm",
            duration=3 + i % 4,
            images=_IMAGES[i % 3],
        )
        for i in range(count)
    ]


async def main(args: argparse.Namespace) -> None:
    retry = set(args.retry) if args.retry else False
    async with AsyncStarVideos(
        base_url=args.base_url,
        poll_policy=PollPolicy.fixed(args.poll),
        max_concurrency=16,
    ) as client:
        run = run_batch(
            client,
            make_requests(args.count),
            journal=args.journal,
            download_dir=args.download_dir,
            max_in_flight=args.max_in_flight,
            retry_unknown=retry,
        )
        async with run:
            async for result in run:
                line = {"key": result.key, "status": result.status, "task_id": result.task_id}
                sys.stdout.write(json.dumps({**line, "error": result.error}) + "\n")
                sys.stdout.flush()
        sys.stdout.write(json.dumps({"summary": attrs.asdict(run.summary)}) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--download-dir", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--max-in-flight", type=int, default=25)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--retry", nargs="*", default=[])
    asyncio.run(main(parser.parse_args()))
