"""Nothing reachable from an SDK error holds the API key, not even a frame's locals.

Error reporters record more than the message: Sentry keeps every traceback frame's
locals, ``TracebackException(capture_locals=True)`` and rich tracebacks print them.
aiohttp's request frames hold the merged request headers, ``Authorization`` included.
Each case below makes the SDK fail one way, then walks everything reachable from the
error (attributes, the ``__cause__``/``__context__`` chain, every frame's locals) and
renders it with its locals; the cause's type and message must survive for debugging.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from starvideos_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncStarVideos,
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StarVideos,
    StarVideosError,
    Timeout,
)
from starvideos_async.testing import FakeStarVideos, Fault

from ._support import KEY, texts_of

Call = Callable[[AsyncStarVideos, str], Awaitable[object]]


async def _submit(client: AsyncStarVideos, task_id: str) -> object:
    return await client.submit("a heron in the reeds")


async def _retrieve(client: AsyncStarVideos, task_id: str) -> object:
    return await client.retrieve(task_id)


async def _wait(client: AsyncStarVideos, task_id: str) -> object:
    return await client.task(task_id).wait(timeout=10)


CALLS = {"submit": _submit, "retrieve": _retrieve, "wait": _wait}
NO_RETRIES = RetryPolicy(max_retries=1, initial_backoff=0.001, max_backoff=0.002)


def assert_key_unreachable(error: BaseException) -> None:
    leaks = [text for text in texts_of(error) if KEY in text]
    assert leaks == [], f"the key is reachable from {type(error).__name__}: {leaks[0][:300]!r}"
    rendered = traceback.TracebackException.from_exception(error, capture_locals=True)
    assert KEY not in "".join(rendered.format())


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("fault", "expected", "cause"),
    [
        pytest.param(Fault.drop_connection(), APIConnectionError, aiohttp.ClientError, id="reset"),
        # asyncio.TimeoutError: aiohttp's timeouts derive from it, not TimeoutError, on 3.10
        pytest.param(Fault.delay(1.0), APITimeoutError, asyncio.TimeoutError, id="read timeout"),
        pytest.param(Fault.status(401), AuthenticationError, None, id="401"),
        pytest.param(Fault.rate_limit("0"), RateLimitError, None, id="429"),
        pytest.param(Fault.status(503), ServerError, None, id="5xx"),
    ],
)
async def test_no_key_is_reachable_from_an_error_of_the_service(
    chaos_fake: FakeStarVideos,
    call: str,
    fault: Fault,
    expected: type[StarVideosError],
    cause: type[BaseException] | None,
) -> None:
    task_id = chaos_fake.create_task().id
    chaos_fake.inject(fault, "any", times=None)
    options = {"timeout": Timeout(total=5, read=0.2), "retry_policy": NO_RETRIES}
    async with AsyncStarVideos(KEY, base_url=chaos_fake.base_url, **options) as client:
        with pytest.raises(expected) as caught:
            await CALLS[call](client, task_id)
    error = caught.value
    assert_key_unreachable(error)
    if cause is not None:  # what went wrong underneath is still there to read
        assert isinstance(error.__cause__, cause)
        assert str(error.__cause__) in str(error) or type(error.__cause__).__name__ in str(error)


@pytest.mark.parametrize("call", CALLS)
async def test_no_key_is_reachable_from_a_refused_connection(closed_port: int, call: str) -> None:
    base = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    async with AsyncStarVideos(KEY, base_url=base, retry_policy=NO_RETRIES) as client:
        with pytest.raises(APIConnectionError) as caught:
            await CALLS[call](client, "video_starvideos_1")
    assert caught.value.request_sent is False
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert_key_unreachable(caught.value)


@pytest.mark.parametrize("call", CALLS)
async def test_no_key_is_reachable_from_a_call_cancelled_on_the_wire(
    chaos_fake: FakeStarVideos, call: str
) -> None:
    # Cancelled inside aiohttp's request: the CancelledError (the cause of wait_for's
    # TimeoutError) passed frames that hold the request headers.
    task_id = chaos_fake.create_task().id
    chaos_fake.inject(Fault.delay(1.0), "any", times=None)
    async with AsyncStarVideos(KEY, base_url=chaos_fake.base_url) as client:
        with pytest.raises(asyncio.TimeoutError) as caught:
            await asyncio.wait_for(CALLS[call](client, task_id), 0.2)
    assert_key_unreachable(caught.value)


@pytest.mark.parametrize("explicit", [True, False], ids=["api_key=", "environment"])
@pytest.mark.parametrize(
    "setting",
    [
        {"timeout": -1},
        {"max_concurrency": 0},
        {"base_url": "ftp://api.example"},
        {"coordinator": object()},
        {"max_status_rate": float("nan")},
    ],
    ids=["timeout", "max_concurrency", "base_url", "coordinator", "max_status_rate"],
)
def test_no_key_is_reachable_from_a_refused_setting(
    monkeypatch: pytest.MonkeyPatch, explicit: bool, setting: dict[str, object]
) -> None:
    # (the key is only ever in a temporary here: this frame is in the traceback too)
    monkeypatch.setenv("STARVIDEOS_API_KEY", KEY)
    for client in (AsyncStarVideos, StarVideos):
        with pytest.raises(StarVideosError) as caught:
            client(**({"api_key": KEY} if explicit else {}), **setting)  # type: ignore[arg-type]
        assert_key_unreachable(caught.value)


#: Keys refused for what they hold beside the key (a pasted newline, a space, an escape).
BAD_KEYS = {
    "newline": lambda: KEY + "\n",
    "space": lambda: " " + KEY,
    "escape": lambda: KEY + "\x1b",
}


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_no_key_is_reachable_from_a_refused_key(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("STARVIDEOS_API_KEY", BAD_KEYS[bad]())
    for client in (AsyncStarVideos, StarVideos):
        with pytest.raises(ConfigurationError) as caught:
            client()
        assert_key_unreachable(caught.value)
        with pytest.raises(ConfigurationError) as caught:
            client(api_key=BAD_KEYS[bad]())
        assert_key_unreachable(caught.value)
