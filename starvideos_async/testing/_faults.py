"""Fault injection for the fake StarVideos service.

A :class:`Fault` describes one misbehaviour (an error status, a broken body, a delay, a
dropped connection); :meth:`FakeStarVideos.inject <starvideos_async.testing.FakeStarVideos.inject>`
arms it for some requests and returns an :class:`InjectedFault` handle. This module also
holds the helpers that turn a fault into bytes on the wire, so the request handlers in
``_server`` stay short.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import http
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Endpoint", "Fault", "FaultKind", "InjectedFault", "When"]

#: Where a request landed: the two API endpoints, the file host, or anything else.
Endpoint = Literal["create", "status", "file", "other"]
#: When a fault strikes on ``create``: before the task exists, or after it was created.
When = Literal["before", "after"]
#: The kinds of faults; most are canned responses (``"respond"``).
FaultKind = Literal[
    "respond", "malformed_json", "wrong_types", "delay", "drop_connection", "drop_after"
]

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"

_ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "rate_limit_exceeded",
}

_HTML_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

#: What a truncated create/status body looks like when there is no real body to cut.
_TRUNCATED_JSON = b'{"id": "video_starvideos_'


def _phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def error_json(code: int, message: str | None = None) -> bytes:
    """Encode the fake's own error body, ``{"error": {"message", "code"}}``.

    Args:
        code: The HTTP status the body goes with; picks the machine-readable code.
        message: The human-readable message; defaults to the status phrase.

    Returns:
        The JSON body as bytes.
    """
    err_code = _ERROR_CODES.get(code, "server_error" if code >= 500 else "error")
    payload = {"error": {"message": message or _phrase(code), "code": err_code}}
    return json.dumps(payload).encode()


def _encode_body(body: object, content_type: str | None) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, content_type or _TEXT
    if isinstance(body, str):
        return body.encode(), content_type or _TEXT
    return json.dumps(body).encode(), content_type or _JSON


def _retry_after_value(value: str | float | _dt.datetime) -> str:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return email.utils.format_datetime(value.astimezone(_dt.timezone.utc), usegmt=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _headers_tuple(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(headers.items()) if headers else ()


@attrs.frozen(kw_only=True)
class Fault:
    """One way for the fake service to misbehave.

    Build faults with the class methods (:meth:`status`, :meth:`rate_limit`, :meth:`html`,
    :meth:`error_payload`, :meth:`empty_body`, :meth:`malformed_json`,
    :meth:`wrong_types`, :meth:`delay`, :meth:`drop_connection`, :meth:`drop_after`) and
    arm them with ``FakeStarVideos.inject``.

    ``when`` only matters on the ``create`` endpoint: ``"before"`` answers without
    creating a task (as a gateway in front of the service would), ``"after"`` creates the
    task first and then answers with the fault, so the client cannot know the outcome.
    On ``status`` and ``file`` nothing changes state, and both behave the same.

    Attributes:
        kind: What the fault does; ``"respond"`` is a canned response.
        code: The HTTP status of the answer (for body-mangling faults too).
        body: The canned body (``"respond"``) or a fallback body.
        content_type: The ``Content-Type`` of the answer, or ``None`` to send none.
        headers: Extra response headers, as ``(name, value)`` pairs.
        seconds: The real (not simulated) delay, for :meth:`delay`.
        nbytes: How many body bytes to send before dropping, for :meth:`drop_after`.
        fields: Field values forced into the JSON answer, for :meth:`wrong_types`.
        when: ``"before"`` or ``"after"`` the work is done (see above).
    """

    kind: FaultKind
    code: int = 200
    body: bytes = b""
    content_type: str | None = _JSON
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    nbytes: int = 0
    fields: tuple[tuple[str, Any], ...] = ()
    when: When = "before"

    @classmethod
    def status(
        cls,
        code: int,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        *,
        when: When = "before",
    ) -> Fault:
        """Answer with an HTTP status and a chosen body.

        Args:
            code: The HTTP status, e.g. 401, 403, 404, 422, 500, 502, 503, 504.
            body: ``None`` for the fake's JSON error body; a ``dict``/``list`` is sent as
                JSON, a ``str`` or ``bytes`` verbatim (as ``text/plain`` unless
                ``content_type`` says otherwise).
            headers: Extra response headers.
            content_type: Overrides the inferred ``Content-Type``.
            when: See the class docstring.

        Returns:
            The fault.
        """
        if body is None:
            raw, ctype = error_json(code), content_type or _JSON
        else:
            raw, ctype = _encode_body(body, content_type)
        return cls(
            kind="respond",
            code=code,
            body=raw,
            content_type=ctype,
            headers=_headers_tuple(headers),
            when=when,
        )

    @classmethod
    def rate_limit(
        cls,
        retry_after: str | float | _dt.datetime | None = "2",
        *,
        retry_after_ms: str | float | None = None,
        code: int = 429,
        body: object = None,
        when: When = "before",
    ) -> Fault:
        """Answer 429 Too Many Requests, with a ``Retry-After`` hint.

        Args:
            retry_after: Seconds (``"2"``, ``2``, ``0.5``), an HTTP date string, a
                ``datetime`` (sent as an HTTP date), or ``None`` for no header.
            retry_after_ms: Also send ``retry-after-ms`` with this value.
            code: The status; 429 unless you want a 503 with ``Retry-After``.
            body: As for :meth:`status`.
            when: See the class docstring.

        Returns:
            The fault.
        """
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = _retry_after_value(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = _retry_after_value(retry_after_ms)
        return cls.status(code, body, headers, when=when)

    @classmethod
    def html(cls, code: int = 502, *, when: When = "before") -> Fault:
        """Answer with a gateway's HTML error page (``text/html``).

        Args:
            code: The HTTP status, 502 by default.
            when: See the class docstring.

        Returns:
            The fault.
        """
        page = _HTML_PAGE.format(code=code, phrase=_phrase(code))
        return cls.status(code, page, content_type="text/html", when=when)

    @classmethod
    def error_payload(
        cls,
        shape: Literal["nested", "string", "message", "code_msg"] = "nested",
        *,
        message: str = "upstream model error",
        error_code: str | int | None = None,
        code: int = 200,
        when: When = "before",
    ) -> Fault:
        """Answer (HTTP 200 by default) with an error body in one of the documented shapes.

        Shapes: ``"nested"`` ``{"error": {"message", "code"}}``, ``"string"``
        ``{"error": "..."}``, ``"message"`` ``{"message": ...}``, ``"code_msg"``
        ``{"code": ..., "msg": ...}``.

        Args:
            shape: Which shape.
            message: The error text.
            error_code: The machine code (``"server_error"``, or ``500`` for ``code_msg``).
            code: The HTTP status.
            when: See the class docstring.

        Returns:
            The fault.
        """
        payloads: dict[str, dict[str, Any]] = {
            "nested": {"error": {"message": message, "code": error_code or "server_error"}},
            "string": {"error": message},
            "message": {"message": message},
            "code_msg": {"code": 500 if error_code is None else error_code, "msg": message},
        }
        payload = payloads.get(shape)
        if payload is None:
            msg = f"unknown error payload shape: {shape!r}"
            raise ValueError(msg)
        return cls.status(code, payload, when=when)

    @classmethod
    def empty_body(
        cls, code: int = 200, *, content_type: str | None = _JSON, when: When = "before"
    ) -> Fault:
        """Answer with an empty body (``Content-Length: 0``).

        Args:
            code: The HTTP status, 200 by default.
            content_type: The ``Content-Type`` to claim (JSON by default), or ``None``.
            when: See the class docstring.

        Returns:
            The fault.
        """
        return cls(kind="respond", code=code, content_type=content_type, when=when)

    @classmethod
    def malformed_json(cls, code: int = 200, *, when: When = "before") -> Fault:
        """Answer with truncated JSON: the real answer cut in half, when there is one.

        Args:
            code: The HTTP status, 200 by default.
            when: See the class docstring.

        Returns:
            The fault.
        """
        return cls(kind="malformed_json", code=code, body=_TRUNCATED_JSON, when=when)

    @classmethod
    def wrong_types(
        cls,
        fields: Mapping[str, Any] | None = None,
        *,
        code: int = 200,
        when: When = "before",
    ) -> Fault:
        """Answer with well-formed JSON whose fields have the wrong types.

        The real answer (when there is one) is sent with ``fields`` forced into it; by
        default ``status`` becomes a number and ``created`` a string.

        Args:
            fields: The field values to force.
            code: The HTTP status, 200 by default.
            when: See the class docstring.

        Returns:
            The fault.
        """
        forced = dict(fields) if fields is not None else {"status": 2, "created": "today"}
        return cls(kind="wrong_types", code=code, fields=tuple(forced.items()), when=when)

    @classmethod
    def delay(cls, seconds: float, *, when: When = "before") -> Fault:
        """Wait ``seconds`` of real time, then answer normally (for read timeouts).

        On ``create`` with ``when="after"`` the task is created before the wait.

        Args:
            seconds: Real seconds (not scaled by ``time_scale``).
            when: See the class docstring.

        Returns:
            The fault.
        """
        return cls(kind="delay", seconds=seconds, when=when)

    @classmethod
    def drop_connection(cls, *, when: When = "before") -> Fault:
        """Close the TCP connection without sending any response.

        Args:
            when: See the class docstring.

        Returns:
            The fault.
        """
        return cls(kind="drop_connection", when=when)

    @classmethod
    def drop_after(cls, nbytes: int) -> Fault:
        """Send the headers and the first ``nbytes`` of the real body, then disconnect.

        Meant for the file endpoint (resuming a download with ``Range``); on the API
        endpoints it cuts the JSON body (after creating the task, on ``create``).

        Args:
            nbytes: How many body bytes get through.

        Returns:
            The fault.
        """
        if nbytes < 0:
            msg = "nbytes must be >= 0"
            raise ValueError(msg)
        return cls(kind="drop_after", nbytes=nbytes, when="after")


@attrs.define(eq=False)
class InjectedFault:
    """A fault armed on a fake service, as returned by ``FakeStarVideos.inject``.

    Attributes:
        fault: The fault.
        endpoint: ``"create"``, ``"status"``, ``"file"`` or ``"any"``.
        remaining: How many more times it fires; ``None`` for no limit.
        probability: The chance it fires on a matching request; ``None`` for always.
        task_id: Only requests about this task match (``status`` and ``file``).
        fired: How many times it has fired so far.
    """

    fault: Fault
    endpoint: Literal["create", "status", "file", "any"]
    remaining: int | None
    probability: float | None
    task_id: str | None
    fired: int = 0
    _owner: list[InjectedFault] | None = attrs.field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Whether the fault is still armed."""
        return self._owner is not None

    def remove(self) -> None:
        """Disarm the fault (a no-op when it is spent or already removed)."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.remove(self)

    def _fire(self) -> None:
        self.fired += 1
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.remove()


def pick_fault(
    rules: list[InjectedFault],
    endpoint: Endpoint,
    task_id: str | None,
    roll: Callable[[], float],
) -> Fault | None:
    """Find, fire and return the first armed fault matching a request.

    Args:
        rules: The armed faults, in injection order.
        endpoint: The endpoint of the request.
        task_id: The task the request is about, if known.
        roll: Draws a uniform float in ``[0, 1)`` for probabilistic faults.

    Returns:
        The fault to apply, or ``None``.
    """
    for rule in rules:
        if rule.endpoint != endpoint and rule.endpoint != "any":
            continue
        if rule.task_id is not None and rule.task_id != task_id:
            continue
        if rule.probability is not None and roll() >= rule.probability:
            continue
        rule._fire()
        return rule.fault
    return None


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


def drop(request: web.BaseRequest) -> web.Response:
    """Close the client's connection without answering.

    Args:
        request: The request whose connection to close.

    Returns:
        A placeholder response; aiohttp fails to send it and ignores that quietly.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


