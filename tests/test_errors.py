"""Every error class, reached through real responses of the fake service and through
aioresponses, with messages taken from every documented error shape.

Each case runs against both backends (``fake`` and ``mock``) and both endpoints
(``create`` and ``status``), with retries off so that the first answer is the outcome.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import aiohttp
import pytest
from aioresponses import aioresponses

from starvideos_async import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncStarVideos,
    AuthenticationError,
    BadRequestError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RequestInfo,
    ResultExpiredError,
    ServerError,
    TaskFailedError,
    TaskStatus,
    TaskTimeoutError,
    Timeout,
    Video,
    VideoRequest,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos, Fault

Endpoint = Literal["create", "status"]
TASK_ID = "video_starvideos_1234567890"
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class Backend:
    """Answers the next create or status request with a canned response, then calls."""

    name: str
    client: AsyncStarVideos
    task_id: str

    def respond(
        self,
        endpoint: Endpoint,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        raise NotImplementedError

    async def call(self, endpoint: Endpoint) -> object:
        if endpoint == "create":
            return await self.client.submit("a fox in the snow")
        return await self.client.retrieve(self.task_id)

    def path(self, endpoint: Endpoint) -> str:
        if endpoint == "create":
            return "POST /v1/starvideos/videos"
        return f"GET /v1/result/{self.task_id} (task {self.task_id})"


class FakeBackend(Backend):
    name = "fake"

    def __init__(self, fake: FakeStarVideos, client: AsyncStarVideos) -> None:
        self.fake = fake
        self.client = client
        self.task_id = fake.create_task().id

    def respond(
        self,
        endpoint: Endpoint,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.fake.inject(Fault.status(status, body, headers, content_type), endpoint=endpoint)


class MockBackend(Backend):
    name = "mock"

    def __init__(self, mocked: aioresponses, client: AsyncStarVideos) -> None:
        self.mocked = mocked
        self.client = client
        self.task_id = TASK_ID
        base = str(client.base_url)
        self.urls = {
            "create": base + "/v1/starvideos/videos",
            "status": f"{base}/v1/result/{TASK_ID}",
        }

    def _register(self, endpoint: Endpoint, **kwargs: Any) -> None:
        method = self.mocked.post if endpoint == "create" else self.mocked.get
        method(self.urls[endpoint], **kwargs)

    def respond(
        self,
        endpoint: Endpoint,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._register(
            endpoint, status=status, body=body, content_type=content_type, headers=headers
        )


@pytest.fixture(params=["fake", "mock"])
async def backend(request: pytest.FixtureRequest, api_key: str) -> AsyncIterator[Backend]:
    """Each test runs against the fake service and against aioresponses."""
    if request.param == "fake":
        async with FakeStarVideos(api_key=api_key) as fake, fake.client(max_retries=0) as client:
            yield FakeBackend(fake, client)
    else:
        mocked = request.getfixturevalue("mock_api")
        base = "https://api.starvideos.test/kyyReactApiServer"
        async with AsyncStarVideos(api_key, base_url=base, max_retries=0) as client:
            yield MockBackend(mocked, client)


@pytest.fixture(params=["create", "status"])
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    value: Endpoint = request.param
    return value


async def _call(client: AsyncStarVideos, endpoint: Endpoint, task_id: str) -> object:
    if endpoint == "create":
        return await client.submit("a fox")
    return await client.retrieve(task_id)


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


def _says_which_request(exc: APIError, backend: Backend, endpoint: Endpoint) -> None:
    """The message starts with method, path and (when known) the task id."""
    prefix = backend.path(endpoint)
    if endpoint == "create" and exc.task_id is not None:
        prefix += f" (task {exc.task_id})"  # a create answer that still carried an id
    assert str(exc).startswith(prefix + ": "), str(exc)
    assert isinstance(exc.request, RequestInfo)
    if endpoint == "status":
        assert exc.task_id == backend.task_id


# -- HTTP error statuses -------------------------------------------------------------

STATUS_CASES = [
    (400, BadRequestError),
    (422, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, APIStatusError),
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CASES)
async def test_error_status_becomes_its_error_class(
    backend: Backend,
    endpoint: Endpoint,
    status: int,
    cls: type[APIStatusError],
    assert_no_secret: Callable[..., None],
) -> None:
    body = _json({"error": {"message": "nope", "code": "some_code"}})
    backend.respond(endpoint, status, body, headers={"X-Request-Id": "req-42"})
    with pytest.raises(APIStatusError) as info:
        await backend.call(endpoint)
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.message == f"HTTP {status}: nope (code some_code)"
    assert exc.body == {"error": {"message": "nope", "code": "some_code"}}
    assert exc.headers["X-Request-Id"] == "req-42"
    _says_which_request(exc, backend, endpoint)
    assert_no_secret(exc)


#: (body, content type, the message the error carries after "HTTP <status>: ")
SHAPES = [
    pytest.param(
        _json({"error": {"message": "quota exceeded", "code": "quota"}}),
        "application/json",
        "quota exceeded (code quota)",
        id="nested error",
    ),
    pytest.param(
        _json({"error": {"message": "quota exceeded"}}),
        "application/json",
        "quota exceeded",
        id="nested error without code",
    ),
    pytest.param(
        _json({"error": {"type": "invalid_request_error", "code": 7}}),
        "application/json",
        "invalid_request_error (code 7)",
        id="nested error with type only",
    ),
    pytest.param(
        _json({"error": "quota exceeded"}),
        "application/json",
        "quota exceeded",
        id="string error",
    ),
    pytest.param(
        _json({"message": "quota exceeded"}),
        "application/json",
        "quota exceeded",
        id="message",
    ),
    pytest.param(
        _json({"code": 1001, "msg": "quota exceeded"}),
        "application/json",
        "quota exceeded (code 1001)",
        id="code and msg",
    ),
    pytest.param(
        _json({"detail": "quota exceeded"}),
        "application/json",
        "quota exceeded",
        id="detail",
    ),
    pytest.param(
        b"quota exceeded\n",
        "text/plain",
        "quota exceeded",
        id="plain text",
    ),
    pytest.param(
        HTML_502.encode(),
        "text/html",
        "502 Bad Gateway",
        id="gateway html",
    ),
    pytest.param(b"", "application/json", "no error details in the response", id="empty"),
    pytest.param(
        _json({"unexpected": True}),
        "application/json",
        '{"unexpected": true}',
        id="json without a message",
    ),
    pytest.param(b"x" * 5000, "text/plain", "x" * 197 + "...", id="long text"),
    pytest.param(_json(["nope"]), "application/json", '["nope"]', id="json list"),
    pytest.param(
        b"<html><body><h1>Service down</h1></body></html>",
        "text/html",
        "Service down",
        id="html without title",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "message"), SHAPES)
async def test_message_is_extracted_from_every_error_shape(
    backend: Backend, endpoint: Endpoint, body: bytes, content_type: str, message: str
) -> None:
    backend.respond(endpoint, 400, body, content_type)
    with pytest.raises(BadRequestError) as info:
        await backend.call(endpoint)
    assert info.value.message == f"HTTP 400: {message}"
    assert str(info.value) == f"{backend.path(endpoint)}: HTTP 400: {message}"


async def test_non_json_error_body_is_kept_as_text(backend: Backend, endpoint: Endpoint) -> None:
    backend.respond(endpoint, 502, HTML_502.encode(), "text/html")
    with pytest.raises(ServerError) as info:
        await backend.call(endpoint)
    assert info.value.body == HTML_502


async def test_real_401_from_a_wrong_key(
    fake: FakeStarVideos, assert_no_secret: Callable[..., None]
) -> None:
    wrong = "sk-wrong-Hh3kPq9sVx"
    task_id = fake.create_task().id
    async with AsyncStarVideos(wrong, base_url=fake.base_url, max_retries=0) as client:
        with pytest.raises(AuthenticationError, match="Invalid API key") as create:
            await client.submit("a fox")
        with pytest.raises(AuthenticationError) as status:
            await client.retrieve(task_id)
    assert fake.created == 1  # only the one made directly
    assert_no_secret(create.value, status.value, secret=wrong)


async def test_real_400_from_the_fakes_validation(fake: FakeStarVideos) -> None:
    """A model the fake does not know passes the SDK's opt-out, the service refuses it."""
    async with fake.client() as client:
        with pytest.raises(BadRequestError, match="model must be") as info:
            await client.submit(
                VideoRequest("a fox", model="starvideos_o4", allow_unknown_model=True)
            )
    assert info.value.status_code == 400


