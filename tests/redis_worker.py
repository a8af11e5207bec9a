"""A worker process of tests/test_redis.py: one client on a shared RedisCoordinator.

Run as ``python redis_worker.py '<json settings>'``. It prints ``{"ready": true}``, then
for each phase of ``settings["phases"]`` reads a line from stdin (the test says go to
every worker at once; a JSON line replaces the phase) and prints one JSON line with what
the phase did and the log records of the SDK so far (WARNINGs, "answers again" INFOs).

Phases: ``{"submit": n}`` creates n tasks and waits for them; ``{"wait": [ids]}`` waits
on tasks made by the test; ``{"hold": [ids]}`` keeps every slot busy with status calls
forever (until the test kills the process).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from starvideos_async import AsyncStarVideos, PollPolicy
from starvideos_async.redis import RedisCoordinator


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.warnings: list[str] = []
        self.recovered = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.warnings.append(message)
        elif "answers again" in message:
            self.recovered += 1


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)  # noqa: T201 - the test reads it


async def main(settings: dict[str, Any]) -> None:
    records = Records()
    logger = logging.getLogger("starvideos_async")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    coordinator = RedisCoordinator(
        settings["redis_url"], lease=settings.get("lease", 30.0), share_window=1.0
    )
    client = AsyncStarVideos(
        api_key=settings["api_key"],
        base_url=settings["base_url"],
        max_concurrency=settings["max_concurrency"],
        max_status_rate=settings.get("max_status_rate"),
        poll_policy=PollPolicy.fixed(settings.get("poll", 0.1)),
        coordinator=coordinator,
    )
    loop = asyncio.get_running_loop()
    async with client:
        say(ready=True)
        for phase in settings["phases"]:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if line.startswith("{"):  # the test gives the phase's input only now
                phase = json.loads(line)
            started = time.monotonic()
            if "submit" in phase:
                tasks = [client.submit("a kite") for _ in range(phase["submit"])]
                handles = await asyncio.gather(*tasks)
                videos = await asyncio.gather(*(task.wait(timeout=120) for task in handles))
            elif "wait" in phase:
                handles = [client.task(task_id) for task_id in phase["wait"]]
                videos = await asyncio.gather(*(task.wait(timeout=120) for task in handles))
            else:  # hold: every slot busy until killed
                ids = phase["hold"]

                async def busy(task_id: str) -> None:
                    while True:
                        await client.retrieve(task_id)

                await asyncio.gather(*(busy(task_id) for task_id in ids))
                videos = []
            say(
                completed=sum(video.is_completed for video in videos),
                seconds=time.monotonic() - started,
                warnings=records.warnings,
                recovered=records.recovered,
            )


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
