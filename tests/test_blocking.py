"""The blocking client, ``StarVideos``, against the fake service served from a thread.

Tests here are plain functions, as the client's users write them: the fake runs on an
event loop of its own in another thread (127.0.0.1), and each client runs its own loop
thread. The fake is controlled through its loop (``service.run``), never from the test's
thread directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from starvideos_async import (
    AsyncStarVideos,
    AuthenticationError,
    BadRequestError,
    BlockingVideoTask,
    ClientClosedError,
    InvalidRequestError,
    NotFoundError,
    PollPolicy,
    StarVideos,
    StarVideosError,
    SubmitManyError,
    TaskFailedError,
    TaskStatus,
    TaskTimeoutError,
    Video,
    VideoRequest,
)
from starvideos_async.testing import FakeStarVideos, Fault

T = TypeVar("T")
FAST = PollPolicy.fixed(0.005)


class Service:
    """A ``FakeStarVideos`` served on an event loop in a thread of its own."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._fake: FakeStarVideos | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with FakeStarVideos(**self._options) as fake:
            self._fake = fake
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Service:
        self._thread.start()
        assert self._ready.wait(30), "the fake service did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def fake(self) -> FakeStarVideos:
        assert self._fake is not None
        return self._fake

    def run(self, func: Callable[[], T]) -> T:
        """``func()`` on the fake's loop (its controls are not thread-safe)."""
        assert self._loop is not None

        async def call() -> T:
            return func()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    def client(self, **kwargs: Any) -> StarVideos:
        kwargs.setdefault("poll_policy", FAST)
        return StarVideos(self.fake.api_key, base_url=self.fake.base_url, **kwargs)


@pytest.fixture
def service() -> Iterator[Service]:
    with Service(time_scale=0.001) as running:  # a task takes 30 ms
        yield running


def status_calls_stop(service: Service) -> None:
    """No status call reaches the fake any more (one already on the wire may land)."""
    time.sleep(0.05)
    calls = service.fake.counters["status"]
    time.sleep(0.1)  # twenty poll intervals
    assert service.fake.counters["status"] == calls, "a wait that ended still polls"


# -- the happy path --------------------------------------------------------------------


def test_a_script_submits_waits_and_downloads(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        task = client.submit("a fox in snow", duration=8)
        assert isinstance(task, BlockingVideoTask)
        assert task.client is client
        assert task.request == VideoRequest("a fox in snow", duration=8)
        video = task.wait(timeout=30)
        path = client.download(video, tmp_path / "videos")

    assert video.status is TaskStatus.COMPLETED
    assert task.latest == video
    assert task.status is TaskStatus.COMPLETED
    assert path.read_bytes() == service.run(lambda: service.fake.video_bytes(task.id))
    assert service.fake.created == 1


def test_the_blocking_client_takes_the_o3_inputs(service: Service) -> None:
    refs = ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]
    with service.client() as client:
        task = client.submit("a fox", model="starvideos_o3", reference_images=refs)
        video = client.generate(
            "a fox", model="starvideos_o3", first_image=refs[0], last_image=refs[1], timeout=30
        )
        with pytest.raises(InvalidRequestError) as info:
            client.submit("a fox", model="starvideos_o3", images=refs)
    assert info.value.field == "images"
    assert task.request == VideoRequest("a fox", model="starvideos_o3", reference_images=refs)
    assert video.model == "starvideos_o3"
    sent = service.run(lambda: [rec.json for rec in service.fake.requests if rec.json])
    assert sent == [
        {
            "prompt": "a fox",
            "model": "starvideos_o3",
            "duration": 3,
            "ratio": "9:16",
            "referenceImages": refs,
        },
        {
            "prompt": "a fox",
            "model": "starvideos_o3",
            "duration": 3,
            "ratio": "9:16",
            "first_image": refs[0],
            "last_image": refs[1],
        },
    ]


def test_every_method_of_client_and_task_works(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        video = client.generate("waves at dusk")
        assert client.retrieve(video.id) == video
        again = client.task(video.id)
        assert again.latest is None
        assert again.refresh() == video
        assert again.download(tmp_path / "a.mp4") == tmp_path / "a.mp4"

        tasks = client.submit_many([VideoRequest("one"), VideoRequest("two")])
        assert client.wait_all(tasks) == [t.latest for t in tasks]
        finished = list(client.as_completed([client.submit("three"), client.submit("four")]))
        assert sorted(t.status for t in finished) == [TaskStatus.COMPLETED] * 2
        statuses = [v.status for v in client.submit("five").watch()]

    assert statuses[-1] is TaskStatus.COMPLETED
    assert statuses[0] is TaskStatus.QUEUED
    assert service.fake.created == 6


def test_the_arguments_are_the_async_clients_but_session() -> None:
    blocking = inspect.signature(StarVideos).parameters
    async_ = dict(inspect.signature(AsyncStarVideos).parameters)
    del async_["session"]  # an aiohttp session belongs to one event loop: not the client's

    assert list(blocking) == list(async_)
    for name, parameter in blocking.items():
        assert parameter.default == async_[name].default, name
        assert parameter.kind == async_[name].kind, name
    assert StarVideos.__doc__ is not None
    assert "max_status_rate:" in StarVideos.__doc__
    assert "session: An" not in StarVideos.__doc__


# -- threads and event loops -----------------------------------------------------------


def test_one_client_shared_by_a_thread_pool(service: Service) -> None:
    def job(worker: int) -> list[Video]:
        tasks = [client.submit(f"worker {worker}, clip {n}") for n in range(4)]
        return [task.wait(timeout=60) for task in tasks]

    with service.client(max_concurrency=4) as client:  # noqa: SIM117 - the pool inside
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(job, range(8)))

    videos = [video for batch in results for video in batch]
    assert len(videos) == 32
    assert all(video.status is TaskStatus.COMPLETED for video in videos)
    assert len({video.id for video in videos}) == 32
    assert service.fake.created == 32
    assert service.fake.max_in_flight <= 4  # the same limiter as the async client


