"""Fault injection for the fake StarVideos service: what a fault is, and its armed handle.

A :class:`Fault` describes one misbehaviour (an error status, a broken body, a delay, a
dropped connection); :meth:`FakeStarVideos.inject <starvideos_async.testing.FakeStarVideos.inject>`
arms it for some requests and returns an :class:`InjectedFault` handle, and
:func:`pick_fault` finds the armed fault a request meets. How a request is then answered
with it is in ``_routes``.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._responses import JSON, error_json, phrase

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Endpoint", "Fault", "FaultKind", "InjectedFault", "When"]

#: Where a request landed: the two API endpoints, the file host, or anything else.
Endpoint = Literal["create", "status", "file", "other"]
#: When a fault strikes on ``create``: before the task exists, or after it was created.
When = Literal["before", "after"]
#: The kinds of faults; most are canned responses (``"respond"``).
FaultKind = Literal[
    "respond", "malformed_json", "wrong_types", "delay", "drop_connection", "drop_after"
]

_TEXT = "text/plain; charset=utf-8"

_HTML_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

#: What a truncated create/status body looks like when there is no real body to cut.
_TRUNCATED_JSON = b'{"id": "video_starvideos_'


def _encode_body(body: object, content_type: str | None) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, content_type or _TEXT
    if isinstance(body, str):
        return body.encode(), content_type or _TEXT
    return json.dumps(body).encode(), content_type or JSON


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
    content_type: str | None = JSON
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
            raw, ctype = error_json(code), content_type or JSON
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
        page = _HTML_PAGE.format(code=code, phrase=phrase(code))
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
        cls, code: int = 200, *, content_type: str | None = JSON, when: When = "before"
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
