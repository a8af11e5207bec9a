"""Limits and polling shared through a real Redis (tests/redis_support.py starts it).

Worker processes (tests/redis_worker.py), each with its own client on a coordinator of
the same Redis, run against one fake service in this process; the fake's counters say
what the service saw. Timing checks are one-sided (at most a cap, at least a lease).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from redis_support import RedisServer, free_port

from starvideos_async import AsyncStarVideos, ConfigurationError, PollPolicy, VideoRequest
from starvideos_async.batch import run_batch
from starvideos_async.redis import RedisCoordinator
from starvideos_async.testing import FakeStarVideos, Fault

WORKER = str(Path(__file__).with_name("redis_worker.py"))
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Worker:
    """One worker process: started, told to go, read from."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, fake: FakeStarVideos, redis_url: str, **settings: Any) -> Worker:
        settings = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "redis_url": redis_url,
            **settings,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            WORKER,
            json.dumps(settings),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        assert await worker.read(60) == {"ready": True}
        return worker

    def go(self, phase: dict[str, Any] | None = None) -> None:
        assert self.process.stdin is not None
        line = "go" if phase is None else json.dumps(phase)
        self.process.stdin.write(line.encode() + b"\n")

    async def read(self, timeout: float = 120) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line, f"the worker exited ({await self.process.wait()})"
        result: dict[str, Any] = json.loads(line)
        return result

    async def finish(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert await asyncio.wait_for(self.process.wait(), 30) == 0

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)


async def start_workers(count: int, *args: Any, **settings: Any) -> list[Worker]:
    return list(await asyncio.gather(*(Worker.start(*args, **settings) for _ in range(count))))


