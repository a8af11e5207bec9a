"""The crash-safe batch runner against the fake service: outcomes, resume, unknown creates."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from batch_worker import make_requests

from starvideos_async import (
    AsyncStarVideos,
    ClientClosedError,
    InvalidRequestError,
    PollPolicy,
    StarVideosError,
    VideoRequest,
)
from starvideos_async import batch as batch_module
from starvideos_async.batch import (
    BatchResult,
    BatchRun,
    BatchSummary,
    Journal,
    JournalLockedError,
    request_keys,
    run_batch,
)
from starvideos_async.testing import FakeStarVideos, Fault

WORKER = Path(__file__).with_name("batch_worker.py")
IMAGE = "https://images.example/first.png"
LAST = "https://images.example/last.png"


def mixed(n: int, tag: str = "") -> list[VideoRequest]:
    """``n`` requests cycling through text, image and first-and-last-frame modes."""
    images: tuple[tuple[str, ...], ...] = ((), (IMAGE,), (IMAGE, LAST))
    return [
        VideoRequest(f"{tag}shot {i}: a fox in the snow", duration=3 + i % 3, images=images[i % 3])
        for i in range(n)
    ]


@pytest.fixture
async def fake(api_key: str) -> AsyncIterator[FakeStarVideos]:
    async with FakeStarVideos(api_key, time_scale=0.001, video_size=2048) as service:
        yield service


@pytest.fixture
async def client(fake: FakeStarVideos, sleeps: list[float]) -> AsyncIterator[AsyncStarVideos]:
    async with fake.client(poll_policy=PollPolicy.fixed(0.005)) as client:
        yield client


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "batch.sqlite"


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    return tmp_path / "videos"


async def collect(run: BatchRun) -> dict[str, BatchResult]:
    results: dict[str, BatchResult] = {}
    async with run:
        async for result in run:
            assert result.key not in results, "one result per request"
            results[result.key] = result
    return results


async def states(path: Path) -> dict[str, str]:
    async with Journal(path) as journal:
        return {e.key: e.state for e in await journal.entries()}


def create_bodies(fake: FakeStarVideos) -> list[Any]:
    return [r.json for r in fake.requests if r.endpoint == "create"]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def holds(result: BatchResult, fake: FakeStarVideos) -> bool:
    """Whether the result's file holds exactly the bytes the fake served for its task."""
    return (
        result.path is not None
        and result.task_id is not None
        and result.path.read_bytes() == fake.video_bytes(result.task_id)
    )


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


# -- the happy path ---------------------------------------------------------------------


