"""Retries: what is retried, how often, how long it waits; and that a create is never
sent twice when the service may already have created the task.

Waits are recorded, not slept: the ``sleeps`` fixture turns on
``starvideos_async.testing.instant_retries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import math
import random
from collections.abc import Callable

import aiohttp
import anyio
import pytest
from aioresponses import aioresponses
from yarl import URL

from starvideos_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncStarVideos,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StarVideosError,
    Timeout,
)
from starvideos_async.testing import FakeStarVideos, Fault

OK = {"id": "video_starvideos_1", "object": "video", "status": "queued", "error": None}


# -- status queries (GET) ---------------------------------------------------------------

RETRIED_GET_FAULTS = [
    pytest.param(Fault.status(500), id="500"),
    pytest.param(Fault.html(502), id="502 html"),
    pytest.param(Fault.status(503), id="503"),
    pytest.param(Fault.status(504), id="504"),
    pytest.param(Fault.status(408), id="408"),
    pytest.param(Fault.rate_limit(None), id="429"),
    pytest.param(Fault.drop_after(5), id="body cut short"),
]


@pytest.mark.parametrize("fault", RETRIED_GET_FAULTS)
async def test_get_is_retried_and_then_succeeds(
    fake: FakeStarVideos, sleeps: list[float], fault: Fault
) -> None:
    task_id = fake.create_task().id
    fake.inject(fault, endpoint="status", times=2)
    async with fake.client(max_retries=2) as client:
        video = await client.retrieve(task_id)
    assert video.id == task_id
    assert fake.counters["status"] == 3
    assert len(sleeps) == 2


async def test_get_is_retried_after_a_dropped_connection(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    task_id = fake.create_task().id
    # aiohttp re-sends an idempotent request once on its own after a disconnect, so
    # every attempt of ours costs two drops.
    fake.inject(Fault.drop_connection(), endpoint="status", times=4)
    async with fake.client(max_retries=2) as client:
        await client.retrieve(task_id)
    assert len(sleeps) == 2


async def test_get_is_retried_after_a_read_timeout(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.delay(2.0), endpoint="status", times=1)
    async with fake.client(timeout=Timeout(read=0.05)) as client:
        await client.retrieve(task_id)
    assert fake.counters["status"] == 2
    assert len(sleeps) == 1


async def test_get_gives_up_after_max_retries(fake: FakeStarVideos, sleeps: list[float]) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.status(503), endpoint="status", times=None)
    async with fake.client(max_retries=3) as client:
        with pytest.raises(ServerError):
            await client.retrieve(task_id)
    assert fake.counters["status"] == 4
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.status(400), BadRequestError),
        (Fault.status(422), BadRequestError),
        (Fault.status(401), AuthenticationError),
        (Fault.status(403), PermissionDeniedError),
        (Fault.status(404), NotFoundError),
        (Fault.status(409), APIStatusError),
    ],
)
async def test_get_is_not_retried_on_a_definite_answer(
    fake: FakeStarVideos, sleeps: list[float], fault: Fault, error: type[StarVideosError]
) -> None:
    task_id = fake.create_task().id
    fake.inject(fault, endpoint="status", times=None)
    async with fake.client(max_retries=5) as client:
        with pytest.raises(error):
            await client.retrieve(task_id)
    assert fake.counters["status"] == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "fault",
    [
        Fault.malformed_json(),
        Fault.wrong_types(),
        Fault.html(200),
        Fault.empty_body(),
        Fault.error_payload("nested"),
    ],
    ids=["truncated", "wrong types", "html", "empty", "error payload"],
)
async def test_get_is_retried_on_a_malformed_answer_then_raises_naming_the_task(
    fake: FakeStarVideos, sleeps: list[float], fault: Fault
) -> None:
    """A status GET is idempotent: one glitch is retried like a 5xx; a malformation
    that persists past the retries surfaces, with the task id."""
    task_id = fake.create_task().id
    injected = fake.inject(fault, endpoint="status", times=None)
    async with fake.client(max_retries=3) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.retrieve(task_id)
        assert info.value.task_id == task_id
        assert fake.counters["status"] == 4
        assert len(sleeps) == 3
        injected.remove()
        fake.inject(fault, endpoint="status", times=1)
        video = await client.retrieve(task_id)
    assert video.id == task_id
    assert fake.counters["status"] == 6


@pytest.mark.parametrize(("client_retries", "call_retries", "attempts"), [(2, 5, 6), (4, 0, 1)])
async def test_max_retries_can_be_overridden_per_call(
    fake: FakeStarVideos,
    sleeps: list[float],
    client_retries: int,
    call_retries: int,
    attempts: int,
) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.status(500), endpoint="status", times=None)
    fake.inject(Fault.rate_limit("1"), endpoint="create", times=None)
    async with fake.client(max_retries=client_retries) as client:
        with pytest.raises(ServerError):
            await client.retrieve(task_id, max_retries=call_retries)
        with pytest.raises(RateLimitError):
            await client.submit("a fox", max_retries=call_retries)
    assert fake.counters["status"] == attempts
    assert fake.counters["create"] == attempts


async def test_client_max_retries_zero_means_one_attempt(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.status(502), endpoint="status", times=None)
    async with fake.client(max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.retrieve(task_id)
    assert fake.counters["status"] == 1
    assert sleeps == []


# -- backoff and Retry-After -------------------------------------------------------------


async def test_backoff_grows_exponentially_and_is_capped(
    fake: FakeStarVideos, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # no jitter
    task_id = fake.create_task().id
    fake.inject(Fault.status(503), endpoint="status", times=None)
    policy = RetryPolicy(max_retries=5, initial_backoff=0.5, max_backoff=3.0)
    async with fake.client(retry_policy=policy) as client:
        with pytest.raises(ServerError):
            await client.retrieve(task_id)
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_backoff_is_full_jitter_below_the_ceiling(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.status(503), endpoint="status", times=None)
    policy = RetryPolicy(max_retries=6, initial_backoff=1.0, max_backoff=4.0)
    async with fake.client(retry_policy=policy) as client:
        with pytest.raises(ServerError):
            await client.retrieve(task_id)
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(sleeps) == len(ceilings)
    assert all(0.0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert len(set(sleeps)) > 1  # jittered, not a fixed schedule


def test_backoff_policy_table() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=8.0, max_retry_after=60.0)
    assert policy.backoff(1, 3.0) == 3.0
    assert policy.backoff(1, 600.0) == 60.0
    assert policy.backoff(1, -5.0) == 0.0
    assert policy.backoff(1, 0.0) == 0.0
    for retry, ceiling in [(1, 0.5), (2, 1.0), (5, 8.0), (100, 8.0), (10**6, 8.0)]:
        assert 0.0 <= policy.backoff(retry) <= ceiling


@pytest.mark.parametrize("field", ["max_retries", "initial_backoff", "max_backoff"])
@pytest.mark.parametrize("value", [-1, True, "2", math.nan])
def test_retry_policy_refuses_bad_numbers(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        pytest.param(Fault.rate_limit("7"), [7.0], id="seconds"),
        pytest.param(Fault.rate_limit("0.25"), [0.25], id="fractional seconds"),
        pytest.param(Fault.rate_limit("3600"), [60.0], id="capped"),
        pytest.param(Fault.rate_limit("5", retry_after_ms="250"), [0.25], id="ms wins"),
        pytest.param(Fault.rate_limit(dt.datetime(2001, 1, 1)), [0.0], id="date in the past"),
        pytest.param(Fault.rate_limit("2", code=503), [2.0], id="503 with Retry-After"),
    ],
)
async def test_retry_after_is_honoured_and_capped(
    fake: FakeStarVideos, sleeps: list[float], fault: Fault, waits: list[float]
) -> None:
    task_id = fake.create_task().id
    fake.inject(fault, endpoint="status")
    async with fake.client() as client:
        await client.retrieve(task_id)
    assert sleeps == waits


async def test_retry_after_as_an_http_date_is_honoured(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    task_id = fake.create_task().id
    fake.inject(
        Fault.rate_limit(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=20)),
        endpoint="status",
    )
    async with fake.client() as client:
        await client.retrieve(task_id)
    [wait] = sleeps
    assert 18.0 < wait <= 20.0


async def test_custom_cap_on_retry_after(fake: FakeStarVideos, sleeps: list[float]) -> None:
    fake.inject(Fault.rate_limit("30"), endpoint="create")
    async with fake.client(retry_policy=RetryPolicy(max_retry_after=5.0)) as client:
        await client.submit("a fox")
    assert sleeps == [5.0]


# -- creates (POST): never twice when the task may exist ----------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "created"),
    [
        pytest.param(Fault.status(500, when="after"), ServerError, 1, id="500 after creating"),
        pytest.param(Fault.status(500), ServerError, 0, id="500 before creating"),
        pytest.param(Fault.html(502, when="after"), ServerError, 1, id="502 html"),
        pytest.param(Fault.status(503, when="after"), ServerError, 1, id="503"),
        pytest.param(Fault.status(408, when="after"), APIStatusError, 1, id="408"),
        pytest.param(
            Fault.drop_connection(when="after"), APIConnectionError, 1, id="dropped after"
        ),
        pytest.param(Fault.drop_connection(), APIConnectionError, 0, id="dropped before"),
        pytest.param(Fault.drop_after(10), APIConnectionError, 1, id="body cut short"),
        pytest.param(Fault.malformed_json(), MalformedResponseError, 0, id="cut in the id"),
    ],
)
async def test_create_is_not_retried_when_the_task_may_exist(
    fake: FakeStarVideos,
    sleeps: list[float],
    fault: Fault,
    error: type[StarVideosError],
    created: int,
) -> None:
    fake.inject(fault, endpoint="create", times=None)
    async with fake.client(max_retries=5) as client:
        with pytest.raises(error) as info:
            await client.submit("a fox")
    assert fake.counters["create"] == 1
    assert fake.created == created
    assert sleeps == []
    if isinstance(info.value, APIConnectionError):
        assert info.value.request_sent


async def test_create_is_not_retried_after_a_read_timeout(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    fake.inject(Fault.delay(2.0, when="after"), endpoint="create", times=None)
    async with fake.client(max_retries=5, timeout=Timeout(read=0.05)) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.submit("a fox")
    assert info.value.request_sent
    assert fake.counters["create"] == 1
    assert fake.created == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "exception",
    [aiohttp.ServerDisconnectedError(), asyncio.TimeoutError(), aiohttp.ClientPayloadError()],
    ids=["disconnected", "timeout", "payload"],
)
async def test_create_is_not_retried_under_aioresponses(
    mock_api: aioresponses,
    mock_client: AsyncStarVideos,
    create_url: str,
    sleeps: list[float],
    exception: BaseException,
) -> None:
    mock_api.post(create_url, exception=exception)
    mock_api.post(create_url, payload=OK)
    with pytest.raises(APIConnectionError):
        await mock_client.submit("a fox", max_retries=5)
    assert len(mock_api.requests[("POST", URL(create_url))]) == 1


async def test_create_after_500_is_not_retried_under_aioresponses(
    mock_api: aioresponses, mock_client: AsyncStarVideos, create_url: str, sleeps: list[float]
) -> None:
    mock_api.post(create_url, status=500)
    mock_api.post(create_url, payload=OK)
    with pytest.raises(ServerError):
        await mock_client.submit("a fox", max_retries=5)
    assert len(mock_api.requests[("POST", URL(create_url))]) == 1


async def test_get_is_retried_under_aioresponses(
    mock_api: aioresponses,
    mock_client: AsyncStarVideos,
    result_url: Callable[[str], str],
    sleeps: list[float],
) -> None:
    url = result_url("video_starvideos_1")
    mock_api.get(url, exception=aiohttp.ServerDisconnectedError())
    mock_api.get(url, status=503)
    mock_api.get(url, payload=OK)
    video = await mock_client.retrieve("video_starvideos_1")
    assert video.id == "video_starvideos_1"
    assert len(mock_api.requests[("GET", URL(url))]) == 3
    assert len(sleeps) == 2


async def test_create_is_retried_after_429(fake: FakeStarVideos, sleeps: list[float]) -> None:
    fake.inject(Fault.rate_limit("1"), endpoint="create", times=2)
    async with fake.client(max_retries=2) as client:
        task = await client.submit("a fox")
    assert fake.counters["create"] == 3
    assert fake.created == 1
    assert list(fake.tasks) == [task.id]
    assert sleeps == [1.0, 1.0]


async def test_create_gives_up_after_429s(fake: FakeStarVideos, sleeps: list[float]) -> None:
    fake.inject(Fault.rate_limit("1"), endpoint="create", times=None)
    async with fake.client(max_retries=2) as client:
        with pytest.raises(RateLimitError):
            await client.submit("a fox")
    assert fake.counters["create"] == 3
    assert fake.created == 0


async def test_create_is_retried_when_the_connection_was_refused(
    closed_port: int, api_key: str
) -> None:
    """Refused, then the service comes up while the create retries: created once."""
    fake = FakeStarVideos(api_key=api_key, port=closed_port, time_scale=0.001)
    base_url = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    patient = RetryPolicy(max_retries=500, initial_backoff=0.02, max_backoff=0.02)
    try:
        async with AsyncStarVideos(api_key, base_url=base_url, retry_policy=patient) as client:
            create = asyncio.ensure_future(client.submit("a fox"))
            await asyncio.sleep(0.05)  # refused meanwhile: nothing listens yet
            assert not create.done()
            await fake.start()
            task = await create
    finally:
        await fake.close()
    assert fake.counters["create"] == 1
    assert list(fake.tasks) == [task.id]


async def test_create_against_a_closed_port_is_retried_then_fails(
    closed_port: int, api_key: str, sleeps: list[float]
) -> None:
    base_url = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    async with AsyncStarVideos(api_key, base_url=base_url, max_retries=3) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.submit("a fox")
    assert info.value.request_sent is False
    assert len(sleeps) == 3


# -- the rules, as a table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "get", "post"),
    [
        pytest.param(Fault.rate_limit("0"), True, True, id="429"),
        pytest.param(Fault.status(408, when="after"), True, False, id="408"),
        pytest.param(Fault.status(500, when="after"), True, False, id="500"),
        pytest.param(Fault.html(502, when="after"), True, False, id="502"),
        pytest.param(Fault.status(503, when="after"), True, False, id="503"),
        pytest.param(Fault.status(504, when="after"), True, False, id="504"),
        pytest.param(Fault.status(400), False, False, id="400"),
        pytest.param(Fault.status(401), False, False, id="401"),
        pytest.param(Fault.status(404), False, False, id="404"),
        pytest.param(Fault.status(409), False, False, id="409"),
        pytest.param(Fault.drop_connection(when="after"), True, False, id="reset after sending"),
        pytest.param(Fault.delay(1.0, when="after"), True, False, id="read timeout"),
        pytest.param(Fault.malformed_json(), True, False, id="malformed"),
    ],
)
async def test_what_is_retried_for_a_status_call_and_for_a_create(
    fake: FakeStarVideos, sleeps: list[float], fault: Fault, get: bool, post: bool
) -> None:
    task_id = fake.create_task().id
    async with fake.client(max_retries=1, timeout=Timeout(read=0.2)) as client:
        fake.inject(fault, endpoint="status")
        with contextlib.suppress(StarVideosError):
            await client.retrieve(task_id)
        fake.inject(fault, endpoint="create")
        with contextlib.suppress(StarVideosError):
            await client.submit("a fox")
    assert fake.counters["status"] == (2 if get else 1)
    assert fake.counters["create"] == (2 if post else 1)


async def test_a_status_call_is_retried_when_the_connection_was_refused(
    closed_port: int, api_key: str, sleeps: list[float]
) -> None:
    base_url = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    async with AsyncStarVideos(api_key, base_url=base_url, max_retries=3) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.retrieve("video_starvideos_1")
    assert info.value.request_sent is False
    assert len(sleeps) == 3


class BuggyLimiter:
    """A limiter whose first entry fails with an error that is not the SDK's (a bug)."""

    def __init__(self) -> None:
        self.entries = 0

    async def __aenter__(self) -> None:
        self.entries += 1
        if self.entries == 1:
            raise ValueError("not ours")

    async def __aexit__(self, *exc_info: object) -> None:
        return None


