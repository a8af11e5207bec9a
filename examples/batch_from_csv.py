"""Fan out a CSV of prompts, crash-safe; run the same command again to resume.

    export STARVIDEOS_API_KEY=sk-...
    python examples/batch_from_csv.py prompts.csv --journal run.sqlite3 --download-dir videos/

``prompts.csv`` has a header row: ``prompt`` and, optionally, ``duration``, ``ratio``,
``image1``, ``image2`` and ``key`` (empty cells take the defaults). Every task id is
committed to the journal before the request counts as submitted: kill this program at
any point, run it again, and nothing is created twice; unfinished tasks are waited on
again and finished ones downloaded.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io

import anyio

from starvideos_async import AsyncStarVideos, InvalidRequestError, PollPolicy, VideoRequest
from starvideos_async.batch import run_batch


def read_requests(text: str) -> list[VideoRequest]:
    """One validated request per row; a bad row raises ValueError with its line number."""
    requests = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        duration = row.get("duration") or "5"
        try:
            request = VideoRequest(
                prompt=row.get("prompt") or "",
                duration=int(duration) if duration.isdigit() else duration,
                ratio=row.get("ratio") or "16:9",
                images=[url for url in (row.get("image1"), row.get("image2")) if url],
                key=row.get("key") or None,  # else: position + content hash
            )
        except InvalidRequestError as exc:
            raise ValueError(f"line {line}: {exc}") from exc
        requests.append(request)
    return requests


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--journal", required=True, help="SQLite file; reuse it to resume")
    parser.add_argument("--download-dir", help="where completed videos go")
    parser.add_argument("--max-in-flight", type=int, default=16, help="tasks running at once")
    parser.add_argument("--poll-interval", type=float, help="fixed polling, in seconds")
    args = parser.parse_args(argv)
    try:
        requests = read_requests(await anyio.Path(args.csv).read_text(encoding="utf-8"))
    except ValueError as exc:  # before anything is sent
        print(f"{args.csv}: {exc}")
        return 2
    policy = PollPolicy.fixed(args.poll_interval) if args.poll_interval else None
    async with (
        AsyncStarVideos() as client,
        run_batch(
            client,
            requests,
            journal=args.journal,
            download_dir=args.download_dir,
            max_in_flight=args.max_in_flight,
            poll_policy=policy,
        ) as run,
    ):
        async for result in run:
            print(f"{result.key} {result.task_id} {result.status} {result.path or result.error}")
    summary = run.summary
    print(f"{summary.completed}/{summary.total} completed, {summary.submitted} submitted now")
    return 0 if summary.all_completed else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