async def test_batch_creates_each_request_once_and_downloads_identical_bytes(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(12)
    run = run_batch(client, requests, journal=journal_path, download_dir=videos, max_in_flight=4)
    results = await collect(run)

    assert sorted(results) == sorted(request_keys(requests))  # one result per request
    assert fake.created == 12
    assert sorted(b["prompt"] for b in create_bodies(fake)) == sorted(r.prompt for r in requests)
    for result in results.values():
        assert result.status == "completed"
        assert result.ok
        assert result.error is None
        assert holds(result, fake)
        assert result.video is not None
        assert result.video.id == result.task_id
    assert {r.request.mode for r in results.values() if r.request} == {
        "text",
        "image",
        "first_last_frame",
    }
    assert run.summary == BatchSummary(total=12, completed=12, submitted=12)
    assert run.summary.all_completed
    assert run.summary.remaining == 0
    assert names(videos) == sorted(r.path.name for r in results.values() if r.path)
    assert set((await states(journal_path)).values()) == {"downloaded"}


async def test_batch_without_download_dir_reports_completed_videos_with_urls(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    results = await collect(run_batch(client, mixed(3), journal=journal_path))

    assert {r.status for r in results.values()} == {"completed"}
    assert all(r.path is None and r.video and r.video.video_url for r in results.values())
    assert set((await states(journal_path)).values()) == {"finished"}
    assert fake.counters["file"] == 0


async def test_on_status_sees_every_status_change_of_every_task(
    client: AsyncStarVideos, journal_path: Path
) -> None:
    seen: dict[str, list[str]] = {}
    run = run_batch(
        client,
        mixed(3),
        journal=journal_path,
        on_status=lambda key, video: seen.setdefault(key, []).append(video.status_value),
    )
    results = await collect(run)

    assert set(seen) == set(results)
    for statuses in seen.values():
        assert statuses == ["queued", "processing", "completed"]


@pytest.mark.parametrize(
    ("action", "status", "error"),
    [
        (lambda fake, task_id: fake.complete(task_id), "completed", None),
        (lambda fake, task_id: fake.fail(task_id, "moderation"), "failed", "moderation"),
        (lambda fake, task_id: fake.set_status(task_id, "cancelled"), "cancelled", None),
    ],
    ids=["completed", "failed", "cancelled"],
)
async def test_final_status_of_each_task_is_reported_and_journaled(
    fake: FakeStarVideos,
    client: AsyncStarVideos,
    journal_path: Path,
    action: Any,
    status: str,
    error: str | None,
) -> None:
    fake.auto_advance = False  # tasks only finish when told
    run = run_batch(client, mixed(2), journal=journal_path)
    async with run:
        await until(lambda: fake.created == 2)
        first, second = fake.tasks
        action(fake, first)
        fake.complete(second)
        results = {r.task_id: r async for r in run}

    assert results[first].status == status
    assert results[first].error == error
    assert results[second].status == "completed"
    async with Journal(journal_path) as journal:
        entry = await journal.entry(results[first].key)
    assert entry is not None
    assert (entry.state, entry.status, entry.task_id) == ("finished", status, first)


async def test_failed_tasks_do_not_stop_the_batch(
    api_key: str, sleeps: list[float], journal_path: Path, videos: Path
) -> None:
    async with (
        FakeStarVideos(
            api_key, time_scale=0.001, failure_rate=0.5, seed=3, video_size=512
        ) as fake,
        fake.client(poll_policy=PollPolicy.fixed(0.005)) as client,
    ):
        run = run_batch(client, mixed(16), journal=journal_path, download_dir=videos)
        results = await collect(run)

    failed = {r.task_id for r in results.values() if r.status == "failed"}
    assert failed == {t.id for t in fake.tasks.values() if t.fails}
    assert 0 < len(failed) < 16
    assert all(r.error for r in results.values() if r.status == "failed")
    assert run.summary.failed == len(failed)
    assert run.summary.completed == 16 - len(failed)
    assert len(names(videos)) == 16 - len(failed)


# -- keys -------------------------------------------------------------------------------


def test_keys_are_stable_across_runs_and_depend_on_position_and_content() -> None:
    keys = request_keys(mixed(5))

    assert keys == request_keys(mixed(5))
    assert keys[:4] == request_keys(mixed(4))
    assert request_keys(mixed(5, tag="other "))[0] != keys[0]
    assert [k.split("-")[0] for k in keys] == ["0", "1", "2", "3", "4"]
    same = [VideoRequest("a cat"), VideoRequest("a cat")]
    assert len(set(request_keys(same))) == 2
    assert request_keys([VideoRequest("a cat", key="mine")]) == ["mine"]


@pytest.mark.parametrize(
    "requests",
    [
        [VideoRequest("a", key="k"), VideoRequest("b", key="k")],
        [VideoRequest("a"), VideoRequest("b", key=request_keys([VideoRequest("a")])[0])],
        [VideoRequest("a", key="")],
    ],
    ids=["caller-keys", "caller-key-equals-auto-key", "empty-key"],
)
async def test_bad_keys_are_refused_before_anything_is_sent(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, requests: Any
) -> None:
    with pytest.raises(InvalidRequestError, match="key"):
        run_batch(client, requests, journal=journal_path)
    assert sum(fake.counters.values()) == 0
    assert not await anyio.Path(journal_path).exists()


async def test_a_changed_request_under_a_known_key_is_refused(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    await collect(run_batch(client, [VideoRequest("a cat", key="k")], journal=journal_path))
    run = run_batch(client, [VideoRequest("a dog", key="k")], journal=journal_path)

    with pytest.raises(InvalidRequestError, match="another request"):
        await collect(run)
    assert fake.created == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_in_flight": 0}, InvalidRequestError),
        ({"max_in_flight": 2.5}, InvalidRequestError),
        ({"max_downloads": 0}, InvalidRequestError),
        ({"retry_unknown": ["no-such-key"]}, InvalidRequestError),
        ({"poll_policy": 5}, InvalidRequestError),
        ({"requests": ["a prompt"]}, TypeError),
    ],
)
async def test_bad_arguments_are_refused_at_once(
    client: AsyncStarVideos, journal_path: Path, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    arguments: dict[str, Any] = {"requests": mixed(2), "journal": journal_path, **kwargs}
    with pytest.raises(error):
        run_batch(client, **arguments)


# -- resume -----------------------------------------------------------------------------


async def test_resume_after_a_clean_stop_submits_nothing_twice(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(10)
    first = run_batch(client, requests, journal=journal_path, download_dir=videos, max_in_flight=3)
    async with first:
        seen = [await first.__anext__() for _ in range(2)]
    assert first.summary.done == 2
    assert 2 <= fake.created < 10

    second = run_batch(client, requests, journal=journal_path, download_dir=videos)
    results = await collect(second)

    assert fake.created == 10
    assert sorted(b["prompt"] for b in create_bodies(fake)) == sorted(r.prompt for r in requests)
    assert {r.status for r in results.values()} == {"completed"}
    assert {s.key for s in seen} <= set(results)
    assert second.summary.submitted == 10 - first.summary.submitted
    assert all(holds(r, fake) for r in results.values())


async def test_rerun_of_a_finished_batch_sends_no_request(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(4)
    before = await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))
    fake.reset_stats()

    after = await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))

    assert sum(fake.counters.values()) == 0
    assert {k: (r.status, r.task_id, r.path) for k, r in after.items()} == {
        k: (r.status, r.task_id, r.path) for k, r in before.items()
    }


