"""Property tests: whatever the service sends or the caller passes, the SDK answers in its
own terms (a value, or an exception of its hierarchy), and every wait stays bounded.

Four properties, each also driven end to end through a real aiohttp server on 127.0.0.1:

* any JSON value (or any bytes) as a create or query answer gives a :class:`Video` or a
  :class:`MalformedResponseError`, never another exception;
* any arguments to :class:`VideoRequest` give a request the documented service accepts,
  or an :class:`InvalidRequestError`;
* any ``Retry-After`` header gives a finite wait in ``[0, max_retry_after]``;
* an answer over ``max_response_bytes`` is refused while it streams, not read into memory.

Example counts stay modest (the whole file runs in a few seconds); ``deadline=None``
wherever a socket is involved.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cattrs.gen import make_dict_structure_fn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from starvideos_async import (
    APIStatusError,
    AsyncStarVideos,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitError,
    RetryPolicy,
    StarVideosError,
    TaskStatus,
    Video,
    VideoRequest,
)
from starvideos_async._client import result_path
from starvideos_async._errors import RequestInfo
from starvideos_async._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    _loads,
    _parse_success,
    _status_error,
)
from starvideos_async._retry import parse_retry_after
from starvideos_async._serde import (
    _EXTRA_KEY,
    VIDEO_OVERRIDES,
    converter,
    request_body,
    structure_video,
)
from starvideos_async.testing._tasks import _validate

#: Properties of pure functions.
PURE = settings(max_examples=100, deadline=None)
#: Properties that cross a socket per example.
WIRE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

T = TypeVar("T")

CREATE = RequestInfo("POST", "/v1/starvideos/videos")
QUERY = RequestInfo("GET", "/v1/result/video_starvideos_1", "video_starvideos_1")
KNOWN_FIELDS = ("id", "object", "created", "model", "status", "video_url", "actualDuration")

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
    "id": st.sampled_from(["video_starvideos_1234567890", "", " ", "../x"]) | st.text(),
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
    try:
        return await call()
    except StarVideosError as exc:
        return exc


#: cattrs' own structure function for Video: the reference for the hand-written hook.
_GENERATED_VIDEO = make_dict_structure_fn(Video, converter, **VIDEO_OVERRIDES)


@PURE
@given(video_like, st.dictionaries(st.text(max_size=4), json_values, max_size=2))
@example({"id": "v", "status": "queued", "object": None}, {})
@example({"id": "v", "status": "queued", "created": 5.0, "actualDuration": 3}, {})
@example({"id": "v", "status": "queued", "created": True}, {})
@example({"id": "v"}, {})
def test_the_video_hook_is_what_cattrs_would_generate(
    fields: dict[str, Any], extra: dict[str, Any]
) -> None:
    def outcome(hook: Callable[[dict[str, Any]], Video]) -> Video | type[Exception]:
        try:
            return hook({**fields, _EXTRA_KEY: extra})
        except (TypeError, KeyError, ValueError) as exc:
            return type(exc)

    assert outcome(lambda o: converter.structure(o, Video)) == outcome(_GENERATED_VIDEO)


@pytest.mark.parametrize("value", [None, 5, "id", ["id", "status"]])
def test_the_video_hook_refuses_what_is_no_mapping_as_cattrs_would(value: object) -> None:
    with pytest.raises(TypeError):
        _GENERATED_VIDEO(value)
    with pytest.raises(TypeError):
        converter.structure(value, Video)


def _fields(info: RequestInfo) -> tuple[str, str, str | None]:
    """``_parse_success`` takes a request's fields (the info is built only on errors)."""
    return info.method, info.path, info.task_id


def _check_parsed(value: object, info: RequestInfo) -> None:
    """The property for one decoded answer: a faithful Video, or a clear malformed error."""
    raw = json.dumps(value).encode()
    video = _outcome(lambda: _parse_success(raw, structure_video, *_fields(info)))
    if isinstance(video, StarVideosError):
        assert isinstance(video, MalformedResponseError)
        assert str(video).startswith(str(info).split(" (")[0])
        assert video.request.path == info.path
        assert video.body == raw[:4096].decode("utf-8", "replace")
        return
    assert isinstance(value, dict)
    assert isinstance(video, Video)
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
    # The id the service gave must be usable to ask about the task again.
    try:
        path = result_path(video.id)
    except InvalidRequestError:
        pass
    else:
        assert path.startswith("/v1/result/")
        assert "/" not in path.removeprefix("/v1/result/")


# -- any JSON answer ---------------------------------------------------------------------


@PURE
@given(value=answers, info=st.sampled_from([CREATE, QUERY]))
@example(value={"id": "video_starvideos_1", "status": "queued"}, info=CREATE)
@example(value={"error": {"message": "quota", "code": 42}}, info=CREATE)
@example(value={"id": "x", "status": "completed", "error": {"message": "m"}}, info=QUERY)
@example(value={"code": 500, "msg": "upstream"}, info=QUERY)
@example(value={"id": 1234567890, "status": "queued"}, info=CREATE)
@example(value={"id": "x", "status": 2, "created": "today"}, info=QUERY)
@example(value={"id": "x", "status": "queued", "created": math.inf}, info=QUERY)
@example(value=[], info=CREATE)
def test_any_json_answer_parses_to_a_video_or_a_malformed_response_error(
    value: object, info: RequestInfo
) -> None:
    _check_parsed(value, info)


