"""Status anomalies: tasks that never finish, go backwards, vanish, finish without a video,
or whose video URL has expired. Each ends in a clear status or a typed error naming the
task, and none costs a second create.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import attrs
import pytest

from starvideos_async import (
    APITimeoutError,
    NotFoundError,
    RequestInfo,
    ResultExpiredError,
    ServerError,
    TaskFailedError,
    TaskStatus,
    TaskTimeoutError,
    Video,
)
from starvideos_async.testing import FakeStarVideos, Fault

from ._support import KEY, LogCapture, RecordingClient
from .conftest import Guard


async def test_a_task_that_never_finishes_times_out_naming_it_and_can_be_waited_again(
    chaos_fake: FakeStarVideos, chaos_client: RecordingClient
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    chaos_fake.hold(task.id)
    with pytest.raises(TaskTimeoutError) as caught:
        await task.wait(timeout=0.1)
    assert caught.value.task_id == task.id
    assert task.id in str(caught.value)
    chaos_fake.release(task.id)
    video = await task.wait(timeout=5)
    assert video.is_completed
    assert chaos_fake.created == 1


@pytest.mark.parametrize(
    "detour",
    [
        ["processing", "queued", "processing"],  # goes backwards
        ["processing", "paused", "moderating"],  # statuses nobody documented
        ["queued", "", "processing"],  # an empty status
    ],
    ids=["backwards", "unknown", "empty"],
)
async def test_a_status_that_goes_backwards_or_is_unknown_keeps_the_wait_going(
    detour: list[str], chaos_fake: FakeStarVideos, chaos_client: RecordingClient
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    plan = iter([*detour, None])
    target = next(plan)
    chaos_fake.set_status(task.id, target)
    seen: list[str] = []

    def steer(video: Video) -> None:
        """Pin the next status of the detour once the wait has seen this one."""
        nonlocal target
        seen.append(video.status_value)
        if video.status_value == target:
            target = next(plan)
            chaos_fake.set_status(task.id, target)

    video = await task.wait(timeout=5, on_status=steer)
    assert video.is_completed
    for status in detour:
        assert status in seen
    assert seen[-1] == "completed"


async def test_an_id_that_404s_mid_wait_ends_with_not_found_naming_the_task(
    chaos_fake: FakeStarVideos, chaos_client: RecordingClient
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    chaos_fake.hold(task.id)
    with pytest.raises(TaskTimeoutError):
        await task.wait(timeout=0.05)
    chaos_fake.remove(task.id)
    with pytest.raises(NotFoundError) as caught:
        await task.wait(timeout=5)
    assert caught.value.task_id == task.id
    assert caught.value.status_code == 404
    assert chaos_fake.counters["create"] == 1


@pytest.mark.parametrize("status", ["failed", "cancelled"])
async def test_a_task_ending_without_a_video_raises_task_failed_with_the_reason(
    status: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    if status == "failed":
        chaos_fake.fail(task.id, "content moderation: rejected")
    else:
        chaos_fake.set_status(task.id, status)
    with pytest.raises(TaskFailedError) as caught:
        await task.wait(timeout=5)
    assert caught.value.task_id == task.id
    assert caught.value.video.status_value == status


@pytest.mark.parametrize("how", ["null", "omitted"])
async def test_completed_without_video_url_gives_result_expired_after_one_requery(
    how: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    if how == "null":
        chaos_fake.complete(task.id, video_url=None)
    else:
        chaos_fake.complete(task.id)
        chaos_fake.omit_fields(task.id, "video_url")
    video = await task.wait(timeout=5)
    assert video.is_completed
    assert video.video_url is None
    before = chaos_fake.counters["status"]
    with pytest.raises(ResultExpiredError) as caught:
        await chaos_client.download(video, tmp_path)
    assert caught.value.task_id == task.id
    assert chaos_fake.counters["status"] == before + 1, "the task was re-queried once"
    assert chaos_fake.counters["file"] == 0
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_an_expired_video_url_is_requeried_then_result_expired(
    code: int, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    video = await task.wait(timeout=5)
    chaos_fake.expire(task.id, code)
    with pytest.raises(ResultExpiredError) as caught:
        await chaos_client.download(video, tmp_path)
    assert caught.value.task_id == task.id
    assert caught.value.status_code == code
    assert os.listdir(tmp_path) == []


async def test_an_expired_video_url_with_a_fresh_one_on_the_service_downloads(
    chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    good = await task.wait(timeout=5)
    assert good.video_url is not None
    stale = Video(
        id=good.id,
        status=TaskStatus.COMPLETED,
        video_url=good.video_url.replace("token=", "token=stale"),
    )
    path = await chaos_client.download(stale, tmp_path)
    assert path.read_bytes() == chaos_fake.video_bytes(task.id)
    statuses = [r.status for r in chaos_fake.requests if r.endpoint == "file"]
    assert statuses == [403, 200]


def test_the_guard_of_every_chaos_test_finds_a_leaked_key() -> None:
    """The leak search is not vacuous: a key in a log argument or a cause is found."""
    logs = LogCapture()
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "sent %s", (KEY,), None)
    logs.emit(record)
    assert Guard(logs).leaks()
    cause = ServerError("boom", request=RequestInfo("GET", "/v1/result/x"), status_code=500)
    cause.__cause__ = RuntimeError(f"Authorization: Bearer {KEY}")
    assert Guard(LogCapture(), [cause]).leaks()
    assert not Guard(
        LogCapture(), [ServerError("boom", request=cause.request, status_code=500)]
    ).leaks()


def stale(video: Video) -> Video:
    """``video`` with a result URL whose token the file host refuses (403)."""
    assert video.video_url is not None
    return Video(
        id=video.id,
        status=TaskStatus.COMPLETED,
        video_url=video.video_url.replace("token=", "token=stale"),
    )


def re_completed_glitches() -> dict[str, list[Fault]]:
    """What the one status query for a fresh URL may meet before the good answer."""
    processing = Fault.status(200, {"id": "{id}", "status": "processing", "created": 1})
    return {
        "503": [Fault.status(503)],
        "truncated": [Fault.malformed_json()],
        "html on 200": [Fault.html(200)],
        "briefly processing": [processing],
        "processing, then 502": [processing, Fault.status(502)],
    }


@pytest.mark.parametrize("glitch", re_completed_glitches())
async def test_a_glitch_in_the_fresh_url_query_does_not_give_up_the_download(
    glitch: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    """The query for a fresh URL is retried like any status call, and a task seen not
    finished there is waited on: the next good answer's URL is used."""
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    video = await task.wait(timeout=5)
    for fault in re_completed_glitches()[glitch]:
        if fault.body:
            fault = attrs.evolve(fault, body=fault.body.replace(b"{id}", task.id.encode()))
        chaos_fake.inject(fault, "status", task_id=task.id)
    before = chaos_fake.counters["status"]
    path = await chaos_client.download(stale(video), tmp_path, timeout=10)
    assert path.read_bytes() == chaos_fake.video_bytes(task.id)
    assert chaos_fake.counters["status"] > before + 1, "the glitch was not met"
    assert [r.status for r in chaos_fake.requests if r.endpoint == "file"] == [403, 200]
    assert os.listdir(tmp_path) == [path.name]


async def test_a_task_unfinished_at_the_fresh_url_query_is_waited_on_until_the_timeout(
    chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    task = await chaos_client.submit("a lighthouse in a storm, drone shot")
    video = await task.wait(timeout=5)
    chaos_fake.set_status(task.id, "processing")
    with pytest.raises(APITimeoutError, match=r"did not finish within 0\.3s"):
        await chaos_client.download(stale(video), tmp_path, timeout=0.3)
    assert chaos_fake.counters["status"] >= 3, "the task was not waited on"
    assert os.listdir(tmp_path) == []
