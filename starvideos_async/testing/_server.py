"""A fake StarVideos service: a real aiohttp.web server that speaks the documented API.

Two TCP sites: the API (``POST /kyyReactApiServer/v1/starvideos/videos``,
``GET /kyyReactApiServer/v1/result/{id}``) and, on another port and so another origin,
the file host that serves finished videos. A task's status is computed from the clock on
each query (no timer per task), so 100,000 tasks cost little. Everything random derives
from ``seed``. The public face of this package is :mod:`starvideos_async.testing`.

This module is :class:`FakeStarVideos` itself: its lifecycle and addresses, what it saw
(requests, counters, peaks), arming faults, the video files. It builds on two layers:
``_service`` (tasks on the simulated clock, and the manual controls) and ``_routes``
(how requests are answered). The data types are in ``_tasks``, the file host in
``_files``, faults in ``_faults``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from yarl import URL

from ._faults import Fault, InjectedFault
from ._routes import ServiceRoutes
from ._service import NOT_STARTED
from ._tasks import BASE_PATH, DurationSampler, FakeTask, RecordedRequest

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from starvideos_async import AsyncStarVideos

__all__ = ["BASE_PATH", "DurationSampler", "FakeStarVideos", "FakeTask", "RecordedRequest"]


class FakeStarVideos(ServiceRoutes):
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
        super().__init__(
            api_key=api_key,
            time_scale=time_scale,
            seed=seed,
            failure_rate=failure_rate,
            queued_seconds=queued_seconds,
            processing_seconds=processing_seconds,
            duration_sampler=duration_sampler,
            auto_advance=auto_advance,
            video_size=video_size,
            latency=latency,
            record_requests=record_requests,
        )
        self.host = host
        self._ports = (port, files_port)
        self._shutdown_timeout = shutdown_timeout
        self._runners: list[web.AppRunner] = []
        self._closed = False
        self._origins: list[URL] = []

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
        api, files = self._apps()
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
            raise RuntimeError(NOT_STARTED)
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