async def test_resume_downloads_again_a_file_that_is_gone_or_changed(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(3)
    before = list(
        (
            await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))
        ).values()
    )
    gone, changed, _ = (r.path for r in before)
    assert gone
    assert changed
    gone.unlink()
    changed.write_bytes(b"truncated")
    fake.reset_stats()

    after = await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))

    assert fake.created == 3
    assert fake.counters["file"] == 2
    assert fake.counters["create"] == 0
    assert {r.status for r in after.values()} == {"completed"}
    assert all(holds(result, fake) for result in before)


async def test_a_gone_file_without_download_dir_is_an_error(
    client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(1)
    (result,) = (
        await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))
    ).values()
    assert result.path
    result.path.unlink()

    (again,) = (await collect(run_batch(client, requests, journal=journal_path))).values()

    assert again.status == "error"
    assert "missing" in (again.error or "")


async def test_resume_waits_on_tasks_that_were_submitted_but_not_finished(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    fake.auto_advance = False
    requests = mixed(3)
    first = run_batch(client, requests, journal=journal_path, download_dir=videos)
    async with first:
        await until(lambda: first.summary.submitted == 3)
    assert set((await states(journal_path)).values()) == {"submitted"}
    fake.auto_advance = True
    fake.reset_stats()

    results = await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))

    assert fake.created == 3
    assert fake.counters["create"] == 0
    assert {r.status for r in results.values()} == {"completed"}
    assert {r.task_id for r in results.values()} == set(fake.tasks)


async def test_cancelling_the_iteration_propagates_and_leaves_the_journal_consistent(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(12)
    fake.latency = 0.1  # creates stay on the wire for a while
    run = run_batch(client, requests, journal=journal_path, download_dir=videos, max_in_flight=6)

    async def interrupt(scope: anyio.CancelScope) -> None:  # Ctrl-C while creates are on
        await until(lambda: fake.counters["create"] >= 3)
        scope.cancel()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(interrupt, scope)
            async for _ in run:
                pass
    assert scope.cancelled_caught
    assert not run.journal.is_open
    assert 3 <= fake.created <= 6  # submitting stopped
    found = await states(journal_path)
    assert "sending" not in found.values()  # creates on the wire got their answer recorded
    assert sum(s == "submitted" for s in found.values()) == fake.created
    fake.latency = 0

    results = await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))

    assert fake.created == 12
    assert {r.status for r in results.values()} == {"completed"}
    assert not [name for name in names(videos) if name.startswith(".")]


