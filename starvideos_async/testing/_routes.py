"""How the fake StarVideos service answers HTTP: its routes and request handlers.

:class:`ServiceRoutes` adds to the simulated service (``_service``) the two aiohttp
applications: the API (``POST {BASE_PATH}/v1/starvideos/videos``,
``GET {BASE_PATH}/v1/result/{id}``, 404 for anything else) and the file host
(``GET /files/<id>.mp4``, served by ``_files``). Each handler records the request
(``RequestLog``), checks the key, applies the armed fault the request meets (``_faults``)
and answers. ``FakeStarVideos`` (``_server``) runs the applications on two TCP sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._faults import Endpoint, Fault, InjectedFault, pick_fault
from ._files import VideoFiles
from ._responses import JSON, drop, error_json, send_then_drop
from ._service import SimulatedService
from ._tasks import BASE_PATH, RecordedRequest, RequestLog, _Reply, _Unset, _validate

__all__ = ["ServiceRoutes", "answer_with_fault", "canned_response"]


class ServiceRoutes(SimulatedService):
    """The simulated service behind its two aiohttp applications (API and file host).

    The base of ``FakeStarVideos``, which documents the arguments.
    """

    def __init__(
        self, *, video_size: int, latency: float, record_requests: bool, **service: Any
    ) -> None:
        super().__init__(**service)
        self.video_size = video_size
        self.latency = latency
        self.record_requests = record_requests
        self._videos = VideoFiles()
        self._fault_rng = random.Random(self.seed)  # noqa: S311 - test data, not cryptography
        self._faults: list[InjectedFault] = []
        self._closing: asyncio.Event | None = None  # set by FakeStarVideos.start()
        self._log = RequestLog()

    def _apps(self) -> tuple[web.Application, web.Application]:
        """The API's application and the file host's, routed to the handlers below."""
        api = web.Application()
        api.router.add_post(f"{BASE_PATH}/v1/starvideos/videos", self._on_create)
        api.router.add_get(f"{BASE_PATH}/v1/result/{{task_id}}", self._on_status)
        api.router.add_route("*", "/{tail:.*}", self._on_other_api)
        files = web.Application()
        files.router.add_get("/files/{name}", self._on_file)
        files.router.add_route("*", "/{tail:.*}", self._on_other_files)
        return api, files

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False when the fake started closing meanwhile."""
        closing = self._closing
        assert closing is not None  # noqa: S101 - handlers only run after start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closing.wait(), seconds)
        return not closing.is_set()

    # -- the API --------------------------------------------------------------------------

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
            return web.Response(status=status, body=raw, content_type=JSON)
        finally:
            self._log.end(rec, endpoint, True)

    # -- the file host and unknown paths --------------------------------------------------

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
        return web.Response(status=404, body=error_json(404, message), content_type=JSON)


def canned_response(fault: Fault, real: bytes | None, real_data: object) -> web.Response:
    """Build the response of a fault that answers with a body.

    Args:
        fault: A fault of kind ``respond``, ``malformed_json`` or ``wrong_types``.
        real: The real answer's body, when the work was done (``when="after"``).
        real_data: The real answer's JSON data (a ``dict`` for create/status answers).

    Returns:
        The response to send.
    """
    body = fault.body
    if fault.kind == "malformed_json" and real:
        body = real[: max(1, len(real) // 2)]
    elif fault.kind == "wrong_types":
        data: dict[str, Any]
        if isinstance(real_data, dict):
            data = dict(real_data)
        else:
            data = {"id": 1234567890, "object": "video", "model": None, "error": None}
        data.update(fault.fields)
        body = json.dumps(data).encode()
    resp = web.Response(status=fault.code, body=body, headers=dict(fault.headers))
    if fault.content_type is None:
        resp.headers.popall("Content-Type", None)
    else:
        resp.headers["Content-Type"] = fault.content_type
    return resp


async def answer_with_fault(
    request: web.BaseRequest,
    fault: Fault,
    work: Callable[[], tuple[int, bytes, object]],
    side_effects: bool,
    sleep: Callable[[float], Awaitable[bool]],
) -> tuple[web.StreamResponse, int | None]:
    """Answer an API request with a fault.

    Args:
        request: The request.
        fault: The fault that fired.
        work: The normal processing: ``(status, body, json_data)``.
        side_effects: Whether ``work`` changes state (create); only then does
            ``when="before"`` skip it.
        sleep: Sleeps real seconds; returns ``False`` when the server is closing.

    Returns:
        The response and the status it carries (``None`` when the connection is dropped).
    """
    skip_work = side_effects and fault.when == "before"
    status, raw, data = fault.code, b"", None
    if fault.kind == "delay":  # work, then wait, only for a create with when="after"
        work_first = side_effects and fault.when == "after"
        if work_first:
            status, raw, _ = work()
        if not await sleep(fault.seconds):
            return drop(request), None
        if not work_first:
            status, raw, _ = work()
        fault = Fault(kind="respond", code=status, body=raw)
    elif not skip_work:
        status, raw, data = work()
    if fault.kind == "drop_connection":
        return drop(request), None
    if fault.kind == "drop_after":
        headers = {"Content-Type": JSON}
        resp = await send_then_drop(request, status, headers, len(raw), (raw,), fault.nbytes)
        return resp, status
    return canned_response(fault, raw or None, data), fault.code
