"""Downloading results from the file host (never with the API key).

How a download goes:

* The task must be ``completed``; its ``video_url`` points at a file host that is not the
  API. Requests there go on a session of their own (``HTTPTransport.file_session``: the
  API session carries the key as a default header) with explicit headers and **no**
  ``Authorization``: the key never leaves the API origin, also not after a redirect
  (there is nothing to strip). A caller-supplied ``aiohttp`` session serves both; its
  default headers or ``auth`` are the caller's business: those would be sent.
* The body streams into a temporary file beside the destination (:mod:`._files`), then
  is renamed into place.
* The length is checked against ``Content-Length`` / ``Content-Range``. When the
  connection drops, the download resumes with ``Range: bytes=N-`` (and ``If-Range``
  when the host gave a validator); a host that answers ``200`` instead starts over.
  Failures are retried by the one retry helper (an attempt that received data resets
  the count of consecutive failures).
* 403/404/410 from the file host means an expired URL: the task is re-queried once
  (through the client: retried, and waited on when it is seen unfinished); a different
  ``video_url`` is used, otherwise :class:`ResultExpiredError` is raised.
"""

from __future__ import annotations

import errno
import inspect
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import aiohttp
import anyio
import anyio.to_thread
from yarl import URL

from . import _retry
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RequestInfo,
    ResultExpiredError,
    TaskFailedError,
    error_from_response,
)
from ._files import PartFile, resolve_destination
from ._http import HTTPTransport, translate_errors
from ._messages import BODY_KEPT
from ._models import ProgressCallback, Video
from ._requests import check_timeout
from ._task import VideoTask
from ._version import __version__

__all__ = ["checked_url", "download", "download_task"]

logger: Final = logging.getLogger("starvideos_async")

_CHUNK: Final = 64 * 1024
#: Resumes of one download, whatever progress they make.
_MAX_ATTEMPTS: Final = 100
_EXPIRED: Final = frozenset({403, 404, 410})
#: A 2xx with one of these types is an error page or an API answer, not the video.
_NOT_VIDEO: Final = frozenset(
    {"text/html", "text/plain", "text/xml", "application/json", "application/xml"}
)
_CONTENT_RANGE: Final = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", re.IGNORECASE)
_AGENT: Final = f"starvideos-async/{__version__} aiohttp/{aiohttp.__version__}"


async def download_task(
    http: HTTPTransport,
    video_or_task: Video | VideoTask | str,
    dest: str | os.PathLike[str],
    *,
    retrieve: Callable[[str], Awaitable[Video]],
    task: Callable[[str], VideoTask],
    overwrite: bool,
    on_progress: ProgressCallback | None,
    timeout: float | None,
) -> Path:
    """``AsyncStarVideos.download()``: the completed video of ``video_or_task``, fetched.

    ``retrieve`` and ``task`` are the client's: the status call gets a task not known to
    be completed, and a fresh URL when the one at hand expired (a task seen unfinished
    then is waited on, through a handle from ``task``).
    """
    check_timeout(timeout)  # (bad input: refused before the status call)
    video = await _completed_video(video_or_task, retrieve)

    async def requery() -> Video:  # for a fresh URL: the task as it is when finished
        fresh = await retrieve(video.id)
        if not fresh.is_terminal:
            logger.debug("download %s: the task is %s again", video.id, fresh.status)
            fresh = await task(video.id).wait()
        return fresh

    return await download(
        http,
        video,
        dest,
        requery=requery,
        overwrite=overwrite,
        on_progress=on_progress,
        timeout=timeout,
    )


async def _completed_video(
    video_or_task: Video | VideoTask | str, retrieve: Callable[[str], Awaitable[Video]]
) -> Video:
    """The completed :class:`Video` to download (queried once when not known)."""
    video: Video
    if isinstance(video_or_task, Video):
        video = video_or_task
    elif isinstance(video_or_task, VideoTask):
        latest = video_or_task.latest
        if latest is None or not latest.is_completed:
            latest = video_or_task.latest = await retrieve(video_or_task.id)
        video = latest
    elif isinstance(video_or_task, str):
        video = await retrieve(video_or_task)
    else:
        raise TypeError(
            "video_or_task must be a Video, a VideoTask or a task id, "
            f"not {type(video_or_task).__name__}"
        )
    if video.is_completed:
        return video
    if video.is_terminal:
        raise TaskFailedError(video)
    raise InvalidRequestError(
        "video_or_task",
        video.id,
        f"a completed task is required, this one is {video.status_value} (wait() for it first)",
    )


