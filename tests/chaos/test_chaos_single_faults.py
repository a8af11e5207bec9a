"""One fault at a time, on each endpoint: what the user sees, and that nothing is lost.

Each case submits one task, waits for it and downloads it while one fault strikes once.
The outcome is either the video on disk, byte-identical, or a typed SDK error that says
which task and whether the create may have happened; a create is never sent twice
(except after a 429, which the service sends before doing anything).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import attrs
import pytest

from starvideos_async import (
    MalformedResponseError,
    StarVideosError,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos

from ._support import (
    FAST_RETRY,
    NAMING_FAULTS,
    SERVICE_FAULTS,
    LogCapture,
    RecordingClient,
    fault_for,
    outcome_unknown,
)
from .conftest import Guard

Stage = Literal["create", "wait", "download", "done"]


@attrs.define
class Story:
    """How far one task got, and what stopped it."""

    stage: Stage
    error: StarVideosError | None = None
    task: VideoTask | None = None
    path: Path | None = None


async def one_task(client: RecordingClient, folder: Path) -> Story:
    """Submit, wait and download one task; stop at the first SDK error."""
    try:
        task = await client.submit("a red kite over a grey sea, slow pan")
    except StarVideosError as exc:
        return Story("create", exc)
    try:
        video = await task.wait(timeout=10)
    except StarVideosError as exc:
        return Story("wait", exc, task)
    try:
        path = await client.download(video, folder)
    except StarVideosError as exc:
        return Story("download", exc, task)
    return Story("done", None, task, path)


def assert_video_on_disk(story: Story, fake: FakeStarVideos, folder: Path) -> None:
    assert story.stage == "done", f"stopped at {story.stage}: {story.error!r}"
    assert story.task is not None
    assert story.path is not None
    assert story.path.parent == folder
    assert story.path.read_bytes() == fake.video_bytes(story.task.id)
    assert sorted(p.name for p in folder.iterdir()) == [story.path.name], "temporary files left"


RATE_LIMITS = [name for name in SERVICE_FAULTS if name.startswith("429")]
NOT_RATE_LIMITS = [name for name in SERVICE_FAULTS if not name.startswith("429")]
#: Faults that answer with a broken 2xx body.
BROKEN_2XX = [
    "error-payload-on-200",
    "error-string-on-200",
    "code-msg-on-200",
    "html-page-on-200",
    "empty-body",
    "truncated-json",
    "wrong-types",
]


def warnings_naming(logs: LogCapture, task_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in logs.records
        if r.name == "starvideos_async" and r.levelname == "WARNING" and task_id in r.getMessage()
    ]


# -- create ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RATE_LIMITS)
async def test_create_refused_with_429_is_sent_again_and_created_once(
    name: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    chaos_fake.inject(fault_for(name), "create")
    story = await one_task(chaos_client, tmp_path)
    assert_video_on_disk(story, chaos_fake, tmp_path)
    assert chaos_fake.counters["create"] == 2
    assert chaos_fake.created == 1


def create_faults() -> list[tuple[str, Literal["before", "after"]]]:
    """Every create fault, before and after the work, except those that name the task."""
    cases: list[tuple[str, Literal["before", "after"]]] = []
    for name in NOT_RATE_LIMITS:
        if fault_for(name).kind == "drop_after":  # strikes after the work only
            cases += [] if name in NAMING_FAULTS else [(name, "after")]
        else:
            cases += [(name, "before")] + ([] if name in NAMING_FAULTS else [(name, "after")])
    return cases


@pytest.mark.parametrize(("name", "when"), create_faults())
async def test_create_fault_is_reported_unknown_and_never_sent_twice(
    name: str,
    when: Literal["before", "after"],
    chaos_fake: FakeStarVideos,
    chaos_client: RecordingClient,
    tmp_path: Path,
) -> None:
    """Whether or not the service created the task, the SDK says it may have."""
    fault = fault_for(name, when)
    chaos_fake.inject(fault, "create")
    story = await one_task(chaos_client, tmp_path)
    assert story.stage == "create"
    assert story.error is not None
    assert outcome_unknown(story.error), f"{story.error!r} claims nothing was created"
    assert chaos_fake.counters["create"] == 1, "a create whose outcome was unknown was re-sent"
    assert chaos_fake.created <= 1
    if fault.when == "after":
        assert chaos_fake.created == 1
    assert getattr(story.error, "task_id", None) is None, "an id the answer did not hold"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", NAMING_FAULTS)
async def test_create_answer_broken_after_the_id_is_a_created_task(
    name: str,
    chaos_fake: FakeStarVideos,
    chaos_client: RecordingClient,
    tmp_path: Path,
    guard: Guard,
) -> None:
    """The service created the task and its answer named it before breaking (cut JSON,
    a connection closed mid-body, wrong types): submit() returns that task, says so once
    at WARNING, and the video arrives; the create is sent once."""
    chaos_fake.inject(fault_for(name, "after"), "create")
    story = await one_task(chaos_client, tmp_path)
    assert_video_on_disk(story, chaos_fake, tmp_path)
    assert story.task is not None
    assert list(chaos_fake.tasks) == [story.task.id]
    assert chaos_fake.counters["create"] == 1
    assert len(warnings_naming(guard.logs, story.task.id)) == 1


# -- status ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SERVICE_FAULTS))
async def test_status_fault_is_retried_and_the_video_arrives(
    name: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    """Any one glitch of a status call (a broken 2xx body too) is retried, not fatal."""
    chaos_fake.inject(fault_for(name), "status")
    story = await one_task(chaos_client, tmp_path)
    assert_video_on_disk(story, chaos_fake, tmp_path)
    assert chaos_fake.created == 1


@pytest.mark.parametrize("name", BROKEN_2XX)
async def test_broken_status_answer_past_the_retries_names_the_task_and_wait_again_works(
    name: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    """Only a malformation that outlasts the retry policy ends the wait, naming the task."""
    task = await chaos_client.submit("a red kite over a grey sea, slow pan")
    fault = chaos_fake.inject(fault_for(name), "status", times=None, task_id=task.id)
    with pytest.raises(MalformedResponseError) as caught:
        await task.wait(timeout=10)
    assert caught.value.task_id == task.id
    assert fault.fired == 1 + FAST_RETRY.max_retries
    fault.remove()
    video = await task.wait(timeout=10)
    path = await chaos_client.download(video, tmp_path)
    assert path.read_bytes() == chaos_fake.video_bytes(video.id)
    assert chaos_fake.created == 1


# -- file host ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [n for n in SERVICE_FAULTS if n != "wrong-types"],
)
async def test_file_host_fault_is_retried_and_the_file_is_byte_identical(
    name: str, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    chaos_fake.inject(fault_for(name), "file")
    story = await one_task(chaos_client, tmp_path)
    assert_video_on_disk(story, chaos_fake, tmp_path)


@pytest.mark.parametrize("nbytes", [0, 1, 8 * 1024, 16 * 1024 - 1])
async def test_download_cut_at_any_point_resumes_to_identical_bytes(
    nbytes: int, chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    from starvideos_async.testing import Fault

    chaos_fake.inject(Fault.drop_after(nbytes), "file", times=3)
    story = await one_task(chaos_client, tmp_path)
    assert_video_on_disk(story, chaos_fake, tmp_path)
    ranges = [r.headers.get("Range") for r in chaos_fake.requests if r.endpoint == "file"]
    if nbytes:
        assert ranges[1] == f"bytes={nbytes}-"