async def test_cancelled_consumer_task_gets_cancelled_error(
    client: AsyncStarVideos, journal_path: Path
) -> None:
    run = run_batch(client, mixed(4), journal=journal_path)

    async def consume() -> None:
        async for _ in run:
            await asyncio.sleep(10)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "sending" not in (await states(journal_path)).values()


# -- unknown outcomes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(500, when="after"),
        Fault.html(502, when="after"),
        Fault.drop_connection(when="after"),
        Fault.drop_after(5),
        Fault.delay(1.0, when="after"),
    ],
    ids=["500", "502-html", "dropped", "cut-mid-answer", "past-read-timeout"],
)
async def test_a_create_with_unknown_outcome_is_reported_and_not_sent_again(
    fake: FakeStarVideos, sleeps: list[float], journal_path: Path, fault: Fault
) -> None:
    requests = mixed(3)
    fake.inject(fault, endpoint="create")
    async with fake.client(poll_policy=PollPolicy.fixed(0.005), timeout=0.3) as client:
        results = await collect(run_batch(client, requests, journal=journal_path, max_in_flight=1))
        (unknown,) = [r for r in results.values() if r.status == "unknown"]
        assert unknown.task_id is None
        assert "unknown" in (unknown.error or "")
        assert fake.created == 3  # the task exists on the service, unseen
        assert (await states(journal_path))[unknown.key] == "unknown"

        again = await collect(run_batch(client, requests, journal=journal_path))
        assert again[unknown.key].status == "unknown"
        assert fake.created == 3

        retried = await collect(
            run_batch(client, requests, journal=journal_path, retry_unknown=True)
        )
        assert retried[unknown.key].status == "completed"
        assert fake.created == 4  # asked for: it may pay twice
        assert {r.status for r in retried.values()} == {"completed"}


async def test_retry_unknown_can_name_the_keys_to_send_again(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    requests = mixed(3)
    fake.inject(Fault.status(503, when="before"), endpoint="create", times=2)
    first = await collect(run_batch(client, requests, journal=journal_path, max_in_flight=1))
    unknown = sorted(k for k, r in first.items() if r.status == "unknown")
    assert len(unknown) == 2
    assert fake.created == 1

    second = await collect(
        run_batch(client, requests, journal=journal_path, retry_unknown=unknown[0])
    )

    assert second[unknown[0]].status == "completed"
    assert second[unknown[1]].status == "unknown"
    assert fake.created == 2


async def test_attach_ties_an_unknown_create_to_its_task_and_the_next_run_tracks_it(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(2)
    fake.inject(Fault.status(500, when="after"), endpoint="create")
    first = await collect(run_batch(client, requests, journal=journal_path, max_in_flight=1))
    (key,) = [k for k, r in first.items() if r.status == "unknown"]
    # The user finds the task on the provider's side: the one with that prompt.
    prompt = next(r.request.prompt for r in first.values() if r.key == key and r.request)
    (task_id,) = [t.id for t in fake.tasks.values() if t.prompt == prompt]

    async with Journal(journal_path) as journal:
        await journal.attach(key, task_id)
        await journal.attach(key, task_id)  # idempotent
        entry = await journal.entry(key)
    assert entry is not None
    assert (entry.state, entry.task_id) == ("submitted", task_id)

    second = await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))

    assert second[key].status == "completed"
    assert second[key].task_id == task_id
    assert holds(second[key], fake)
    assert fake.created == 2