async def test_real_404_for_an_unknown_task(fake_client: AsyncStarVideos) -> None:
    with pytest.raises(NotFoundError, match="not found") as info:
        await fake_client.retrieve("video_starvideos_9")
    assert str(info.value).startswith(
        "GET /v1/result/video_starvideos_9 (task video_starvideos_9): HTTP 404"
    )


# -- 429 and Retry-After ---------------------------------------------------------------


async def test_rate_limit_carries_retry_after_in_seconds(
    backend: Backend, endpoint: Endpoint
) -> None:
    backend.respond(endpoint, 429, _json({"error": "slow down"}), headers={"Retry-After": "7"})
    with pytest.raises(RateLimitError) as info:
        await backend.call(endpoint)
    assert info.value.retry_after == 7.0
    assert info.value.status_code == 429
    assert info.value.message == "HTTP 429: slow down"


async def test_rate_limit_carries_retry_after_as_an_http_date(
    backend: Backend, endpoint: Endpoint
) -> None:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    header = email.utils.format_datetime(when, usegmt=True)
    backend.respond(endpoint, 429, headers={"Retry-After": header})
    with pytest.raises(RateLimitError) as info:
        await backend.call(endpoint)
    assert info.value.retry_after is not None
    assert 28.0 < info.value.retry_after <= 30.0


