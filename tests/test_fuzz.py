"""Property tests: whatever the service sends or the caller passes, the SDK answers in its
own terms (a value, or an exception of its hierarchy), and every wait stays bounded.

Driven end to end through the public API, against the fake service (answers injected with
``Fault.status(200, body=...)``) or a little aiohttp server on 127.0.0.1:

* any JSON value (or any bytes) as a create or query answer gives a :class:`Video` exactly
  when it is the documented object, else a :class:`MalformedResponseError` (or, for a
  create whose answer named its task, that task, kept), never another exception;
* any error body with any error status gives the typed status error;
* any arguments to :class:`VideoRequest` give a request the documented service accepts
  (sent as built), or an :class:`InvalidRequestError` before anything is sent;
* any ``Retry-After`` header gives finite waits in ``[0, max_retry_after]``;
* an answer over ``max_response_bytes`` is refused while it streams, not read into memory.

Example counts stay modest (the whole file runs in seconds); ``deadline=None``
wherever a socket is involved.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from starvideos_async import (
    APIStatusError,
    AsyncStarVideos,
    BadRequestError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StarVideosError,
    TaskStatus,
    Video,
    VideoRequest,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos, Fault

#: Properties of pure functions.
PURE = settings(max_examples=100, deadline=None)
#: Properties that cross a socket per example.
WIRE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

T = TypeVar("T")

#: The documented default of ``max_response_bytes`` (1 MiB).
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
KNOWN_FIELDS = ("id", "object", "created", "model", "status", "video_url", "actualDuration")
TASK_ID = "video_starvideos_1"

# -- strategies --------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
#: Plausible values for each documented field, mixed with anything at all.
_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["video_starvideos_1234567890", "", " ", "../x", ".", "a/b", "?x"])
    | st.text(),
    "object": st.just("video") | json_scalars,
    "created": st.integers(0, 2**40) | st.floats() | json_scalars,
    "model": st.just("starvideos_v3") | json_scalars,
    "status": st.sampled_from([s.value for s in TaskStatus]) | st.text(max_size=12),
    "video_url": st.just("https://files.example/v.mp4") | json_scalars,
    "actualDuration": st.floats() | st.integers() | json_scalars,
    "error": st.sampled_from([None, "boom", ""]) | json_values,
}
video_like = st.builds(
    lambda known, extra: {**extra, **known},
    st.fixed_dictionaries({}, optional={k: v | json_values for k, v in _FIELD_VALUES.items()}),
    st.dictionaries(st.text(max_size=8).map(lambda k: "x-" + k), json_values, max_size=3),
)
answers = video_like | json_values


def _same_json(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _outcome(call: Callable[[], T]) -> T | StarVideosError:
    """What ``call`` returns, or the SDK error it raises (any other exception escapes)."""
    try:
        return call()
    except StarVideosError as exc:
        return exc


async def _async_outcome(call: Callable[[], Awaitable[T]]) -> T | StarVideosError:
    """What ``call`` returns, or the SDK error it raises (any other exception escapes)."""
    try:
        return await call()
    except StarVideosError as exc:
        return exc


# -- any answer to a create or a status query, served by the fake service ----------------


@pytest.fixture
async def fake_service(api_key: str) -> AsyncIterator[FakeStarVideos]:
    async with FakeStarVideos(api_key=api_key, time_scale=0.001) as service:
        yield service


@pytest.fixture
async def plain_client(fake_service: FakeStarVideos) -> AsyncIterator[AsyncStarVideos]:
    """No retries: each call gets exactly the one answer served."""
    async with fake_service.client(max_retries=0) as client:
        yield client


async def _served(
    fake: FakeStarVideos, client: AsyncStarVideos, raw: bytes, endpoint: str
) -> Video | VideoTask | StarVideosError:
    """What a create (``submit``) or a status query (``retrieve``) makes of ``raw``: a
    Video, an error, or (a create whose broken answer named its task) the task without
    a snapshot: it exists, its status comes with the next poll."""
    fake.clear_faults()
    fault = Fault.status(200, body=raw, content_type="application/json")
    fake.inject(fault, endpoint="create" if endpoint == "create" else "status")
    if endpoint == "create":
        task = await _async_outcome(lambda: client.submit("a kite"))
        if isinstance(task, VideoTask) and task.latest is not None:
            assert task.latest.id == task.id
            return task.latest
        return task
    return await _async_outcome(lambda: client.retrieve(TASK_ID))


async def _check_answer(
    fake: FakeStarVideos, client: AsyncStarVideos, raw: bytes, endpoint: str
) -> Video | None:
    """The property for one answer: a faithful Video, or a clear malformed error (or, for
    a create whose answer named its task, that task, kept). ``None`` when no Video."""
    outcome = await _served(fake, client, raw, endpoint)
    assert fake.requests[-1].fault is not None  # the answer served was ``raw``
    if isinstance(outcome, Video):
        return outcome
    if isinstance(outcome, VideoTask):
        assert endpoint == "create"
        assert outcome.latest is None
        assert outcome.id.strip()
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):  # cut short after naming it
            assert b'"id"' in raw
        else:
            assert outcome.id == value["id"]
        return None
    assert isinstance(outcome, MalformedResponseError), repr(outcome)
    if endpoint == "create":
        assert outcome.request.path == "/v1/starvideos/videos"
        assert str(outcome).startswith("POST /v1/starvideos/videos")
    else:
        assert outcome.request.path == f"/v1/result/{TASK_ID}"
        assert outcome.task_id == TASK_ID
    assert outcome.body == raw[:4096].decode("utf-8", "replace")
    return None


async def _check_video(
    fake: FakeStarVideos, client: AsyncStarVideos, video: Video, value: object
) -> None:
    """A Video is the JSON object it came from, and its id can be asked about again."""
    assert isinstance(value, dict)
    assert isinstance(video.id, str)
    assert video.id
    assert video.id == value["id"]
    assert video.status_value == value["status"]
    assert video.is_terminal == (value["status"] in ("completed", "failed", "cancelled"))
    assert video.created is None or type(video.created) is int
    assert video.video_url is None or isinstance(video.video_url, str)
    assert video.error is None or isinstance(video.error, str)
    for key, item in value.items():
        if key not in (*KNOWN_FIELDS, "error"):
            assert _same_json(video.extra[key], item), f"unknown field {key!r} was not kept"
    # The id the service gave reaches the service again as one path segment, intact, or
    # is refused before sending (a blank id, "." or "..", one too long).
    fake.clear_faults()
    again = await _async_outcome(lambda: client.retrieve(video.id))
    if isinstance(again, InvalidRequestError):
        assert again.field == "task_id"
        assert video.id in (".", "..") or not video.id.strip() or len(video.id) > 512
    else:
        assert isinstance(again, NotFoundError), repr(again)  # the fake knows no such task
        assert fake.requests[-1].endpoint == "status"
        assert fake.requests[-1].task_id == video.id


@WIRE
@given(value=answers, endpoint=st.sampled_from(["create", "status"]))
@example(value={"id": "video_starvideos_1", "status": "queued"}, endpoint="create")
@example(value={"error": {"message": "quota", "code": 42}}, endpoint="create")
@example(value={"id": "x", "status": "completed", "error": {"message": "m"}}, endpoint="status")
@example(value={"code": 500, "msg": "upstream"}, endpoint="status")
@example(value={"id": 1234567890, "status": "queued"}, endpoint="create")
@example(value={"id": "x", "status": 2, "created": "today"}, endpoint="status")
@example(value={"id": "x", "status": "queued", "created": math.inf}, endpoint="status")
@example(value={"id": "../x", "status": "queued"}, endpoint="status")
@example(value={"id": "a/b?c#d", "status": "queued"}, endpoint="create")
@example(value={"id": "..", "status": "queued"}, endpoint="status")
@example(value={"id": " ", "status": "queued"}, endpoint="status")
@example(value=[], endpoint="create")
async def test_any_json_answer_gives_a_video_or_a_malformed_response_error(
    fake_service: FakeStarVideos, plain_client: AsyncStarVideos, value: object, endpoint: str
) -> None:
    raw = json.dumps(value).encode()
    video = await _check_answer(fake_service, plain_client, raw, endpoint)
    assert (video is not None) == _usable(value), video
    if video is not None:
        await _check_video(fake_service, plain_client, video, value)


def _usable(value: object) -> bool:
    """Whether an answer is the documented object: a usable id, a status string, the
    other documented fields absent or of their types, no error object."""
    if not isinstance(value, dict):
        return False
    task_id, created = value.get("id"), value.get("created")
    return (
        isinstance(task_id, str)
        and task_id != ""
        and _encodable(task_id)
        and isinstance(value.get("status"), str)
        and isinstance(value.get("object", "video"), str)
        and all(value.get(k) is None or isinstance(value[k], str) for k in _OPTIONAL_TEXT)
        and (created is None or type(created) is int or _integral_float(created))
        and (value.get("actualDuration") is None or type(value["actualDuration"]) in (int, float))
    )


_OPTIONAL_TEXT = ("model", "video_url", "error")


def _integral_float(value: object) -> bool:
    return type(value) is float and value.is_integer()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@WIRE
@given(
    raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    endpoint=st.sampled_from(["create", "status"]),
)
@example(raw=b"", endpoint="create")
@example(raw=b"   \r\n", endpoint="status")
@example(raw=b'{"id": "video_starvideos_', endpoint="create")
@example(raw=b"<html><title>502 Bad Gateway</title></html>", endpoint="status")
@example(raw=b"\xff\xfe\x00", endpoint="status")
@example(raw=b"NaN", endpoint="create")
@example(raw=b'\xef\xbb\xbf{"id": "video_starvideos_1", "status": "queued"}', endpoint="status")
@example(raw=b'{"id": "video_starvideos_1", "status": "queued"} x', endpoint="status")
async def test_any_bytes_as_an_answer_give_a_video_or_a_malformed_response_error(
    fake_service: FakeStarVideos, plain_client: AsyncStarVideos, raw: bytes, endpoint: str
) -> None:
    video = await _check_answer(fake_service, plain_client, raw, endpoint)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON: never a Video
        assert video is None
    else:
        assert (video is not None) == _usable(value)


#: JSON nested deeper than the decoder's recursion limit, still far under the 1 MiB cap.
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
DEEP_IN_A_FIELD = b'{"id": "v", "status": "queued", "x": ' + DEEP_ARRAY + b"}"


@pytest.mark.parametrize("endpoint", ["create", "status"])
@pytest.mark.parametrize("raw", [DEEP_ARRAY, DEEP_OBJECT, DEEP_IN_A_FIELD])
async def test_deeply_nested_json_answer_is_a_malformed_response_error(
    fake_service: FakeStarVideos, plain_client: AsyncStarVideos, raw: bytes, endpoint: str
) -> None:
    assert len(raw) < DEFAULT_MAX_RESPONSE_BYTES
    outcome = await _served(fake_service, plain_client, raw, endpoint)
    if endpoint == "create" and raw is DEEP_IN_A_FIELD:
        # It named its task before the deep field: the task exists, and is kept
        assert isinstance(outcome, VideoTask)
        assert (outcome.id, outcome.latest) == ("v", None)
    else:
        assert isinstance(outcome, MalformedResponseError)


async def test_deeply_nested_json_error_body_still_gives_the_status_error(
    fake_service: FakeStarVideos, plain_client: AsyncStarVideos
) -> None:
    fake_service.inject(Fault.status(502, body=DEEP_ARRAY, content_type="application/json"))
    with pytest.raises(ServerError) as caught:
        await plain_client.retrieve(TASK_ID)
    assert caught.value.status_code == 502
    assert caught.value.task_id == TASK_ID


@pytest.mark.parametrize("endpoint", ["create", "status"])
async def test_an_id_with_a_lone_surrogate_is_a_malformed_response_error(
    fake_service: FakeStarVideos, plain_client: AsyncStarVideos, endpoint: str
) -> None:
    """JSON can carry an id UTF-8 cannot: it could never be sent back, so it is refused."""
    raw = b'{"id": "video_\\ud800", "status": "queued"}'
    outcome = await _served(fake_service, plain_client, raw, endpoint)
    assert isinstance(outcome, MalformedResponseError)
    assert "Unicode" in str(outcome)


# -- a little server answering whatever it is told ------------------------------------------


@attrs.define
class Canned:
    """What the little server answers next."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = attrs.Factory(dict)
    seen: int = 0