async def test_attach_refuses_what_cannot_be_right(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    fake.inject(Fault.status(502, when="after"), endpoint="create")  # the first: unknown
    results = await collect(run_batch(client, mixed(2), journal=journal_path, max_in_flight=1))
    (unknown,) = [r for r in results.values() if r.status == "unknown"]
    (done,) = [r for r in results.values() if r.status == "completed"]
    async with Journal(journal_path) as journal:
        with pytest.raises(InvalidRequestError, match="no such key"):
            await journal.attach("no-such-key", "video_starvideos_1")
        with pytest.raises(InvalidRequestError, match="finished"):
            await journal.attach(done.key, "video_starvideos_1")
        for unpollable in (" ", ".", "..", "v" * 600, "video_\ud800"):  # as client.task()
            with pytest.raises(InvalidRequestError, match="task_id"):
                await journal.attach(unknown.key, unpollable)
        with pytest.raises(InvalidRequestError, match="another key"):
            await journal.attach(unknown.key, done.task_id or "")
        entry = await journal.entry(unknown.key)
    assert entry is not None
    assert (entry.state, entry.task_id) == ("unknown", None)  # left as it was


async def test_a_task_id_the_service_gave_that_cannot_be_polled_fails_only_its_row(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    # The service answers the first create with an id no status URL can carry.
    bad = Fault.status(200, body={"id": "..", "object": "video", "status": "queued"})
    fake.inject(bad, endpoint="create")
    requests = mixed(3)
    first = await collect(run_batch(client, requests, journal=journal_path, max_in_flight=1))
    (odd,) = [r for r in first.values() if r.task_id == ".."]  # kept, not dropped
    assert odd.status == "error"

    second = await collect(run_batch(client, requests, journal=journal_path))

    assert second[odd.key].status == "error"  # again its row alone: the batch goes on
    assert second[odd.key].task_id == ".."
    assert {r.status for k, r in second.items() if k != odd.key} == {"completed"}


async def test_a_create_a_killed_process_left_on_the_wire_is_unknown_on_resume(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, tmp_path: Path
) -> None:
    fake.inject(Fault.delay(60), endpoint="create")  # the first create never gets an answer
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), "--base-url", fake.base_url, "--journal",
        str(journal_path), "--download-dir", str(tmp_path / "videos"), "--count", "2",
        "--max-in-flight", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "STARVIDEOS_API_KEY": fake.api_key},
    )  # fmt: skip
    try:
        with anyio.fail_after(60):  # the worker starts Python and imports the SDK first
            while fake.counters["create"] == 0 and worker.returncode is None:
                await asyncio.sleep(0.01)
    finally:
        worker.kill()  # SIGKILL: nothing is cleaned up, the row stays "sending"
        await worker.wait()
    requests = make_requests(2)
    key = request_keys(requests)[0]
    assert (await states(journal_path))[key] == "sending"

    results = await collect(run_batch(client, requests, journal=journal_path))

    assert results[key].status == "unknown"
    assert "stopped" in (results[key].error or "")
    assert results[request_keys(requests)[1]].status == "completed"
    assert fake.counters["create"] == 2  # the held create and the second request's
    async with Journal(journal_path) as journal:
        entry = await journal.entry(key)
    assert entry is not None
    assert (entry.state, entry.attempts) == ("unknown", 1)


@pytest.mark.parametrize(
    ("fault", "state", "status"),
    [
        (Fault.rate_limit("0"), "pending", "error"),  # 429 past the retries
        (Fault.status(401), "pending", "error"),
        (Fault.status(403), "pending", "error"),
        (Fault.status(400), "finished", "error"),
        (Fault.status(422), "finished", "error"),
        (Fault.status(502, when="after"), "unknown", "unknown"),
        (Fault.drop_connection(when="after"), "unknown", "unknown"),
        (Fault.delay(1.0, when="after"), "unknown", "unknown"),  # past the read timeout
        (Fault.empty_body(when="after"), "unknown", "unknown"),  # a 200 without a task
    ],
    ids=["429", "401", "403", "400", "422", "502", "reset", "read-timeout", "malformed"],
)
async def test_a_failed_create_is_sent_again_only_when_surely_nothing_was_created(
    fake: FakeStarVideos,
    sleeps: list[float],
    journal_path: Path,
    fault: Fault,
    state: str,
    status: str,
) -> None:
    injected = fake.inject(fault, endpoint="create", times=None)
    async with fake.client(poll_policy=PollPolicy.fixed(0.005), timeout=0.3) as client:
        (first,) = (await collect(run_batch(client, mixed(1), journal=journal_path))).values()
        assert first.status == status
        async with Journal(journal_path) as journal:
            entry = await journal.entry(first.key)
        assert entry is not None
        assert (entry.state, entry.status) == (state, "error" if state == "finished" else None)
        injected.remove()
        creates = fake.counters["create"]

        (second,) = (await collect(run_batch(client, mixed(1), journal=journal_path))).values()

    if state == "pending":  # nothing was created: the next run sends it again
        assert second.status == "completed"
        assert fake.counters["create"] == creates + 1
    else:  # refused for good, or the task may exist: never sent again unasked
        assert second.status == status
        assert fake.counters["create"] == creates