async def test_rate_limit_without_retry_after_has_none(
    backend: Backend, endpoint: Endpoint
) -> None:
    backend.respond(endpoint, 429)
    with pytest.raises(RateLimitError) as info:
        await backend.call(endpoint)
    assert info.value.retry_after is None


async def test_fake_rate_limit_fault_round_trips(fake: FakeStarVideos) -> None:
    fake.inject(Fault.rate_limit(dt.datetime(2000, 1, 1)), endpoint="create")
    async with fake.client(max_retries=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.submit("a fox")
    assert info.value.retry_after == 0.0
    assert fake.created == 0


# -- 3xx -------------------------------------------------------------------------------


async def test_redirect_is_an_error_not_followed(backend: Backend, endpoint: Endpoint) -> None:
    backend.respond(endpoint, 302, headers={"Location": "https://elsewhere.example.com/x"})
    with pytest.raises(APIStatusError) as info:
        await backend.call(endpoint)
    assert type(info.value) is APIStatusError
    assert info.value.status_code == 302
    assert "redirects are not followed" in str(info.value)


# -- malformed 2xx ---------------------------------------------------------------------

MALFORMED = [
    pytest.param(HTML_502.encode(), "text/html", "not JSON: '502 Bad Gateway'", id="html"),
    pytest.param(b'{"id": "video_starvideos_', "application/json", "not JSON", id="truncated"),
    pytest.param(b"", "application/json", "an empty body", id="empty"),
    pytest.param(b"[1, 2]", "application/json", "expected a JSON object, got list", id="list"),
    pytest.param(b"null", "application/json", "expected a JSON object", id="null"),
    pytest.param(
        _json({"object": "video", "status": "queued"}),
        "application/json",
        "missing field 'id'",
        id="no id",
    ),
    pytest.param(
        _json({"error": {"message": "upstream model error", "code": "server_error"}}),
        "application/json",
        "the service answered with an error: upstream model error (code server_error)",
        id="200 with nested error",
    ),
    pytest.param(
        _json({"error": "upstream model error"}),
        "application/json",
        "the service answered with an error: upstream model error",
        id="200 with string error",
    ),
    pytest.param(
        _json({"message": "upstream model error"}),
        "application/json",
        "the service answered with an error: upstream model error",
        id="200 with message",
    ),
    pytest.param(
        _json({"code": 500, "msg": "upstream model error"}),
        "application/json",
        "the service answered with an error: upstream model error (code 500)",
        id="200 with code and msg",
    ),
]


#: Broken answers that still name a task: a create answered so created that task.
NAMING_A_TASK = [
    pytest.param(
        _json({"id": TASK_ID, "status": 2}),
        "application/json",
        "expected a status string, got int",
        id="numeric status",
    ),
    pytest.param(
        _json({"id": TASK_ID, "status": "queued", "created": "today"}),
        "application/json",
        "expected an integer, got str",
        id="string created",
    ),
    pytest.param(
        b'{"id": "' + TASK_ID.encode() + b'", "object": "video", "crea',
        "application/json",
        "not JSON",
        id="cut after the id",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "message"), MALFORMED)
async def test_malformed_2xx_is_a_malformed_response_error(
    backend: Backend,
    endpoint: Endpoint,
    body: bytes,
    content_type: str,
    message: str,
    assert_no_secret: Callable[..., None],
) -> None:
    backend.respond(endpoint, 200, body, content_type)
    with pytest.raises(MalformedResponseError) as info:
        await backend.call(endpoint)
    exc = info.value
    assert message in exc.message
    assert exc.body == body.decode()
    _says_which_request(exc, backend, endpoint)
    assert exc.__cause__ is not None
    assert_no_secret(exc)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.html(200),
        Fault.malformed_json(),
        Fault.empty_body(),
        Fault.wrong_types(),
        Fault.error_payload("nested"),
        Fault.error_payload("string"),
        Fault.error_payload("message"),
        Fault.error_payload("code_msg"),
    ],
    ids=["html", "truncated", "empty", "wrong types", "nested", "string", "message", "code_msg"],
)
async def test_fakes_malformed_faults_become_malformed_response_errors(
    fake: FakeStarVideos,
    fake_client: AsyncStarVideos,
    endpoint: Endpoint,
    fault: Fault,
    sleeps: list[float],
) -> None:
    """A create is never sent twice; a status call is retried, and the malformation
    surfaces once it outlasts the retries."""
    task_id = fake.create_task().id
    fake.inject(fault, endpoint=endpoint, times=None)
    with pytest.raises(MalformedResponseError):
        await _call(fake_client, endpoint, task_id)
    retries = 2  # the client's default (each after a backoff, recorded and not slept)
    assert fake.counters[endpoint] == (1 if endpoint == "create" else 1 + retries)
    assert len(sleeps) == (0 if endpoint == "create" else retries)


