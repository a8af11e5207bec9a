"""Two status fetchers of your own: statuses from a database, and a cache shared by processes.

A status fetcher is any ``async (task_id) -> Video``. ``wait()``, ``watch()``,
``as_completed()`` and ``wait_all()`` call it instead of ``GET /v1/result/{id}``, still
on the client's scheduler (coalescing, ``max_status_rate``, retries of StarVideos errors).

* :class:`DatabaseStatusFetcher` reads statuses that *another process* stores in SQLite:
  here the ``recorder`` command, one poller for many workers (a webhook receiver would
  do as well). Workers waiting this way make no status calls at all.
* :class:`SharedCacheFetcher` wraps the HTTP fetcher with a cache in a SQLite file that
  every process on the machine shares: N workers waiting on one task cost one status
  call per ``ttl`` seconds, not N.

    python examples/custom_status_fetcher.py recorder --db statuses.sqlite3 &
    python examples/custom_status_fetcher.py wait --db statuses.sqlite3 "a fox in snow"
    python examples/custom_status_fetcher.py cached --db cache.sqlite3 "waves at dusk"

Key and base URL come from ``$STARVIDEOS_API_KEY`` and ``$STARVIDEOS_BASE_URL``. Needs
aiosqlite (``pip install 'starvideos-async[batch]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable

import aiosqlite

from starvideos_async import AsyncStarVideos, PollPolicy, StatusFetcher, TaskStatus, Video

SCHEMA = """
CREATE TABLE IF NOT EXISTS statuses (
    task_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    video_url TEXT,
    error TEXT,
    actual_duration REAL,
    updated REAL NOT NULL
)
"""
SELECT = "SELECT task_id, status, video_url, error, actual_duration FROM statuses"
BY_ID = f"{SELECT} WHERE task_id = ?"
FINAL = "('completed', 'failed', 'cancelled')"  # these never change again
FRESH_BY_ID = f"{SELECT} WHERE task_id = ? AND (updated > ? OR status IN {FINAL})"
UNFINISHED_IDS = f"SELECT task_id FROM statuses WHERE status NOT IN {FINAL}"  # noqa: S608


async def open_db(path: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, timeout=30)
    try:
        for attempt in range(50):
            try:
                # WAL: readers never block the writer. Switching, and creating the
                # table, need a moment alone with the file, which the other process
                # may hold while it opens (SQLite then says "locked" at once).
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute(SCHEMA)
                await db.commit()
                break
            except sqlite3.OperationalError:
                await db.rollback()
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
    except BaseException:
        await db.close()
        raise
    return db


async def store(db: aiosqlite.Connection, video: Video, now: float) -> None:
    await db.execute(
        "INSERT OR REPLACE INTO statuses "
        "(task_id, status, video_url, error, actual_duration, updated) VALUES (?, ?, ?, ?, ?, ?)",
        (video.id, video.status_value, video.video_url, video.error, video.actual_duration, now),
    )
    await db.commit()


def to_video(row: aiosqlite.Row) -> Video:
    task_id, status, video_url, error, actual_duration = row
    with contextlib.suppress(ValueError):  # a status this SDK does not know stays a str
        status = TaskStatus(status)
    return Video(
        id=task_id,
        status=status,
        video_url=video_url,
        error=error,
        actual_duration=actual_duration,
    )


class DatabaseStatusFetcher:
    """Statuses that another process keeps in the ``statuses`` table."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def __call__(self, task_id: str) -> Video:
        async with self.db.execute(BY_ID, (task_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:  # ends the wait with this error (it is not retried)
            raise LookupError(f"task {task_id} is not in the statuses table")
        return to_video(row)


class SharedCacheFetcher:
    """Wraps a fetcher with a cache that every process using the same file shares."""

    def __init__(
        self,
        fetch: StatusFetcher,
        db: aiosqlite.Connection,
        *,
        ttl: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fetch, self.db, self.ttl, self.clock = fetch, db, ttl, clock

    async def __call__(self, task_id: str) -> Video:
        now = self.clock()
        async with self.db.execute(FRESH_BY_ID, (task_id, now - self.ttl)) as cursor:
            row = await cursor.fetchone()
        if row is not None:
            return to_video(row)  # fresh enough, or final: no call
        video = await self.fetch(task_id)
        await store(self.db, video, now)
        return video


async def record_statuses(
    client: AsyncStarVideos, db: aiosqlite.Connection, interval: float
) -> None:
    """The other process: polls every unfinished task in the table, stores the answers."""
    while True:
        async with db.execute(UNFINISHED_IDS) as cursor:
            pending = [row[0] async for row in cursor]
        calls = (client.retrieve(task_id) for task_id in pending)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for task_id, result in zip(pending, results, strict=True):
            if isinstance(result, Video):
                await store(db, result, time.time())
            else:  # the SDK already retried what is worth retrying; next round
                print(f"{task_id}: {result}")
        await asyncio.sleep(interval)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["recorder", "wait", "cached"])
    parser.add_argument("prompt", nargs="?", default="a lighthouse in a storm, drone shot")
    parser.add_argument("--db", required=True, help="the SQLite file")
    parser.add_argument("--poll-interval", type=float, default=30.0, help="seconds")
    args = parser.parse_intermixed_args(argv)
    policy = PollPolicy.fixed(args.poll_interval)
    db = await open_db(args.db)
    try:
        if args.command == "recorder":
            async with AsyncStarVideos() as client:
                await record_statuses(client, db, args.poll_interval)
        elif args.command == "wait":
            # Every wait of this client reads the table; the recorder does the calling.
            reader = DatabaseStatusFetcher(db)
            async with AsyncStarVideos(status_fetcher=reader, poll_policy=policy) as client:
                task = await client.submit(args.prompt)
                assert task.latest is not None  # noqa: S101 - a create returns the task
                await store(db, task.latest, time.time())  # the recorder picks it up
                await report(task.wait())
        else:
            async with AsyncStarVideos(poll_policy=policy) as client:
                # Retries happen in the scheduler; none inside the fetcher as well.
                retrieve = functools.partial(client.retrieve, max_retries=0)
                cached = SharedCacheFetcher(retrieve, db, ttl=args.poll_interval)
                task = await client.submit(args.prompt)
                await report(task.wait(status_fetcher=cached))  # per wait, this time
    finally:
        await db.close()
    return 0


async def report(wait: Awaitable[Video]) -> None:
    video = await wait
    print(f"{video.id}: {video.status_value} {video.video_url}")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