async def send_then_drop(
    request: web.BaseRequest,
    status: int,
    headers: Mapping[str, str],
    length: int,
    chunks: Iterable[bytes | memoryview],
    nbytes: int | None,
) -> web.StreamResponse:
    """Stream a response; with ``nbytes`` set, stop after that many bytes and disconnect.

    Args:
        request: The request being answered.
        status: The HTTP status.
        headers: The response headers (``Content-Length`` is set from ``length``).
        length: The full body length announced to the client.
        chunks: The body, in pieces.
        nbytes: ``None`` to send everything, else how many bytes to send before closing.

    Returns:
        The (prepared) response.
    """
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(request)
    if request.method == "HEAD":
        await resp.write_eof()
        return resp
    left = length if nbytes is None else min(nbytes, length)
    for chunk in chunks:
        if left <= 0:
            break
        piece = chunk[:left] if len(chunk) > left else chunk
        await resp.write(piece)
        left -= len(piece)
    if nbytes is not None:
        transport = request.transport
        if transport is not None:
            transport.close()
        return resp
    await resp.write_eof()
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
        headers = {"Content-Type": _JSON}
        resp = await send_then_drop(request, status, headers, len(raw), (raw,), fault.nbytes)
        return resp, status
    return canned_response(fault, raw or None, data), fault.code