async def download(
    transport: HTTPTransport,
    video: Video,
    dest: str | os.PathLike[str],
    *,
    requery: Callable[[], Awaitable[Video]],
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
    timeout: float | None = None,
) -> Path:
    """Download a completed task's video; see :meth:`AsyncStarVideos.download`.

    Args:
        transport: The client's transport (sessions, timeouts, retry policy).
        video: The completed task.
        dest: A folder or a file path.
        requery: The task as the service sees it now, once it is finished (for a
            fresh URL).
        overwrite: Replace an existing file.
        on_progress: Called with ``(bytes_done, bytes_total_or_None)``.
        timeout: Seconds for the whole transfer, or ``None`` (checked by the caller).
    """
    url = checked_url(video)

    def prepare() -> Path:
        target = resolve_destination(dest, video.id, url)
        if not overwrite and os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists (pass overwrite=True)", str(target))
        return target

    target = await anyio.to_thread.run_sync(prepare)
    part = await PartFile.create(target)
    transfer = _Transfer(transport, video, url, part, on_progress, requery)
    try:
        with anyio.move_on_after(timeout) as scope:
            await transfer.run()
        if scope.cancelled_caught:
            raise APITimeoutError(
                f"the download did not finish within {timeout:g}s", request=transfer.info
            )
        await part.commit(target, overwrite=overwrite)
    finally:
        await part.discard()
    logger.debug("download %s: %d bytes to %s", video.id, part.size, target.name)
    return target


def checked_url(video: Video) -> str | None:
    url = video.video_url
    if url is None:
        return None
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise MalformedResponseError(
            "video_url is not an absolute http(s) URL",
            request=RequestInfo("GET", f"/v1/result/{video.id}", video.id),
            body=url[:200],
        )
    return url


def _where(url: str) -> str:
    """The URL without its query (presigned tokens stay out of logs and errors)."""
    return str(URL(url).with_query(None).with_fragment(None))


# -- the transfer ---------------------------------------------------------------------