@pytest.fixture
async def canned() -> AsyncIterator[tuple[Canned, str]]:
    """A 127.0.0.1 server answering every request with ``Canned``; yields it and its URL."""
    reply = Canned()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        reply.seen += 1
        return web.Response(
            status=reply.status,
            body=reply.body,
            headers={"Content-Type": "application/json", **reply.headers},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield reply, str(server.make_url("/api"))
    finally:
        await server.close()


@pytest.fixture
async def canned_client(
    canned: tuple[Canned, str], sleeps: list[float], api_key: str
) -> AsyncIterator[AsyncStarVideos]:
    async with AsyncStarVideos(api_key=api_key, base_url=canned[1], timeout=5) as client:
        yield client


@WIRE
@given(
    body=st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()),
    status=st.sampled_from([400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504]),
)
async def test_any_error_answer_reaches_the_caller_as_its_typed_status_error(
    canned: tuple[Canned, str],
    canned_client: AsyncStarVideos,
    sleeps: list[float],
    body: bytes,
    status: int,
) -> None:
    reply, _ = canned
    reply.status, reply.body = status, body
    with pytest.raises(APIStatusError) as caught:
        await canned_client.retrieve("video_starvideos_1")
    assert caught.value.status_code == status
    assert caught.value.task_id == "video_starvideos_1"
    assert all(0 <= s <= RetryPolicy().max_retry_after for s in sleeps)


