"""The kill test: a 200-request batch in a subprocess, SIGKILLed at random points, resumed.

The fake service runs here, in the test's event loop (a task takes 300 ms); the batch
runs in ``tests/batch_worker.py`` processes (at most 25 tasks in flight, so submissions
spread over the run) that are killed with ``SIGKILL`` (no cleanup of any kind runs) once
the service has seen a random number of further creates, plus a random delay. Then the
batch is resumed to its end. What must hold: every request created exactly once,
every video on disk byte-identical to what the service served, no temporary file left.

A kill that lands while a create is on the wire leaves that request ``unknown``: the
runner cannot know whether the service created it, so it does not send it again. The test
then does what a user would: it looks the prompt up on the provider's side (the fake's
tasks) and attaches the task it finds with ``Journal.attach``, or, if the service never
got the create, resumes with ``retry_unknown`` for that key only.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import pytest
from batch_worker import make_requests

from starvideos_async.batch import Journal, JournalEntry
from starvideos_async.testing import FakeStarVideos

WORKER = Path(__file__).with_name("batch_worker.py")
COUNT = 200
MAX_IN_FLIGHT = 25
KILLS = 4
SEED = 20261123

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def temporary_files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "part" in p.name)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


async def until(condition: Callable[[], bool], timeout: float) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"nothing happened in {timeout} s")


class Worker:
    """Starts ``batch_worker.py`` runs against the fake, one log file per run."""

    def __init__(self, fake: FakeStarVideos, folder: Path) -> None:
        self.fake = fake
        self.folder = folder
        self.journal = folder / "batch.sqlite"
        self.videos = folder / "videos"
        self.runs = 0

    async def start(self, retry: Iterable[str] = ()) -> tuple[asyncio.subprocess.Process, Path]:
        self.runs += 1
        log = self.folder / f"run-{self.runs}.log"
        retry_args = ["--retry", *retry] if retry else []
        with open_log(log) as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                "--base-url",
                self.fake.base_url,
                "--journal",
                str(self.journal),
                "--download-dir",
                str(self.videos),
                "--count",
                str(COUNT),
                "--max-in-flight",
                str(MAX_IN_FLIGHT),
                *retry_args,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "STARVIDEOS_API_KEY": self.fake.api_key},
            )
        return process, log

    async def run_to_end(self, retry: Iterable[str] = ()) -> dict[str, Any]:
        process, log = await self.start(retry)
        code = await asyncio.wait_for(process.wait(), 40)
        lines = read_lines(log)
        assert code == 0, log.read_text()[-3000:]
        summary: dict[str, Any] = lines[-1]["summary"]
        return summary

    async def entries(self) -> list[JournalEntry]:
        async with Journal(self.journal) as journal:
            return await journal.entries()


async def test_batch_killed_at_random_points_creates_and_downloads_everything_once(
    tmp_path: Path, api_key: str
) -> None:
    rng = random.Random(SEED)
    async with FakeStarVideos(
        api_key, time_scale=0.01, latency=0.005, seed=SEED, video_size=64 * 1024
    ) as fake:
        worker = Worker(fake, tmp_path)
        kills = 0
        temporary_seen = 0
        for _ in range(KILLS):
            # Each run gets killed after it made some creates, at a random moment.
            target = min(fake.created + rng.randint(10, 40), COUNT - 10)
            process, _ = await worker.start()
            await until(
                lambda p=process, t=target: fake.created >= t or p.returncode is not None, 30
            )
            await asyncio.sleep(rng.uniform(0.0, 0.2))
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            await process.wait()
            temporary_seen += len(temporary_files(worker.videos))
        assert kills == KILLS, "every kill landed mid-batch"

        first = await worker.run_to_end()
        unknown = [e for e in await worker.entries() if e.state == "unknown"]
        assert first["unknown"] == len(unknown)
        # The user's part: find each unknown create on the provider's side, by prompt.
        by_prompt = {task.prompt: task.id for task in fake.tasks.values()}
        attached, retried = [], []
        async with Journal(worker.journal) as journal:
            for entry in unknown:
                task_id = by_prompt.get(entry.request["prompt"])
                if task_id is None:
                    retried.append(entry.key)
                else:
                    await journal.attach(entry.key, task_id)
                    attached.append(entry.key)
        final = await worker.run_to_end(retry=retried) if unknown else first

        entries = await worker.entries()
        videos = files_in(worker.videos)

    assert final["completed"] == COUNT, final
    assert fake.created == COUNT
    prompts = sorted(task.prompt for task in fake.tasks.values())
    assert prompts == sorted(r.prompt for r in make_requests(COUNT)), "a prompt created twice"
    assert {e.state for e in entries} == {"downloaded"}
    assert {e.task_id for e in entries} == set(fake.tasks)
    assert len(videos) == COUNT
    for entry in entries:
        assert entry.path is not None
        assert entry.task_id is not None
        assert videos[Path(entry.path).name] == fake.video_bytes(entry.task_id)
    assert temporary_files(worker.videos) == []

    sys.stdout.write(
        f"\nkill test: {kills} kills landed, {worker.runs} runs, "
        f"{temporary_seen} temporary files left by kills (removed on resume), "
        f"{len(unknown)} unknown creates: {len(attached)} attached by id, "
        f"{len(retried)} never received and re-sent; "
        f"{fake.created} tasks created, {fake.counters['create']} create requests\n"
    )