class _Expired(Exception):
    """The file host answered 403/404/410."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Transfer:
    """One download's state across attempts: URL, bytes so far, total, validator."""

    def __init__(
        self,
        transport: HTTPTransport,
        video: Video,
        url: str | None,
        part: PartFile,
        on_progress: ProgressCallback | None,
        requery: Callable[[], Awaitable[Video]],
    ) -> None:
        self.transport = transport
        self.requery = requery
        self.task_id = video.id
        self.url = url
        self.part = part
        self.on_progress = on_progress
        self.total: int | None = None
        self.validator: str | None = None
        self.refreshed = False
        self.received = 0
        self._reported: tuple[int, int | None] | None = None
        timeout = transport.timeout
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeout.connect or timeout.total,
            sock_read=timeout.read or timeout.total,
        )

    @property
    def info(self) -> RequestInfo:
        return RequestInfo("GET", _where(self.url or ""), self.task_id)

    async def refresh(self, status: int | None) -> None:
        """Re-query the task once for a fresh URL; else :class:`ResultExpiredError`.

        The query is retried like any status call (5xx, malformed answers); a task
        seen not finished there is waited on, within the download's timeout.
        Expired only when the service says the task is gone (404) or completed without
        a usable new URL.
        """
        if self.refreshed:
            raise ResultExpiredError(self.task_id, status)
        self.refreshed = True
        try:  # (within the download's timeout: download() cancels this at it)
            fresh = await self.requery()
        except NotFoundError as exc:
            raise ResultExpiredError(self.task_id, status) from exc
        if not fresh.is_completed:
            raise TaskFailedError(fresh)
        url = checked_url(fresh)
        if url is None or url == self.url:
            raise ResultExpiredError(self.task_id, status)
        logger.debug("download %s: fresh result URL %s", self.task_id, _where(url))
        if self.url is not None and self.validator is None and self.part.size:
            await self.part.truncate()  # nothing proves the new URL serves the same bytes
        self.url = url

    async def run(self) -> None:
        """Fetch the whole file, resuming and retrying per the client's policy."""
        if self.url is None:
            await self.refresh(None)
        await _retry.retrying(
            self._attempt_or_refresh,
            policy=self.transport.retry,
            method="GET",
            what=f"download {self.task_id}",
            progress=lambda: self.received,  # a drop after some data is a fresh start
            max_attempts=_MAX_ATTEMPTS,
        )
        await self._report(force=True)

    async def _attempt_or_refresh(self) -> None:
        """One attempt; an expired URL is refreshed (once) and tried at once."""
        while True:
            try:
                return await self._attempt()
            except _Expired as exc:
                await self.refresh(exc.status)

    async def _attempt(self) -> None:
        assert self.url is not None  # noqa: S101 - run() refreshed a missing URL
        headers = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": _AGENT}
        offset = self.part.size
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.validator is not None:
                headers["If-Range"] = self.validator
        session = self.transport.file_session()
        try:
            with translate_errors(self.info, session):
                async with session.get(
                    self.url, headers=headers, timeout=self.timeout, allow_redirects=True
                ) as response:
                    if await self._accept(response):
                        async for chunk in response.content.iter_chunked(_CHUNK):
                            self.received += len(chunk)
                            await self.part.write(chunk)
                            await self._report()
        finally:
            await self.part.flush()
        size, total = self.part.size, self.total
        if size == 0:
            raise MalformedResponseError(
                "the file host answered with an empty body instead of the video",
                request=self.info,
            )
        if total is not None and size < total:
            raise APIConnectionError(
                f"the file host ended the body after {size} of {total} bytes", request=self.info
            )
        if total is not None and size > total:
            await self.part.truncate()
            raise MalformedResponseError(
                f"the file host sent {size} bytes, more than the {total} announced",
                request=self.info,
            )

    async def _accept(self, response: aiohttp.ClientResponse) -> bool:
        """Check the answer's status and length headers; whether its body is the file's."""
        status = response.status
        if status in _EXPIRED:
            raise _Expired(status)
        offset = self.part.size
        if status in (200, 206) and response.content_type in _NOT_VIDEO:
            excerpt = (await response.content.read(200)).decode("utf-8", "replace")
            raise MalformedResponseError(
                f"the file host answered {status} with {response.content_type}, not a video",
                request=self.info,
                body=excerpt,
            )
        if status == 416 and offset and offset == self.total:
            return False  # everything arrived already
        if status == 200:
            if offset:
                logger.debug("download %s: the host ignored Range, restarting", self.task_id)
                await self.part.truncate()
            self.total = response.content_length
            etag = response.headers.get("ETag")
            strong = etag if etag and not etag.startswith("W/") else None
            self.validator = strong or response.headers.get("Last-Modified")
            return True
        if status == 206:
            found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if found is not None:
                start, end = int(found[1]), int(found[2])
                total = None if found[3] == "*" else int(found[3])
                length = response.content_length
                if (
                    start == offset
                    and end >= start
                    and (length is None or length == end - start + 1)
                    and (total is None or end < total)
                    and (self.total is None or total is None or total == self.total)
                ):
                    if total is not None:
                        self.total = total
                    return True
            await self.part.truncate()
            self.total = self.validator = None
            raise MalformedResponseError(
                f"unexpected Content-Range {response.headers.get('Content-Range')!r} for a "
                f"request from byte {offset}; starting over",
                request=self.info,
            )
        if status == 416:
            await self.part.truncate()
            self.total = self.validator = None
            raise MalformedResponseError(
                f"the file host refused the range from byte {offset}; starting over",
                request=self.info,
            )
        with translate_errors(self.info):  # (reading an error page may break off too)
            page = await response.content.read(BODY_KEPT)
        raise error_from_response(
            status,
            page,
            response.headers,
            self.info,
            retry_after=_retry.parse_retry_after(response.headers),
        )

    async def _report(self, *, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = (self.part.size, self.total)
        if force and now == self._reported:
            return
        self._reported = now
        result = self.on_progress(*now)
        if inspect.isawaitable(result):
            await result
