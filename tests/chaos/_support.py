"""What the chaos tests share: the key to look for, a client that records what it raised,
a log capture, the catalogue of faults, and a TCP proxy that breaks connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import re
import socket
import struct
import traceback
import types
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs
from aiohttp.abc import AbstractResolver, ResolveResult

from starvideos_async import (
    APIConnectionError,
    APIStatusError,
    AsyncStarVideos,
    MalformedResponseError,
    PollPolicy,
    RetryPolicy,
    StarVideosError,
    Timeout,
)
from starvideos_async.testing import FakeStarVideos, Fault

#: The key of every chaos client; long and odd, so any leak is unmistakable.
KEY = "sk-chaos-Vq7Lw2Xr9Tb4Nm8Kc3Hz"
#: Seeds the fake's fault dice, the proxy's dice and the anomalies.
SEED = 20261124
#: The read timeout of chaos clients; ``SLOW`` faults outlast it.
READ_TIMEOUT = 0.5
SLOW = 0.8
#: Retries wait a few milliseconds at most (the policy is what is tested, not the clock).
FAST_RETRY = RetryPolicy(
    max_retries=6, initial_backoff=0.001, max_backoff=0.01, max_retry_after=0.01
)


def client_options(**overrides: Any) -> dict[str, Any]:
    """Chaos client settings: short timeouts, fast polls, fast retries."""
    options: dict[str, Any] = {
        "timeout": Timeout(total=10.0, read=READ_TIMEOUT),
        "poll_policy": PollPolicy.fixed(0.005),
        "retry_policy": FAST_RETRY,
        "max_concurrency": 32,
    }
    options.update(overrides)
    return options


# -- what the SDK raised ----------------------------------------------------------------


class RecordingClient(AsyncStarVideos):
    """A client that keeps every exception its calls raise (also inside ``run_batch``).

    Waits poll through ``retrieve``, so wrapping it records their errors too.
    """

    def __init__(self, *args: Any, raised: list[BaseException], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raised = raised

    async def __aenter__(self) -> RecordingClient:
        return self

    async def submit(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().submit(*args, **kwargs)
        except Exception as exc:
            self.raised.append(exc)
            raise

    async def retrieve(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().retrieve(*args, **kwargs)
        except Exception as exc:
            self.raised.append(exc)
            raise

    async def download(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().download(*args, **kwargs)
        except Exception as exc:
            self.raised.append(exc)
            raise


def texts_of(exc: BaseException) -> Iterator[str]:
    """Every text a user or an error reporter could see of ``exc``.

    Its str and repr, the chained traceback as printed and as rendered with every
    frame's locals (``capture_locals=True``, what rich tracebacks show), and everything
    reachable from it: attributes and args of each exception along the
    ``__cause__``/``__context__`` chain, and each traceback frame's locals (and the
    frames of a traceback held in a local). Containers are walked to their items; other
    objects give their repr, as Sentry records them.
    """
    yield str(exc)
    yield repr(exc)
    yield "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    yield "".join(rendered.format())
    yield from _reachable_texts(exc)


def _reachable_texts(exc: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    values: list[tuple[object, int]] = [(exc, 0)]
    while values:
        value, depth = values.pop()
        if isinstance(value, BaseException):
            if id(value) in seen:
                continue
            seen.add(id(value))
            values += [(v, 0) for v in (*value.args, *vars(value).values())]
            tb = value.__traceback__
            while tb is not None:
                values += [(v, 0) for v in tb.tb_frame.f_locals.values()]
                tb = tb.tb_next
            values += [(e, 0) for e in (value.__cause__, value.__context__) if e is not None]
        elif isinstance(value, types.TracebackType):  # a frame's local: its frames too
            tb: types.TracebackType | None = value if depth < 4 else None
            while tb is not None:
                values += [(v, depth + 1) for v in tb.tb_frame.f_locals.values()]
                tb = tb.tb_next
        elif isinstance(value, (str, bytes)):
            yield value if isinstance(value, str) else value.decode("utf-8", "replace")
        else:
            try:
                yield repr(value)
            except Exception:  # noqa: S112 - a repr that fails shows nothing
                continue
            if depth >= 4:
                continue
            if isinstance(value, Mapping):
                values += [(item, depth + 1) for pair in value.items() for item in pair]
            elif isinstance(value, (list, tuple, set, frozenset)):
                values += [(item, depth + 1) for item in value]


def outcome_unknown(error: StarVideosError) -> bool:
    """Whether a failed create leaves its outcome unknown (the task may exist).

    Only a connection that was never made, a 429, or another 4xx prove that nothing was
    created; everything else (timeouts after sending, resets, 5xx, broken 2xx) may hide
    a task.
    """
    if isinstance(error, APIConnectionError):
        return error.request_sent
    if isinstance(error, APIStatusError):
        return not 400 <= error.status_code < 500
    return isinstance(error, MalformedResponseError)


# -- what was logged ---------------------------------------------------------------------


class LogCapture(logging.Handler):
    """Keeps every record (all loggers, DEBUG and up), formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[str]:
        for record in self.records:
            yield self.format(record)
            yield repr(record.args)

    @contextlib.contextmanager
    def installed(self) -> Iterator[LogCapture]:
        root = logging.getLogger()
        sdk = logging.getLogger("starvideos_async")
        levels = root.level, sdk.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        sdk.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(levels[0])
            sdk.setLevel(levels[1])