async def run_phase(
    workers: list[Worker], phase: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    for worker in workers:
        worker.go(phase)
    return list(await asyncio.gather(*(worker.read() for worker in workers)))


@pytest.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    """Workers a test starts; killed at the end if still running."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()
        await worker.process.wait()


# -- several processes -------------------------------------------------------------------


async def test_four_processes_keep_one_concurrency_limit_and_one_status_rate(
    redis_url: str, workers: list[Worker]
) -> None:
    async with FakeStarVideos(time_scale=0.01, latency=0.02) as fake:
        workers += await start_workers(
            4, fake, redis_url, max_concurrency=4, max_status_rate=20, poll=0.1,
            phases=[{"submit": 6}],
        )  # fmt: skip
        results = await run_phase(workers)
        assert [r["completed"] for r in results] == [6] * 4
        assert fake.counters["create"] == 24
        assert fake.counters["status"] >= 24
        assert fake.max_in_flight <= 4
        assert fake.max_calls_in_window("status", 1.0) <= 20
        assert all(r["warnings"] == [] for r in results)


async def test_four_processes_waiting_on_the_same_tasks_poll_about_as_much_as_one(
    redis_url: str, workers: list[Worker]
) -> None:
    async def status_calls(count: int) -> int:
        processes = await start_workers(
            count, fake, redis_url, max_concurrency=16, poll=0.3, phases=[{"wait": []}]
        )
        workers.extend(processes)
        fake.reset_stats()
        ids = [fake.create_task().id for _ in range(200)]  # the tasks start now
        results = await run_phase(processes, {"wait": ids})
        assert [r["completed"] for r in results] == [200] * count
        return fake.counters["status"]

    async with FakeStarVideos(time_scale=0.03) as fake:
        alone = await status_calls(1)
        together = await status_calls(4)
    assert together <= 1.2 * alone, (alone, together)


@pytest.mark.parametrize("stray_messages", [False, True])
async def test_a_final_answer_fetched_elsewhere_ends_the_other_waits_before_their_due_time(
    redis_url: str, stray_messages: bool
) -> None:
    # Two clients on coordinators of their own: to Redis, two processes.
    async with FakeStarVideos(time_scale=0.03) as fake:
        task_id = fake.create_task().id  # runs about 0.9 s
        async with (
            fake.client(coordinator=RedisCoordinator(redis_url)) as eager,
            fake.client(coordinator=RedisCoordinator(redis_url)) as patient,
        ):
            slow = patient.task(task_id).wait(poll_policy=PollPolicy.fixed(60), timeout=120)
            waiting = asyncio.ensure_future(slow)
            while fake.counters["status"] < 1:  # its first poll made: the next one in 60 s
                await asyncio.sleep(0.01)
            if stray_messages:  # e.g. from another version: ignored, the listening goes on
                stray = redis.asyncio.Redis.from_url(redis_url)
                for channel in await stray.pubsub_channels():
                    await stray.publish(channel, "123 not-json")
                await stray.aclose()
            video = await eager.task(task_id).wait(poll_policy=PollPolicy.fixed(0.05))
            assert video.is_completed
            other = await asyncio.wait_for(waiting, 20)
            assert other.is_completed
            assert other.video_url == video.video_url


async def test_a_client_with_a_shorter_lease_does_not_expire_the_others_slots(
    redis_url: str,
) -> None:
    async with FakeStarVideos(time_scale=0.01) as fake:
        task = fake.create_task()
        fake.inject(Fault.delay(2.5), "create", times=1)  # the long create holds its slot
        long = RedisCoordinator(redis_url, lease=30.0)
        short = RedisCoordinator(redis_url, lease=0.3)
        third = RedisCoordinator(redis_url, lease=30.0)
        async with (
            fake.client(coordinator=long, max_concurrency=1) as holder,
            fake.client(coordinator=short, max_concurrency=2) as quick,
            fake.client(coordinator=third, max_concurrency=1) as other,
        ):
            creating = asyncio.ensure_future(holder.submit("a long create"))
            while fake.counters["create"] < 1:
                await asyncio.sleep(0.01)
            await quick.retrieve(task.id)  # a slot with a 0.3 s lease, taken and given back
            await asyncio.sleep(0.6)  # past that lease
            with pytest.raises(asyncio.TimeoutError):  # the long create holds the only slot
                await asyncio.wait_for(other.retrieve(task.id), 0.5)
            await creating


async def test_a_killed_process_gives_its_slots_back_within_the_lease(
    redis_url: str, workers: list[Worker]
) -> None:
    lease = 1.0
    async with FakeStarVideos(time_scale=0.01) as fake:
        ids = [fake.create_task().id for _ in range(4)]
        fake.inject(Fault.delay(0.3), endpoint="status", times=None)
        holder = await Worker.start(
            fake, redis_url, max_concurrency=4, lease=lease, phases=[{"hold": ids}]
        )
        workers.append(holder)
        holder.go()
        while fake.counters["status"] < 8:  # its four slots taken, and taken again
            await asyncio.sleep(0.05)
        holder.kill()
        killed = time.monotonic()
        await holder.process.wait()
        fake.clear_faults()
        other = await Worker.start(
            fake, redis_url, max_concurrency=4, lease=lease, phases=[{"submit": 8}]
        )
        workers.append(other)
        fake.reset_stats()
        other.go()
        (result,) = [await other.read()]
        first = fake.arrival_times("create")[0]
        assert result["completed"] == 8
    # (arrival times are the fake's loop clock: the same monotonic clock)
    waited = first - killed
    assert waited <= lease + 5.0, "the slots did not come back within the lease"


async def test_different_limits_in_two_processes(redis_url: str, workers: list[Worker]) -> None:
    # Each client applies its own limit to the shared count: together they never pass the
    # larger one, and the stricter one only sends while the shared count is below its own.
    async with FakeStarVideos(time_scale=0.01, latency=0.05) as fake:
        strict = await Worker.start(
            fake, redis_url, max_concurrency=2, max_status_rate=10, phases=[{"submit": 12}]
        )
        lax = await Worker.start(
            fake, redis_url, max_concurrency=6, max_status_rate=30, phases=[{"submit": 12}]
        )
        workers += [strict, lax]
        results = await run_phase([strict, lax])
        assert [r["completed"] for r in results] == [12, 12]
        assert fake.max_in_flight <= 6
        assert fake.max_calls_in_window("status", 1.0) <= 30


async def test_redis_stopped_mid_run_then_started_again(
    tmp_path: Path, workers: list[Worker]
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        async with FakeStarVideos(time_scale=0.03, latency=0.01) as fake:
            workers += await start_workers(
                2, fake, server.url, max_concurrency=3, max_status_rate=40, poll=0.1,
                phases=[{"submit": 15}, {"submit": 15}],
            )  # fmt: skip
            for worker in workers:
                worker.go()
            while fake.counters["status"] < 10:
                await asyncio.sleep(0.02)
            server.stop()  # mid-run: creates done, waits polling
            await asyncio.sleep(1.0)
            server.start()
            during = await asyncio.gather(*(worker.read() for worker in workers))
            assert [r["completed"] for r in during] == [15, 15]
            await asyncio.sleep(1.5)  # (Redis is tried once a second while down)
            fake.reset_stats()
            after = await run_phase(workers)
            assert [r["completed"] for r in after] == [15, 15]
            assert fake.max_in_flight <= 3, after
            assert fake.max_calls_in_window("status", 1.0) <= 40
        for result in after:
            unreachable = [w for w in result["warnings"] if "unreachable" in w]
            assert len(unreachable) == 1, result["warnings"]
            assert len(result["warnings"]) == 1, result["warnings"]
            assert result["recovered"] == 1
    finally:
        server.stop()


async def test_the_fastapi_example_under_uvicorn_with_four_workers_keeps_the_limits(
    redis_url: str,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with FakeStarVideos(time_scale=0.01, latency=0.05) as fake:
        path = [str(EXAMPLES), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path),
            "STARVIDEOS_API_KEY": fake.api_key,
            "STARVIDEOS_BASE_URL": fake.base_url,
            "STARVIDEOS_REDIS_URL": redis_url,
            "APP_SETTINGS": json.dumps({"max_concurrency": 4, "max_status_rate": 20, "poll": 0.1}),
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "fastapi_workers_app:create_app",
            "--workers", "4", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning",
            env=env, start_new_session=True,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)
            ) as http:

                async def pid() -> int | None:
                    try:
                        async with http.get(f"{url}/pid") as response:
                            return int(await response.json())
                    except aiohttp.ClientError:
                        return None

                pids: set[int | None] = set()
                deadline = time.monotonic() + 60
                while len(pids - {None}) < 4:  # every worker up and answering
                    assert server.returncode is None, "uvicorn exited"
                    assert time.monotonic() < deadline, f"workers seen: {pids - {None}}"
                    pids |= set(await asyncio.gather(*(pid() for _ in range(16))))
                    await asyncio.sleep(0.1)

                async def submit(i: int) -> str:
                    body = {"prompt": f"kite {i}", "duration": 5}
                    async with http.post(f"{url}/videos", json=body) as response:
                        assert response.status == 202, await response.text()
                        task_id: str = (await response.json())["id"]
                        return task_id

                async def status(task_id: str, wait: float) -> str:
                    async with http.get(f"{url}/videos/{task_id}?wait={wait}") as response:
                        assert response.status == 200, await response.text()
                        answer: str = (await response.json())["status"]
                        return answer

                ids = await asyncio.gather(*(submit(i) for i in range(20)))
                now = await asyncio.gather(*(status(i, 0) for i in ids))
                final = await asyncio.gather(*(status(i, 30) for i in ids for _ in "ab"))
        finally:
            if server.returncode is None:
                server.terminate()
                try:
                    await asyncio.wait_for(server.wait(), 20)
                except TimeoutError:
                    os.killpg(server.pid, signal.SIGKILL)
                    await server.wait()
        assert fake.created == 20
        assert len(now) == 20
        assert final == ["completed"] * 40
        assert fake.max_in_flight <= 4
        assert fake.max_calls_in_window("status", 1.0) <= 20


# -- one process -------------------------------------------------------------------------


async def test_the_api_key_never_reaches_redis(redis_url: str, api_key: str) -> None:
    async with FakeStarVideos(api_key=api_key, time_scale=0.001) as fake:
        coordinator = RedisCoordinator(redis_url)
        async with fake.client(coordinator=coordinator, max_status_rate=100) as client:
            task = await client.submit("a kite")
            await task.wait(poll_policy=PollPolicy.fixed(0.01))
            async with redis.asyncio.Redis.from_url(redis_url) as db:
                keys = [key async for key in db.scan_iter()]
                assert keys
                for key in keys:
                    assert api_key.encode() not in key
                    kind = await db.type(key)
                    if kind == b"string":
                        assert api_key.encode() not in await db.get(key)
                    elif kind == b"hash":
                        assert api_key.encode() not in repr(await db.hgetall(key)).encode()
                    elif kind == b"zset":
                        assert api_key.encode() not in repr(await db.zrange(key, 0, -1)).encode()


async def test_other_keys_and_namespaces_do_not_share(redis_url: str) -> None:
    async with FakeStarVideos(time_scale=0.01, latency=0.1) as fake:
        shared = RedisCoordinator(redis_url)
        apart = RedisCoordinator(redis_url, namespace="batch")
        async with (
            fake.client(max_concurrency=2, coordinator=shared) as one,
            fake.client(max_concurrency=2, coordinator=apart) as two,
        ):
            await asyncio.gather(*(c.submit("a kite") for c in (one, two) for _ in range(4)))
        assert fake.max_in_flight == 4  # two limits of 2, not one


async def test_retrieve_passes_the_shared_rate_cap(redis_url: str) -> None:
    async with FakeStarVideos(time_scale=0.01) as fake:
        ids = [fake.create_task().id for _ in range(3)]
        settings: dict[str, Any] = {"max_status_rate": 10}
        async with (
            fake.client(coordinator=RedisCoordinator(redis_url), **settings) as one,
            fake.client(coordinator=RedisCoordinator(redis_url), **settings) as two,
        ):
            started = time.monotonic()
            await asyncio.gather(*(c.retrieve(i) for c in (one, two) for i in ids for _ in "ab"))
            elapsed = time.monotonic() - started
        assert fake.counters["status"] == 12
        assert elapsed >= 11 * 0.1  # 12 passes of one cap of 10/s (two would take half)


async def test_status_calls_queued_for_the_rate_cap_do_not_churn_shared_slots(
    redis_url: str,
) -> None:
    # Calls waiting for the shared cap's next pass are woken one a pass, not all at
    # once: each one woken takes a shared slot (a round trip) before its pass, and if
    # every waiter did, all but one would be refused and give their slot back.
    async with (
        FakeStarVideos(time_scale=0.01) as fake,
        redis.asyncio.Redis.from_url(redis_url) as db,
    ):
        ids = [fake.create_task().id for _ in range(60)]
        coordinator = RedisCoordinator(redis_url)
        async with fake.client(coordinator=coordinator, max_status_rate=100) as client:
            await client.retrieve(ids[0])  # (the scripts loaded, the connections made)
            await db.config_resetstat()
            await asyncio.gather(*(client.retrieve(i) for i in ids))
            stats = await db.info("commandstats")
        round_trips = sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_eval"))
        assert fake.counters["status"] == 61
        # A slot taken and given back and a pass of the cap: 3 a call, and some refusals
        # (more on a loaded machine, where a woken call comes late: CI has seen 222 and
        # 286). Every waiter woken at each pass would cost about 3 x (60 + 59 + ... + 1),
        # over 5,000.
        assert round_trips <= 6 * 60, round_trips


async def test_a_429_pauses_the_other_processes_clients_too(redis_url: str) -> None:
    async with FakeStarVideos(time_scale=0.01) as fake:
        task_id = fake.create_task().id
        async with (
            fake.client(coordinator=RedisCoordinator(redis_url), max_status_rate=50) as one,
            fake.client(coordinator=RedisCoordinator(redis_url), max_status_rate=50) as two,
        ):
            fake.inject(Fault.rate_limit(retry_after="1"), endpoint="status")
            first = asyncio.ensure_future(one.retrieve(task_id))  # a 429: a second's pause
            while fake.counters["status"] < 1:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await two.retrieve(task_id)  # another client, another coordinator: paused too
            assert time.monotonic() - started >= 0.5
            await first
        assert fake.counters["status"] == 3


async def test_a_given_redis_client_is_used_and_left_open(redis_url: str) -> None:
    async with (
        FakeStarVideos(time_scale=0.001) as fake,
        redis.asyncio.Redis.from_url(redis_url) as db,
    ):
        coordinator = RedisCoordinator(db, lease=5)
        async with fake.client(coordinator=coordinator, max_status_rate=5) as client:
            await client.retrieve((await client.submit("a kite")).id)
        assert await db.ping()
        assert [key async for key in db.scan_iter("starvideos:*")]


async def test_redis_unreachable_from_the_start_warns_once_and_runs_locally(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    coordinator = RedisCoordinator(f"redis://127.0.0.1:{closed_port}/0", timeout=0.5)
    with caplog.at_level(logging.INFO, logger="starvideos_async"):
        async with FakeStarVideos(time_scale=0.001, latency=0.02) as fake:
            async with fake.client(
                coordinator=coordinator, max_concurrency=3, max_status_rate=100
            ) as client:
                tasks = await asyncio.gather(*(client.submit("a kite") for _ in range(10)))
                policy = PollPolicy.fixed(0.01)
                await asyncio.gather(*(task.wait(poll_policy=policy) for task in tasks))
            assert fake.max_in_flight <= 3  # the local limit still holds
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert f"127.0.0.1:{closed_port}" in warnings[0].getMessage()
    assert not coordinator.redis_available


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"redis": "http://localhost"}, "redis"),
        ({"redis": 42}, "redis"),
        ({"lease": 0}, "lease"),
        ({"lease": float("inf")}, "lease"),
        ({"share_window": -1}, "share_window"),
        ({"namespace": "a{b}"}, "namespace"),
        ({"namespace": ""}, "namespace"),
    ],
)
def test_bad_settings_are_refused(arguments: dict[str, Any], field: str) -> None:
    arguments = {"redis": "redis://127.0.0.1:6379/0", **arguments}
    with pytest.raises(ConfigurationError) as caught:
        RedisCoordinator(**arguments)
    assert caught.value.field == field


def test_a_coordinator_and_a_limiter_are_not_both_taken() -> None:
    coordinator = RedisCoordinator("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="limiter"):
        AsyncStarVideos(api_key="k", coordinator=coordinator, limiter=asyncio.Semaphore(2))
    with pytest.raises(ConfigurationError, match="coordinator"):
        AsyncStarVideos(api_key="k", coordinator="redis://127.0.0.1")  # type: ignore[arg-type]


def test_the_url_password_is_not_in_the_repr() -> None:
    coordinator = RedisCoordinator("redis://:hunter2secret@127.0.0.1:6379/0")
    assert "hunter2secret" not in repr(coordinator)
    assert os.environ.get("STARVIDEOS_API_KEY", "-") not in repr(coordinator)


# -- the command line and batches ----------------------------------------------------------


async def run_cli(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starvideos_async",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return await process.wait(), output.decode()


async def test_a_cli_batch_and_a_client_share_one_limit(redis_url: str, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "kite {i}"}}\n' for i in range(12)))
    async with FakeStarVideos(time_scale=0.005, latency=0.05) as fake:
        env = {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}
        batch = asyncio.ensure_future(
            run_cli(
                "batch", str(prompts), "--journal", str(tmp_path / "journal.sqlite"),
                "--redis", redis_url, "--max-concurrency", "3", "--poll-interval", "0.05",
                env=env,
            )
        )  # fmt: skip
        async with fake.client(max_concurrency=3, coordinator=RedisCoordinator(redis_url)) as c:
            while fake.created < 2:
                await asyncio.sleep(0.01)
            tasks = await asyncio.gather(*(c.submit("a kite") for _ in range(12)))
            await asyncio.gather(*(t.wait(poll_policy=PollPolicy.fixed(0.05)) for t in tasks))
        code, output = await batch
        assert code == 0, output
        assert fake.created == 24
        assert fake.max_in_flight <= 3


async def test_the_cli_takes_the_redis_url_from_the_environment(redis_url: str) -> None:
    async with (
        FakeStarVideos(time_scale=0.01) as fake,
        redis.asyncio.Redis.from_url(redis_url) as db,
    ):
        task_id = fake.create_task().id
        env = {
            "STARVIDEOS_API_KEY": fake.api_key,
            "STARVIDEOS_BASE_URL": fake.base_url,
            "STARVIDEOS_REDIS_URL": redis_url,
        }
        code, output = await run_cli("status", task_id, "--max-retries", "0", env=env)
        assert code == 0, output
        assert [key async for key in db.scan_iter("starvideos:*:gate")]
        code, output = await run_cli("status", task_id, "--redis", "http://x", env=env)
        assert code == 2
        assert "--redis" in output


async def test_run_batch_and_another_process_share_one_limit(
    redis_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    coordinator = RedisCoordinator(redis_url)
    requests = [VideoRequest(f"kite {i}") for i in range(16)]
    async with FakeStarVideos(time_scale=0.005, latency=0.05) as fake:
        other = await Worker.start(
            fake, redis_url, max_concurrency=3, max_status_rate=20, poll=0.05,
            phases=[{"submit": 16}],
        )  # fmt: skip
        workers.append(other)
        other.go()
        async with (
            fake.client(
                max_concurrency=3,
                max_status_rate=20,
                poll_policy=PollPolicy.fixed(0.05),
                coordinator=coordinator,
            ) as client,
            run_batch(
                client, requests, journal=tmp_path / "journal.sqlite", coordinator=coordinator
            ) as run,
        ):
            statuses = [result.status async for result in run]
        assert statuses == ["completed"] * 16
        assert (await other.read())["completed"] == 16
        assert fake.created == 32
        assert fake.max_in_flight <= 3
        assert fake.max_calls_in_window("status", 1.0) <= 20


async def test_run_batch_refuses_a_coordinator_its_client_does_not_use(
    redis_url: str, tmp_path: Path
) -> None:
    coordinator = RedisCoordinator(redis_url)
    requests = [VideoRequest("a kite")]
    journal = tmp_path / "journal.sqlite"
    async with FakeStarVideos(time_scale=0.001) as fake:
        for client in (fake.client(), fake.client(coordinator=RedisCoordinator(redis_url))):
            async with client:
                with pytest.raises(ConfigurationError, match="coordinator") as caught:
                    run_batch(client, requests, journal=journal, coordinator=coordinator)
                assert caught.value.field == "coordinator"
        assert fake.created == 0