# -- any arguments to VideoRequest --------------------------------------------------------

anything = (
    json_scalars
    | st.binary(max_size=8)
    | st.lists(json_scalars, max_size=3)
    | st.tuples(json_scalars)
    | st.builds(object)
)
image_urls = st.sampled_from(
    ["https://img.example/a.png", "http://img.example/b.jpg", "ftp://x/y", "/rel.png"]
) | st.text(max_size=30)
request_args = st.fixed_dictionaries(
    {"prompt": st.text(max_size=40) | anything},
    optional={
        "model": st.sampled_from(["starvideos_v3", "starvideos_o3"])
        | st.text(max_size=15)
        | anything,
        "duration": st.integers(-5, 30) | anything,
        "ratio": st.sampled_from(["16:9", "9:16", "1:1", ""]) | anything,
        "images": st.none()
        | st.lists(image_urls, max_size=3)
        | st.lists(image_urls, max_size=3).map(tuple)
        | st.text(max_size=10)
        | anything,
        "allow_unknown_model": st.booleans(),
        "key": st.none() | st.text(max_size=10) | anything,
    },
)


@WIRE
@given(kwargs=request_args)
@example(kwargs={"prompt": "a fox", "duration": True})
@example(kwargs={"prompt": "a fox", "duration": 5.0})
@example(kwargs={"prompt": "a fox", "images": "https://img.example/a.png"})
@example(kwargs={"prompt": "a fox", "images": ["https://a.example/1.png"] * 3})
@example(kwargs={"prompt": "a fox", "model": ["starvideos_v3"]})
@example(kwargs={"prompt": "a fox", "images": {"https://a.example/1.png": 1}})
@example(kwargs={"prompt": "a fox", "images": 12})
@example(kwargs={"prompt": "a fox", "model": "starvideos_v9", "allow_unknown_model": True})
@example(kwargs={"prompt": " a fox ", "images": ("http://img.example/b.jpg",), "key": "k"})
async def test_any_arguments_give_a_request_the_service_accepts_or_invalid_request_error(
    fake_service: FakeStarVideos, plain_client: AsyncStarVideos, kwargs: dict[str, Any]
) -> None:
    """A request the SDK builds is sent as built, and the service (the fake follows the
    docs) creates it, unless the caller opted out of the model check."""
    fake_service.clear_faults()
    seen, created = len(fake_service.requests), fake_service.created
    request = _outcome(lambda: VideoRequest(**kwargs))
    if isinstance(request, StarVideosError):
        assert isinstance(request, InvalidRequestError)
        assert isinstance(request, ValueError)
        assert request.field.split("[")[0] in kwargs or request.field == "model"
        return
    outcome = await _async_outcome(lambda: plain_client.submit(request))
    assert len(fake_service.requests) == seen + 1
    sent = fake_service.requests[-1].json
    assert sent == {
        "prompt": request.prompt,
        "model": request.model,
        **({"duration": request.duration} if request.duration is not None else {}),
        **({"ratio": request.ratio} if request.ratio is not None else {}),
        **({"images": list(request.images)} if request.images else {}),
    }
    assert 0 <= len(request.images) <= 2 or request.allow_unknown_model
    if request.model in ("starvideos_v3", "starvideos_o3"):
        assert isinstance(outcome, VideoTask), f"the service said {outcome!r}"
        assert fake_service.created == created + 1
    else:
        assert isinstance(outcome, BadRequestError)  # the fake knows only documented models


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": "a fox \ud800 at dawn"},
        {"prompt": "a fox", "model": "m\udfff", "allow_unknown_model": True},
        {"prompt": "a fox", "ratio": "1:\ud800", "model": "x", "allow_unknown_model": True},
    ],
    ids=["prompt", "unknown-model", "ratio-of-unknown-model"],
)
async def test_text_that_utf8_cannot_encode_is_refused_before_sending(
    canned: tuple[Canned, str], canned_client: AsyncStarVideos, kwargs: dict[str, Any]
) -> None:
    reply, _ = canned
    with pytest.raises(InvalidRequestError):
        await canned_client.submit(VideoRequest(**kwargs))
    assert reply.seen == 0