@pytest.mark.parametrize(("body", "content_type", "message"), NAMING_A_TASK)
async def test_broken_status_answer_naming_the_task_is_malformed(
    backend: Backend, body: bytes, content_type: str, message: str
) -> None:
    backend.respond("status", 200, body, content_type)
    with pytest.raises(MalformedResponseError) as info:
        await backend.call("status")
    assert message in info.value.message
    assert info.value.task_id == backend.task_id


@pytest.mark.parametrize(("body", "content_type", "message"), NAMING_A_TASK)
async def test_broken_create_answer_naming_the_task_returns_that_task(
    backend: Backend,
    body: bytes,
    content_type: str,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service created the task: submit() returns it (status unknown until the next
    poll) and says so once at WARNING, with the id and what was wrong."""
    backend.respond("create", 200, body, content_type)
    task = await backend.call("create")
    assert isinstance(task, VideoTask)
    assert task.id == TASK_ID
    assert task.latest is None
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert TASK_ID in warning.getMessage()
    assert message in warning.getMessage()


async def test_a_task_named_by_a_broken_create_answer_is_waited_on(
    fake: FakeStarVideos,
) -> None:
    fake.inject(Fault.wrong_types({"status": 2}, when="after"), endpoint="create")
    async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        task = await client.submit("a fox")
        video = await task.wait(timeout=10)
    assert [video.id] == list(fake.tasks)
    assert video.is_completed
    assert fake.counters["create"] == 1


async def test_oversized_answer_is_refused(fake: FakeStarVideos) -> None:
    task_id = fake.create_task().id
    async with fake.client(max_response_bytes=50, max_retries=0) as client:
        with pytest.raises(MalformedResponseError, match="exceeds the 50-byte limit") as info:
            await client.retrieve(task_id)
    assert info.value.task_id == task_id


@pytest.mark.parametrize("how", ["submit", "submit_many"])
async def test_a_create_answer_over_the_size_limit_that_named_its_task_keeps_the_task(
    fake: FakeStarVideos, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The service created the task and named it first: refusing the rest of its
    answer must not lose it (the same as an answer cut short after the id)."""
    long_answer = Fault.wrong_types({"pad": "x" * 200_000}, when="after")  # after the id
    fake.inject(long_answer, endpoint="create")
    async with fake.client(max_response_bytes=1000) as client:
        if how == "submit":
            task = await client.submit("a fox")
        else:
            (task,) = await client.submit_many([VideoRequest(prompt="a fox")])
    assert [task.id] == list(fake.tasks)
    assert task.latest is None  # its status comes with the next poll
    assert fake.counters["create"] == 1
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert task.id in warning.getMessage()
    assert "exceeds the 1000-byte limit" in warning.getMessage()


async def test_a_create_answer_over_the_size_limit_before_naming_its_task_is_an_error(
    fake: FakeStarVideos,
) -> None:
    """No id got through before the limit: the outcome is unknown, no task is invented."""
    body = json.dumps({"pad": "x" * 2_000_000, "id": "video_starvideos_1", "status": "queued"})
    fake.inject(Fault.status(200, body.encode(), when="after"), endpoint="create")
    async with fake.client(max_response_bytes=1000) as client:
        with pytest.raises(MalformedResponseError, match="exceeds the 1000-byte limit") as info:
            await client.submit("a fox")
    assert info.value.task_id is None
    assert fake.counters["create"] == 1
    assert client.orphaned_tasks == []


async def test_a_small_compressed_answer_that_inflates_past_the_limit_is_refused(
    fake: FakeStarVideos,
) -> None:
    """aiohttp decompresses on the fly: the limit counts what is read, not what is sent."""
    big = json.dumps({"object": "video", "status": "queued", "pad": " " * 200_000})  # no id
    body = gzip.compress(big.encode())
    assert len(body) < 2_000
    fake.inject(
        Fault.status(
            200, body, headers={"Content-Encoding": "gzip"}, content_type="application/json"
        ),
        endpoint="create",
    )
    async with fake.client(max_response_bytes=100_000) as client:
        with pytest.raises(MalformedResponseError, match="exceeds the 100000-byte limit"):
            await client.submit("a fox")


async def test_oversized_answer_without_length_is_refused(
    mock_api: aioresponses, api_key: str, create_url: str
) -> None:
    mock_api.post(create_url, body=b"{" + b" " * 500 + b"}")
    base = create_url.removesuffix("/v1/starvideos/videos")
    async with AsyncStarVideos(api_key, base_url=base, max_response_bytes=100) as client:
        with pytest.raises(MalformedResponseError, match="exceeds the 100-byte limit"):
            await client.submit("a fox")


# -- no (complete) response --------------------------------------------------------------


async def test_dropped_connection_is_a_connection_error(
    fake: FakeStarVideos, endpoint: Endpoint, assert_no_secret: Callable[..., None]
) -> None:
    task_id = fake.create_task().id
    # times=None: aiohttp itself re-sends an idempotent GET once after a disconnect.
    fake.inject(Fault.drop_connection(), endpoint=endpoint, times=None)
    async with fake.client(max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await _call(client, endpoint, task_id)
    exc = info.value
    assert type(exc) is APIConnectionError
    assert exc.request_sent
    assert str(exc).startswith(("POST /v1/starvideos/videos: ", f"GET /v1/result/{task_id} "))
    assert isinstance(exc.__cause__, aiohttp.ClientError)
    assert fake.counters["create"] == (1 if endpoint == "create" else 0)
    assert_no_secret(exc)


async def test_body_cut_short_is_a_connection_error(fake: FakeStarVideos) -> None:
    fake.inject(Fault.drop_after(10), endpoint="create")
    async with fake.client(max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.submit("a fox")
    assert info.value.request_sent
    assert fake.created == 1


async def test_read_timeout_is_a_timeout_error(
    fake: FakeStarVideos, endpoint: Endpoint, assert_no_secret: Callable[..., None]
) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.delay(2.0), endpoint=endpoint)
    async with fake.client(max_retries=0, timeout=Timeout(total=5, read=0.05)) as client:
        with pytest.raises(APITimeoutError) as info:
            await _call(client, endpoint, task_id)
    exc = info.value
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, APIConnectionError)
    assert exc.request_sent
    assert "timed out waiting for the response" in str(exc)
    assert_no_secret(exc)


async def test_total_timeout_is_a_timeout_error(fake: FakeStarVideos) -> None:
    fake.inject(Fault.delay(2.0), endpoint="create")
    async with fake.client(max_retries=0, timeout=0.05) as client:
        with pytest.raises(APITimeoutError):
            await client.submit("a fox")


async def test_connection_refused_is_a_connection_error_not_sent(
    closed_port: int, api_key: str, assert_no_secret: Callable[..., None]
) -> None:
    base = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    async with AsyncStarVideos(api_key, base_url=base, max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="could not connect") as info:
            await client.submit("a fox")
    assert type(info.value) is APIConnectionError
    assert info.value.request_sent is False
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("exception", "cls", "sent", "text"),
    [
        (aiohttp.ServerDisconnectedError(), APIConnectionError, True, "connection failed"),
        (aiohttp.ClientPayloadError("cut"), APIConnectionError, True, "connection failed: cut"),
        (asyncio.TimeoutError(), APITimeoutError, True, "timed out waiting for the response"),
        (aiohttp.ServerTimeoutError("read"), APITimeoutError, True, "timed out waiting"),
        (aiohttp.ConnectionTimeoutError("c"), APITimeoutError, False, "timed out connecting"),
    ],
    ids=["disconnected", "payload", "asyncio timeout", "read timeout", "connect timeout"],
)
async def test_aiohttp_exceptions_are_translated_and_chained(
    mock_api: aioresponses,
    mock_client: AsyncStarVideos,
    result_url: Callable[[str], str],
    exception: BaseException,
    cls: type[APIConnectionError],
    sent: bool,
    text: str,
) -> None:
    mock_api.get(result_url(TASK_ID), exception=exception)
    with pytest.raises(APIConnectionError) as info:
        await mock_client.retrieve(TASK_ID, max_retries=0)
    assert type(info.value) is cls
    assert info.value.request_sent is sent
    assert info.value.__cause__ is exception
    assert text in str(info.value)
    assert info.value.task_id == TASK_ID