async def test_a_create_that_never_left_is_sent_again_next_run(
    fake: FakeStarVideos, sleeps: list[float], journal_path: Path, closed_port: int
) -> None:
    nowhere = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    async with AsyncStarVideos(fake.api_key, base_url=nowhere) as refused:
        (first,) = (await collect(run_batch(refused, mixed(1), journal=journal_path))).values()
    assert first.status == "error"
    assert (await states(journal_path))[first.key] == "pending"

    async with fake.client(poll_policy=PollPolicy.fixed(0.005)) as client:
        (second,) = (await collect(run_batch(client, mixed(1), journal=journal_path))).values()

    assert second.status == "completed"
    assert fake.created == 1


async def test_a_refused_create_is_an_error_and_is_sent_again_next_run(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    requests = mixed(2)
    fake.inject(Fault.status(403), endpoint="create")
    first = await collect(run_batch(client, requests, journal=journal_path, max_in_flight=1))
    (refused,) = [r for r in first.values() if r.status == "error"]
    assert "403" in (refused.error or "")
    assert (await states(journal_path))[refused.key] == "pending"

    second = await collect(run_batch(client, requests, journal=journal_path))

    assert second[refused.key].status == "completed"
    assert fake.created == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault.wrong_types({"created": "today"}, when="after"),
        Fault.malformed_json(when="after"),
        Fault.drop_after(60),
    ],
    ids=["wrong types", "cut JSON", "connection closed after the id"],
)
async def test_a_create_answer_that_is_broken_but_names_the_task_keeps_the_task(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, fault: Fault
) -> None:
    fake.inject(fault, endpoint="create")

    results = await collect(run_batch(client, mixed(1), journal=journal_path))

    (result,) = results.values()
    assert result.status == "completed"
    assert result.task_id in fake.tasks
    assert fake.created == 1