async def test_an_error_that_is_not_the_sdks_is_not_retried(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    task_id = fake.create_task().id
    async with fake.client(max_retries=3, limiter=BuggyLimiter()) as client:
        with pytest.raises(ValueError, match="not ours"):
            await client.retrieve(task_id)
        assert sleeps == []
        assert fake.counters["status"] == 0
        await client.retrieve(task_id)  # the next call goes through
    assert fake.counters["status"] == 1


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"Retry-After": "5"}, 5.0, id="seconds"),
        pytest.param({"Retry-After": "1.5"}, 1.5, id="fractional"),
        pytest.param({"Retry-After": " 7 "}, 7.0, id="padded"),
        pytest.param({"retry-after": "4"}, 4.0, id="lower-case name"),
        pytest.param({"Retry-After": "0"}, 0.0, id="zero"),
        pytest.param({"Retry-After": "-3"}, 0.0, id="negative"),
        pytest.param({"Retry-After": "garbage"}, None, id="garbage"),
        pytest.param({"Retry-After": ""}, None, id="empty"),
        pytest.param({"Retry-After": "inf"}, None, id="infinite"),
        pytest.param({"Retry-After": "nan"}, None, id="nan"),
        pytest.param({"Retry-After": _http_date(1_000_000_000)}, 0.0, id="date in the past"),
        pytest.param({"Retry-After": "Wed, 21 Oct 2015 07:28:00"}, None, id="date without zone"),
        pytest.param({"Retry-After": "Wed, 32 Foo 2015 99:99:99 GMT"}, None, id="bad date"),
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms"),
        pytest.param({"retry-after-ms": "250", "Retry-After": "9"}, 0.25, id="ms first"),
        pytest.param({"retry-after-ms": "soon", "Retry-After": "2"}, 2.0, id="bad ms"),
        pytest.param({"retry-after-ms": "-1", "Retry-After": "2"}, 2.0, id="negative ms"),
        pytest.param({"retry-after-ms": "nan"}, None, id="nan ms only"),
    ],
)
async def test_the_wait_a_429_asks_for(
    fake: FakeStarVideos, headers: dict[str, str], expected: float | None
) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.status(429, headers=headers), endpoint="status")
    async with fake.client(max_retries=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.retrieve(task_id)
    assert info.value.retry_after == expected


async def test_a_429_can_ask_to_wait_until_a_date(fake: FakeStarVideos) -> None:
    task_id = fake.create_task().id
    in_an_hour = _http_date(dt.datetime.now(dt.timezone.utc).timestamp() + 3600)
    fake.inject(Fault.status(429, headers={"Retry-After": in_an_hour}), endpoint="status")
    async with fake.client(max_retries=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.retrieve(task_id)
    wait = info.value.retry_after
    assert wait is not None
    assert 3000 < wait <= 3600  # an hour from when the date was written, to the second


async def test_a_429_on_a_status_call_pauses_every_status_call_of_the_client(
    fake: FakeStarVideos, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 for one task holds every status call of the client as long: ``retrieve()``,
    ``refresh()`` and the polls of ``wait()``, for other tasks too."""
    caplog.set_level(logging.DEBUG, logger="starvideos_async")
    limited = fake.create_task().id
    others = [fake.create_task().id for _ in range(3)]
    fake.inject(Fault.rate_limit("0.3"), endpoint="status", task_id=limited)
    async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        first = asyncio.ensure_future(client.retrieve(limited))
        # The retry is logged once the 429 was handled (and the pause set)
        while not any("RateLimitError" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.001)
        await asyncio.gather(
            client.retrieve(others[0]),
            client.task(others[1]).refresh(),
            client.task(others[2]).wait(timeout=5),
        )
        await first
    statuses = [r for r in fake.requests if r.endpoint == "status"]
    rate_limited = statuses[0]
    assert (rate_limited.task_id, rate_limited.status) == (limited, 429)
    assert {r.task_id for r in statuses[1:]} == {limited, *others}
    # (uvloop's timers may fire a millisecond early: room of 50 ms)
    assert all(r.started - rate_limited.started >= 0.25 for r in statuses[1:])


async def test_without_the_testing_switch_retries_really_wait(fake: FakeStarVideos) -> None:
    task_id = fake.create_task().id
    fake.inject(Fault.rate_limit("0.2"), endpoint="status")
    async with fake.client() as client:
        started = anyio.current_time()
        await client.retrieve(task_id)
    # uvloop's timers fire up to a millisecond early by the loop's clock: room of 50 ms
    assert anyio.current_time() - started >= 0.15