def test_a_coroutine_calls_it_from_inside_a_running_event_loop(service: Service) -> None:
    # A notebook cell runs inside an event loop; the blocking client must not need it.
    async def cell() -> tuple[Video, Video]:
        with service.client() as client:
            first = client.submit("a fox in snow").wait(timeout=30)
            await asyncio.sleep(0)  # the caller's loop is still there, still running
            return first, client.generate("and another")

    first, second = asyncio.run(cell())

    assert first.status is TaskStatus.COMPLETED
    assert second.status is TaskStatus.COMPLETED


def test_one_client_serves_calls_across_event_loops_and_plain_code(service: Service) -> None:
    async def cell(client: StarVideos) -> Video:
        return client.generate("in a loop")

    with service.client() as client:
        videos = [
            asyncio.run(cell(client)),  # each asyncio.run() starts and closes a loop
            client.generate("plain"),
            asyncio.run(cell(client)),
            client.generate("plain again"),
        ]

    assert [v.status for v in videos] == [TaskStatus.COMPLETED] * 4


def test_close_joins_the_loop_thread(service: Service) -> None:
    before = set(threading.enumerate())
    client = service.client()
    assert len(set(threading.enumerate()) - before) == 1  # one thread per client
    client.generate("a fox")

    client.close()

    assert set(threading.enumerate()) == before
    assert client.closed
    client.close()  # idempotent


def test_a_failed_construction_leaves_no_thread() -> None:
    before = set(threading.enumerate())

    with pytest.raises(StarVideosError, match="max_concurrency"):
        StarVideos("sk-key", base_url="http://127.0.0.1:9", max_concurrency=0)

    assert set(threading.enumerate()) == before


SCRIPT = """
import gc, sys, threading, time
from starvideos_async import PollPolicy, StarVideos

with StarVideos(poll_policy=PollPolicy.fixed(0.005)) as client:
    client.submit("a fox").wait(timeout=30)
if sys.argv[1] == "forget":
    client = StarVideos(poll_policy=PollPolicy.fixed(0.005))
    client.generate("left open")
    del client
    gc.collect()
    deadline = time.monotonic() + 10
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
print(threading.active_count())
"""


def run_script(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARVIDEOS_")}
    env.update(STARVIDEOS_API_KEY=service.fake.api_key, STARVIDEOS_BASE_URL=service.fake.base_url)
    return subprocess.run(  # noqa: S603
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_script_that_closes_leaves_no_warning_at_exit(service: Service) -> None:
    proc = run_script(service, "-X", "dev", "-W", "error", "-c", SCRIPT, "close")

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == "1"  # only the main thread


def test_a_client_dropped_unclosed_warns_and_stops_its_thread(service: Service) -> None:
    proc = run_script(service, "-X", "dev", "-W", "default", "-c", SCRIPT, "forget")

    assert proc.returncode == 0, proc.stderr
    assert "ResourceWarning: unclosed <StarVideos" in proc.stderr
    assert "Unclosed" not in proc.stderr  # the aiohttp session was closed all the same
    assert proc.stdout.strip() == "1"


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.submit(""), "prompt"),
        (lambda c: c.submit("a fox", duration=99), "duration"),
        (lambda c: c.submit("a fox", ratio="4:3"), "ratio"),
        (lambda c: c.generate("a fox", images=["a", "b", "c"]), "images"),
        (lambda c: c.retrieve(""), "task_id"),
        (lambda c: c.task(".."), "task_id"),
        (lambda c: c.submit("a fox").wait(timeout=-1), "timeout"),
    ],
)
def test_invalid_input_raises_the_async_error_before_any_request(
    service: Service, call: Callable[[StarVideos], object], field: str
) -> None:
    service.fake.reset_stats()
    with service.client() as client, pytest.raises(InvalidRequestError) as raised:
        call(client)

    assert raised.value.field == field
    assert service.fake.counters["create"] <= (1 if field == "timeout" else 0)
    assert service.fake.counters["status"] == 0


