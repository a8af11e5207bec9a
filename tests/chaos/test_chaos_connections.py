"""Broken connections, below HTTP: refused, reset before the request, after it, mid-answer.

The fake's own faults close connections politely from inside a handler; here a TCP
proxy in front of it sends real RSTs at the moments that matter for a create:
before the request left, after it reached the service, and halfway through the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from starvideos_async import APIConnectionError, RetryPolicy
from starvideos_async.testing import FakeStarVideos

from ._support import ChaosProxy, ProxyMode, RecordingClient, fake_options, outcome_unknown
from .test_chaos_single_faults import assert_video_on_disk, one_task


def first_then_pass(*modes: ProxyMode) -> Callable[[], ProxyMode]:
    """The given modes for the first connections, then ``pass`` for ever."""
    queue: Iterator[ProxyMode] = iter(modes)
    return lambda: next(queue, "pass")


@pytest.fixture
async def one_request_per_connection() -> AsyncIterator[aiohttp.ClientSession]:
    """A session that opens a connection per request, so each meets the proxy's dice."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


async def proxied(
    fake: FakeStarVideos,
    make_client: Callable[..., RecordingClient],
    session: aiohttp.ClientSession,
    modes: Callable[[], ProxyMode],
) -> tuple[ChaosProxy, RecordingClient]:
    proxy = await ChaosProxy(fake.port, modes).start()
    client = make_client(proxy.url("/kyyReactApiServer"), session=session)
    return proxy, client


BREAKS: list[ProxyMode] = ["reset-on-accept", "reset-after-request", "reset-mid-response"]


@pytest.mark.parametrize("mode", BREAKS)
async def test_create_on_a_broken_connection_is_reported_unknown_and_never_resent(
    mode: ProxyMode,
    chaos_fake: FakeStarVideos,
    make_client: Callable[..., RecordingClient],
    one_request_per_connection: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    proxy, client = await proxied(
        chaos_fake, make_client, one_request_per_connection, first_then_pass(mode)
    )
    try:
        async with client:
            story = await one_task(client, tmp_path)
    finally:
        await proxy.close()
    assert story.stage == "create"
    assert isinstance(story.error, APIConnectionError)
    assert outcome_unknown(story.error)
    assert proxy.modes == {mode: 1}, "the create was sent again"
    reached = 0 if mode == "reset-on-accept" else 1
    assert chaos_fake.counters["create"] == reached
    assert chaos_fake.created == reached


@pytest.mark.parametrize("mode", BREAKS)
async def test_status_call_on_a_broken_connection_is_retried(
    mode: ProxyMode,
    chaos_fake: FakeStarVideos,
    make_client: Callable[..., RecordingClient],
    one_request_per_connection: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    # connection 1 is the create; 2 and 3 (status calls) break; then all pass.
    proxy, client = await proxied(
        chaos_fake, make_client, one_request_per_connection, first_then_pass("pass", mode, mode)
    )
    try:
        async with client:
            story = await one_task(client, tmp_path)
    finally:
        await proxy.close()
    assert_video_on_disk(story, chaos_fake, tmp_path)
    assert proxy.modes[mode] == 2
    assert chaos_fake.created == 1


async def test_refused_connection_never_creates_and_says_the_request_never_left(
    closed_port: int, make_client: Callable[..., RecordingClient], tmp_path: Path
) -> None:
    async with make_client(f"http://127.0.0.1:{closed_port}/kyyReactApiServer") as client:
        story = await one_task(client, tmp_path)
    assert story.stage == "create"
    assert isinstance(story.error, APIConnectionError)
    assert story.error.request_sent is False
    assert not outcome_unknown(story.error)


async def test_create_refused_until_the_service_comes_up_is_created_exactly_once(
    closed_port: int, make_client: Callable[..., RecordingClient], tmp_path: Path
) -> None:
    """A refused create surely never left: it is sent again, and the task made once."""
    fake = FakeStarVideos(**fake_options(port=closed_port))
    patient = RetryPolicy(max_retries=500, initial_backoff=0.02, max_backoff=0.02)
    try:
        base_url = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
        async with make_client(base_url, retry_policy=patient) as client:
            story = asyncio.ensure_future(one_task(client, tmp_path))
            await asyncio.sleep(0.05)  # refused meanwhile: nothing listens yet
            assert not story.done()
            await fake.start()
            assert_video_on_disk(await story, fake, tmp_path)
        assert fake.counters["create"] == 1
        assert fake.created == 1
    finally:
        await fake.close()
