"""The file host of the fake StarVideos service: the videos behind the ``video_url``s.

It answers ``GET``/``HEAD /files/<task id>.mp4?token=...`` as a presigned-URL host (S3)
would: one ``bytes=`` range (206, or 416 when unsatisfiable), ``If-Range`` against the
ETag, XML errors, and 400 to requests carrying ``Authorization``. A video's bytes are
deterministic from (seed, task id): an mp4 ``ftyp`` box, an ``mdat`` header with a per-id
marker, then one random block shared by all videos, rotated per id, so that a thousand
videos cost one block of memory. Recording and fault injection stay in ``_routes``.
"""

from __future__ import annotations

import random
import struct
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from ._responses import send_then_drop
from ._tasks import _digest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._tasks import FakeTask

__all__ = ["VideoFiles"]

#: A plausible 32-byte ``ftyp`` box (isom, minor 0x200, isom/iso2/avc1/mp41).
_FTYP = struct.pack(">I4s4sI16s", 32, b"ftyp", b"isom", 0x200, b"isomiso2avc1mp41")
_CHUNK = 64 * 1024


def _xml_error(status: int, code: str, message: str) -> web.Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


class VideoFiles:
    """The videos of one fake service: their bytes, and the file host's answers."""

    __slots__ = ("_block",)

    def __init__(self) -> None:
        self._block: memoryview | None = None  # the shared random block, made on first use

    def chunks(
        self, seed: int, size: int, task_id: str, start: int, end: int
    ) -> Iterator[bytes | memoryview]:
        """Bytes ``[start, end)`` of a ``size``-byte video: a per-id header, then the block."""
        marker = _digest("video", seed, task_id)
        mdat = min(max(size - len(_FTYP), 0), 0xFFFFFFFF)
        header = _FTYP + struct.pack(">I4s", mdat, b"mdat") + marker[:16]
        if start < len(header):
            yield header[start : min(end, len(header))]
            start = len(header)
        if start >= end:
            return
        if self._block is None or len(self._block) != size:
            rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
            self._block = memoryview(rng.randbytes(size))
        shift = int.from_bytes(marker[16:24], "big") % size
        while start < end:
            j = (start + shift) % size
            n = min(end - start, size - j, _CHUNK)
            yield self._block[j : j + n]
            start += n

    async def serve(
        self,
        request: web.Request,
        name: str,
        task: FakeTask | None,
        seed: int,
        size: int,
        limit: int | None,
    ) -> web.StreamResponse:
        """Answer a request for the file ``name`` (``<task id>.mp4``).

        Args:
            request: The request (``GET`` or ``HEAD``; ``Range``, ``If-Range`` honoured).
            name: The file name in the URL path.
            task: The task of that name, or ``None`` if there is none.
            seed: The fake's seed (the bytes derive from it).
            size: The size of every video, in bytes.
            limit: Disconnect after this many body bytes (``Fault.drop_after``).

        Returns:
            The response, sent (or cut) already for a video, ready to send for an error.
        """
        if "Authorization" in request.headers:  # as presigned-URL hosts (S3) answer
            return _xml_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        if task is None or not name.endswith(".mp4"):
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        if task.expired_status is not None:
            return _xml_error(task.expired_status, "AccessDenied", "Request has expired")
        if request.query.get("token") != task.token:
            return _xml_error(403, "AccessDenied", "Invalid or missing token")
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
        chunks = self.chunks(seed, size, task.id, start, end)
        return await send_then_drop(request, status, headers, end - start, chunks, limit)


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