@PURE
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(raw=b"")
@example(raw=b"   \r\n")
@example(raw=b'{"id": "video_starvideos_')
@example(raw=b"<html><title>502 Bad Gateway</title></html>")
@example(raw=b"\xff\xfe\x00")
@example(raw=b"NaN")
def test_any_bytes_as_an_answer_give_a_video_or_a_malformed_response_error(raw: bytes) -> None:
    video = _outcome(lambda: _parse_success(raw, structure_video, *_fields(CREATE)))
    if isinstance(video, StarVideosError):
        assert isinstance(video, MalformedResponseError)
        assert video.request == CREATE
    else:
        assert isinstance(video, Video)


def _json_outcome(raw: bytes, loads: Any) -> tuple[str, object]:
    try:
        value = loads(raw)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, None
    return "ok", json.dumps(value, sort_keys=True)  # (NaN != NaN: compare the text)


@PURE
@given(
    raw=st.binary(max_size=60)
    | json_values.map(lambda v: json.dumps(v).encode())
    | json_values.map(lambda v: json.dumps(v, indent=1, ensure_ascii=False).encode())
    | st.tuples(
        st.sampled_from(["", " ", "\n", "\ufeff"]),
        json_values.map(json.dumps),
        st.sampled_from(["", " ", "\n", "x", "}"]),
    ).map(lambda t: "".join(t).encode())
    | json_values.map(lambda v: json.dumps(v).encode("utf-16"))
)
@example(raw=b"")
@example(raw=b"\xef\xbb\xbf{}")
@example(raw=b'{"a": 1} ')
@example(raw=b"[1] 2")
def test_the_fast_json_decoder_gives_json_loads_result_or_error(raw: bytes) -> None:
    """``_loads`` takes a short cut for the usual body: same value, same error type."""
    assert _json_outcome(raw, _loads) == _json_outcome(raw, json.loads)


@PURE
@given(raw=st.binary(max_size=200), status=st.sampled_from([400, 401, 404, 429, 500, 502]))
def test_any_bytes_as_an_error_answer_give_the_typed_status_error(raw: bytes, status: int) -> None:
    error = _status_error(status, raw, {}, QUERY)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status
    assert str(error).startswith(f"GET {QUERY.path}")


#: JSON nested deeper than the decoder's recursion limit, still far under the 1 MiB cap.
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
DEEP_IN_A_FIELD = b'{"id": "v", "status": "queued", "x": ' + DEEP_ARRAY + b"}"


@pytest.mark.parametrize("raw", [DEEP_ARRAY, DEEP_OBJECT, DEEP_IN_A_FIELD])
def test_deeply_nested_json_answer_is_a_malformed_response_error(raw: bytes) -> None:
    assert len(raw) < DEFAULT_MAX_RESPONSE_BYTES
    with pytest.raises(MalformedResponseError):
        _parse_success(raw, structure_video, *_fields(CREATE))


def test_deeply_nested_json_error_body_still_gives_the_status_error() -> None:
    error = _status_error(502, DEEP_ARRAY, {}, QUERY)
    assert isinstance(error, APIStatusError)
    assert error.status_code == 502


@pytest.mark.parametrize("status", [200, 502])
async def test_deeply_nested_answer_reaches_the_caller_as_an_sdk_error(
    canned: tuple[Canned, str], canned_client: AsyncStarVideos, status: int
) -> None:
    reply, _ = canned
    reply.status, reply.body = status, DEEP_ARRAY
    with pytest.raises((MalformedResponseError, APIStatusError)):
        await canned_client.retrieve("video_starvideos_1")


def test_an_id_with_a_lone_surrogate_cannot_escape_as_unicode_error() -> None:
    raw = b'{"id": "video_\\ud800", "status": "queued"}'
    try:
        video = _parse_success(raw, structure_video, *_fields(CREATE))
    except MalformedResponseError:
        return
    with pytest.raises(InvalidRequestError):
        result_path(video.id)


# -- the same, end to end through a real server -------------------------------------------


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
@given(value=answers)
async def test_any_json_answer_reaches_the_caller_as_a_video_or_a_malformed_response_error(
    canned: tuple[Canned, str], canned_client: AsyncStarVideos, value: object
) -> None:
    reply, _ = canned
    reply.status, reply.body = 200, json.dumps(value).encode()
    for call in (lambda: canned_client.submit("a kite"), lambda: canned_client.retrieve("v_1")):
        outcome = await _async_outcome(call)
        if isinstance(outcome, StarVideosError):
            assert isinstance(outcome, MalformedResponseError)
            assert outcome.request.path.startswith("/v1/")
        else:
            assert isinstance(value, dict)
            assert outcome is not None


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
        "model": st.just("starvideos_v3") | st.text(max_size=15) | anything,
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


