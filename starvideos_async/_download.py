"""Downloading results from the file host (never with the API key).

How a download goes:

* The task must be ``completed``; its ``video_url`` (re-queried once when missing) points
  at a file host that is not the API. Requests there go on a session of their own
  (``HTTPTransport.file_session``: the API session carries the key as a default
  header) with explicit headers and **no** ``Authorization``: the key never leaves the
  API origin, also not after a redirect (there is nothing to strip). A caller-supplied
  ``aiohttp`` session serves both; its default headers or ``auth`` are the caller's
  business: those would be sent.
* The body streams into a uniquely named temporary file beside the destination
  (``.<name>.<random>.part``); writes go to a worker thread about 1 MiB at a time. The
  file is fsynced, then renamed into place, so a partial file never has the final name.
  On any failure or cancellation the temporary file is removed.
* The length is checked against ``Content-Length`` / ``Content-Range``. When the
  connection drops, the download resumes with ``Range: bytes=N-`` (and ``If-Range``
  when the host gave a validator); a host that answers ``200`` instead starts over.
  Failures are retried per the client's :class:`~._retry.RetryPolicy` (an attempt that
  received data resets the count of consecutive failures).
* 403/404/410 from the file host means an expired URL: the task is re-queried once; a
  different ``video_url`` is used, otherwise :class:`ResultExpiredError` is raised.

For the batch runner: :func:`resolve_destination` (where a download will land),
:func:`safe_filename` and :func:`remove_partial_files` (temporary files left by a killed
process).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import inspect
import logging
import os
import re
import secrets
import time
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Final

import aiohttp
import anyio
import anyio.to_thread
from yarl import URL

from . import _retry
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RequestInfo,
    ResultExpiredError,
    ServerError,
    TaskFailedError,
)
from ._http import _translate
from ._models import ProgressCallback, Video
from ._task import VideoTask
from ._version import __version__

if TYPE_CHECKING:
    from ._client import AsyncStarVideos

__all__ = [
    "PART_SUFFIX",
    "ProgressCallback",
    "download",
    "remove_partial_files",
    "resolve_destination",
    "safe_filename",
]

logger: Final = logging.getLogger("starvideos_async")

#: The suffix of temporary files; see :func:`remove_partial_files`.
PART_SUFFIX: Final = ".part"
_PART_NAME: Final = re.compile(r"\..+\.[0-9a-f]{12}" + re.escape(PART_SUFFIX), re.DOTALL)
_CHUNK: Final = 64 * 1024
#: Received data is handed to the writer thread in pieces of about this size.
_WRITE_BUFFER: Final = 1024 * 1024
#: Resumes of one download, whatever progress they make.
_MAX_ATTEMPTS: Final = 100
_EXPIRED: Final = frozenset({403, 404, 410})
#: A 2xx with one of these types is an error page or an API answer, not the video.
_NOT_VIDEO: Final = frozenset(
    {"text/html", "text/plain", "text/xml", "application/json", "application/xml"}
)
_VIDEO_SUFFIXES: Final = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv"})
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM: Final = 100
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{dev}{n}" for dev in ("COM", "LPT") for n in "0123456789"}
)
_CONTENT_RANGE: Final = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", re.IGNORECASE)
_AGENT: Final = f"starvideos-async/{__version__} aiohttp/{aiohttp.__version__}"


# -- names and places ------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def safe_filename(task_id: str, video_url: str | None = None) -> str:
    """A file name for a task's video that cannot leave its folder.

    Keeps ASCII letters, digits, ``.``, ``_`` and ``-`` of the id (other characters
    become ``_``), drops leading and trailing dots, shortens long ids, and puts ``_``
    before a Windows device name (``CON``, ``NUL.txt``...). Whenever the id had to
    change, a hash of the original id is appended, so ids that clean to the same text
    keep distinct names; an id with nothing left becomes ``video-<hash>``. The
    extension is the URL path's when it is a known video extension, else ``.mp4``.
    """
    cleaned = _UNSAFE.sub("_", task_id).strip(".")
    changed = not cleaned or cleaned != task_id
    if len(cleaned) > _MAX_STEM:
        cleaned, changed = cleaned[:_MAX_STEM].rstrip("."), True
    if cleaned.split(".", 1)[0].upper() in _RESERVED:
        cleaned, changed = f"_{cleaned}", True
    stem = f"{cleaned}-{_digest(task_id)}" if cleaned else f"video-{_digest(task_id)}"
    return (stem if changed else cleaned) + _video_suffix(video_url)


def _video_suffix(video_url: str | None) -> str:
    if video_url:
        try:
            suffix = PurePosixPath(URL(video_url).path).suffix.lower()
        except (ValueError, TypeError):
            suffix = ""
        if suffix in _VIDEO_SUFFIXES:
            return suffix
    return ".mp4"


def resolve_destination(
    dest: str | os.PathLike[str], task_id: str, video_url: str | None = None
) -> Path:
    """Where :func:`download` writes: ``dest`` itself, or a safe name inside a folder.

    Missing folders are created (parents too): ``dest`` ending with a path separator, or
    naming an existing folder, is the folder to write into; any other ``dest`` is the
    file's path, and its folder is created.

    Args:
        dest: A folder (the file is then named by :func:`safe_filename`) or a file path.
        task_id: The task's id.
        video_url: The result URL (only its extension matters).

    Raises:
        NotADirectoryError: A part of the path that must be a folder is a file.
    """
    raw = os.fspath(dest)
    path = Path(raw)
    names_folder = raw.endswith(("/", os.sep)) or bool(os.altsep and raw.endswith(os.altsep))
    if names_folder or path.is_dir():
        _make_folder(path, raw)
        name = safe_filename(task_id, video_url)
        target = path / name
        if target.parent != path or target.name != name:  # pragma: no cover - by design
            raise AssertionError(f"unsafe file name {name!r}")
        return target
    _make_folder(path.parent, raw)
    return path


def _make_folder(folder: Path, dest: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # (mkdir says FileExistsError when ``folder`` itself is a file)
        raise NotADirectoryError(
            errno.ENOTDIR, "the destination's folder is a file", dest
        ) from None


async def remove_partial_files(folder: str | os.PathLike[str], *, min_age: float = 0.0) -> int:
    """Delete temporary files that interrupted downloads left in ``folder``.

    A process killed mid-download (``SIGKILL``, power loss) cannot clean up. Call this
    when no download into ``folder`` is running (or pass ``min_age`` seconds so that
    only files untouched for that long go). Only names of the form
    ``.<name>.<12 hex digits>.part`` are considered.

    Returns:
        How many files were removed.
    """

    def sweep() -> int:
        removed = 0
        cutoff = time.time() - min_age
        with os.scandir(folder) as entries:
            for entry in entries:
                if not _PART_NAME.fullmatch(entry.name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if min_age and entry.stat(follow_symlinks=False).st_mtime > cutoff:
                        continue
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                removed += 1
        return removed

    return await anyio.to_thread.run_sync(sweep)


# -- the temporary file ------------------------------------------------------------------


class _PartFile:
    """The temporary file a download streams into; writes happen in a worker thread."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle
        self._pending: list[bytes] = []
        self._pending_size = 0
        #: Bytes accepted so far (written or about to be).
        self.size = 0

    @classmethod
    async def create(cls, target: Path) -> _PartFile:
        def make() -> tuple[Path, IO[bytes]]:
            while True:
                # 48 characters of the name: at most 192 bytes, + 19 stays under 255.
                path = target.with_name(f".{target.name[:48]}.{secrets.token_hex(6)}{PART_SUFFIX}")
                try:
                    return path, open(path, "xb")
                except FileExistsError:  # pragma: no cover - 48 random bits
                    continue

        path, handle = await anyio.to_thread.run_sync(make)
        return cls(path, handle)

    def _file(self) -> IO[bytes]:
        if self._handle is None:  # pragma: no cover - guarded by the callers
            raise RuntimeError("the temporary file is closed")
        return self._handle

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= _WRITE_BUFFER:
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        await anyio.to_thread.run_sync(self._file().write, data)

    async def truncate(self) -> None:
        handle = self._file()
        self._pending.clear()
        self._pending_size = 0
        self.size = 0

        def empty() -> None:
            handle.seek(0)
            handle.truncate()

        await anyio.to_thread.run_sync(empty)

    async def commit(self, target: Path, *, overwrite: bool) -> None:
        """Flush, fsync and move into place; never replaces a file unless ``overwrite``."""
        await self.flush()
        handle = self._file()

        def finish() -> None:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            self._handle = None
            if overwrite:
                os.replace(self.path, target)
            else:
                _link_no_clobber(self.path, target)
            _fsync_folder(target.parent)

        await anyio.to_thread.run_sync(finish)

    async def discard(self) -> None:
        """Close and delete the temporary file (if still there); survives cancellation."""

        def remove() -> None:
            handle, self._handle = self._handle, None
            if handle is not None:
                handle.close()
            self.path.unlink(missing_ok=True)

        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(remove)


