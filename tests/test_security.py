"""The API key stays secret: never in a repr, an error or a log record, never sent anywhere
but the base URL's origin, and never over plain http to another machine by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

import pytest
from aioresponses import aioresponses
from yarl import URL

from starvideos_async import (
    APIStatusError,
    AsyncStarVideos,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PollPolicy,
    RequestInfo,
    ServerError,
    StarVideosError,
    TaskFailedError,
    Timeout,
)
from starvideos_async.testing import FakeStarVideos, Fault


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STARVIDEOS_API_KEY", raising=False)
    monkeypatch.delenv("STARVIDEOS_BASE_URL", raising=False)


# -- repr / str ----------------------------------------------------------------------------


async def test_key_is_absent_from_reprs_of_client_transport_tasks_and_videos(
    fake: FakeStarVideos, api_key: str, assert_no_secret: Callable[..., None]
) -> None:
    async with fake.client() as client:
        task = await client.submit("a fox")
        video = await client.retrieve(task.id)
        handle = client.task(task.id)
        assert_no_secret(client, task, video, handle, task.request)
        assert_no_secret(repr(vars(client)))
    assert_no_secret(client)


def test_key_is_absent_from_a_client_built_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, api_key: str, assert_no_secret: Callable[..., None]
) -> None:
    monkeypatch.setenv("STARVIDEOS_API_KEY", api_key)
    client = AsyncStarVideos()
    assert_no_secret(client, str(client), repr(vars(client)))


async def test_key_is_absent_from_every_kind_of_error(
    fake: FakeStarVideos, api_key: str, assert_no_secret: Callable[..., None]
) -> None:
    errors: list[BaseException] = []
    async with fake.client(max_retries=0, timeout=Timeout(read=0.05)) as client:
        for fault in [
            Fault.status(400),
            Fault.status(403),
            Fault.rate_limit("1"),
            Fault.html(502),
            Fault.malformed_json(),
            Fault.wrong_types(),  # (with no task behind it: a numeric id, so no task)
            Fault.error_payload("nested"),
            Fault.drop_connection(),
            Fault.delay(1.0),
        ]:
            fake.inject(fault, endpoint="create")
            with pytest.raises(StarVideosError) as info:
                await client.submit("a fox")
            errors.append(info.value)
        with pytest.raises(NotFoundError) as missing:
            await client.retrieve("video_starvideos_0")
        errors.append(missing.value)
        failed = fake.create_task()
        fake.fail(failed.id, "content moderation")
        with pytest.raises(TaskFailedError) as task_failed:
            await client.task(failed.id).wait(poll_policy=PollPolicy.fixed(0.01), timeout=5)
        errors.append(task_failed.value)
    assert len(errors) == 11
    assert_no_secret(*errors)


async def test_a_rejected_key_is_absent_from_the_authentication_error(
    fake: FakeStarVideos, assert_no_secret: Callable[..., None]
) -> None:
    wrong = "sk-live-Wq2Xr7Vb9NmTzKp3"
    async with AsyncStarVideos(wrong, base_url=fake.base_url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.submit("a fox")
    assert_no_secret(info.value, client, secret=wrong)


def test_key_is_absent_from_configuration_errors(
    api_key: str, assert_no_secret: Callable[..., None]
) -> None:
    errors = []
    for base_url in ["http://api.example.com", "ftp://x", "https://x/?k=1"]:
        with pytest.raises(ConfigurationError) as info:
            AsyncStarVideos(api_key, base_url=base_url)
        errors.append(info.value)
    with pytest.raises(ConfigurationError) as bad_key:
        AsyncStarVideos(api_key + "\n")
    errors.append(bad_key.value)
    assert_no_secret(*errors)


class _RecordingPolicy(PollPolicy):
    """A poll policy of a user's own that keeps (and could log) everything it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        self.seen.append(("next_delay", {"age": age, "polls": polls, "duration": duration}))
        return 0.005

    def observe(self, *, running_at: float, finished_by: float, duration: int | None) -> None:
        self.seen.append(("observe", {"running_at": running_at, "finished_by": finished_by}))

    def running(self, *, key: Hashable, age: float, duration: int | None) -> None:
        self.seen.append(("running", {"key": key, "age": age, "duration": duration}))

    def ended(self, *, key: Hashable) -> None:
        self.seen.append(("ended", {"key": key}))


async def test_a_poll_policy_of_ones_own_is_never_handed_the_key(
    fake: FakeStarVideos, assert_no_secret: Callable[..., None]
) -> None:
    """User code called by the scheduler (it may log what it gets) sees no key: not in
    the arguments, nor in what the opaque wait keys hold."""
    policy = _RecordingPolicy()
    async with fake.client(poll_policy=policy) as client:
        task = await client.submit("a fox")
        await task.wait(timeout=5)
        other = await client.submit("a cat")
        await other.wait(timeout=5, poll_policy=policy)
    assert {name for name, _ in policy.seen} == {"next_delay", "running", "observe", "ended"}
    for _, arguments in policy.seen:
        for value in arguments.values():
            assert_no_secret(value, repr(getattr(value, "__dict__", value)))
        assert_no_secret(repr(arguments))