@PURE
@given(kwargs=request_args)
@example(kwargs={"prompt": "a fox", "duration": True})
@example(kwargs={"prompt": "a fox", "duration": 5.0})
@example(kwargs={"prompt": "a fox", "images": "https://img.example/a.png"})
@example(kwargs={"prompt": "a fox", "images": ["https://a.example/1.png"] * 3})
@example(kwargs={"prompt": "a fox", "model": ["starvideos_v3"]})
@example(kwargs={"prompt": "a fox", "images": {"https://a.example/1.png": 1}})
@example(kwargs={"prompt": "a fox", "images": 12})
@example(kwargs={"prompt": "a fox", "model": "starvideos_v9", "allow_unknown_model": True})
def test_any_arguments_give_a_request_the_service_accepts_or_invalid_request_error(
    kwargs: dict[str, Any],
) -> None:
    request = _outcome(lambda: VideoRequest(**kwargs))
    if isinstance(request, StarVideosError):
        assert isinstance(request, InvalidRequestError)
        assert isinstance(request, ValueError)
        assert request.field.split("[")[0] in kwargs or request.field == "model"
        return
    body = request_body(request)
    wire = json.dumps(body, ensure_ascii=False).encode()  # exactly what _http sends
    if request.model == "starvideos_v3":
        assert not isinstance(_validate(json.loads(wire)), str), "the service would say 400"
    assert 0 <= len(request.images) <= 2 or request.allow_unknown_model


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
NOW = 1_774_836_724.0


def _check_delay(hint: float | None, policy: RetryPolicy = POLICY) -> None:
    assert hint is None or (math.isfinite(hint) and hint >= 0)
    for retry in (1, 2, 7, 1000):
        delay = policy.backoff(retry, hint)
        assert math.isfinite(delay)
        assert 0 <= delay <= (policy.max_retry_after if hint is not None else policy.max_backoff)


@PURE
@given(
    value=st.text(max_size=40)
    | st.floats().map(str)
    | st.integers().map(str)
    | st.sampled_from(["1e400", "-1e400", "inf", "nan", "1" * 400, "Fri, 31 Dec 9999 23:59:59"]),
    header=st.sampled_from(["Retry-After", "retry-after-ms"]),
)
def test_any_retry_after_gives_a_bounded_wait(value: str, header: str) -> None:
    _check_delay(parse_retry_after({header: value}, now=NOW))


@PURE
@given(
    when=st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
        timezones=st.just(dt.timezone.utc),
    )
)
def test_retry_after_as_any_http_date_gives_the_time_until_then_capped(when: dt.datetime) -> None:
    header = email.utils.format_datetime(when, usegmt=True)
    hint = parse_retry_after({"Retry-After": header}, now=NOW)
    assert hint is not None
    assert hint == pytest.approx(max(when.replace(microsecond=0).timestamp() - NOW, 0), abs=1)
    _check_delay(hint)


@PURE
@given(seconds=st.integers(0, 10**9) | st.floats(0, 1e12))
def test_retry_after_in_seconds_is_honoured_up_to_the_cap(seconds: float) -> None:
    hint = parse_retry_after({"Retry-After": str(seconds)})
    assert hint == pytest.approx(float(seconds))
    assert POLICY.backoff(1, hint) == min(float(seconds), POLICY.max_retry_after)


#: Header values aiohttp can send: printable latin-1, no CR/LF.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)


@WIRE
@given(
    value=header_text
    | st.datetimes(timezones=st.just(dt.timezone.utc)).map(
        lambda d: email.utils.format_datetime(d, usegmt=True)
    )
)
async def test_any_retry_after_over_the_wire_gives_bounded_waits(
    canned: tuple[Canned, str],
    canned_client: AsyncStarVideos,
    sleeps: list[float],
    value: str,
) -> None:
    reply, _ = canned
    reply.status, reply.body, reply.headers = (
        429,
        b'{"error": "slow down"}',
        {"Retry-After": value},
    )
    sleeps.clear()
    with pytest.raises(RateLimitError) as caught:
        await canned_client.submit("a kite")
    retry_after = caught.value.retry_after
    assert retry_after is None or (math.isfinite(retry_after) and retry_after >= 0)
    assert len(sleeps) == 2  # the client's max_retries: 429 surely created nothing
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


async def test_an_oversized_create_answer_is_not_retried(
    streaming: tuple[Stream, str], sleeps: list[float], api_key: str
) -> None:
    """Refusing a huge create answer must not re-send the create (it may have worked)."""
    plan, url = streaming
    plan.size, plan.announce = 5000, False
    async with AsyncStarVideos(api_key=api_key, base_url=url, max_response_bytes=4000) as client:
        with pytest.raises(MalformedResponseError):
            await client.submit("a kite")
    assert sleeps == []
