"""The client: construction, lifecycle, sessions, request conformance, submit_many."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from starvideos_async import (
    DEFAULT_BASE_URL,
    AsyncStarVideos,
    ClientClosedError,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PollPolicy,
    StarVideosError,
    SubmitManyError,
    TaskFailedError,
    TaskStatus,
    Timeout,
    Video,
    VideoRequest,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos, Fault

#: The documented example request (create-task page) and its answer.
DOC_PROMPT = "赛博朋克城市夜景,镜头慢慢推进"
DOC_BODY = {"prompt": DOC_PROMPT, "model": "starvideos_v3", "duration": 5, "ratio": "16:9"}
DOC_ANSWER = {
    "id": "video_starvideos_1234567890",
    "object": "video",
    "created": 1774836724,
    "model": "starvideos_v3",
    "status": "queued",
    "error": None,
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STARVIDEOS_API_KEY", raising=False)
    monkeypatch.delenv("STARVIDEOS_BASE_URL", raising=False)


# -- construction --------------------------------------------------------------------


async def test_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeStarVideos
) -> None:
    monkeypatch.setenv("STARVIDEOS_API_KEY", fake.api_key)
    async with AsyncStarVideos(base_url=fake.base_url) as client:
        await client.submit("a fox")
    assert fake.requests[0].headers["Authorization"] == f"Bearer {fake.api_key}"


async def test_explicit_key_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeStarVideos
) -> None:
    monkeypatch.setenv("STARVIDEOS_API_KEY", "sk-from-env")
    async with AsyncStarVideos(fake.api_key, base_url=fake.base_url) as client:
        await client.submit("a fox")
    assert fake.requests[0].headers["Authorization"] == f"Bearer {fake.api_key}"


async def test_base_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeStarVideos
) -> None:
    monkeypatch.setenv("STARVIDEOS_BASE_URL", fake.base_url)
    async with AsyncStarVideos(fake.api_key) as client:
        assert str(client.base_url) == fake.base_url
        await client.submit("a fox")
    assert fake.created == 1


def test_base_url_defaults_to_the_documented_one(api_key: str) -> None:
    assert str(AsyncStarVideos(api_key).base_url) == DEFAULT_BASE_URL
    assert DEFAULT_BASE_URL == "https://zcbservice.aizfw.cn/kyyReactApiServer"


def test_explicit_base_url_wins_and_loses_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("STARVIDEOS_BASE_URL", "https://env.example.com/api")
    client = AsyncStarVideos(api_key, base_url="https://gw.example.com/sv/")
    assert str(client.base_url) == "https://gw.example.com/sv"


@pytest.mark.parametrize("key", [None, "", "   "])
def test_no_key_is_a_clear_error_at_construction(key: str | None) -> None:
    with pytest.raises(ConfigurationError, match="STARVIDEOS_API_KEY") as info:
        AsyncStarVideos(key)
    assert info.value.field == "api_key"


def test_key_with_a_newline_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncStarVideos("sk-abc\r\nX-Injected: 1")
    assert "sk-abc" not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://api.example.com",
        "not a url",
        "https://",
        "https://api.example.com/?x=1",
        "https://api.example.com/#top",
        "/v1",
        "https://[::1",
    ],
)
def test_bad_base_url_is_refused(api_key: str, base_url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncStarVideos(api_key, base_url=base_url)
    assert info.value.field == "base_url"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"max_concurrency": 2.0}, "max_concurrency"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"max_status_rate": 0}, "max_status_rate"),
        ({"max_status_rate": float("inf")}, "max_status_rate"),
        ({"max_status_rate": True}, "max_status_rate"),
        ({"timeout": -1}, "timeout.total"),
    ],
)
def test_bad_settings_are_refused(api_key: str, kwargs: dict[str, Any], field: str) -> None:
    """Settings are not requests: a ConfigurationError (also a ValueError)."""
    with pytest.raises(ConfigurationError) as info:
        AsyncStarVideos(api_key, **kwargs)
    assert info.value.field == field


def test_construction_outside_an_event_loop_holds_no_resources(api_key: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = AsyncStarVideos(api_key)
        del client
        gc.collect()
    assert caught == []


def test_repr_shows_base_url_and_state(api_key: str) -> None:
    client = AsyncStarVideos(api_key, base_url="https://gw.example.com/sv", max_concurrency=3)
    assert (
        repr(client) == "<AsyncStarVideos base_url='https://gw.example.com/sv' max_concurrency=3>"
    )


async def test_repr_says_closed_after_aclose(api_key: str) -> None:
    client = AsyncStarVideos(api_key)
    await client.aclose()
    assert repr(client).endswith(" closed>")


# -- lifecycle and sessions ----------------------------------------------------------


async def test_closed_client_refuses_every_call(fake: FakeStarVideos) -> None:
    client = fake.client()
    async with client:
        await client.submit("a fox")
    assert client.closed
    with pytest.raises(ClientClosedError, match="closed"):
        await client.submit("a fox")
    with pytest.raises(ClientClosedError):
        await client.retrieve("video_starvideos_1")
    with pytest.raises(ClientClosedError):
        await client.submit_many([VideoRequest("a"), VideoRequest("b")])
    await client.aclose()  # idempotent
    assert fake.counters["create"] == 1


async def test_closed_client_error_is_a_runtime_error_and_a_starvideos_error() -> None:
    assert issubclass(ClientClosedError, RuntimeError)
    assert issubclass(ClientClosedError, StarVideosError)


async def test_caller_session_is_used_and_never_closed(fake: FakeStarVideos) -> None:
    async with aiohttp.ClientSession(headers={"X-Probe": "caller-session"}) as session:
        async with fake.client(session=session) as client:
            await client.submit("a fox")
        assert not session.closed
        async with fake.client(session=session) as again:
            await again.submit("a fox")
        assert not session.closed
    assert [r.headers.get("X-Probe") for r in fake.requests] == ["caller-session"] * 2


async def test_closed_caller_session_is_a_clear_error(fake: FakeStarVideos) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    async with fake.client(session=session) as client:
        with pytest.raises(ClientClosedError, match="session"):
            await client.submit("a fox")


async def test_no_unclosed_session_warnings(fake: FakeStarVideos, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with fake.client() as client:
            await client.submit("a fox")
            await client.retrieve((await client.submit("a cat")).id)
            done = fake.create_task()
            fake.complete(done.id)
            await client.download(await client.retrieve(done.id), tmp_path)  # files' session
        del client
        unused = fake.client()
        await unused.aclose()
        del unused
        gc.collect()
        await asyncio.sleep(0)
    assert [str(w.message) for w in caught] == []


# -- request conformance -------------------------------------------------------------


async def test_documented_example_sends_the_documented_request_to_the_fake(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    task = await fake_client.submit(DOC_PROMPT, duration=5, ratio="16:9")
    [rec] = fake.requests
    assert rec.method == "POST"
    assert rec.path == "/kyyReactApiServer/v1/starvideos/videos"
    assert rec.query == ""
    assert rec.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert rec.headers["Content-Type"] == "application/json"
    assert json.loads(rec.body.decode("utf-8")) == DOC_BODY
    assert rec.status == 200
    assert task.id == rec.task_id
    assert task.status is TaskStatus.QUEUED


async def test_documented_example_sends_the_documented_request_under_aioresponses(
    mock_api: aioresponses, mock_client: AsyncStarVideos, create_url: str, api_key: str
) -> None:
    mock_api.post(create_url, payload=DOC_ANSWER)
    task = await mock_client.submit(DOC_PROMPT)
    [call] = mock_api.requests[("POST", URL(create_url))]
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {api_key}"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(call.kwargs["data"]) == DOC_BODY
    assert task.id == DOC_ANSWER["id"]
    assert task.latest is not None
    assert task.latest.created == DOC_ANSWER["created"]
    assert task.status is TaskStatus.QUEUED


@pytest.mark.parametrize(
    "images",
    [
        ["https://cdn.example.com/a.png"],
        ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"],
    ],
)
async def test_images_are_sent_as_a_json_array(
    fake: FakeStarVideos, fake_client: AsyncStarVideos, images: list[str]
) -> None:
    task = await fake_client.submit("a fox", images=images, ratio="9:16", duration=15)
    assert fake.requests[0].json == {
        "prompt": "a fox",
        "model": "starvideos_v3",
        "duration": 15,
        "ratio": "9:16",
        "images": images,
    }
    assert fake.tasks[task.id].images == tuple(images)


async def test_submit_accepts_a_ready_request(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    request = VideoRequest("a fox", duration=7)
    task = await fake_client.submit(request)
    assert task.request is request
    assert fake.requests[0].json["duration"] == 7


async def test_submit_refuses_a_request_plus_keywords(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    with pytest.raises(TypeError, match="not both"):
        await fake_client.submit(VideoRequest("a fox"), duration=7)
    assert fake.requests == []


async def test_retrieve_is_one_get_of_the_result_path(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    fake.auto_advance = False  # the task stays queued however slow this machine is
    created = fake.create_task()
    video = await fake_client.retrieve(created.id)
    [rec] = fake.requests
    assert (rec.method, rec.path) == ("GET", f"/kyyReactApiServer/v1/result/{created.id}")
    assert rec.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert "Content-Type" not in rec.headers
    assert rec.body == b""
    assert video.id == created.id
    assert video.status is TaskStatus.QUEUED


async def test_retrieve_escapes_the_id_into_one_path_segment(
    mock_api: aioresponses, mock_client: AsyncStarVideos
) -> None:
    with pytest.raises(StarVideosError) as info:
        await mock_client.retrieve("../v1/x?y", max_retries=0)
    assert info.value.request.path == "/v1/result/..%2Fv1%2Fx%3Fy"  # type: ignore[attr-defined]


async def test_task_handle_needs_no_network(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    task = fake_client.task("video_starvideos_123")
    assert isinstance(task, VideoTask)
    assert (task.id, task.status, task.latest, task.request) == (
        "video_starvideos_123",
        None,
        None,
        None,
    )
    assert task.client is fake_client
    assert fake.requests == []


@pytest.mark.parametrize("task_id", ["", "   ", "x" * 513, None, 5, ".", ".."])
async def test_task_and_retrieve_refuse_an_impossible_id(
    fake: FakeStarVideos, fake_client: AsyncStarVideos, task_id: Any
) -> None:
    with pytest.raises(InvalidRequestError):
        fake_client.task(task_id)
    with pytest.raises(InvalidRequestError):
        await fake_client.retrieve(task_id)
    assert fake.requests == []


async def test_retrieve_of_an_unknown_id_is_not_found(fake_client: AsyncStarVideos) -> None:
    with pytest.raises(NotFoundError) as info:
        await fake_client.retrieve("video_starvideos_404")
    assert info.value.task_id == "video_starvideos_404"


# -- concurrency ---------------------------------------------------------------------


async def test_submit_many_200_stays_within_8_in_flight_and_keeps_input_order() -> None:
    async with FakeStarVideos(time_scale=0.001, latency=0.002) as fake:
        requests = [VideoRequest(f"prompt {i}", duration=3 + i % 13) for i in range(200)]
        async with fake.client(max_concurrency=8) as client:
            tasks = await client.submit_many(requests)
        assert fake.max_in_flight == 8
        assert fake.created == 200
    assert [t.request for t in tasks] == requests
    assert [fake.tasks[t.id].prompt for t in tasks] == [r.prompt for r in requests]
    assert len({t.id for t in tasks}) == 200


async def test_every_request_of_a_client_shares_one_limiter() -> None:
    async with FakeStarVideos(time_scale=0.001, latency=0.002) as fake:
        ids = [fake.create_task().id for _ in range(20)]
        async with fake.client(max_concurrency=3) as client:
            await asyncio.gather(
                client.submit_many([VideoRequest(f"p{i}") for i in range(20)]),
                *(client.retrieve(task_id) for task_id in ids),
            )
        assert fake.max_in_flight == 3


class CountingLimiter:
    """A plugged-in limiter: one slot, counting entries."""

    def __init__(self) -> None:
        self.entered = 0
        self.inside = 0
        self.peak = 0

    async def __aenter__(self) -> None:
        self.entered += 1
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        await asyncio.sleep(0)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.inside -= 1


async def test_a_plugged_in_limiter_sees_every_request(fake: FakeStarVideos) -> None:
    limiter = CountingLimiter()
    async with fake.client(limiter=limiter) as client:
        tasks = await client.submit_many([VideoRequest(f"p{i}") for i in range(5)])
        await client.retrieve(tasks[0].id)
    assert limiter.entered == 6 == len(fake.requests)
    assert limiter.inside == 0


async def test_submit_many_of_nothing_sends_nothing(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    assert await fake_client.submit_many([]) == []
    assert fake.requests == []


async def test_submit_many_error_keeps_the_created_tasks(fake: FakeStarVideos) -> None:
    fake.inject(Fault.status(403), endpoint="create")
    requests = [VideoRequest(f"p{i}") for i in range(3)]
    async with fake.client(max_concurrency=1) as client:
        with pytest.raises(SubmitManyError) as info:
            await client.submit_many(requests)
    exc = info.value
    assert isinstance(exc.results[0], PermissionDeniedError)
    assert [t.request for t in exc.tasks] == requests[1:]
    assert sorted(t.id for t in exc.tasks) == sorted(fake.tasks)
    assert list(exc.errors) == [0]
    assert "1 of 3 creates failed" in str(exc)
    assert "2 tasks were created" in str(exc)


async def test_submit_many_can_return_errors_in_place(fake: FakeStarVideos) -> None:
    fake.inject(Fault.status(403), endpoint="create")
    async with fake.client(max_concurrency=1) as client:
        results = await client.submit_many(
            [VideoRequest("a"), VideoRequest("b")], return_exceptions=True
        )
    assert isinstance(results[0], PermissionDeniedError)
    assert isinstance(results[1], VideoTask)
    assert fake.created == 1


async def test_submit_many_passes_max_retries_to_each_create(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    fake.inject(Fault.rate_limit("1"), endpoint="create", times=3)
    async with fake.client(max_concurrency=1, max_retries=0) as client:
        tasks = await client.submit_many([VideoRequest("a")], max_retries=3)
    assert len(tasks) == 1
    assert sleeps == [1.0, 1.0, 1.0]


async def test_generate_submits_and_waits(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        video = await client.generate("a fox", duration=3, timeout=5)
    assert video.is_completed
    assert fake.created == 1


# -- timeouts and the status rate gate -------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (30, Timeout(total=30)),
        (2.5, Timeout(total=2.5)),
        (None, Timeout(total=None)),
        (Timeout(total=None, connect=1, read=2), Timeout(total=None, connect=1, read=2)),
    ],
)
def test_timeout_accepts_a_number_an_object_or_none(
    given: float | Timeout | None, expected: Timeout
) -> None:
    assert Timeout.coerce(given) == expected


def test_timeout_maps_onto_aiohttp() -> None:
    mapped = Timeout(total=60, connect=5, read=10).to_aiohttp()
    assert (mapped.total, mapped.connect, mapped.sock_read) == (60, 5, 10)


@pytest.mark.parametrize("field", ["total", "connect", "read"])
@pytest.mark.parametrize("value", [0, -1, True, "5"])
def test_timeout_refuses_non_positive_numbers(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        Timeout(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == f"timeout.{field}"


# -- waiting on many -------------------------------------------------------------------

FAST = PollPolicy.fixed(0.005)


async def test_wait_all_returns_videos_in_input_order(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=FAST) as client:
        tasks = await client.submit_many([VideoRequest(f"p{i}") for i in range(3)])
        fake.hold(tasks[0].id)  # the first finishes last
        for task in tasks[1:]:
            fake.complete(task.id)
        pending = asyncio.ensure_future(client.wait_all(tasks))
        await asyncio.sleep(0.05)
        fake.complete(tasks[0].id)
        videos = await asyncio.wait_for(pending, 5)
    assert [v.id for v in videos] == [t.id for t in tasks]
    assert all(v.is_completed for v in videos)


async def test_wait_all_raises_the_first_failure(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=FAST) as client:
        tasks = await client.submit_many([VideoRequest("a"), VideoRequest("b")])
        fake.fail(tasks[1].id, "content moderation")
        with pytest.raises(TaskFailedError, match="content moderation") as info:
            await client.wait_all(tasks)
    assert info.value.task_id == tasks[1].id


async def test_wait_all_can_return_failures_in_place(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=FAST) as client:
        tasks = await client.submit_many([VideoRequest("a"), VideoRequest("b")])
        fake.complete(tasks[0].id)
        fake.fail(tasks[1].id, "content moderation")
        unknown = client.task("video_starvideos_0")
        results = await client.wait_all([*tasks, unknown], return_exceptions=True)
    assert isinstance(results[0], Video)
    assert results[0].is_completed
    assert isinstance(results[1], TaskFailedError)
    assert isinstance(results[2], NotFoundError)


async def test_as_completed_yields_tasks_in_finishing_order(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=FAST) as client:
        tasks = await client.submit_many([VideoRequest("a"), VideoRequest("b")])
        fake.hold(tasks[0].id)
        fake.complete(tasks[1].id)
        order = []
        async for task in client.as_completed(tasks):
            order.append(task.id)
            if len(order) == 1:
                fake.complete(tasks[0].id)
    assert order == [tasks[1].id, tasks[0].id]


async def test_as_completed_raises_an_error_that_ended_a_wait(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=FAST) as client:
        with pytest.raises(NotFoundError):
            async for _ in client.as_completed([client.task("video_starvideos_0")]):
                pass


async def test_status_calls_under_a_cap_are_spread_evenly_not_in_bursts(
    fake: FakeStarVideos,
) -> None:
    """At 20/s, 30 concurrent retrieve() calls arrive about 51 ms apart: no quarter of a
    second at the service sees more than its share (5), give or take one."""
    ids = [fake.create_task().id for _ in range(30)]
    async with fake.client(max_status_rate=20, max_concurrency=30) as client:
        await asyncio.gather(*(client.retrieve(i) for i in ids))
    assert fake.max_calls_in_window("status", 0.25) <= 6
    assert fake.max_calls_in_window("status", 1.0) <= 20
