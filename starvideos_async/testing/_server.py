"""A fake StarVideos service: a real aiohttp.web server that speaks the documented API.

Two TCP sites: the API (``POST /kyyReactApiServer/v1/starvideos/videos``,
``GET /kyyReactApiServer/v1/result/{id}``) and, on another port and so another origin,
the file host that serves finished videos. A task's status is computed from the clock on
each query (no timer per task), so 100,000 tasks cost little. Everything random derives
from ``seed``. The public face of this package is :mod:`starvideos_async.testing`.

This module is the server and its controls: lifecycle, routing, request handlers,
recording, the clock, manual control. Tasks, recorded requests and the create-body rules
are in ``_tasks``, the file host's answers and video bytes in ``_files``,
faults in ``_faults``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from yarl import URL

from ._faults import (
    Endpoint,
    Fault,
    InjectedFault,
    answer_with_fault,
    canned_response,
    drop,
    error_json,
    pick_fault,
)
from ._files import VideoFiles
from ._tasks import (
    _MODEL,
    BASE_PATH,
    DurationSampler,
    FakeTask,
    RecordedRequest,
    RequestLog,
    _Checked,
    _digest,
    _draw_task,
    _Reply,
    _Unset,
    _validate,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from starvideos_async import AsyncStarVideos

__all__ = ["BASE_PATH", "DurationSampler", "FakeStarVideos", "FakeTask", "RecordedRequest"]

_JSON = "application/json"


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
        self._videos = VideoFiles()
        self._fault_rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
        self._faults: list[InjectedFault] = []
        self._runners: list[web.AppRunner] = []
        self._closing: asyncio.Event | None = None
        self._closed = False
        self._origins: list[URL] = []
        self._file_prefix = ""  # set by start(): the video_url up to the file name
        self._log = RequestLog()

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

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request seen, in arrival order (unless ``record_requests=False``)."""
        return self._log.requests

    @property
    def counters(self) -> Counter[str]:
        """Requests per endpoint, faulted ones included; missing keys read as 0."""
        return self._log.counters

    def reset_stats(self) -> None:
        """Forget recorded requests, counters, arrival times and in-flight peaks."""
        self._log.reset()

    @property
    def max_in_flight(self) -> int:
        """The peak number of API requests (downloads excluded) handled at once."""
        return self._log.api_peak

    @property
    def max_in_flight_by_endpoint(self) -> dict[str, int]:
        """The peak number of requests handled at once, per endpoint."""
        return dict(self._log.peak)

    def arrival_times(self, endpoint: str = "any") -> list[float]:
        """The sorted ``time.monotonic()`` arrivals of ``endpoint`` (or ``"any"``)."""
        return self._log.arrival_times(endpoint)

    def max_calls_in_window(self, endpoint: str = "status", window: float = 1.0) -> int:
        """The most requests of ``endpoint`` (or ``"any"``) arriving in any ``[t, t+window)``.

        Args:
            endpoint: ``"create"``, ``"status"``, ``"file"``, ``"other"`` or ``"any"``.
            window: The window length, in real seconds.

        Returns:
            The maximum count.
        """
        return self._log.max_calls_in_window(endpoint, window)

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
        return self._new_task(body, checked)

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
        size = self.video_size
        return b"".join(self._videos.chunks(self.seed, size, task_id, 0, size))

    # -- internals ---------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False when the fake started closing meanwhile."""
        closing = self._closing
        assert closing is not None  # noqa: S101 - handlers only run after start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closing.wait(), seconds)
        return not closing.is_set()

    def _new_task(self, body: dict[str, Any], checked: _Checked) -> FakeTask:
        number = self.created
        task_id = f"video_starvideos_{self._id_base + number}"
        sampler = self.duration_sampler
        timeline = (self.queued_seconds, self.processing_seconds) if sampler is None else sampler
        task = _draw_task(
            task_id,
            number,
            body,
            checked,
            seed=self.seed,
            created_at=self.sim_now(),
            fail_below=self._fail_below,
            timeline=timeline,
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
        task = self._new_task(payload, checked)
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
        rec = self._log.begin(request, endpoint, True, self.record_requests)
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
            self._log.end(rec, endpoint, True)

    async def _on_file(self, request: web.Request) -> web.StreamResponse:
        rec = self._log.begin(request, "file", False, self.record_requests)
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
            task = self.tasks.get(task_id)
            resp = await self._videos.serve(request, name, task, self.seed, self.video_size, limit)
            if rec is not None:
                rec.status = resp.status
            return resp
        finally:
            self._log.end(rec, "file", False)

    async def _on_other_api(self, request: web.Request) -> web.StreamResponse:
        return self._other(request, api=True)

    async def _on_other_files(self, request: web.Request) -> web.StreamResponse:
        return self._other(request, api=False)

    def _other(self, request: web.Request, *, api: bool) -> web.StreamResponse:
        rec = self._log.begin(request, "other", api, self.record_requests)
        if rec is not None:
            rec.status = 404
        self._log.end(rec, "other", api)
        message = f"no route for {request.method} {request.path}"
        return web.Response(status=404, body=error_json(404, message), content_type=_JSON)
