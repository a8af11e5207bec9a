"""Where downloads land: safe file names, folders, and the temporary file.

* :func:`safe_filename` names a task's video so that no id can leave its folder;
  :func:`resolve_destination` turns a ``dest`` into the file to write (creating folders).
* A download streams into a uniquely named temporary file beside the destination
  (``.<name>.<random>.part``); writes go to a worker thread about 1 MiB at a time. The
  file is fsynced, then renamed into place, so a partial file never has the final name.
  :func:`remove_partial_files` clears what a killed process left.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import time
from pathlib import Path, PurePosixPath
from typing import IO, Final

import anyio
import anyio.to_thread
from yarl import URL

__all__ = [
    "PART_SUFFIX",
    "PartFile",
    "remove_partial_files",
    "resolve_destination",
    "safe_filename",
]

#: The suffix of temporary files; see :func:`remove_partial_files`.
PART_SUFFIX: Final = ".part"
_PART_NAME: Final = re.compile(r"\..+\.[0-9a-f]{12}" + re.escape(PART_SUFFIX), re.DOTALL)
#: Received data is handed to the writer thread in pieces of about this size.
_WRITE_BUFFER: Final = 1024 * 1024
_VIDEO_SUFFIXES: Final = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv"})
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM: Final = 100
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{dev}{n}" for dev in ("COM", "LPT") for n in "0123456789"}
)


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


class PartFile:
    """The temporary file a download streams into; writes happen in a worker thread."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle
        self._pending: list[bytes] = []
        self._pending_size = 0
        #: Bytes accepted so far (written or about to be).
        self.size = 0

    @classmethod
    async def create(cls, target: Path) -> PartFile:
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