# -- any Retry-After -----------------------------------------------------------------------

POLICY = RetryPolicy(max_retries=3, initial_backoff=0.5, max_backoff=8.0, max_retry_after=60.0)

#: Header values aiohttp can send: printable latin-1, no CR/LF.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)


@PURE
@given(hint=st.none() | st.floats(allow_nan=False), retry=st.integers(1, 10**6))
def test_any_hint_and_retry_number_give_a_bounded_backoff(hint: float | None, retry: int) -> None:
    delay = POLICY.backoff(retry, hint)
    assert math.isfinite(delay)
    assert 0 <= delay <= (POLICY.max_retry_after if hint is not None else POLICY.max_backoff)


async def _rate_limited_waits(
    canned: tuple[Canned, str], api_key: str, sleeps: list[float], headers: dict[str, str]
) -> tuple[float | None, list[float]]:
    """A status query answered 429 with ``headers`` every time: the hint and the waits."""
    reply, url = canned
    reply.status, reply.body, reply.headers = 429, b'{"error": "slow down"}', headers
    sleeps.clear()
    async with AsyncStarVideos(api_key=api_key, base_url=url, retry_policy=POLICY) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.retrieve(TASK_ID)
    assert len(sleeps) == POLICY.max_retries
    return caught.value.retry_after, list(sleeps)