async def test_a_broken_create_answer_naming_an_impossible_id_is_unknown(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    fields = {"created": "today", "id": "v" * 600}
    fake.inject(Fault.wrong_types(fields, when="after"), endpoint="create")

    (result,) = (await collect(run_batch(client, mixed(1), journal=journal_path))).values()

    assert result.status == "unknown"
    assert result.task_id is None
    assert fake.created == 1


# -- errors while waiting or downloading ------------------------------------------------


async def test_a_task_the_service_forgot_is_an_error_and_stays_attached(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    fake.auto_advance = False
    run = run_batch(client, mixed(2), journal=journal_path)
    async with run:
        await until(lambda: fake.created == 2)
        lost, kept = list(fake.tasks)
        fake.remove(lost)
        fake.complete(kept)
        results = {r.task_id: r async for r in run}

    assert results[lost].status == "error"
    assert "waiting failed" in (results[lost].error or "")
    assert results[kept].status == "completed"
    assert (await states(journal_path))[results[lost].key] == "submitted"


async def test_a_failed_download_is_an_error_and_the_next_run_downloads_it(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, videos: Path
) -> None:
    requests = mixed(1)
    fake.auto_advance = False
    run = run_batch(client, requests, journal=journal_path, download_dir=videos)
    async with run:
        await until(lambda: fake.created == 1)
        (task_id,) = fake.tasks
        fake.expire(task_id)
        fake.complete(task_id)
        (result,) = [r async for r in run]
    assert result.status == "error"
    assert "download failed" in (result.error or "")
    assert (await states(journal_path))[result.key] == "finished"

    fake.tasks[task_id].expired_status = None
    fake.reset_stats()
    (again,) = (
        await collect(run_batch(client, requests, journal=journal_path, download_dir=videos))
    ).values()

    assert again.status == "completed"
    assert holds(again, fake)
    assert fake.counters["create"] == 0


# -- the quota --------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
async def test_max_in_flight_bounds_the_tasks_unfinished_on_the_service(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path, limit: int
) -> None:
    results = await collect(
        run_batch(client, mixed(10), journal=journal_path, max_in_flight=limit)
    )
    assert len(results) == 10
    # A task is unfinished on the service from its creation to the end of its timeline, on
    # the fake's clock: the exact peak, not one sampled every millisecond (a loaded machine
    # samples late and misses it). Ends sort before starts at the same moment.
    changes = sorted(
        change
        for task in fake.tasks.values()
        for change in (
            (task.created_at, 1),
            (task.created_at + task.queued_seconds + task.processing_seconds, -1),
        )
    )
    peak = max(itertools.accumulate(step for _, step in changes))
    assert 1 <= peak <= limit  # how close to the limit it comes depends on the machine's pace


async def test_summary_counts_during_the_iteration(
    client: AsyncStarVideos, journal_path: Path
) -> None:
    run = run_batch(client, mixed(3), journal=journal_path)
    assert run.summary == BatchSummary(total=3)
    async with run:
        done = [run.summary.done async for _ in run]
    assert done == [1, 2, 3]


# -- the journal ------------------------------------------------------------------------


async def test_a_journal_in_use_elsewhere_is_refused(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    async with Journal(journal_path):
        with pytest.raises(JournalLockedError, match="in use"):
            await Journal(journal_path, timeout=0.05).open()
        second = run_batch(client, mixed(1), journal=Journal(journal_path, timeout=0.05))
        with pytest.raises(JournalLockedError):
            await collect(second)
    assert fake.counters["create"] == 0


async def test_an_open_journal_is_left_open_for_its_owner(
    client: AsyncStarVideos, journal_path: Path
) -> None:
    async with Journal(journal_path) as journal:
        await collect(run_batch(client, mixed(2), journal=journal))
        assert journal.is_open
        entries = await journal.entries()
    assert [e.position for e in entries] == [0, 1]
    assert [e.request["prompt"] for e in entries] == [r.prompt for r in mixed(2)]
    assert all(e.attempts == 1 for e in entries)
    assert not journal.is_open


async def pending_rows(fake: FakeStarVideos, keys: list[str], journal: Path) -> None:
    """Rows for ``keys``, all ``pending``: a batch on a closed client ends before any create."""
    closed = fake.client()
    await closed.aclose()
    requests = [VideoRequest(f"shot {key}", key=key) for key in keys]
    with pytest.raises(ClientClosedError):
        await collect(run_batch(closed, requests, journal=journal))
    assert set((await states(journal)).values()) == {"pending"}


def wal_frames(journal: Path) -> int:
    """The frames in the journal's write-ahead log (SQLite's WAL format): one or more a commit."""
    wal = journal.with_name(f"{journal.name}-wal")
    page_size = int.from_bytes(wal.read_bytes()[8:12], "big")  # from the 32-byte header
    return (wal.stat().st_size - 32) // (24 + page_size)


async def test_concurrent_journal_writes_share_commits_and_a_conflict_fails_alone(
    fake: FakeStarVideos, journal_path: Path
) -> None:
    keys = [f"k{i}" for i in range(50)]
    await pending_rows(fake, [*keys, "dup"], journal_path)
    conflicts: list[InvalidRequestError] = []
    async with Journal(journal_path) as journal:

        async def attach(key: str, task_id: str) -> None:
            try:
                await journal.attach(key, task_id)
            except InvalidRequestError as exc:
                conflicts.append(exc)

        async with anyio.create_task_group() as group:
            for i, key in enumerate(keys):
                group.start_soon(attach, key, f"t{i}")
            group.start_soon(attach, "dup", "t7")  # k7's task
        frames = wal_frames(journal_path)
        entries = {e.key: e for e in await journal.entries()}

    assert [(entries[k].state, entries[k].task_id) for k in keys if k != "k7"] == [
        ("submitted", f"t{i}") for i in range(50) if i != 7
    ]
    # t7 went to one of the two keys asking for it; the other row was left as it was.
    assert sorted((entries[k].state, entries[k].task_id) for k in ("k7", "dup")) == [
        ("pending", None),
        ("submitted", "t7"),
    ]
    assert len(conflicts) == 1
    assert "another key" in str(conflicts[0])
    # Each commit adds at least one frame to the log (one at a time, these 51 writes
    # take about 100): fewer frames than writes means they shared commits.
    assert frames < 51


DISK_FULL = """
import asyncio, os, resource, signal, sys
from starvideos_async.batch import Journal

async def main(path):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    async with Journal(path) as journal:
        await journal.attach("a", "task-a")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path + "-wal"), hard))
        try:
            await journal.attach("b", "task-b")  # the disk is full
        except Exception as exc:
            print(type(exc).__name__)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        await journal.attach("c", "task-c")  # space again: the journal goes on

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
async def test_a_failed_commit_fails_its_writer_and_leaves_the_journal_usable(
    fake: FakeStarVideos, journal_path: Path
) -> None:
    await pending_rows(fake, ["a", "b", "c"], journal_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DISK_FULL, str(journal_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().split() == ["OperationalError"]  # the writer was told

    async with Journal(journal_path) as journal:
        entries = {e.key: (e.state, e.task_id) for e in await journal.entries()}
    assert entries == {
        "a": ("submitted", "task-a"),
        "b": ("pending", None),
        "c": ("submitted", "task-c"),
    }
    with pytest.raises(RuntimeError, match="not open"):
        await journal.entries()


async def test_a_closed_client_ends_the_batch_and_sends_nothing(
    fake: FakeStarVideos, client: AsyncStarVideos, journal_path: Path
) -> None:
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await collect(run_batch(client, mixed(2), journal=journal_path))
    assert set((await states(journal_path)).values()) == {"pending"}
    assert fake.counters["create"] == 0


async def test_a_foreign_error_during_a_create_is_unknown_and_the_batch_goes_on(
    fake: FakeStarVideos,
    client: AsyncStarVideos,
    journal_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submit = client.submit

    async def broken_once(request: VideoRequest) -> Any:
        if request.prompt.startswith("shot 0"):
            raise RecursionError("maximum recursion depth exceeded")
        return await submit(request)

    monkeypatch.setattr(client, "submit", broken_once)
    results = await collect(run_batch(client, mixed(2), journal=journal_path))

    first, second = (results[k] for k in request_keys(mixed(2)))
    assert first.status == "unknown"
    assert "RecursionError" in (first.error or "")
    assert second.status == "completed"
    assert (await states(journal_path))[first.key] == "unknown"


async def test_a_foreign_error_while_waiting_costs_one_result_not_the_batch(
    fake: FakeStarVideos, journal_path: Path, sleeps: list[float]
) -> None:
    async def fetcher(task_id: str) -> Any:
        if fake.tasks[task_id].number == 0:
            raise RecursionError("maximum recursion depth exceeded")
        return await client.retrieve(task_id)

    policy = PollPolicy.fixed(0.005)
    async with fake.client(poll_policy=policy, status_fetcher=fetcher) as client:
        results = await collect(run_batch(client, mixed(3), journal=journal_path, max_in_flight=1))

    statuses = sorted(r.status for r in results.values())
    assert statuses == ["completed", "completed", "error"]
    (broken,) = [r for r in results.values() if r.status == "error"]
    assert "waiting failed: RecursionError" in (broken.error or "")
    assert (await states(journal_path))[broken.key] == "submitted"


def set_layout(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {version}")
    db.close()


async def test_a_journal_of_a_newer_layout_is_refused(journal_path: Path) -> None:
    async with Journal(journal_path):
        pass
    set_layout(journal_path, 99)

    with pytest.raises(StarVideosError, match="layout 99"):
        await Journal(journal_path).open()


def test_batch_module_exports_its_public_names() -> None:
    assert set(batch_module.__all__) == {
        "DEFAULT_MAX_IN_FLIGHT",
        "BatchResult",
        "BatchRun",
        "BatchStatus",
        "BatchSummary",
        "Journal",
        "JournalEntry",
        "JournalLockedError",
        "StatusHook",
        "request_keys",
        "run_batch",
    }