# -- the errors declared for waiting and downloading -----------------------------------------


def test_task_failed_error_says_why_and_keeps_the_video() -> None:
    video = Video(id=TASK_ID, status=TaskStatus.FAILED, error="content moderation")
    exc = TaskFailedError(video)
    assert str(exc) == f"task {TASK_ID} ended failed: content moderation"
    assert (exc.task_id, exc.error, exc.video) == (TASK_ID, "content moderation", video)
    cancelled = TaskFailedError(Video(id=TASK_ID, status=TaskStatus.CANCELLED))
    assert str(cancelled) == f"task {TASK_ID} ended cancelled: no reason given"


def test_task_timeout_error_says_the_task_still_runs() -> None:
    video = Video(id=TASK_ID, status=TaskStatus.PROCESSING)
    exc = TaskTimeoutError(TASK_ID, video, 600)
    assert isinstance(exc, TimeoutError)
    assert "not finished after 600s (last status: processing)" in str(exc)
    assert "keeps running" in str(exc)
    assert "last status: unknown" in str(TaskTimeoutError(TASK_ID, None, 1.5))


def test_result_expired_error_names_task_and_status() -> None:
    exc = ResultExpiredError(TASK_ID, 410)
    assert (exc.task_id, exc.status_code) == (TASK_ID, 410)
    assert "answered 410" in str(exc)
    assert "24 hours" in str(exc)


def test_request_info_prints_method_path_and_task() -> None:
    assert str(RequestInfo("POST", "/v1/starvideos/videos")) == "POST /v1/starvideos/videos"
    assert str(RequestInfo("GET", "/v1/result/x", "x")) == "GET /v1/result/x (task x)"


def test_invalid_request_error_is_a_value_error_with_field_and_value() -> None:
    exc = InvalidRequestError("duration", 99, "allowed: 3..15 seconds")
    assert isinstance(exc, ValueError)
    assert str(exc) == "invalid duration: 99; allowed: 3..15 seconds"