@WIRE
@given(
    value=header_text
    | st.floats().map(str)
    | st.integers().map(str)
    | st.sampled_from(["1e400", "-1e400", "inf", "nan", "1" * 400, "Fri, 31 Dec 9999 23:59:59"])
    | st.datetimes(timezones=st.just(dt.timezone.utc)).map(
        lambda d: email.utils.format_datetime(d, usegmt=True)
    ),
    header=st.sampled_from(["Retry-After", "retry-after-ms"]),
)
async def test_any_retry_after_over_the_wire_gives_bounded_waits(
    canned: tuple[Canned, str], api_key: str, sleeps: list[float], value: str, header: str
) -> None:
    hint, waits = await _rate_limited_waits(canned, api_key, sleeps, {header: value})
    assert hint is None or (math.isfinite(hint) and hint >= 0)
    if hint is None:
        assert all(0 <= s <= POLICY.max_backoff for s in waits)
    else:
        assert waits == [min(hint, POLICY.max_retry_after)] * POLICY.max_retries


@WIRE
@given(
    when=st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
        timezones=st.just(dt.timezone.utc),
    )
)
async def test_retry_after_as_any_http_date_gives_the_time_until_then_capped(
    canned: tuple[Canned, str], api_key: str, sleeps: list[float], when: dt.datetime
) -> None:
    header = email.utils.format_datetime(when, usegmt=True)
    before = time.time()
    hint, waits = await _rate_limited_waits(canned, api_key, sleeps, {"Retry-After": header})
    after = time.time()
    assert hint is not None
    then = when.replace(microsecond=0).timestamp()
    assert max(then - after, 0) - 1 <= hint <= max(then - before, 0) + 1
    assert waits == [min(hint, POLICY.max_retry_after)] * POLICY.max_retries


@WIRE
@given(seconds=st.integers(0, 10**9) | st.floats(0, 1e12))
async def test_retry_after_in_seconds_is_honoured_up_to_the_cap(
    canned: tuple[Canned, str], api_key: str, sleeps: list[float], seconds: float
) -> None:
    hint, waits = await _rate_limited_waits(canned, api_key, sleeps, {"Retry-After": str(seconds)})
    assert hint == pytest.approx(float(seconds))
    assert waits == [min(float(seconds), POLICY.max_retry_after)] * POLICY.max_retries