def _link_no_clobber(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` unless ``target`` exists (atomically where possible)."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "the file appeared while downloading", str(target)
        ) from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.replace(source, target)
    else:
        source.unlink()


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX; elsewhere a no-op)."""
    if os.name != "posix":  # pragma: no cover - POSIX CI
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


# -- which video ----------------------------------------------------------------------


async def _completed_video(
    client: AsyncStarVideos, video_or_task: Video | VideoTask | str
) -> Video:
    video: Video | None
    if isinstance(video_or_task, Video):
        video = video_or_task
    elif isinstance(video_or_task, VideoTask):
        video = video_or_task.latest
        if video is None or not video.is_completed:
            video = video_or_task.latest = await client.retrieve(video_or_task.id)
    elif isinstance(video_or_task, str):
        video = await client.retrieve(video_or_task)
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


def _checked_url(video: Video) -> str | None:
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
        client: AsyncStarVideos,
        video: Video,
        url: str | None,
        part: _PartFile,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.client = client
        self.task_id = video.id
        self.url = url
        self.part = part
        self.on_progress = on_progress
        self.total: int | None = None
        self.validator: str | None = None
        self.refreshed = False
        self.received = 0
        self._reported: tuple[int, int | None] | None = None
        timeout = client._http.timeout
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
        try:
            fresh = await self.client.retrieve(self.task_id)
            if not fresh.is_terminal:
                logger.debug("download %s: the task is %s again", self.task_id, fresh.status)
                # (within the download's deadline: download() cancels this at it)
                fresh = await self.client.task(self.task_id).wait()
        except NotFoundError as exc:
            raise ResultExpiredError(self.task_id, status) from exc
        if not fresh.is_completed:
            raise TaskFailedError(fresh)
        url = _checked_url(fresh)
        if url is None or url == self.url:
            raise ResultExpiredError(self.task_id, status)
        logger.debug("download %s: fresh result URL %s", self.task_id, _where(url))
        if self.url is not None and self.validator is None and self.part.size:
            await self.part.truncate()  # nothing proves the new URL serves the same bytes
        self.url = url

    async def run(self) -> None:
        if self.url is None:
            await self.refresh(None)
        retry = self.client._http.retry
        failures = attempts = 0
        while True:
            attempts += 1
            received = self.received
            try:
                await self._attempt()
            except _Expired as exc:
                await self.refresh(exc.status)
                continue
            except (APIConnectionError, APIStatusError, MalformedResponseError) as exc:
                failures = 1 if self.received > received else failures + 1
                retryable = _retry.should_retry(exc, method="GET")
                if not retryable or failures > retry.max_retries or attempts >= _MAX_ATTEMPTS:
                    raise
                hint = exc.retry_after if isinstance(exc, RateLimitError) else None
                delay = retry.backoff(failures, hint)
                logger.debug(
                    "download %s failed at byte %d (%s), retry %d/%d in %.2fs",
                    self.task_id,
                    self.part.size,
                    type(exc).__name__,
                    failures,
                    retry.max_retries,
                    delay,
                )
                await _retry.sleep(delay)
                continue
            await self._report(force=True)
            return

    async def _attempt(self) -> None:
        assert self.url is not None  # noqa: S101 - run() refreshed a missing URL
        headers = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": _AGENT}
        offset = self.part.size
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.validator is not None:
                headers["If-Range"] = self.validator
        session = self.client._http.file_session()
        try:
            async with session.get(
                self.url, headers=headers, timeout=self.timeout, allow_redirects=True
            ) as response:
                if await self._accept(response):
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        self.received += len(chunk)
                        await self.part.write(chunk)
                        await self._report()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            await self.part.flush()
            _translate(exc, self.info)
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
        raise await _status_error(response, self.info)

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


async def _status_error(response: aiohttp.ClientResponse, info: RequestInfo) -> APIStatusError:
    status = response.status
    try:
        raw = await response.content.read(4096)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        raw = b""
    body = raw.decode("utf-8", "replace")
    message = f"HTTP {status} from the file host"
    headers = response.headers
    if status == 429:
        return RateLimitError(
            message,
            request=info,
            body=body,
            headers=headers,
            retry_after=_retry.parse_retry_after(headers),
        )
    cls = ServerError if status >= 500 else APIStatusError
    return cls(message, request=info, status_code=status, body=body, headers=headers)


# -- the entry point ------------------------------------------------------------------


async def download(
    client: AsyncStarVideos,
    video_or_task: Video | VideoTask | str,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
    timeout: float | None = None,
) -> Path:
    """See :meth:`AsyncStarVideos.download`."""
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise InvalidRequestError("timeout", timeout, "a positive number of seconds or None")
    video = await _completed_video(client, video_or_task)
    url = _checked_url(video)

    def prepare() -> Path:
        target = resolve_destination(dest, video.id, url)
        if not overwrite and os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists (pass overwrite=True)", str(target))
        return target

    target = await anyio.to_thread.run_sync(prepare)
    part = await _PartFile.create(target)
    transfer = _Transfer(client, video, url, part, on_progress)
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
