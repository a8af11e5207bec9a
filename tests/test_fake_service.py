"""Tests of the fake StarVideos service itself, with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import pytest

from starvideos_async import testing
from starvideos_async.testing import (
    FakeStarVideos,
    FakeTask,
    Fault,
    InjectedFault,
    RecordedRequest,
)

KEY = "sk-fake-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
VALID: dict[str, Any] = {"prompt": "a neon city at night", "model": "starvideos_v3"}
SMALL_VIDEO = 4096


@pytest.fixture
async def fake() -> AsyncIterator[FakeStarVideos]:
    """A fake whose clock only moves by hand, so lifecycles are exact."""
    async with FakeStarVideos(KEY, auto_advance=False, video_size=SMALL_VIDEO) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def create(
    session: aiohttp.ClientSession,
    fake: FakeStarVideos,
    body: object = None,
    headers: Mapping[str, str] = AUTH,
) -> tuple[int, Any]:
    async with session.post(
        f"{fake.base_url}/v1/starvideos/videos",
        json=VALID if body is None else body,
        headers=headers,
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def query(
    session: aiohttp.ClientSession,
    fake: FakeStarVideos,
    task_id: str,
    headers: Mapping[str, str] = AUTH,
) -> tuple[int, Any]:
    async with session.get(f"{fake.base_url}/v1/result/{task_id}", headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def raw(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    """(status, headers, body bytes) of one request."""
    async with session.request(method, url, **kwargs) as resp:
        return resp.status, resp.headers, await resp.read()


async def new_task(session: aiohttp.ClientSession, fake: FakeStarVideos) -> str:
    status, data = await create(session, fake)
    assert status == 200
    task_id: str = data["id"]
    return task_id


async def eventually(predicate: Callable[[], bool]) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def overlap(records: list[RecordedRequest]) -> int:
    """The most requests whose [started, ended] intervals overlap."""
    edges = sorted(
        [(r.started, 1) for r in records] + [(r.ended or r.started, -1) for r in records],
        key=lambda edge: (edge[0], edge[1]),
    )
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def is_error_body(data: object, code: str) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("error"), dict)
        and isinstance(data["error"].get("message"), str)
        and data["error"].get("code") == code
    )


# -- the public module ---------------------------------------------------------------------


def test_testing_module_exports_exactly_the_public_names() -> None:
    names = {name for name in dir(testing) if name.isidentifier()}  # pytest adds "@py_..."
    public = {name for name in names if not name.startswith("_")} - {"annotations"}
    assert set(testing.__all__) == public
    assert testing.__all__ == sorted(testing.__all__)


async def test_urls_need_a_started_fake() -> None:
    fake = FakeStarVideos()
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.base_url
    async with fake:
        assert fake.base_url == f"http://127.0.0.1:{fake.port}/kyyReactApiServer"
        with pytest.raises(RuntimeError, match="already started"):
            await fake.start()
    await fake.close()  # idempotent


@pytest.mark.parametrize(
    "kwargs",
    [{"time_scale": 0}, {"failure_rate": 1.5}, {"video_size": -1}, {"queued_seconds": -1}],
)
def test_rejects_nonsense_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        FakeStarVideos(**kwargs)


async def test_serve_forever_returns_once_closed() -> None:
    fake = FakeStarVideos()

    def started() -> bool:
        try:
            return fake.port > 0
        except RuntimeError:
            return False

    server = asyncio.ensure_future(fake.serve_forever())
    await eventually(started)
    await fake.close()
    await asyncio.wait_for(server, 1)


async def test_client_points_at_the_fake(fake: FakeStarVideos) -> None:
    client = fake.client()
    try:
        assert str(client.base_url) == fake.base_url
    finally:
        await client.aclose()


# -- create --------------------------------------------------------------------------------


async def test_create_answers_the_documented_shape(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    before = int(time.time())
    status, data = await create(session, fake)
    assert status == 200
    assert list(data) == ["id", "object", "created", "model", "status", "error"]
    assert re.fullmatch(r"video_starvideos_\d+", data["id"])
    assert data["object"] == "video"
    assert isinstance(data["created"], int)
    assert before <= data["created"] <= int(time.time())
    assert data["model"] == "starvideos_v3"
    assert data["status"] == "queued"
    assert data["error"] is None
    assert fake.created == 1
    assert fake.requests[0].json == VALID
    assert fake.requests[0].task_id == data["id"]


async def test_create_applies_documented_defaults_and_keeps_two_images(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    images = ["https://img.example/1.png", "https://img.example/2.png", "https://x/3.png"]
    _, data = await create(session, fake, {**VALID, "images": images})
    task = fake.tasks[data["id"]]
    assert (task.duration, task.ratio) == (5, "16:9")
    assert task.images == tuple(images[:2])
    assert task.request["images"] == images


@pytest.mark.parametrize(
    "changes",
    [
        {"duration": 3},
        {"duration": 15},
        {"duration": None},
        {"ratio": "9:16"},
        {"images": []},
        {"images": ["https://img.example/a.png"]},
        {"unknown_field": 1},
    ],
)
async def test_create_accepts_valid_bodies(
    fake: FakeStarVideos, session: aiohttp.ClientSession, changes: dict[str, Any]
) -> None:
    status, _ = await create(session, fake, {**VALID, **changes})
    assert status == 200


@pytest.mark.parametrize(
    ("changes", "drop"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, None),
        ({"prompt": "   "}, None),
        ({"prompt": 42}, None),
        ({}, "model"),
        ({"model": "starvideos_o4"}, None),
        ({"referenceImages": ["https://img.example/a.png"]}, None),
        ({"first_image": "https://img.example/a.png"}, None),
        ({"duration": 2}, None),
        ({"duration": 16}, None),
        ({"duration": 5.0}, None),
        ({"duration": "5"}, None),
        ({"duration": True}, None),
        ({"ratio": "1:1"}, None),
        ({"ratio": 16}, None),
        ({"images": "https://img.example/a.png"}, None),
        ({"images": [1, 2]}, None),
    ],
)
async def test_create_rejects_invalid_bodies_with_400(
    fake: FakeStarVideos,
    session: aiohttp.ClientSession,
    changes: dict[str, Any],
    drop: str | None,
) -> None:
    body = {**VALID, **changes}
    if drop is not None:
        del body[drop]
    status, data = await create(session, fake, body)
    assert status == 400
    assert is_error_body(data, "invalid_request")
    assert fake.created == 0


O3: dict[str, Any] = {"prompt": "a fox in snow", "model": "starvideos_o3"}
IMG = [f"https://img.example/{n}.png" for n in range(8)]
VIDEO = ["https://img.example/ref.mp4"]


@pytest.mark.parametrize(
    ("changes", "duration", "ratio", "images"),
    [
        ({}, 3, "9:16", ()),
        ({"duration": 15, "ratio": "1:1"}, 15, "1:1", ()),
        ({"duration": 3, "ratio": "16:9"}, 3, "16:9", ()),
        ({"referenceImages": IMG[:7]}, 3, "9:16", tuple(IMG[:7])),
        ({"first_image": IMG[0], "last_image": IMG[1]}, 3, "9:16", tuple(IMG[:2])),
        ({"first_image": IMG[0]}, 3, "9:16", (IMG[0],)),
        ({"referenceVideos": VIDEO * 3}, 3, "9:16", ()),
        ({"referenceVideos": VIDEO, "referenceImages": IMG[:4]}, 3, "9:16", tuple(IMG[:4])),
        # With reference videos the service ignores duration and ratio (the video decides).
        ({"referenceVideos": VIDEO, "duration": 99, "ratio": "4:3"}, 3, "9:16", ()),
    ],
)
async def test_create_accepts_the_documented_starvideos_o3_bodies(
    fake: FakeStarVideos,
    session: aiohttp.ClientSession,
    changes: dict[str, Any],
    duration: int,
    ratio: str,
    images: tuple[str, ...],
) -> None:
    status, data = await create(session, fake, {**O3, **changes})
    assert status == 200
    assert data["model"] == "starvideos_o3"
    task = fake.tasks[data["id"]]
    assert (task.model, task.duration, task.ratio, task.images) == (
        "starvideos_o3",
        duration,
        ratio,
        images,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"duration": 2},
        {"duration": 16},
        {"duration": 5.0},
        {"ratio": "4:3"},
        {"ratio": 1},
        {"images": IMG[:1]},
        {"referenceImages": IMG[:8]},
        {"referenceImages": IMG[0]},
        {"referenceImages": [1]},
        {"referenceImages": IMG[:5], "referenceVideos": VIDEO},
        {"referenceImages": IMG[:1], "first_image": IMG[1]},
        {"referenceImages": IMG[:1], "last_image": IMG[1]},
        {"referenceVideos": VIDEO, "first_image": IMG[1]},
        {"referenceVideos": VIDEO[0]},
        {"first_image": 5},
    ],
    ids=repr,
)
async def test_create_refuses_starvideos_o3_bodies_against_its_docs(
    fake: FakeStarVideos, session: aiohttp.ClientSession, changes: dict[str, Any]
) -> None:
    status, data = await create(session, fake, {**O3, **changes})
    assert status == 400
    assert is_error_body(data, "invalid_request")
    assert fake.created == 0


@pytest.mark.parametrize("payload", [b"not json", b'{"prompt": ', b"[1, 2]", b""])
async def test_create_rejects_a_body_that_is_not_a_json_object(
    fake: FakeStarVideos, session: aiohttp.ClientSession, payload: bytes
) -> None:
    url = f"{fake.base_url}/v1/starvideos/videos"
    status, _, body = await raw(session, "POST", url, data=payload, headers=AUTH)
    assert status == 400
    assert b'"invalid_request"' in body
    assert fake.created == 0


def test_create_task_validates_like_the_endpoint() -> None:
    fake = FakeStarVideos()
    task = fake.create_task(duration=7)
    assert isinstance(task, FakeTask)
    assert task.duration == 7
    assert fake.created == 1
    with pytest.raises(ValueError, match="duration"):
        fake.create_task(duration=99)


# -- auth and unknown ids ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"X-Api-Key": KEY}],
)
async def test_both_endpoints_require_the_bearer_key(
    fake: FakeStarVideos, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    task = fake.create_task()
    status, data = await create(session, fake, headers=headers)
    assert (status, is_error_body(data, "invalid_api_key")) == (401, True)
    status, data = await query(session, fake, task.id, headers=headers)
    assert (status, is_error_body(data, "invalid_api_key")) == (401, True)
    assert fake.created == 1


async def test_query_of_an_unknown_id_is_404(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    status, data = await query(session, fake, "video_starvideos_404")
    assert (status, is_error_body(data, "not_found")) == (404, True)


async def test_unknown_routes_are_404_and_counted(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    status, _, _ = await raw(session, "GET", f"{fake.base_url}/v1/starvideos/videos")
    assert status == 404
    status, _, _ = await raw(session, "GET", f"{fake.files_url}/elsewhere")
    assert status == 404
    assert fake.counters["other"] == 2


# -- lifecycle ----------------------------------------------------------------------------


async def test_lifecycle_follows_the_simulated_clock(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task_id = await new_task(session, fake)
    _, data = await query(session, fake, task_id)
    assert data["status"] == "queued"
    assert data["video_url"] is None
    assert "actualDuration" not in data
    fake.advance(fake.queued_seconds)
    _, data = await query(session, fake, task_id)
    assert data["status"] == "processing"
    assert list(data) == ["id", "object", "created", "model", "status", "video_url", "error"]
    fake.advance(fake.processing_seconds)
    _, data = await query(session, fake, task_id)
    assert data["status"] == "completed"
    assert data["video_url"] == fake.file_url(task_id)
    assert data["video_url"].startswith(fake.files_url + "/files/")
    assert isinstance(data["actualDuration"], float)
    assert 5 <= data["actualDuration"] < 5.25
    assert data["error"] is None


async def test_lifecycle_runs_on_real_time_with_a_small_time_scale(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeStarVideos(KEY, time_scale=0.001, queued_seconds=0, processing_seconds=60)
    async with fake:  # 60 simulated seconds: 60 ms
        started = time.monotonic()
        task_id = await new_task(session, fake)
        seen = []
        for _ in range(500):
            _, data = await query(session, fake, task_id)
            seen.append(data["status"])
            if data["status"] == "completed":
                break
            await asyncio.sleep(0.002)
    assert seen[0] == "processing"
    assert seen[-1] == "completed"
    assert time.monotonic() - started >= 0.06


async def test_failure_rate_one_fails_every_task_with_an_error_text(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeStarVideos(KEY, failure_rate=1.0, auto_advance=False) as fake:
        task_id = await new_task(session, fake)
        fake.advance(60)
        _, data = await query(session, fake, task_id)
    assert data["status"] == "failed"
    assert isinstance(data["error"], str)
    assert data["error"]
    assert data["video_url"] is None
    assert "actualDuration" not in data


async def test_duration_sampler_sets_each_timeline(session: aiohttp.ClientSession) -> None:
    calls: list[Mapping[str, Any]] = []

    def sampler(rng: Any, request: Mapping[str, Any]) -> tuple[float, float]:
        calls.append(request)
        return 1.0, float(request["duration"]) + rng.random()

    async with FakeStarVideos(KEY, duration_sampler=sampler, auto_advance=False) as fake:
        _, data = await create(session, fake, {**VALID, "duration": 10})
        task = fake.tasks[data["id"]]
        assert calls == [{**VALID, "duration": 10}]
        assert task.queued_seconds == 1.0
        assert 10 <= task.processing_seconds < 11
        fake.advance(11)
        assert fake.status_of(task.id) == "processing"
        fake.advance(1)
        assert fake.status_of(task.id) == "completed"


async def test_auto_advance_can_be_switched_at_run_time() -> None:
    async with FakeStarVideos(KEY, time_scale=0.001) as fake:
        task = fake.create_task()
        fake.auto_advance = False
        frozen = fake.sim_now()
        await asyncio.sleep(0.01)
        assert fake.sim_now() == frozen
        assert fake.status_of(task.id) in {"queued", "processing"}
        fake.auto_advance = True
        await asyncio.sleep(0.035)
        assert fake.status_of(task.id) == "completed"


# -- manual control -----------------------------------------------------------------------


async def test_complete_and_fail_by_hand(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    done, failed = fake.create_task(), fake.create_task()
    fake.complete(done.id)
    fake.fail(failed.id, error="out of credits")
    _, data = await query(session, fake, done.id)
    assert (data["status"], data["video_url"]) == ("completed", fake.file_url(done.id))
    _, data = await query(session, fake, failed.id)
    assert (data["status"], data["error"], data["video_url"]) == ("failed", "out of credits", None)


async def test_complete_without_a_video_url(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.complete(task.id, video_url=None)
    _, data = await query(session, fake, task.id)
    assert data["status"] == "completed"
    assert data["video_url"] is None


@pytest.mark.parametrize("status", ["cancelled", "some_unknown_status", "queued", "processing"])
async def test_set_status_pins_any_status_even_backwards(
    fake: FakeStarVideos, session: aiohttp.ClientSession, status: str
) -> None:
    task = fake.create_task()
    fake.advance(1000)
    fake.set_status(task.id, status)
    _, data = await query(session, fake, task.id)
    assert data["status"] == status
    fake.set_status(task.id, None)
    assert fake.status_of(task.id) == "completed"


async def test_set_fields_and_omit_fields_shape_the_wire(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.complete(task.id)
    fake.set_fields(task.id, thumbnail_url="https://x/t.png", progress=100, video_url=None)
    _, data = await query(session, fake, task.id)
    assert (data["thumbnail_url"], data["progress"], data["video_url"]) == (
        "https://x/t.png",
        100,
        None,
    )
    fake.omit_fields(task.id, "video_url", "actualDuration")
    _, data = await query(session, fake, task.id)
    assert "video_url" not in data
    assert "actualDuration" not in data
    assert data == fake.snapshot(task.id)


async def test_hold_keeps_a_task_processing_until_released(fake: FakeStarVideos) -> None:
    task = fake.create_task()
    fake.hold(task.id)
    fake.advance(10_000)
    assert fake.status_of(task.id) == "processing"
    fake.release(task.id)
    assert fake.status_of(task.id) == "completed"


async def test_remove_makes_the_task_vanish(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.complete(task.id)
    url = fake.file_url(task.id)
    assert fake.remove(task.id) is task
    status, _ = await query(session, fake, task.id)
    assert status == 404
    status, _, _ = await raw(session, "GET", url)
    assert status == 404


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_expire_makes_the_file_host_refuse(
    fake: FakeStarVideos, session: aiohttp.ClientSession, code: int
) -> None:
    task = fake.create_task()
    fake.complete(task.id)
    fake.expire(task.id, status=code)
    status, _, _ = await raw(session, "GET", fake.file_url(task.id))
    assert status == code
    with pytest.raises(ValueError, match="HTTP error status"):
        fake.expire(task.id, status=200)


def test_manual_control_of_an_unknown_id_raises_key_error() -> None:
    fake = FakeStarVideos()
    with pytest.raises(KeyError):
        fake.complete("video_starvideos_0")


# -- the file host --------------------------------------------------------------------------


@pytest.fixture
async def video(fake: FakeStarVideos) -> str:
    task = fake.create_task()
    fake.complete(task.id)
    return fake.file_url(task.id)


async def test_file_host_is_another_origin_and_needs_no_key(
    fake: FakeStarVideos, session: aiohttp.ClientSession, video: str
) -> None:
    assert fake.files_port != fake.port
    assert not video.startswith(fake.base_url)
    status, headers, body = await raw(session, "GET", video)
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Accept-Ranges"] == "bytes"
    assert int(headers["Content-Length"]) == SMALL_VIDEO
    task_id = video.rsplit("/", 1)[1].split(".")[0]
    assert body == fake.video_bytes(task_id)
    assert body[4:8] == b"ftyp"
    (rec,) = [r for r in fake.requests if r.endpoint == "file"]
    assert "authorization" not in rec.headers
    assert rec.host == f"127.0.0.1:{fake.files_port}"
    assert (rec.status, rec.task_id) == (200, task_id)


async def test_file_host_refuses_the_api_key_and_bad_tokens(
    fake: FakeStarVideos, session: aiohttp.ClientSession, video: str
) -> None:
    status, _, _ = await raw(session, "GET", video, headers=AUTH)
    assert status == 400
    assert fake.requests[-1].headers["Authorization"] == AUTH["Authorization"]
    status, _, _ = await raw(session, "GET", video.split("?")[0])
    assert status == 403
    status, _, _ = await raw(session, "GET", video.split("?")[0] + "?token=nope")
    assert status == 403
    # The API does not serve files either: the two are different origins.
    status, _, _ = await raw(session, "GET", fake.base_url + "/files/" + video.split("/")[-1])
    assert status == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", (0, SMALL_VIDEO)),
        ("bytes=100-", (100, SMALL_VIDEO)),
        ("bytes=10-19", (10, 20)),
        ("bytes=4000-99999", (4000, SMALL_VIDEO)),
        ("bytes=-96", (SMALL_VIDEO - 96, SMALL_VIDEO)),
        ("bytes=-99999", (0, SMALL_VIDEO)),
        (f"bytes={SMALL_VIDEO - 1}-{SMALL_VIDEO - 1}", (SMALL_VIDEO - 1, SMALL_VIDEO)),
    ],
)
async def test_single_ranges_answer_206(
    fake: FakeStarVideos,
    session: aiohttp.ClientSession,
    video: str,
    header: str,
    expected: tuple[int, int],
) -> None:
    status, headers, body = await raw(session, "GET", video, headers={"Range": header})
    start, end = expected
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end - 1}/{SMALL_VIDEO}"
    assert int(headers["Content-Length"]) == end - start
    task_id = fake.requests[-1].task_id
    assert task_id is not None
    assert body == fake.video_bytes(task_id)[start:end]


@pytest.mark.parametrize("header", [f"bytes={SMALL_VIDEO}-", "bytes=99999-100000", "bytes=-0"])
async def test_unsatisfiable_ranges_answer_416(
    session: aiohttp.ClientSession, video: str, header: str
) -> None:
    status, headers, _ = await raw(session, "GET", video, headers={"Range": header})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{SMALL_VIDEO}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=x-"])
async def test_unsupported_or_invalid_ranges_are_ignored(
    session: aiohttp.ClientSession, video: str, header: str
) -> None:
    status, _, body = await raw(session, "GET", video, headers={"Range": header})
    assert (status, len(body)) == (200, SMALL_VIDEO)


async def test_if_range_with_another_etag_serves_the_whole_file(
    session: aiohttp.ClientSession, video: str
) -> None:
    headers = {"Range": "bytes=10-", "If-Range": '"stale"'}
    status, _, body = await raw(session, "GET", video, headers=headers)
    assert (status, len(body)) == (200, SMALL_VIDEO)
    _, first, _ = await raw(session, "GET", video)
    headers["If-Range"] = first["ETag"]
    status, _, body = await raw(session, "GET", video, headers=headers)
    assert (status, len(body)) == (206, SMALL_VIDEO - 10)


async def test_head_announces_the_size_without_a_body(
    session: aiohttp.ClientSession, video: str
) -> None:
    status, headers, body = await raw(session, "HEAD", video)
    assert (status, headers["Content-Length"], body) == (200, str(SMALL_VIDEO), b"")


async def test_large_videos_are_streamed_intact(session: aiohttp.ClientSession) -> None:
    async with FakeStarVideos(KEY, video_size=3 * 1024 * 1024 + 7) as fake:
        task = fake.create_task()
        fake.complete(task.id)
        _, _, body = await raw(session, "GET", fake.file_url(task.id))
        assert body == fake.video_bytes(task.id)
        assert len(body) == 3 * 1024 * 1024 + 7


# -- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503, 504, 401, 403, 404, 422])
async def test_status_fault_answers_the_code(
    fake: FakeStarVideos, session: aiohttp.ClientSession, code: int
) -> None:
    task = fake.create_task()
    handle = fake.inject(Fault.status(code), "status")
    status, data = await query(session, fake, task.id)
    assert status == code
    assert isinstance(data["error"]["message"], str)
    assert (handle.fired, handle.active) == (1, False)
    status, _ = await query(session, fake, task.id)
    assert status == 200


@pytest.mark.parametrize(
    ("body", "content_type", "expected_type", "expected_body"),
    [
        ({"detail": "busy"}, None, "application/json", b'{"detail": "busy"}'),
        ("upstream timeout", None, "text/plain", b"upstream timeout"),
        (b"\x00\x01", "application/octet-stream", "application/octet-stream", b"\x00\x01"),
    ],
)
async def test_status_fault_sends_the_chosen_body(
    fake: FakeStarVideos,
    session: aiohttp.ClientSession,
    body: object,
    content_type: str | None,
    expected_type: str,
    expected_body: bytes,
) -> None:
    fake.inject(Fault.status(503, body, {"X-Gateway": "edge"}, content_type), "create")
    url = f"{fake.base_url}/v1/starvideos/videos"
    status, headers, got = await raw(session, "POST", url, json=VALID, headers=AUTH)
    assert (status, got, headers["X-Gateway"]) == (503, expected_body, "edge")
    assert headers["Content-Type"].startswith(expected_type)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("2", "2"),
        (7, "7"),
        (1.5, "1.5"),
        (
            dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "Fri, 02 Jan 2026 03:04:05 GMT",
        ),
        ("Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT"),
        (None, None),
    ],
)
async def test_rate_limit_fault_sends_retry_after(
    fake: FakeStarVideos,
    session: aiohttp.ClientSession,
    retry_after: Any,
    expected: str | None,
) -> None:
    fake.inject(Fault.rate_limit(retry_after), "create")
    url = f"{fake.base_url}/v1/starvideos/videos"
    status, headers, _ = await raw(session, "POST", url, json=VALID, headers=AUTH)
    assert status == 429
    assert headers.get("Retry-After") == expected
    assert fake.created == 0


async def test_rate_limit_fault_can_send_retry_after_ms(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    fake.inject(Fault.rate_limit(None, retry_after_ms=250))
    status, headers, _ = await raw(session, "POST", f"{fake.base_url}/v1/starvideos/videos")
    assert (status, headers["retry-after-ms"], "Retry-After" in headers) == (429, "250", False)


async def test_html_fault_is_a_gateway_page(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.inject(Fault.html(502), "status")
    status, headers, body = await raw(session, "GET", f"{fake.base_url}/v1/result/{task.id}")
    assert (status, headers["Content-Type"]) == (502, "text/html")
    assert b"<h1>502 Bad Gateway</h1>" in body


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("nested", {"error": {"message": "boom", "code": "server_error"}}),
        ("string", {"error": "boom"}),
        ("message", {"message": "boom"}),
        ("code_msg", {"code": 500, "msg": "boom"}),
    ],
)
async def test_error_payload_fault_answers_200_with_an_error_body(
    fake: FakeStarVideos,
    session: aiohttp.ClientSession,
    shape: Any,
    expected: dict[str, Any],
) -> None:
    fake.inject(Fault.error_payload(shape, message="boom"), "create")
    assert await create(session, fake) == (200, expected)
    assert fake.created == 0


def test_error_payload_rejects_an_unknown_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        Fault.error_payload("xml")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [200, 204, 502])
async def test_empty_body_fault(
    fake: FakeStarVideos, session: aiohttp.ClientSession, code: int
) -> None:
    task = fake.create_task()
    fake.inject(Fault.empty_body(code), "status")
    status, _, body = await raw(session, "GET", f"{fake.base_url}/v1/result/{task.id}")
    assert (status, body) == (code, b"")


async def test_malformed_json_before_create_sends_a_fragment_without_creating(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    fake.inject(Fault.malformed_json(), "create")
    url = f"{fake.base_url}/v1/starvideos/videos"
    status, _, body = await raw(session, "POST", url, json=VALID, headers=AUTH)
    assert status == 200
    assert body.startswith(b"{")
    assert fake.created == 0


async def test_malformed_json_after_create_cuts_the_real_answer(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    fake.inject(Fault.malformed_json(when="after"), "create")
    url = f"{fake.base_url}/v1/starvideos/videos"
    status, _, body = await raw(session, "POST", url, json=VALID, headers=AUTH)
    assert status == 200
    assert fake.created == 1
    task_id = next(iter(fake.tasks))
    assert body.startswith(b'{"id": "video_starvideos_')
    assert task_id.encode() in body
    assert not body.endswith(b"}")


async def test_wrong_types_fault_keeps_the_real_answer_with_bad_types(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.inject(Fault.wrong_types(), "status")
    status, data = await query(session, fake, task.id)
    assert status == 200
    assert (data["id"], data["status"], data["created"]) == (task.id, 2, "today")
    fake.inject(Fault.wrong_types({"id": 5}), "create")
    status, data = await create(session, fake)
    assert (status, data["id"]) == (200, 5)
    assert fake.created == 1


async def test_delay_fault_outlasts_a_read_timeout(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.inject(Fault.delay(0.3), "status")
    with pytest.raises(asyncio.TimeoutError):
        await query_with_timeout(session, fake, task.id, 0.05)
    started = time.monotonic()
    fake.inject(Fault.delay(0.02), "status")
    status, _ = await query(session, fake, task.id)
    assert status == 200
    assert time.monotonic() - started >= 0.015  # 20 ms; uvloop's timers may fire ~1 ms early


async def query_with_timeout(
    session: aiohttp.ClientSession, fake: FakeStarVideos, task_id: str, seconds: float
) -> None:
    timeout = aiohttp.ClientTimeout(total=seconds)
    url = f"{fake.base_url}/v1/result/{task_id}"
    async with session.get(url, headers=AUTH, timeout=timeout) as resp:
        await resp.read()


@pytest.mark.parametrize(("when", "created"), [("before", 0), ("after", 1)])
async def test_delay_fault_on_create_creates_before_or_after(
    fake: FakeStarVideos, session: aiohttp.ClientSession, when: Any, created: int
) -> None:
    fake.inject(Fault.delay(0.3, when=when), "create")
    url = f"{fake.base_url}/v1/starvideos/videos"
    timeout = aiohttp.ClientTimeout(total=0.05)
    with pytest.raises(asyncio.TimeoutError):
        await raw(session, "POST", url, json=VALID, headers=AUTH, timeout=timeout)
    await asyncio.sleep(0.01)
    assert fake.created == created
    # closing the fake does not wait for the delay (the fixture closes it right away)


async def test_delayed_request_is_dropped_when_the_fake_closes(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeStarVideos(KEY)
    async with fake:
        fake.inject(Fault.delay(30), "create")
        pending = asyncio.ensure_future(create(session, fake))
        await eventually(lambda: fake.counters["create"] == 1)
        started = time.monotonic()
    assert time.monotonic() - started < 1
    with pytest.raises(aiohttp.ClientError):
        await pending
    assert fake.created == 0


@pytest.mark.parametrize(("when", "created"), [("before", 0), ("after", 1)])
async def test_drop_connection_on_create_before_or_after_creating(
    fake: FakeStarVideos, session: aiohttp.ClientSession, when: Any, created: int
) -> None:
    fake.inject(Fault.drop_connection(when=when), "create")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(session, fake)
    assert fake.created == created
    assert fake.counters["create"] == 1
    assert fake.requests[0].status is None
    assert fake.requests[0].fault == Fault.drop_connection(when=when)


@pytest.mark.parametrize(("when", "created"), [("before", 0), ("after", 1)])
async def test_status_fault_on_create_before_or_after_creating(
    fake: FakeStarVideos, session: aiohttp.ClientSession, when: Any, created: int
) -> None:
    fake.inject(Fault.status(500, when=when), "create")
    status, _ = await create(session, fake)
    assert status == 500
    assert fake.created == created
    assert len(fake.tasks) == created


async def test_drop_after_cuts_a_download_that_range_can_resume(
    fake: FakeStarVideos, session: aiohttp.ClientSession, video: str
) -> None:
    fake.inject(Fault.drop_after(1000), "file")
    got = bytearray()
    with pytest.raises(aiohttp.ClientPayloadError):
        await read_into(session, video, got)
    assert len(got) == 1000
    status, _, rest = await raw(session, "GET", video, headers={"Range": f"bytes={len(got)}-"})
    assert status == 206
    task_id = fake.requests[-1].task_id
    assert task_id is not None
    assert bytes(got) + rest == fake.video_bytes(task_id)


async def read_into(session: aiohttp.ClientSession, url: str, into: bytearray) -> None:
    async with session.get(url) as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_any():
            into += chunk


async def test_drop_after_on_create_cuts_the_json_after_creating(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    fake.inject(Fault.drop_after(10), "create")
    with pytest.raises(aiohttp.ClientPayloadError):
        await create(session, fake)
    assert fake.created == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [(Fault.status(503), 503), (Fault.delay(0.001), 200), (Fault.malformed_json(), 200)],
)
async def test_file_endpoint_faults(
    fake: FakeStarVideos, session: aiohttp.ClientSession, video: str, fault: Fault, expected: int
) -> None:
    fake.inject(fault, "file")
    status, _, _ = await raw(session, "GET", video)
    assert status == expected
    assert fake.counters["file"] == 1


async def test_dropped_get_is_retried_once_by_aiohttp_itself(
    fake: FakeStarVideos, session: aiohttp.ClientSession, video: str
) -> None:
    """aiohttp resends an idempotent request once after a disconnect: drop twice to see it."""
    fake.inject(Fault.drop_connection(), "file")
    status, _, _ = await raw(session, "GET", video)
    assert (status, fake.counters["file"]) == (200, 2)
    fake.inject(Fault.drop_connection(), "file", times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await raw(session, "GET", video)
    assert fake.counters["file"] == 4


async def test_fault_matching_times_task_and_removal(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    one, two = fake.create_task(), fake.create_task()
    handle = fake.inject(Fault.status(500), "status", times=2, task_id=one.id)
    assert isinstance(handle, InjectedFault)
    assert (await query(session, fake, two.id))[0] == 200
    assert (await query(session, fake, one.id))[0] == 500
    assert (await query(session, fake, one.id))[0] == 500
    assert (await query(session, fake, one.id))[0] == 200
    assert (handle.fired, handle.remaining, handle.active) == (2, 0, False)
    forever = fake.inject(Fault.status(502), times=None)
    assert (await query(session, fake, two.id))[0] == 502
    assert (await create(session, fake))[0] == 502
    forever.remove()
    forever.remove()  # a no-op the second time
    assert (await query(session, fake, two.id))[0] == 200
    fake.inject(Fault.status(503), "status", times=None)
    fake.inject(Fault.status(504), "create", times=None)
    fake.clear_faults()
    assert (await query(session, fake, two.id))[0] == 200
    assert fake.counters["status"] == 7


def test_inject_rejects_impossible_matches() -> None:
    fake = FakeStarVideos()
    with pytest.raises(ValueError, match="task_id"):
        fake.inject(Fault.status(500), "create", task_id="video_starvideos_1")
    with pytest.raises(ValueError, match="times"):
        fake.inject(Fault.status(500), times=0)


async def test_probabilistic_faults_are_seeded(session: aiohttp.ClientSession) -> None:
    outcomes = []
    for _ in range(2):
        async with FakeStarVideos(KEY, seed=11) as fake:
            task = fake.create_task()
            fake.inject(Fault.status(503), "status", times=None, probability=0.5)
            outcomes.append([(await query(session, fake, task.id))[0] for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 503}


def test_drop_after_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        Fault.drop_after(-1)


# -- observation ----------------------------------------------------------------------------


async def test_max_in_flight_counts_overlapping_api_requests(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeStarVideos(KEY, latency=0.05) as fake:
        task = fake.create_task()
        await asyncio.gather(*(query(session, fake, task.id) for _ in range(5)))
        peak = fake.max_in_flight
        assert 2 <= peak <= 5
        assert peak == overlap(fake.requests)  # agrees with the recorded intervals
        assert fake.max_in_flight_by_endpoint["status"] == peak
        await query(session, fake, task.id)
        assert fake.max_in_flight == peak
        fake.reset_stats()
        assert (fake.max_in_flight, fake.counters["status"], fake.requests) == (0, 0, [])


async def test_max_calls_in_window(fake: FakeStarVideos, session: aiohttp.ClientSession) -> None:
    task = fake.create_task()
    await asyncio.gather(*(query(session, fake, task.id) for _ in range(4)))
    await asyncio.sleep(0.1)
    await asyncio.gather(*(query(session, fake, task.id) for _ in range(3)))
    assert fake.max_calls_in_window("status", window=0.099) == 4
    assert fake.max_calls_in_window("status", window=10) == 7
    assert fake.max_calls_in_window("create", window=10) == 0
    assert fake.max_calls_in_window("any", window=10) == 7
    times = fake.arrival_times("status")
    assert times == sorted(times)
    assert fake.max_calls_in_window("status", window=times[-1] - times[0]) == 6  # half-open


async def test_requests_record_what_was_seen(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    task_id = await new_task(session, fake)
    await query(session, fake, task_id)
    created, queried = fake.requests
    assert (created.method, created.endpoint, created.status) == ("POST", "create", 200)
    assert created.path == "/kyyReactApiServer/v1/starvideos/videos"
    assert created.headers["authorization"] == AUTH["Authorization"]
    assert created.body.startswith(b"{")
    assert (queried.method, queried.endpoint, queried.task_id) == ("GET", "status", task_id)
    assert queried.ended is not None
    assert queried.started <= queried.ended
    assert fake.counters == {"create": 1, "status": 1}


async def test_record_requests_off_keeps_counters(session: aiohttp.ClientSession) -> None:
    async with FakeStarVideos(KEY, record_requests=False) as fake:
        await new_task(session, fake)
        assert (fake.requests, fake.counters["create"], fake.created) == ([], 1, 1)
        assert fake.max_calls_in_window("create") == 1


# -- determinism ----------------------------------------------------------------------------


async def run_seeded(session: aiohttp.ClientSession, seed: int) -> list[Any]:
    async with FakeStarVideos(KEY, seed=seed, failure_rate=0.5, auto_advance=False) as fake:
        ids = [await new_task(session, fake) for _ in range(12)]
        fake.advance(1000)
        answers = [(await query(session, fake, i))[1] for i in ids]
        for answer in answers:
            if answer["video_url"]:
                answer["video_url"] = answer["video_url"].split("/files/")[1]
            answer.pop("created")
        return [answers, [fake.video_bytes(i) for i in ids]]


async def test_everything_is_deterministic_under_a_seed(session: aiohttp.ClientSession) -> None:
    first = await run_seeded(session, 5)
    assert first == await run_seeded(session, 5)
    other = await run_seeded(session, 6)
    assert first[0][0]["id"] != other[0][0]["id"]
    assert first[1][0] != other[1][0]
    statuses = {answer["status"] for answer in first[0]}
    assert statuses == {"completed", "failed"}
    assert len({answer["id"] for answer in first[0]}) == 12
    assert len(set(first[1])) == 12


def test_video_bytes_look_like_an_mp4() -> None:
    fake = FakeStarVideos(video_size=1000)
    data = fake.video_bytes("video_starvideos_1")
    assert len(data) == 1000
    assert data[:4] == (32).to_bytes(4, "big")
    assert data[4:12] == b"ftypisom"
    assert data[36:40] == b"mdat"
    assert FakeStarVideos(video_size=10).video_bytes("x") == data[:10]


# -- the pytest fixture ---------------------------------------------------------------------


def test_loading_the_plugin_leaves_the_server_unimported() -> None:
    # pytest loads the plugin at startup; the fake comes only with a test that uses it.
    code = (
        "import sys, starvideos_async.testing._plugin\n"
        "fake = [m for m in sys.modules if m.startswith('starvideos_async.testing.')]\n"
        "assert fake == ['starvideos_async.testing._plugin'], fake\n"
        "assert 'aiohttp.web' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603


async def test_fixture_yields_a_started_fast_fake(
    fake_starvideos: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    assert fake_starvideos.time_scale == 0.001
    status, _ = await create(session, fake_starvideos, headers=_auth(fake_starvideos))
    assert status == 200


def _auth(fake: FakeStarVideos) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.api_key}"}


class TestFixtureOptions:
    @pytest.fixture
    def fake_starvideos_options(self) -> dict[str, Any]:
        return {"seed": 3, "failure_rate": 1.0}

    async def test_options_fixture_overrides_the_arguments(
        self, fake_starvideos: FakeStarVideos
    ) -> None:
        assert (fake_starvideos.seed, fake_starvideos.failure_rate) == (3, 1.0)
        assert fake_starvideos.time_scale == 0.001


async def test_settings_can_change_while_running(
    fake: FakeStarVideos, session: aiohttp.ClientSession
) -> None:
    fake.failure_rate = 1.0
    fake.advance(1000)
    assert fake.status_of(fake.create_task().id) == "queued"
    task = fake.create_task()
    fake.advance(1000)
    assert fake.status_of(task.id) == "failed"
    clock = fake.sim_now()
    fake.time_scale = 5.0
    assert fake.sim_now() == clock
    fake.api_key = "sk-rotated"
    assert (await create(session, fake))[0] == 401
    assert (await create(session, fake, headers={"Authorization": "Bearer sk-rotated"}))[0] == 200
    with pytest.raises(ValueError, match="time_scale"):
        fake.time_scale = 0