async def test_a_429_to_a_create_is_retried_within_the_bounds(
    canned: tuple[Canned, str], canned_client: AsyncStarVideos, sleeps: list[float]
) -> None:
    """A 429 surely created nothing: the create is sent again, as many times as allowed."""
    reply, _ = canned
    reply.status, reply.body, reply.headers = 429, b"{}", {"Retry-After": "1e400"}
    with pytest.raises(RateLimitError):
        await canned_client.submit("a kite")
    assert reply.seen == 3  # the client's max_retries: 2
    assert len(sleeps) == 2
    assert all(0 <= s <= 60.0 and math.isfinite(s) for s in sleeps)


# -- the response size cap -----------------------------------------------------------------


@attrs.define
class Stream:
    """How the streaming server answers: how much, announced or chunked."""

    size: int | None  # None: never stops
    announce: bool
    sent: int = 0


PAD_HEAD = b'{"id": "video_starvideos_1", "status": "queued", "pad": "'


def _json_of_size(size: int) -> bytes:
    return PAD_HEAD + b"x" * (size - len(PAD_HEAD) - 2) + b'"}'


@pytest.fixture
async def streaming() -> AsyncIterator[tuple[Stream, str]]:
    """A server streaming a JSON body of ``Stream.size`` bytes (or forever), in 64 KiB."""
    plan = Stream(size=None, announce=False)

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        plan.sent = 0
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        size = plan.size
        body = _json_of_size(size) if size is not None else None
        if plan.announce:
            resp.content_length = size if size is not None else 10 * 2**30
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            if body is not None:
                for start in range(0, len(body), 65536):
                    await resp.write(body[start : start + 65536])
                    plan.sent += len(body[start : start + 65536])
            else:
                await resp.write(b'{"pad": "')
                while True:  # until the client hangs up
                    await resp.write(b"x" * 65536)
                    plan.sent += 65536
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client refused the rest: exactly what is tested
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield plan, str(server.make_url("/api"))
    finally:
        await server.close()


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_an_endless_answer_is_refused_at_the_default_cap_not_read_into_memory(
    streaming: tuple[Stream, str], announce: bool, api_key: str
) -> None:
    plan, url = streaming
    plan.size, plan.announce = None, announce
    async with AsyncStarVideos(api_key=api_key, base_url=url, max_retries=0) as client:
        with anyio.fail_after(10), pytest.raises(MalformedResponseError) as caught:
            await client.retrieve("video_starvideos_1")
    assert f"exceeds the {DEFAULT_MAX_RESPONSE_BYTES}-byte limit" in str(caught.value)
    assert caught.value.task_id == "video_starvideos_1"


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("size", "cap", "accepted"),
    [(1000, 1000, True), (1001, 1000, False), (200_000, 150_000, False), (200_000, 10**6, True)],
)
async def test_an_answer_is_accepted_up_to_max_response_bytes_and_refused_past_it(
    streaming: tuple[Stream, str],
    api_key: str,
    announce: bool,
    size: int,
    cap: int,
    accepted: bool,
) -> None:
    plan, url = streaming
    plan.size, plan.announce = size, announce
    async with AsyncStarVideos(
        api_key=api_key, base_url=url, max_retries=0, max_response_bytes=cap
    ) as client:
        if accepted:
            video = await client.retrieve("video_starvideos_1")
            assert len(video.extra["pad"]) == size - len(PAD_HEAD) - 2
            return
        with pytest.raises(MalformedResponseError, match=f"{cap}-byte limit"):
            await client.retrieve("video_starvideos_1")


async def test_an_oversized_create_answer_is_not_retried_and_keeps_the_task_it_named(
    streaming: tuple[Stream, str], sleeps: list[float], api_key: str
) -> None:
    """Refusing a huge create answer must not re-send the create (it worked), nor lose
    the task its start named."""
    plan, url = streaming
    plan.size, plan.announce = 5000, False
    async with AsyncStarVideos(api_key=api_key, base_url=url, max_response_bytes=4000) as client:
        task = await client.submit("a kite")
    assert task.id == "video_starvideos_1"
    assert sleeps == []