def test_a_wrong_key_raises_the_same_class_as_the_async_client(service: Service) -> None:
    async def async_submit() -> BaseException:
        async with AsyncStarVideos("sk-wrong", base_url=service.fake.base_url) as client:
            with pytest.raises(StarVideosError) as raised:
                await client.submit("a fox")
        return raised.value

    async_error = asyncio.run(async_submit())
    client = StarVideos("sk-wrong", base_url=service.fake.base_url)
    with client, pytest.raises(StarVideosError) as raised:
        client.submit("a fox")

    assert type(raised.value) is type(async_error) is AuthenticationError
    assert raised.value.status_code == 401


def test_task_errors_come_through_unchanged(service: Service) -> None:
    with service.client() as client:
        failing = client.submit("a fox")
        service.run(lambda: service.fake.fail(failing.id, "the model refused"))
        with pytest.raises(TaskFailedError, match="the model refused") as failed:
            failing.wait(timeout=30)
        held = client.submit("a slow one")
        service.run(lambda: service.fake.hold(held.id))
        with pytest.raises(TaskTimeoutError) as timed_out:
            held.wait(timeout=0.05)
        service.run(lambda: service.fake.remove(held.id))
        with pytest.raises(NotFoundError):
            held.refresh()

    assert failed.value.video.id == failing.id
    assert timed_out.value.task_id == held.id


def test_submit_many_holds_blocking_handles_beside_its_errors(service: Service) -> None:
    service.run(lambda: service.fake.inject(Fault.status(400), endpoint="create", times=1))
    requests = [VideoRequest(f"clip {n}") for n in range(3)]
    with service.client(max_concurrency=1) as client:  # one create at a time: in order
        with pytest.raises(SubmitManyError) as raised:
            client.submit_many(requests)
        service.run(lambda: service.fake.inject(Fault.status(400), endpoint="create", times=1))
        mixed = client.submit_many(requests, return_exceptions=True)

    assert isinstance(raised.value.results[0], BadRequestError)
    assert all(isinstance(t, BlockingVideoTask) for t in raised.value.tasks)
    assert len(raised.value.tasks) == 2
    assert isinstance(mixed[0], BadRequestError)
    assert [type(r) for r in mixed[1:]] == [BlockingVideoTask] * 2


# -- iterators, closing ----------------------------------------------------------------


def test_breaking_out_of_watch_stops_its_polling(service: Service) -> None:
    with service.client() as client:
        task = client.submit("never ends")
        service.run(lambda: service.fake.hold(task.id))
        seen = []
        for video in task.watch():
            seen.append(video.status)
            if video.status is TaskStatus.PROCESSING:
                break
        status_calls_stop(service)

        with task.watch() as stream:  # closing it (the end of the block) stops it too
            assert next(stream).status is TaskStatus.PROCESSING
        status_calls_stop(service)
        assert list(stream) == []

    assert seen == [TaskStatus.QUEUED, TaskStatus.PROCESSING]


def test_as_completed_yields_in_finish_order_and_breaking_out_stops_it(
    service: Service,
) -> None:
    with service.client() as client:
        slow, quick = client.submit("slow"), client.submit("quick")
        service.run(lambda: service.fake.hold(slow.id))
        for task in client.as_completed([slow, quick]):
            assert task is quick
            break  # the iterator is dropped: the wait on the slow one stops
        status_calls_stop(service)

        with client.as_completed([slow]) as stream:
            assert slow.status is TaskStatus.PROCESSING  # (its wait never ends)
        status_calls_stop(service)
        assert list(stream) == []


def test_closing_ends_waits_of_other_threads_with_client_closed_error(
    service: Service,
) -> None:
    client = service.client()
    task = client.submit("never ends")
    service.run(lambda: service.fake.hold(task.id))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(task.wait)
        while task.status is not TaskStatus.PROCESSING:
            time.sleep(0.005)

        client.close()

        with pytest.raises(ClientClosedError):
            waiting.result(10)
    with pytest.raises(ClientClosedError):
        client.submit("after the end")
    with pytest.raises(ClientClosedError):
        task.refresh()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_ctrl_c_during_watch_stops_its_polling(service: Service) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    with service.client() as client:
        task = client.submit("never ends")
        service.run(lambda: service.fake.hold(task.id))
        updates = task.watch()
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(KeyboardInterrupt):
                for _ in updates:  # the task never ends: only the interrupt stops this
                    pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        status_calls_stop(service)  # not left polling for an iterator nobody reads
        with pytest.raises(StopIteration):
            next(updates)


def test_ctrl_c_during_a_wait_stops_the_wait_on_the_loop(service: Service) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    with service.client() as client:
        task = client.submit("never ends")
        service.run(lambda: service.fake.hold(task.id))
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            with pytest.raises(KeyboardInterrupt):
                task.wait()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        status_calls_stop(service)  # the async wait was cancelled, not left polling
        assert client.retrieve(task.id).status is TaskStatus.PROCESSING  # still usable