# -- the catalogue of faults ---------------------------------------------------------------

Endpoint = Literal["create", "status", "file"]


def _soon() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)


#: Every service-side fault, by name (built fresh: the HTTP-date one depends on now).
SERVICE_FAULTS: dict[str, Callable[[], Fault]] = {
    "429-retry-after-seconds": lambda: Fault.rate_limit("1"),
    "429-retry-after-http-date": lambda: Fault.rate_limit(_soon()),
    "429-without-retry-after": lambda: Fault.rate_limit(None),
    "500": lambda: Fault.status(500),
    "502": lambda: Fault.status(502),
    "503": lambda: Fault.status(503),
    "504": lambda: Fault.status(504),
    "html-gateway-page-502": lambda: Fault.html(502),
    "html-gateway-page-504": lambda: Fault.html(504),
    "error-payload-on-200": lambda: Fault.error_payload("nested"),
    "error-string-on-200": lambda: Fault.error_payload("string"),
    "code-msg-on-200": lambda: Fault.error_payload("code_msg"),
    "html-page-on-200": lambda: Fault.html(200),
    "empty-body": lambda: Fault.empty_body(),
    "truncated-json": lambda: Fault.malformed_json(),
    "wrong-types": lambda: Fault.wrong_types(),
    "slow-past-read-timeout": lambda: Fault.delay(SLOW),
    "dropped-connection": lambda: Fault.drop_connection(),
    "reset-mid-response": lambda: Fault.drop_after(20),  # inside the task id
    "reset-after-the-id": lambda: Fault.drop_after(60),  # '{"id": "video_...", "object": "vi'
}

#: Create faults whose answer, when the task was created, still names it in full: the
#: SDK must return that task, not an unknown outcome.
NAMING_FAULTS = ["truncated-json", "wrong-types", "reset-after-the-id"]


def fault_for(name: str, when: Literal["before", "after"] = "before") -> Fault:
    """The named fault, striking before or after a create did its work."""
    fault = SERVICE_FAULTS[name]()
    return fault if fault.kind == "drop_after" else attrs.evolve(fault, when=when)


# -- a TCP proxy that breaks connections -------------------------------------------------

