"""Shared fixtures: a fake service with a known key, aioresponses that works with aiohttp 3.14+,
clients pointed at either, recorded retry waits, the ``starvideos`` command run in-process,
and a check that a secret never leaks.

``pytest --event-loop=uvloop`` runs every test and async fixture on uvloop's loop (nox's
``tests(uvloop)`` session does), through pytest-asyncio's ``pytest_asyncio_loop_factories``.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import logging
import os
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from redis_support import redis_server, redis_url  # noqa: F401 - fixtures

from starvideos_async import AsyncStarVideos, PollPolicy
from starvideos_async.testing import FakeStarVideos, instant_retries

#: The key every test client uses; long and unusual, so a leak is unmistakable.
API_KEY = "sk-test-Zq8vR2mW7xKp4TnL9cYb"
#: A base URL that only aioresponses answers (nothing listens there).
MOCK_BASE_URL = "https://api.starvideos.test/kyyReactApiServer"
#: The documented example id.
TASK_ID = "video_starvideos_1234567890"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of the async tests and fixtures (uvloop must be installed)",
    )


class _UvloopLoops:
    """A pytest plugin: pytest-asyncio makes every test's loop with ``uvloop.new_event_loop``."""

    def __init__(self) -> None:
        import uvloop  # only with --event-loop=uvloop

        self.version: str = uvloop.__version__
        self._new_event_loop = uvloop.new_event_loop
        self.made = 0

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        self.made += 1
        return self._new_event_loop()

    def pytest_asyncio_loop_factories(self) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        return {"uvloop": self.new_event_loop}

    def pytest_report_header(self) -> str:
        return f"event loop: uvloop {self.version}"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        items = getattr(session, "items", [])  # none after a collection error
        ran_async = any(item.get_closest_marker("asyncio") for item in items)
        if ran_async and not self.made:  # the hook went unused: the run proved nothing
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line("--event-loop=uvloop: no test ran on a uvloop loop", red=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.uvloop_xfail(reason=..., strict=True)``: an xfail when run on uvloop."""
    if config.getoption("event_loop") != "uvloop":
        return
    for item in items:
        for mark in item.iter_markers("uvloop_xfail"):
            strict = mark.kwargs.get("strict", True)
            item.add_marker(pytest.mark.xfail(reason=mark.kwargs["reason"], strict=strict))


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("event_loop") == "uvloop":
        try:
            plugin = _UvloopLoops()
        except ImportError as exc:
            raise pytest.UsageError(f"--event-loop=uvloop needs uvloop installed: {exc}") from exc
        config.pluginmanager.register(plugin, "starvideos-uvloop")


class _StandInStreamWriter:
    """What aiohttp 3.14+ reads from ``stream_writer`` when the request was already sent."""

    output_size = 0


@pytest.fixture
def mock_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """An ``aioresponses()`` context that works with aiohttp 3.14+.

    aiohttp 3.14 added a required keyword-only ``stream_writer`` to
    ``ClientResponse.__init__``; aioresponses 0.7.9 does not pass it
    (pnuckowski/aioresponses#289). A stand-in is supplied only when the argument
    exists and was not given, so an aioresponses release that passes it keeps working.
    """
    original = aiohttp.ClientResponse.__init__
    if "stream_writer" in inspect.signature(original).parameters:

        @functools.wraps(original)
        def init(self: aiohttp.ClientResponse, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", _StandInStreamWriter())
            original(self, *args, **kwargs)

        monkeypatch.setattr(aiohttp.ClientResponse, "__init__", init)
    with aioresponses() as mocked:
        yield mocked


@pytest.fixture
def api_key() -> str:
    """The key of every test client and of the ``fake`` fixture."""
    return API_KEY


@pytest.fixture
def create_url() -> str:
    """The create URL under :data:`MOCK_BASE_URL`."""
    return MOCK_BASE_URL + "/v1/starvideos/videos"


@pytest.fixture
def result_url() -> Callable[[str], str]:
    """The query URL of a task under :data:`MOCK_BASE_URL`."""
    return lambda task_id: f"{MOCK_BASE_URL}/v1/result/{task_id}"


@pytest.fixture
async def mock_client() -> AsyncIterator[AsyncStarVideos]:
    """A client for :data:`MOCK_BASE_URL` (use with ``mock_api``), closed afterwards."""
    async with AsyncStarVideos(api_key=API_KEY, base_url=MOCK_BASE_URL) as client:
        yield client


@pytest.fixture
async def fake() -> AsyncIterator[FakeStarVideos]:
    """A started fake service (a task takes 30 ms) that accepts :data:`API_KEY`."""
    async with FakeStarVideos(api_key=API_KEY, time_scale=0.001) as service:
        yield service


@pytest.fixture
async def fake_client(fake: FakeStarVideos) -> AsyncIterator[AsyncStarVideos]:
    """A client of the ``fake`` fixture with the default settings, closed afterwards."""
    async with fake.client() as client:
        yield client


#: The poll policy of the waiting tests: tiny, so the fake's 30 ms tasks finish fast.
FAST_POLLING = PollPolicy.fixed(0.005)


@pytest.fixture
async def client(fake: FakeStarVideos) -> AsyncIterator[AsyncStarVideos]:
    """A client of the ``fake`` fixture polling every 5 ms (modules may define their own)."""
    async with fake.client(poll_policy=FAST_POLLING) as client:
        yield client


@pytest.fixture
async def asyncio_stays_quiet(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail a test after which asyncio complained (e.g. a task destroyed while pending).

    Async, so that its teardown runs while the loop still runs: after the loop closes,
    pytest-asyncio cancels what is left and the evidence is gone.
    """
    caplog.set_level(logging.WARNING, logger="asyncio")
    yield
    gc.collect()
    records = caplog.get_records("call") + caplog.get_records("teardown")
    assert [r.getMessage() for r in records if r.name == "asyncio"] == []


@pytest.fixture
def polling_stopped(fake: FakeStarVideos) -> Callable[[], Awaitable[None]]:
    """``await polling_stopped()``: no status call reaches the fake any more."""

    async def check() -> None:
        await asyncio.sleep(0.01)  # a request already on the wire may still land
        calls = fake.counters["status"]
        await asyncio.sleep(0.05)  # ten poll intervals of the tests' fast policy
        assert fake.counters["status"] == calls, "a wait that ended still polls"

    return check


@pytest.fixture
def sleeps() -> Iterator[list[float]]:
    """Retry waits, recorded instead of slept (``testing.instant_retries``)."""
    with instant_retries() as waits:
        yield waits


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


#: ``await cli(*args, env={...})`` -> ``(exit code, stdout, stderr)``; see :func:`cli`.
Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``await cli(*args, env={...})``: the ``starvideos`` command, in a thread of this process.

    It is the installed console script's function, called as the script calls it. A fake
    service keeps running on the test's loop meanwhile. ``env`` is added to an environment
    without any ``STARVIDEOS_*`` variable, for the rest of the test.
    """
    (main,) = [s.load() for s in entry_points(group="console_scripts", name="starvideos")]
    for name in list(os.environ):
        if name.startswith("STARVIDEOS_"):
            monkeypatch.delenv(name)

    async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()

        def call() -> int:
            try:
                code: int = main(list(args))
            except SystemExit as exc:
                return exc.code if isinstance(exc.code, int) else 1
            return code

        code = await asyncio.wait_for(asyncio.to_thread(call), 60)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _texts_of(exc: BaseException) -> Iterator[str]:
    yield str(exc)
    yield repr(exc)
    yield "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for name in ("body", "headers", "request", "message", "args", "video"):
        if hasattr(exc, name):
            yield repr(getattr(exc, name))


@pytest.fixture
def assert_no_secret() -> Callable[..., None]:
    """``check(*things, secret=API_KEY)``: the secret is in no str/repr/traceback of them."""

    def check(*things: object, secret: str = API_KEY) -> None:
        for thing in things:
            texts = _texts_of(thing) if isinstance(thing, BaseException) else (str(thing),)
            for text in (*texts, repr(thing)):
                assert secret not in text, f"the key leaked into {type(thing).__name__}"

    return check
