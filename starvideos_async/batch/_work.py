"""The work of one batch run: each request from where the journal says it stands to its end.

:class:`BatchWork` reads the journal, then for each request creates the task (between
the two journal records that make a create safe to resume), waits on it through the
client's scheduler, downloads the video and checks files downloaded before, within the
run's limits, and hands each request's :class:`BatchResult` to the run as it comes. A
failed create leaves its row ``pending`` only when surely nothing was created. The run
that starts, iterates and stops this work is ``_runner``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import attrs

from starvideos_async._errors import (
    APIConnectionError,
    APIStatusError,
    ClientClosedError,
    InvalidRequestError,
    StarVideosError,
    TaskFailedError,
)
from starvideos_async._files import remove_partial_files
from starvideos_async._models import TaskStatus, Video
from starvideos_async._poll_policy import PollPolicy
from starvideos_async._task import VideoTask

from ._journal import Journal, State
from ._keys import BatchItem
from ._results import BatchResult, BatchStatus, StatusHook

if sys.version_info < (3, 11):  # pragma: no cover - the backport on 3.10
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from starvideos_async._client import AsyncStarVideos

__all__ = ["BatchWork"]

_FINAL: Final[dict[object, BatchStatus]] = {
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}
#: The order in which a run handles journal states: the cheap and the running first.
_ORDER: Final[dict[State, int]] = {
    "downloaded": 0,
    "finished": 1,
    "submitted": 2,
    "sending": 3,
    "unknown": 3,
    "pending": 4,
}
_DIED_SENDING: Final = "the process stopped while this create was on the wire"
_UNKNOWN: Final[tuple[State, BatchStatus]] = ("unknown", "unknown")


def _classify(error: StarVideosError) -> tuple[State, BatchStatus]:
    """Where a failed create leaves its row: surely nothing created, or unknown."""
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return "pending", "error"
    if isinstance(error, APIStatusError) and 400 <= error.status_code < 500:
        return ("finished" if error.status_code in (400, 422) else "pending"), "error"
    return _UNKNOWN


def _describe(error: BaseException) -> str:
    """An error in words: the SDK's say enough, others get their type name."""
    if isinstance(error, StarVideosError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@attrs.frozen
class _Limits:
    """A run's semaphores: tasks in flight, creates at once, downloads at once."""

    in_flight: anyio.Semaphore
    creates: anyio.Semaphore
    downloads: anyio.Semaphore


class BatchWork:
    """What one run of a batch does; ``BatchRun`` starts it and collects the results.

    Attributes:
        journal: The batch's journal.
        submitted: Tasks created by this run so far.
        timed_out: Whether ``timeout`` ended the work before every request had a result.
    """

    def __init__(
        self,
        client: AsyncStarVideos,
        items: list[BatchItem],
        journal: Journal,
        download_dir: Path | None,
        max_in_flight: int,
        max_downloads: int,
        poll_policy: PollPolicy | None,
        retry_unknown: bool | frozenset[str],
        on_status: StatusHook | None,
        timeout: float | None,
        deliver: Callable[[BatchResult], None],
    ) -> None:
        self.journal = journal
        self.submitted = 0
        self.timed_out = False
        self._client = client
        self._items = items
        self._download_dir = download_dir
        self._max_in_flight = max_in_flight
        self._max_downloads = max_downloads
        self._poll_policy = poll_policy
        self._retry_unknown = retry_unknown
        self._on_status = on_status
        self._timeout = timeout
        self._deliver = deliver

    def _emit(
        self,
        item: BatchItem,
        status: BatchStatus,
        *,
        task_id: str | None = None,
        error: str | None = None,
        path: Path | None = None,
        video: Video | None = None,
    ) -> None:
        self._deliver(BatchResult(item.key, status, task_id, error, path, video, item.request))

    async def run(self) -> None:
        """Do the work: open the journal (unless open already), and close it after."""
        journal = self.journal
        owned = not journal.is_open
        await journal.open()
        try:
            await self._work()
        except BaseExceptionGroup as errors:  # what ended the batch, raised plainly
            raise errors.exceptions[0] from (errors if len(errors.exceptions) > 1 else None)
        finally:
            if owned:
                await journal.close()

    async def _work(self) -> None:
        journal = self.journal
        deadline = math.inf if self._timeout is None else anyio.current_time() + self._timeout
        entries = await journal._add((i.key, i.position, i.body) for i in self._items)
        if self._download_dir is not None:
            await anyio.Path(self._download_dir).mkdir(parents=True, exist_ok=True)
            await remove_partial_files(self._download_dir)
        for item in self._items:
            item.entry = entries[item.key]
        items = sorted(self._items, key=lambda i: (_ORDER[entries[i.key].state], i.position))
        limits = _Limits(
            anyio.Semaphore(self._max_in_flight),
            anyio.Semaphore(self._client.max_concurrency),
            anyio.Semaphore(self._max_downloads),
        )
        with anyio.CancelScope(deadline=deadline) as scope:
            async with anyio.create_task_group() as group:
                for item in items:
                    await self._begin(item, group, limits)
        self.timed_out = scope.cancelled_caught

    async def _begin(self, item: BatchItem, group: anyio.abc.TaskGroup, limits: _Limits) -> None:
        """Start what ``item`` still needs, from where the journal says it stands."""
        entry = item.entry
        assert entry is not None  # noqa: S101 - set by _work
        state = entry.state
        if state in ("sending", "unknown"):
            retry = self._retry_unknown
            if retry is not True and (retry is False or item.key not in retry):
                error = entry.error
                if state == "sending":  # the process died mid-create
                    error = _DIED_SENDING
                    await self.journal._set(item.key, "unknown", error=error)
                self._emit(item, "unknown", error=error)
                return
            await self.journal._set(item.key, "pending", error=None)
            state = "pending"
        if state == "downloaded":
            group.start_soon(self._verify, item, limits)
        elif state == "finished":
            if entry.status == "completed" and self._download_dir is not None:
                group.start_soon(self._download, item, entry.task_id, limits)
            else:
                status = _FINAL.get(entry.status, "error")
                self._emit(item, status, task_id=entry.task_id, error=entry.error)
        else:  # submitted (wait for it again) or pending (create it)
            await limits.in_flight.acquire()
            if state == "submitted":
                try:
                    task = self._handle(item, entry.task_id, entry.updated_at)
                except InvalidRequestError as exc:  # an id the service gave, not pollable
                    limits.in_flight.release()
                    self._emit(
                        item, "error", task_id=entry.task_id, error=f"waiting failed: {exc}"
                    )
                    return
                group.start_soon(self._track, item, task, limits)
            else:
                group.start_soon(self._submit, item, limits)

    def _handle(self, item: BatchItem, task_id: str | None, submitted_at: float) -> VideoTask:
        """A handle on ``item``'s task, created about ``submitted_at`` (unix time)."""
        assert task_id is not None  # noqa: S101 - submitted rows have an id
        task = self._client.task(task_id)
        task.request = item.request
        task.submitted_at = submitted_at
        return task

    async def _submit(self, item: BatchItem, limits: _Limits) -> None:
        # Waiting for a turn can be cancelled (nothing was sent); the create and its
        # records cannot: a Ctrl-C lets the answer arrive and land in the journal.
        async with limits.creates:
            with anyio.CancelScope(shield=True):
                task, status, error = await self._create(item)
        if task is None:
            limits.in_flight.release()
            self._emit(item, status, error=error)
        else:
            await self._track(item, task, limits)

    async def _create(self, item: BatchItem) -> tuple[VideoTask | None, BatchStatus, str]:
        """Send one create between its two journal records; the task, or why there is none."""
        journal = self.journal
        await journal._set(item.key, "sending")
        try:
            task = await self._client.submit(item.request)
        except ClientClosedError:
            await journal._set(item.key, "pending")
            raise
        except Exception as exc:
            # (a create whose broken answer still named its task is a task: submit()
            # returned it.) An error not ours (a bug?) may come after sending: unknown.
            state, status = _classify(exc) if isinstance(exc, StarVideosError) else _UNKNOWN
            error = _describe(exc)
            if status == "unknown":
                error = f"the outcome of the create is unknown: {error}"
            extra = {"status": "error"} if state == "finished" else {}
            await journal._set(item.key, state, error=error, **extra)
            return None, status, error
        except BaseException as exc:  # KeyboardInterrupt and the like: record, then go
            await journal._set(item.key, "unknown", error=_describe(exc))
            raise
        await journal._set(item.key, "submitted", task_id=task.id, error=None)
        self.submitted += 1
        return task, "completed", ""

    async def _track(self, item: BatchItem, task: VideoTask, limits: _Limits) -> None:
        try:
            try:
                video = await task.wait(
                    poll_policy=self._poll_policy, on_status=self._status_hook(item.key)
                )
            except TaskFailedError as exc:
                video = exc.video
        except Exception as exc:  # status calls kept failing; the next run tries again
            self._emit(item, "error", task_id=task.id, error=f"waiting failed: {_describe(exc)}")
            return
        finally:
            limits.in_flight.release()
        status = _FINAL[video.status]
        error = None if status == "completed" else video.error
        await self.journal._set(item.key, "finished", status=status, error=error)
        if status == "completed" and self._download_dir is not None:
            await self._download(item, video, limits)
        else:
            self._emit(item, status, task_id=task.id, error=error, video=video)

    def _status_hook(self, key: str) -> Callable[[Video], None] | None:
        hook = self._on_status
        if hook is None:
            return None

        def on_status(video: Video) -> None:
            hook(key, video)

        return on_status

    async def _download(
        self, item: BatchItem, source: Video | str | None, limits: _Limits
    ) -> None:
        assert self._download_dir is not None  # noqa: S101
        assert source is not None  # noqa: S101
        video = source if isinstance(source, Video) else None
        task_id = source.id if isinstance(source, Video) else source
        async with limits.downloads:
            try:
                path = await self._client.download(source, self._download_dir, overwrite=True)
                size = (await anyio.Path(path).stat()).st_size
            except Exception as exc:
                error = f"download failed: {_describe(exc)}"
                self._emit(item, "error", task_id=task_id, error=error, video=video)
                return
        path = Path(os.path.abspath(path))  # noqa: ASYNC240 - no I/O but getcwd()
        await self.journal._set(item.key, "downloaded", path=str(path), size=size)
        self._emit(item, "completed", task_id=task_id, path=path, video=video)

    async def _verify(self, item: BatchItem, limits: _Limits) -> None:
        entry = item.entry
        assert entry is not None  # noqa: S101
        assert entry.path is not None  # noqa: S101
        try:
            size: int | None = (await anyio.Path(entry.path).stat()).st_size
        except OSError:
            size = None
        if size == entry.size:
            self._emit(item, "completed", task_id=entry.task_id, path=Path(entry.path))
        elif self._download_dir is not None:
            await self._download(item, entry.task_id, limits)
        else:
            error = f"{entry.path} is missing or changed; pass download_dir to fetch it again"
            self._emit(item, "error", task_id=entry.task_id, error=error)
