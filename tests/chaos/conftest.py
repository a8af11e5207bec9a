"""Fixtures of the chaos suite, and the guard every chaos test runs under.

The guard captures every log record of every logger at DEBUG for the whole test and
every exception the SDK raised (through :class:`RecordingClient`), and fails the test if
the API key appears in any of them: a message, a log argument, a repr or a chained
traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest

from starvideos_async.testing import FakeStarVideos

from ._support import KEY, LogCapture, RecordingClient, client_options, fake_options, texts_of


@attrs.define
class Guard:
    """What one chaos test logged and raised."""

    logs: LogCapture
    raised: list[BaseException] = attrs.Factory(list)

    def leaks(self) -> list[str]:
        """Every captured text containing the key (should be none)."""
        texts = [*self.logs.texts()]
        for exc in self.raised:
            texts.extend(texts_of(exc))
        return [text for text in texts if KEY in text]


@pytest.fixture(autouse=True)
def guard() -> Iterator[Guard]:
    """Capture logs at DEBUG and raised errors; fail the test if the key shows in any."""
    with LogCapture().installed() as logs:
        guard = Guard(logs)
        yield guard
    leaks = guard.leaks()
    assert not leaks, f"the API key leaked into {len(leaks)} texts, e.g. {leaks[0][:300]!r}"


@pytest.fixture
async def chaos_fake() -> AsyncIterator[FakeStarVideos]:
    """A fake with 15 ms tasks and 16 KiB videos that accepts the chaos key."""
    async with FakeStarVideos(**fake_options()) as fake:
        yield fake


@pytest.fixture
def make_client(guard: Guard) -> Callable[..., RecordingClient]:
    """``make_client(base_url, **options)``: a recording chaos client (close it yourself)."""

    def make(base_url: str, **options: Any) -> RecordingClient:
        return RecordingClient(
            api_key=KEY, base_url=base_url, raised=guard.raised, **client_options(**options)
        )

    return make


@pytest.fixture
async def chaos_client(
    chaos_fake: FakeStarVideos, make_client: Callable[..., RecordingClient]
) -> AsyncIterator[RecordingClient]:
    async with make_client(chaos_fake.base_url) as client:
        yield client