# -- logs ----------------------------------------------------------------------------------


async def test_debug_logs_of_a_full_flow_never_contain_the_key(
    fake: FakeStarVideos,
    api_key: str,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, aiohttp's, asyncio's
    fake.inject(Fault.status(503), endpoint="status", times=1)
    async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        task = await client.submit("a fox", duration=3)
        video = await task.wait(timeout=5)
        with pytest.raises(NotFoundError):
            await client.retrieve("video_starvideos_0")
        fake.inject(Fault.status(500, when="after"), endpoint="create")
        with pytest.raises(ServerError):
            await client.submit("a cat")
    assert video.is_completed
    ours = [r for r in caplog.records if r.name.startswith("starvideos_async")]
    messages = [r.getMessage() for r in ours]
    assert any("POST /v1/starvideos/videos -> 200" in m for m in messages)
    assert any(f"GET /v1/result/{task.id} -> 503" in m for m in messages)
    assert any("retry 1/2" in m for m in messages)
    assert any("GET /v1/result/video_starvideos_0 -> 404" in m for m in messages)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        assert api_key not in text, record.name
        assert "Bearer" not in text, record.name
        assert "Authorization" not in text, record.name


# -- where Authorization goes --------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed_so_the_key_stays_home(
    fake: FakeStarVideos, sleeps: list[float], code: int
) -> None:
    task_id = fake.create_task().id
    elsewhere = f"{fake.files_url}/files/{task_id}.mp4"
    fake.inject(Fault.status(code, "", {"Location": elsewhere}), endpoint="any", times=None)
    async with fake.client() as client:
        with pytest.raises(APIStatusError, match="redirects are not followed") as status:
            await client.retrieve(task_id)
        with pytest.raises(APIStatusError, match="redirects are not followed") as create:
            await client.submit("a fox")
    assert status.value.status_code == create.value.status_code == code
    assert fake.counters["file"] == 0
    assert fake.counters["status"] == fake.counters["create"] == 1
    api_host = URL(fake.base_url).authority
    assert {r.host for r in fake.requests} == {api_host}


async def test_requests_are_sent_with_redirects_off_under_aioresponses(
    mock_api: aioresponses, mock_client: AsyncStarVideos, create_url: str
) -> None:
    mock_api.post(create_url, status=307, headers={"Location": "https://evil.example.com/steal"})
    mock_api.post("https://evil.example.com/steal", payload={"id": "x", "status": "queued"})
    with pytest.raises(APIStatusError):
        await mock_client.submit("a fox")
    [call] = mock_api.requests[("POST", URL(create_url))]
    assert call.kwargs["allow_redirects"] is False
    assert ("POST", URL("https://evil.example.com/steal")) not in mock_api.requests


async def test_only_the_api_origin_receives_authorization(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    task = await fake_client.submit("a fox", duration=3)
    await task.wait(poll_policy=PollPolicy.fixed(0.01), timeout=5)
    assert fake.requests
    for rec in fake.requests:
        assert rec.endpoint in ("create", "status")
        assert rec.host == URL(fake.base_url).authority


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.example.com/kyyReactApiServer",
        "http://10.0.0.7:8080",
        "http://127.0.0.1.nip.io",
        "HTTP://api.example.com",
    ],
)
def test_plain_http_to_another_host_is_refused(api_key: str, base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="clear text") as info:
        AsyncStarVideos(api_key, base_url=base_url)
    assert info.value.field == "base_url"


def test_plain_http_from_the_environment_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("STARVIDEOS_BASE_URL", "http://api.example.com")
    with pytest.raises(ConfigurationError, match="clear text"):
        AsyncStarVideos(api_key)


def test_plain_http_to_another_host_is_allowed_on_request(api_key: str) -> None:
    client = AsyncStarVideos(api_key, base_url="http://gw.internal/sv", allow_insecure_http=True)
    assert str(client.base_url) == "http://gw.internal/sv"


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8000/sv", "http://localhost:8000", "http://[::1]:8000"]
)
def test_plain_http_to_loopback_is_allowed(api_key: str, base_url: str) -> None:
    assert AsyncStarVideos(api_key, base_url=base_url).base_url.scheme == "http"


def test_the_leak_check_itself_catches_a_leak(
    api_key: str, assert_no_secret: Callable[..., None]
) -> None:
    info = RequestInfo("GET", "/v1/result/x")
    in_body = ServerError("boom", request=info, status_code=500, body={"echo": api_key})
    chained = ServerError("boom", request=info, status_code=500)
    chained.__cause__ = RuntimeError(api_key)
    for leaky in [RuntimeError(f"bad key {api_key}"), in_body, chained, f"<Thing {api_key}>"]:
        with pytest.raises(AssertionError):
            assert_no_secret(leaky)
