"""The building blocks of the fake service's answers, shared by its two sites and faults.

The fake's own JSON error body (:func:`error_json`), a connection closed without an
answer (:func:`drop`), and a body streamed and optionally cut after some bytes
(:func:`send_then_drop`, for the videos and for ``Fault.drop_after``). Nothing here knows
about faults or tasks: the API handlers are in ``_routes``, the file host in ``_files``.
"""

from __future__ import annotations

import http
import json
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["JSON", "drop", "error_json", "phrase", "send_then_drop"]

#: The content type of the API's answers.
JSON = "application/json"

_ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "rate_limit_exceeded",
}


def phrase(code: int) -> str:
    """The reason phrase of an HTTP status (``"Error"`` for an unknown one)."""
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
    payload = {"error": {"message": message or phrase(code), "code": err_code}}
    return json.dumps(payload).encode()


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