ProxyMode = Literal["pass", "reset-on-accept", "reset-after-request", "reset-mid-response"]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ChaosProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``, breaking some connections.

    Each accepted connection gets a mode from ``choose()``:

    * ``pass``: bytes flow both ways untouched;
    * ``reset-on-accept``: RST at once, before a byte of the request is read;
    * ``reset-after-request``: the request reaches the service (a create happens), then
      RST as soon as the answer starts, so the client never sees it;
    * ``reset-mid-response``: the first half of the answer gets through, then RST.

    Give the client a session with ``force_close=True`` so that one connection carries
    one request and each request meets its own fate.
    """

    def __init__(self, upstream_port: int, choose: Callable[[], ProxyMode]) -> None:
        self.upstream_port = upstream_port
        self.choose = choose
        self.modes: Counter[str] = Counter()
        #: Task ids in answers this proxy cut before the id's closing quote got through.
        self.cut_ids: set[str] = set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @classmethod
    def random(
        cls, upstream_port: int, weights: dict[ProxyMode, float], seed: int = SEED
    ) -> ChaosProxy:
        """A proxy drawing each connection's mode from ``weights`` (seeded)."""
        rng = random.Random(seed)
        modes, shares = list(weights), list(weights.values())
        return cls(upstream_port, lambda: rng.choices(modes, shares)[0])

    async def start(self) -> ChaosProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def __aenter__(self) -> ChaosProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            mode = self.choose()
            self.modes[mode] += 1
            if mode == "reset-on-accept":
                _reset(writer)
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            try:
                await self._relay(mode, reader, writer, up_reader, up_writer)
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            _reset(writer)
        finally:
            self._handlers.discard(task)
            writer.close()

    def _note_cut_ids(self, answer: bytes, sent: bytes) -> None:
        for found in re.finditer(rb'"id": "([^"]+)"', answer):
            if len(sent) < found.end():
                self.cut_ids.add(found[1].decode())

    async def _relay(
        self,
        mode: ProxyMode,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        upload = asyncio.ensure_future(_pipe(reader, up_writer))
        try:
            if mode == "pass":
                await _pipe(up_reader, writer)
                return
            answer = await up_reader.read(65536)
            with contextlib.suppress(asyncio.TimeoutError):  # the rest of a short answer
                while chunk := await asyncio.wait_for(up_reader.read(65536), 0.05):
                    answer += chunk
            sent = answer[: max(1, len(answer) // 2)] if mode == "reset-mid-response" else b""
            self._note_cut_ids(answer, sent)
            if sent:
                writer.write(sent)
                await writer.drain()
            _reset(writer)
        finally:
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await upload


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class RefusingResolver(AbstractResolver):
    """Resolves ``localhost`` to the proxy, or now and then to a port nobody listens on.

    A connection to the closed port is refused by the kernel: the request surely never
    left, the one case where the SDK may send a create again. Use it with
    ``TCPConnector(resolver=..., use_dns_cache=False)`` so that each connection asks.
    """

    def __init__(self, port: int, closed_port: int, share: float, seed: int = SEED) -> None:
        self.port = port
        self.closed_port = closed_port
        self.share = share
        self.refused = 0
        self._rng = random.Random(seed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target = self.port
        if self._rng.random() < self.share:
            target = self.closed_port
            self.refused += 1
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": target,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def fake_options(**overrides: Any) -> dict[str, Any]:
    """A fake whose tasks take 15 ms and whose videos are small."""
    options: dict[str, Any] = {
        "api_key": KEY,
        "time_scale": 0.0005,
        "video_size": 16 * 1024,
        "seed": SEED,
    }
    options.update(overrides)
    return options


__all__ = [
    "FAST_RETRY",
    "KEY",
    "NAMING_FAULTS",
    "READ_TIMEOUT",
    "SEED",
    "SERVICE_FAULTS",
    "SLOW",
    "ChaosProxy",
    "FakeStarVideos",
    "LogCapture",
    "RecordingClient",
    "RefusingResolver",
    "client_options",
    "fake_options",
    "fault_for",
    "outcome_unknown",
    "texts_of",
]
