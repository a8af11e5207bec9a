"""A fake StarVideos service: a real aiohttp.web server that speaks the documented API.

Two TCP sites: the API (``POST /kyyReactApiServer/v1/starvideos/videos``,
``GET /kyyReactApiServer/v1/result/{id}``) and, on another port and so another origin,
the file host that serves finished videos. A task's status is computed from the clock on
each query (no timer per task), so 100,000 tasks cost little. Everything random derives
from ``seed``. The public face of this module is :mod:`starvideos_async.testing`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import functools
import hashlib
import heapq
import json
import random
import struct
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from ._fake_faults import (
    Endpoint,
    Fault,
    InjectedFault,
    answer_with_fault,
    canned_response,
    drop,
    error_json,
    pick_fault,
    send_then_drop,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from starvideos_async import AsyncStarVideos

__all__ = ["BASE_PATH", "DurationSampler", "FakeStarVideos", "FakeTask", "RecordedRequest"]

#: The documented path prefix; part of ``FakeStarVideos.base_url``.
BASE_PATH = "/kyyReactApiServer"
#: ``(rng, request_json) -> (queued_seconds, processing_seconds)``, in simulated seconds.
DurationSampler = Callable[[random.Random, Mapping[str, Any]], "tuple[float, float]"]

_MODEL = "starvideos_v3"
_RATIOS = frozenset({"16:9", "9:16"})
_JSON = "application/json"
_CHUNK = 64 * 1024
_ENDPOINTS: tuple[Endpoint, ...] = ("create", "status", "file", "other")
_FAILURES = (
    "content moderation: the prompt was rejected",
    "generation failed: internal model error",
    "image could not be fetched: the URL is not publicly reachable",
)
#: A plausible 32-byte ``ftyp`` box (isom, minor 0x200, isom/iso2/avc1/mp41).
_FTYP = struct.pack(">I4s4sI16s", 32, b"ftyp", b"isom", 0x200, b"isomiso2avc1mp41")
_JITTER = tuple(i / 100 for i in range(20))  # actualDuration - duration: 0.00 .. 0.19
_Reply = tuple[int, bytes, object]  # status, body, JSON data (for wrong_types)


class _Unset(enum.Enum):
    UNSET = enum.auto()


def _digest(kind: str, seed: int, name: object = "") -> bytes:
    return hashlib.blake2b(f"{kind}:{seed}:{name}".encode(), digest_size=32).digest()


def _xml_error(status: int, code: str, message: str) -> web.Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


@attrs.define(eq=False)
class FakeTask:
    """One task of the fake service; change it through the ``FakeStarVideos`` methods.

    Attributes:
        id: The task id, ``video_starvideos_<digits>``.
        number: Its creation index on this fake (0-based).
        created: Unix seconds at creation (the wire ``created``).
        model: The model requested.
        prompt: The prompt requested.
        duration: The duration requested (or the default 5).
        ratio: The ratio requested (or the default ``16:9``).
        images: The images the service uses (at most the first 2).
        request: The JSON body of the create request, as received.
        created_at: The simulated clock at creation.
        queued_seconds: Simulated seconds spent ``queued``.
        processing_seconds: Simulated seconds spent ``processing``.
        fails: Whether the timeline ends in ``failed`` (drawn from ``failure_rate``).
        error_message: The error text it fails with.
        actual_duration: The ``actualDuration`` reported when completed.
        token: The query token of its file URL.
        pinned_status: A status set by hand, overriding the timeline.
        pinned_error: The error text set by ``fail()``.
        held: Never reaches a terminal status on its own while set.
        overrides: Wire fields forced into query answers (``set_fields``).
        omitted: Wire fields left out of query answers (``omit_fields``).
        expired_status: What the file host answers instead of the file (``expire``).
    """

    id: str
    number: int
    created: int
    model: str
    prompt: str
    duration: int
    ratio: str
    images: tuple[str, ...]
    request: dict[str, Any]
    created_at: float
    queued_seconds: float
    processing_seconds: float
    fails: bool
    error_message: str
    actual_duration: float
    token: str
    pinned_status: str | None = None
    pinned_error: str | None = None
    held: bool = False
    overrides: dict[str, Any] = attrs.Factory(dict)
    omitted: tuple[str, ...] = ()
    expired_status: int | None = None

    def status_at(self, sim_now: float) -> str:
        """The wire status at ``sim_now`` (simulated seconds on the fake's clock)."""
        if self.pinned_status is not None:
            return self.pinned_status
        elapsed = sim_now - self.created_at
        if elapsed < self.queued_seconds:
            return "queued"
        if self.held or elapsed < self.queued_seconds + self.processing_seconds:
            return "processing"
        return "failed" if self.fails else "completed"


@attrs.define(eq=False)
class RecordedRequest:
    """One request the fake service saw (API or file host).

    Attributes:
        method: The HTTP method.
        path: The URL path, without the query string.
        query: The raw query string.
        host: The ``Host`` the request was sent to (``127.0.0.1:<port>``).
        endpoint: ``"create"``, ``"status"``, ``"file"`` or ``"other"``.
        headers: A case-insensitive copy of the request headers (a ``CIMultiDict``:
            ``"authorization" in rec.headers`` holds whatever case was sent).
        started: ``time.monotonic()`` when the handler started.
        body: The raw body (read on ``create`` only).
        json: The parsed JSON body of a ``create``, or ``None``.
        task_id: The task created (``create``) or asked about (``status``, ``file``).
        status: The HTTP status answered; ``None`` when the connection was dropped first.
        fault: The injected fault that shaped the answer, if any.
        ended: ``time.monotonic()`` when the handler returned.
    """

    method: str
    path: str
    query: str
    host: str
    endpoint: Endpoint
    headers: CIMultiDict[str]
    started: float
    body: bytes = b""
    json: Any = None
    task_id: str | None = None
    status: int | None = None
    fault: Fault | None = None
    ended: float | None = None


class FakeStarVideos:
    """A fake StarVideos service on 127.0.0.1, for tests, demos and benchmarks.

    Example::

        async with FakeStarVideos(time_scale=0.001) as fake:
            async with fake.client() as client:
                ...
            assert fake.counters["create"] == 1

    Args:
        api_key: The only key accepted (``Authorization: Bearer <key>``).
        time_scale: Real seconds per simulated second (0.001: a 30 s task takes 30 ms).
        seed: Seeds everything random: ids, timelines, failures, tokens, video bytes.
        failure_rate: The share of tasks whose timeline ends ``failed``.
        queued_seconds: Simulated seconds each task stays ``queued``.
        processing_seconds: Simulated seconds each task stays ``processing``.
        duration_sampler: Draws ``(queued, processing)`` per task instead, given a
            ``random.Random`` seeded for that task (valid during the call only) and the
            create request's JSON.
        video_size: Size in bytes of every video file.
        host: The interface both sites listen on.
        port: The API port (0: a free one).
        files_port: The file host port (0: a free one).
        auto_advance: ``False`` stops the simulated clock (see :meth:`advance`).
        latency: Real seconds added to every API answer (makes overlap visible).
        record_requests: ``False`` keeps counters and arrival times but not
            :attr:`requests` (for long benchmarks).
        shutdown_timeout: Seconds :meth:`close` waits for requests still running.
    """

    def __init__(
        self,
        api_key: str = "sk-fake-starvideos",
        *,
        time_scale: float = 0.01,
        seed: int = 0,
        failure_rate: float = 0.0,
        queued_seconds: float = 3.0,
        processing_seconds: float = 27.0,
        duration_sampler: DurationSampler | None = None,
        video_size: int = 256 * 1024,
        host: str = "127.0.0.1",
        port: int = 0,
        files_port: int = 0,
        auto_advance: bool = True,
        latency: float = 0.0,
        record_requests: bool = True,
        shutdown_timeout: float = 1.0,
    ) -> None:
        if min(video_size, queued_seconds, processing_seconds, latency) < 0:
            msg = "video_size, queued_seconds, processing_seconds and latency must be >= 0"
            raise ValueError(msg)
        self._auto_advance = auto_advance
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._time_scale = 1.0
        self._fail_below = 0
        self._auth = ""
        self.api_key = api_key
        self.time_scale = time_scale
        self.seed = seed
        self.failure_rate = failure_rate
        self.queued_seconds = queued_seconds
        self.processing_seconds = processing_seconds
        self.duration_sampler = duration_sampler
        self.video_size = video_size
        self.host = host
        self.latency = latency
        self.record_requests = record_requests
        #: Every task, by id.
        self.tasks: dict[str, FakeTask] = {}
        #: How many tasks were created (by ``create`` requests and :meth:`create_task`).
        self.created = 0
        self._ports = (port, files_port)
        self._shutdown_timeout = shutdown_timeout
        self._id_base = 1_000_000_000 + int.from_bytes(_digest("ids", seed)[:8], "big") % (
            8_000_000_000
        )
        self._block: memoryview | None = None
        self._fault_rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
        self._faults: list[InjectedFault] = []
        self._runners: list[web.AppRunner] = []
        self._closing: asyncio.Event | None = None
        self._closed = False
        self._origins: list[URL] = []
        self._file_prefix = ""  # set by start(): the video_url up to the file name
        self._in_flight: dict[str, int] = dict.fromkeys(_ENDPOINTS, 0)
        self._api_in_flight = 0
        self.reset_stats()

    # -- lifecycle and addresses -------------------------------------------------------

    async def start(self) -> None:
        """Start both sites on free ports (unless ports were given).

        Raises:
            RuntimeError: If already started (a fake starts once).
        """
        if self._runners or self._closed:
            msg = "this FakeStarVideos was already started"
            raise RuntimeError(msg)
        self._closing = asyncio.Event()
        api = web.Application()
        api.router.add_post(f"{BASE_PATH}/v1/starvideos/videos", self._on_create)
        api.router.add_get(f"{BASE_PATH}/v1/result/{{task_id}}", self._on_status)
        api.router.add_route("*", "/{tail:.*}", self._on_other_api)
        files = web.Application()
        files.router.add_get("/files/{name}", self._on_file)
        files.router.add_route("*", "/{tail:.*}", self._on_other_files)
        wildcard = self.host in ("", "0.0.0.0", "::")  # noqa: S104 - only compared
        try:
            for app, port in zip((api, files), self._ports, strict=True):
                runner = web.AppRunner(
                    app, access_log=None, shutdown_timeout=self._shutdown_timeout
                )
                self._runners.append(runner)
                await runner.setup()
                await web.TCPSite(runner, self.host, port, backlog=1024).start()
                host = "127.0.0.1" if wildcard else self.host
                self._origins.append(
                    URL.build(scheme="http", host=host, port=runner.addresses[0][1])
                )
        except BaseException:
            await self.close()
            raise
        self._file_prefix = f"{self.files_url}/files/"

    async def close(self) -> None:
        """Stop both sites (idempotent); requests held by ``Fault.delay`` are dropped."""
        if self._closed:
            return
        self._closed = True
        if self._closing is not None:
            self._closing.set()
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled or :meth:`close` is called.

        From a command line: ``asyncio.run(FakeStarVideos(port=8000).serve_forever())``.
        """
        if not self._runners:
            await self.start()
        assert self._closing is not None  # noqa: S101 - set by start()
        try:
            await self._closing.wait()
        finally:
            await self.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _origin(self, index: int) -> URL:
        if len(self._origins) < 2:
            msg = "FakeStarVideos is not started: use 'async with' or await start()"
            raise RuntimeError(msg)
        return self._origins[index]

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:<port>/kyyReactApiServer``."""
        return str(self._origin(0).with_path(BASE_PATH))

    @property
    def files_url(self) -> str:
        """The file host's origin, ``http://127.0.0.1:<files_port>``."""
        return str(self._origin(1)).rstrip("/")

    @property
    def port(self) -> int:
        """The API port."""
        return self._origin(0).port or 0

    @property
    def files_port(self) -> int:
        """The file host port."""
        return self._origin(1).port or 0

    def client(self, **kwargs: Any) -> AsyncStarVideos:
        """Build an SDK client pointed at this fake, with its key.

        Args:
            **kwargs: More ``AsyncStarVideos`` arguments (timeouts, poll policy...).

        Returns:
            ``AsyncStarVideos(api_key=fake.api_key, base_url=fake.base_url, **kwargs)``.
        """
        from starvideos_async import AsyncStarVideos  # late: the package imports no fake

        return AsyncStarVideos(api_key=self.api_key, base_url=self.base_url, **kwargs)

    # -- statistics ----------------------------------------------------------------------

    def reset_stats(self) -> None:
        """Forget recorded requests, counters, arrival times and in-flight peaks."""
        #: Every request seen, in arrival order (unless ``record_requests=False``).
        self.requests: list[RecordedRequest] = []
        #: Requests per endpoint, faulted ones included; missing keys read as 0.
        self.counters: Counter[str] = Counter()
        self._arrivals: dict[str, array[float]] = {e: array("d") for e in _ENDPOINTS}
        # Requests running now still count (and will end): peaks restart from them.
        self._peak = dict(self._in_flight)
        self._api_peak = self._api_in_flight

    @property
    def max_in_flight(self) -> int:
        """The peak number of API requests (downloads excluded) handled at once."""
        return self._api_peak

    @property
    def max_in_flight_by_endpoint(self) -> dict[str, int]:
        """The peak number of requests handled at once, per endpoint."""
        return dict(self._peak)

    def arrival_times(self, endpoint: str = "any") -> list[float]:
        """The sorted ``time.monotonic()`` arrivals of ``endpoint`` (or ``"any"``)."""
        if endpoint == "any":
            return list(heapq.merge(*self._arrivals.values()))
        return list(self._arrivals[endpoint])

    def max_calls_in_window(self, endpoint: str = "status", window: float = 1.0) -> int:
        """The most requests of ``endpoint`` (or ``"any"``) arriving in any ``[t, t+window)``.

        Args:
            endpoint: ``"create"``, ``"status"``, ``"file"``, ``"other"`` or ``"any"``.
            window: The window length, in real seconds.

        Returns:
            The maximum count.
        """
        times = self.arrival_times(endpoint)
        best = 0
        for i, start in enumerate(times):
            best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
        return best

    # -- the clock and manual control ------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The only key the API accepts (can be changed, to test key rotation)."""
        return self._auth.removeprefix("Bearer ")

    @api_key.setter
    def api_key(self, value: str) -> None:
        self._auth = f"Bearer {value}"

    @property
    def time_scale(self) -> float:
        """Real seconds per simulated second; changing it does not move the clock."""
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if not value > 0:
            msg = "time_scale must be > 0"
            raise ValueError(msg)
        self._offset, self._t0 = self.sim_now(), time.monotonic()
        self._time_scale = value

    @property
    def failure_rate(self) -> float:
        """The share of tasks created from now on whose timeline ends ``failed``."""
        return self._fail_below / 2**64

    @failure_rate.setter
    def failure_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            msg = "failure_rate must be within [0, 1]"
            raise ValueError(msg)
        self._fail_below = int(value * 2**64)

    @property
    def auto_advance(self) -> bool:
        """Whether the simulated clock follows real time (can be switched any time)."""
        return self._auto_advance

    @auto_advance.setter
    def auto_advance(self, value: bool) -> None:
        self._offset, self._t0 = self.sim_now(), time.monotonic()
        self._auto_advance = value

    def sim_now(self) -> float:
        """The simulated clock, in simulated seconds."""
        if self._auto_advance:
            return (time.monotonic() - self._t0) / self._time_scale + self._offset
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward by ``seconds`` simulated seconds."""
        self._offset += seconds

    def create_task(self, request: Mapping[str, Any] | None = None, /, **fields: Any) -> FakeTask:
        """Create a task directly, as a valid create request would (no request recorded).

        Args:
            request: The create body; ``prompt`` and ``model`` have test defaults.
            **fields: More body fields.

        Returns:
            The new task.

        Raises:
            ValueError: If the service would answer 400 to this body.
        """
        body = {"prompt": "a test video", "model": _MODEL, **(request or {}), **fields}
        checked = _validate(body)
        if isinstance(checked, str):
            raise ValueError(checked)
        return self._new_task(body, *checked)

    def status_of(self, task_id: str, /) -> str:
        """The status a query for ``task_id`` would answer now."""
        return self.tasks[task_id].status_at(self.sim_now())

    def snapshot(self, task_id: str, /) -> dict[str, Any]:
        """The JSON object a query for ``task_id`` would answer now."""
        return self._wire(self.tasks[task_id])

    def complete(self, task_id: str, /, *, video_url: str | _Unset | None = _Unset.UNSET) -> None:
        """Make a task ``completed`` now; ``video_url=None`` completes it without a URL."""
        task = self.tasks[task_id]
        task.pinned_status, task.pinned_error = "completed", None
        if not isinstance(video_url, _Unset):
            task.overrides["video_url"] = video_url

    def fail(self, task_id: str, /, error: str = "generation failed") -> None:
        """Make a task ``failed`` now, with ``error`` as the wire error text."""
        task = self.tasks[task_id]
        task.pinned_status, task.pinned_error = "failed", error

    def set_status(self, task_id: str, /, status: str | None) -> None:
        """Pin any wire status (``"cancelled"``, unknown, backwards); ``None`` unpins."""
        task = self.tasks[task_id]
        task.pinned_status, task.pinned_error = status, None

    def set_fields(self, task_id: str, /, **wire_fields: Any) -> None:
        """Force wire fields (known, changed or unknown) into every query answer.

        Applied last: ``set_fields(id, video_url=None)`` beats the computed URL.
        """
        self.tasks[task_id].overrides.update(wire_fields)

    def omit_fields(self, task_id: str, /, *names: str) -> None:
        """Leave wire fields out of every query answer (``"video_url"``, say)."""
        task = self.tasks[task_id]
        task.omitted = (*task.omitted, *names)

    def hold(self, task_id: str, /) -> None:
        """Keep a task from finishing on its own: it stays ``processing``."""
        self.tasks[task_id].held = True

    def release(self, task_id: str, /) -> None:
        """Undo :meth:`hold`: the task follows its timeline again."""
        self.tasks[task_id].held = False

    def remove(self, task_id: str, /) -> FakeTask:
        """Forget a task (queries and downloads answer 404 from now on); returns it."""
        return self.tasks.pop(task_id)

    def expire(self, task_id: str, /, status: int = 410) -> None:
        """Make the file host answer ``status`` (403, 404, 410...) for the task's video."""
        if not 400 <= status < 600:
            msg = "status must be an HTTP error status"
            raise ValueError(msg)
        self.tasks[task_id].expired_status = status

    # -- faults and files --------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        endpoint: Literal["create", "status", "file", "any"] = "any",
        *,
        times: int | None = 1,
        probability: float | None = None,
        task_id: str | None = None,
    ) -> InjectedFault:
        """Arm a fault; on each request the first armed fault that matches fires.

        Args:
            fault: What to do.
            endpoint: Which requests match (``"any"``: create, status and file).
            times: How many times it fires (``None``: until removed).
            probability: Fire on a matching request with this chance (seeded RNG).
            task_id: Only requests about this task match (``status`` and ``file``).

        Returns:
            A handle with ``remove()``, ``fired`` and ``active``.

        Raises:
            ValueError: For ``times < 1`` or a ``task_id`` on ``create``.
        """
        if (task_id is not None and endpoint == "create") or (times is not None and times < 1):
            msg = "times must be >= 1 or None, and task_id cannot select create requests"
            raise ValueError(msg)
        rule = InjectedFault(fault, endpoint, times, probability, task_id, owner=self._faults)
        self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Disarm every fault."""
        for rule in list(self._faults):
            rule.remove()

    def file_url(self, task_id: str, /) -> str:
        """The ``video_url`` the task gets when completed (file host, with its token)."""
        task = self.tasks[task_id]
        return f"{self.files_url}/files/{task.id}.mp4?token={task.token}"

    def video_bytes(self, task_id: str, /) -> bytes:
        """The exact ``video_size`` bytes served for a task, from (seed, id).

        They start with an mp4 ``ftyp`` box; the task need not exist (any more).
        """
        return b"".join(self._video_chunks(task_id, 0, self.video_size))

    def _video_chunks(self, task_id: str, start: int, end: int) -> Iterator[bytes | memoryview]:
        """Bytes ``[start, end)``: a per-id header, then a shared block rotated per id."""
        size = self.video_size
        marker = _digest("video", self.seed, task_id)
        mdat = min(max(size - len(_FTYP), 0), 0xFFFFFFFF)
        header = _FTYP + struct.pack(">I4s", mdat, b"mdat") + marker[:16]
        if start < len(header):
            yield header[start : min(end, len(header))]
            start = len(header)
        if start >= end:
            return
        if self._block is None or len(self._block) != size:
            rng = random.Random(self.seed)  # noqa: S311 - test data, not cryptography
            self._block = memoryview(rng.randbytes(size))
        shift = int.from_bytes(marker[16:24], "big") % size
        while start < end:
            j = (start + shift) % size
            n = min(end - start, size - j, _CHUNK)
            yield self._block[j : j + n]
            start += n

    # -- internals ---------------------------------------------------------------------------

    def _begin(
        self, request: web.Request, endpoint: Endpoint, api: bool
    ) -> RecordedRequest | None:
        now = time.monotonic()
        self.counters[endpoint] += 1
        self._arrivals[endpoint].append(now)
        n = self._in_flight[endpoint] = self._in_flight[endpoint] + 1
        if n > self._peak[endpoint]:
            self._peak[endpoint] = n
        if api:
            self._api_in_flight += 1
            self._api_peak = max(self._api_peak, self._api_in_flight)
        if not self.record_requests:
            return None
        headers = request.headers.copy()
        rec = RecordedRequest(
            request.method,
            request.path,
            request.query_string,
            request.host,
            endpoint,
            headers,
            now,
        )
        self.requests.append(rec)
        return rec

    def _end(self, rec: RecordedRequest | None, endpoint: Endpoint, api: bool) -> None:
        self._in_flight[endpoint] -= 1
        if api:
            self._api_in_flight -= 1
        if rec is not None:
            rec.ended = time.monotonic()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False when the fake started closing meanwhile."""
        closing = self._closing
        assert closing is not None  # noqa: S101 - handlers only run after start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closing.wait(), seconds)
        return not closing.is_set()

    def _new_task(
        self,
        body: dict[str, Any],
        prompt: str,
        model: str,
        duration: int,
        ratio: str,
        images: tuple[str, ...],
    ) -> FakeTask:
        number = self.created
        task_id = f"video_starvideos_{self._id_base + number}"
        h = _digest("task", self.seed, task_id)
        if self.duration_sampler is not None:
            rng = random.Random(int.from_bytes(h[24:], "big"))  # noqa: S311 - test data
            queued, processing = self.duration_sampler(rng, body)
        else:
            queued, processing = self.queued_seconds, self.processing_seconds
        task = FakeTask(
            id=task_id,
            number=number,
            created=int(time.time()),
            model=model,
            prompt=prompt,
            duration=duration,
            ratio=ratio,
            images=images,
            request=body,
            created_at=self.sim_now(),
            queued_seconds=queued,
            processing_seconds=processing,
            fails=int.from_bytes(h[:8], "big") < self._fail_below,
            error_message=_FAILURES[h[16] % len(_FAILURES)],
            actual_duration=duration + _JITTER[h[8] % 20],
            token=h[17:25].hex(),
        )
        self.tasks[task_id] = task
        self.created = number + 1
        return task

    def _wire(self, task: FakeTask) -> dict[str, Any]:
        status = task.status_at(self.sim_now())
        data: dict[str, Any] = {
            "id": task.id,
            "object": "video",
            "created": task.created,
            "model": task.model,
            "status": status,
            "video_url": None,
        }
        if status == "completed":
            prefix = self._file_prefix or f"{self.files_url}/files/"
            data["video_url"] = f"{prefix}{task.id}.mp4?token={task.token}"
            data["actualDuration"] = task.actual_duration
        data["error"] = (task.pinned_error or task.error_message) if status == "failed" else None
        if task.overrides:
            data.update(task.overrides)
        for name in task.omitted:
            data.pop(name, None)
        return data

    def _create_reply(
        self, request: web.Request, body: bytes, rec: RecordedRequest | None
    ) -> _Reply:
        try:
            payload: Any = json.loads(body)
        except (ValueError, RecursionError):
            payload = _Unset.UNSET
        else:
            if rec is not None:
                rec.json = payload
        if request.headers.get("Authorization") != self._auth:
            return 401, error_json(401, "Invalid API key"), None
        if payload is _Unset.UNSET:
            return 400, error_json(400, "the request body is not valid JSON"), None
        checked = _validate(payload)
        if isinstance(checked, str):
            return 400, error_json(400, checked), None
        task = self._new_task(payload, *checked)
        if rec is not None:
            rec.task_id = task.id
        data = {"id": task.id, "object": "video", "created": task.created, "model": task.model}
        data.update(status="queued", error=None)
        return 200, json.dumps(data).encode(), data

    def _status_reply(self, request: web.Request, task_id: str) -> _Reply:
        if request.headers.get("Authorization") != self._auth:
            return 401, error_json(401, "Invalid API key"), None
        task = self.tasks.get(task_id)
        if task is None:
            return 404, error_json(404, f"task {task_id} not found"), None
        data = self._wire(task)
        return 200, json.dumps(data).encode(), data

    async def _on_create(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, "create")

    async def _on_status(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, "status")

    async def _api(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        rec = self._begin(request, endpoint, api=True)
        try:
            work: Callable[[], _Reply]
            if endpoint == "create":
                task_id = None
                body = await request.read()
                if rec is not None:
                    rec.body = body
                work = functools.partial(self._create_reply, request, body, rec)
            else:
                task_id = request.match_info["task_id"]
                if rec is not None:
                    rec.task_id = task_id
                work = functools.partial(self._status_reply, request, task_id)
            rules = self._faults
            fault = pick_fault(rules, endpoint, task_id, self._fault_rng.random) if rules else None
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault is not None:
                side_effects = endpoint == "create"
                resp, status = await answer_with_fault(
                    request, fault, work, side_effects, self._sleep
                )
                if rec is not None:
                    rec.fault, rec.status = fault, status
                return resp
            status, raw, _ = work()
            if rec is not None:
                rec.status = status
            return web.Response(status=status, body=raw, content_type=_JSON)
        finally:
            self._end(rec, endpoint, api=True)

    async def _on_file(self, request: web.Request) -> web.StreamResponse:
        rec = self._begin(request, "file", api=False)
        try:
            name = request.match_info["name"]
            task_id = name.removesuffix(".mp4")
            if rec is not None:
                rec.task_id = task_id
            rules = self._faults
            fault = pick_fault(rules, "file", task_id, self._fault_rng.random) if rules else None
            limit = None
            if fault is not None:
                if rec is not None:
                    rec.fault = fault
                if fault.kind == "drop_connection" or (
                    fault.kind == "delay" and not await self._sleep(fault.seconds)
                ):
                    return drop(request)
                if fault.kind == "drop_after":
                    limit = fault.nbytes
                elif fault.kind != "delay":
                    if rec is not None:
                        rec.status = fault.code
                    return canned_response(fault, None, None)
            resp = await self._serve_file(request, name, task_id, limit)
            if rec is not None:
                rec.status = resp.status
            return resp
        finally:
            self._end(rec, "file", api=False)

    async def _serve_file(
        self, request: web.Request, name: str, task_id: str, limit: int | None
    ) -> web.StreamResponse:
        task = self.tasks.get(task_id)
        if "Authorization" in request.headers:  # as presigned-URL hosts (S3) answer
            return _xml_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        if task is None or not name.endswith(".mp4"):
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        if task.expired_status is not None:
            return _xml_error(task.expired_status, "AccessDenied", "Request has expired")
        if request.query.get("token") != task.token:
            return _xml_error(403, "AccessDenied", "Invalid or missing token")
        size = self.video_size
        etag = f'"{task.token}-{size}"'
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": etag}
        status, start, end = 200, 0, size
        wanted = None
        if "Range" in request.headers and request.headers.get("If-Range", etag) == etag:
            wanted = _parse_range(request.headers["Range"], size)
        if wanted == "unsatisfiable":
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        if wanted is not None:
            status, (start, end) = 206, wanted
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        chunks = self._video_chunks(task_id, start, end)
        return await send_then_drop(request, status, headers, end - start, chunks, limit)

    async def _on_other_api(self, request: web.Request) -> web.StreamResponse:
        return self._other(request, api=True)

    async def _on_other_files(self, request: web.Request) -> web.StreamResponse:
        return self._other(request, api=False)

    def _other(self, request: web.Request, *, api: bool) -> web.StreamResponse:
        rec = self._begin(request, "other", api=api)
        if rec is not None:
            rec.status = 404
        self._end(rec, "other", api=api)
        message = f"no route for {request.method} {request.path}"
        return web.Response(status=404, body=error_json(404, message), content_type=_JSON)


def _validate(payload: object) -> str | tuple[str, str, int, str, tuple[str, ...]]:
    """Check a create body as the docs say: an error message, or the normalised fields."""
    if not isinstance(payload, dict):
        return "the request body must be a JSON object"
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required and must be a non-empty string"
    model = payload.get("model")
    if model != _MODEL:
        return f"model must be {_MODEL!r}"
    duration = payload.get("duration")
    if duration is None:
        duration = 5
    elif type(duration) is not int or not 3 <= duration <= 15:
        return "duration must be an integer between 3 and 15"
    ratio = payload.get("ratio")
    if ratio is None:
        ratio = "16:9"
    elif ratio not in _RATIOS:
        return "ratio must be '16:9' or '9:16'"
    images = payload.get("images")
    if images is None:
        images = []
    elif not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        return "images must be an array of URL strings"
    return prompt, model, duration, ratio, tuple(images[:2])


def _parse_range(value: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """One ``bytes=`` range as ``(start, end)``, unsatisfiable, or ``None`` (ignore it)."""
    unit, _, spec = value.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    if not (first.isdigit() or not first) or not (last.isdigit() or not last):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        return (max(size - suffix, 0), size) if suffix and size else "unsatisfiable"
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(int(last) + 1, size) if last else size
