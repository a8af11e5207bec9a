"""The batch runner: :func:`run_batch` and the run it returns, :class:`BatchRun`.

The promises it keeps are in the docstring of :mod:`starvideos_async.batch`, its public
face; the journal it writes is ``_journal``, the input files it reads ``_inputs``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal

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
from starvideos_async._requests import VideoRequest, check_timeout
from starvideos_async._serde import request_body
from starvideos_async._task import VideoTask

from ._journal import Journal, JournalEntry, State, canonical_json

if sys.version_info < (3, 11):  # pragma: no cover - the backport on 3.10
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from starvideos_async._client import AsyncStarVideos

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "BatchResult",
    "BatchRun",
    "BatchStatus",
    "BatchSummary",
    "StatusHook",
    "request_keys",
    "run_batch",
]

#: The outcome of one request of a batch.
BatchStatus = Literal["completed", "failed", "cancelled", "unknown", "error"]
#: ``run_batch``'s default bound on tasks submitted but not finished.
DEFAULT_MAX_IN_FLIGHT: Final = 16

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


#: ``(key, video)`` hook of :func:`run_batch` for each status change of a task.
StatusHook = Callable[[str, Video], object]


@attrs.frozen
class BatchResult:
    """The end of one request of a batch.

    Attributes:
        key: The request's key.
        status: ``"completed"`` (and downloaded, when a ``download_dir`` was given),
            ``"failed"`` or ``"cancelled"`` (the task ended so on the service),
            ``"unknown"`` (a create whose outcome is unknown: not sent again unless
            asked), or ``"error"`` (the create was refused, waiting or the download
            failed: see :attr:`error`; the next run tries again where that is safe).
        task_id: The task's id, when there is one.
        error: What went wrong, in words.
        path: The downloaded file.
        video: The task's final snapshot, when this run saw one.
        request: The request.
    """

    key: str
    status: BatchStatus
    task_id: str | None = None
    error: str | None = None
    path: Path | None = None
    video: Video | None = attrs.field(default=None, repr=False)
    request: VideoRequest | None = attrs.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the request completed (and was downloaded, if asked)."""
        return self.status == "completed"


@attrs.frozen
class BatchSummary:
    """Counts of the results a batch has yielded so far (``BatchRun.summary``).

    Attributes:
        total: Requests in the batch.
        completed: Results with status ``completed`` (and so on for the others).
        failed: ``failed`` results.
        cancelled: ``cancelled`` results.
        unknown: ``unknown`` results.
        error: ``error`` results.
        submitted: Tasks created by this run (the journal had not seen them sent).
    """

    total: int
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    unknown: int = 0
    error: int = 0
    submitted: int = 0

    @property
    def done(self) -> int:
        """Requests with a result so far."""
        return self.completed + self.failed + self.cancelled + self.unknown + self.error

    @property
    def remaining(self) -> int:
        """Requests without a result yet."""
        return self.total - self.done

    @property
    def all_completed(self) -> bool:
        """Whether every request completed."""
        return self.completed == self.total


@attrs.frozen
class _Limits:
    """A run's semaphores: tasks in flight, creates at once, downloads at once."""

    in_flight: anyio.Semaphore
    creates: anyio.Semaphore
    downloads: anyio.Semaphore


@attrs.define(eq=False)
class _Item:
    key: str
    position: int
    request: VideoRequest
    body: str  # canonical JSON of the create body
    entry: JournalEntry | None = None


def _items(requests: Iterable[VideoRequest]) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()
    for position, request in enumerate(requests):
        if not isinstance(request, VideoRequest):
            raise TypeError(f"requests[{position}] is {type(request).__name__}, not VideoRequest")
        body = canonical_json(request_body(request))
        key = request.key
        if key is None:
            key = f"{position}-{hashlib.sha256(body.encode()).hexdigest()[:10]}"
        elif not key:
            raise InvalidRequestError("key", key, f"requests[{position}] has an empty key")
        if key in seen:
            raise InvalidRequestError(
                "key", key, f"keys must be unique; requests[{position}] repeats it"
            )
        seen.add(key)
        items.append(_Item(key, position, request, body))
    return items


def request_keys(requests: Iterable[VideoRequest]) -> list[str]:
    """The batch key of each request, in order (see the module docs).

    Raises:
        InvalidRequestError: Two requests share a key, or a key is empty.
        TypeError: An item is not a :class:`VideoRequest`.
    """
    return [item.key for item in _items(requests)]


def _count(name: str, value: object) -> int:
    if type(value) is not int or value < 1:
        raise InvalidRequestError(name, value, "an int >= 1")
    return value


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


class BatchRun:
    """A running batch: iterate over it for one :class:`BatchResult` per request.

    Made by :func:`run_batch`; the work starts with ``async with`` or the first
    iteration. Use ``async with`` (or call :meth:`aclose`) when you might stop
    iterating early: leaving it stops the batch.

    Attributes:
        journal: The batch's :class:`Journal`.
    """

    def __init__(
        self,
        client: AsyncStarVideos,
        items: list[_Item],
        journal: Journal,
        download_dir: Path | None,
        max_in_flight: int,
        max_downloads: int,
        poll_policy: PollPolicy | None,
        retry_unknown: bool | frozenset[str],
        on_status: StatusHook | None = None,
        timeout: float | None = None,
    ) -> None:
        self.journal = journal
        self._timeout = timeout
        self._timed_out = False
        self._on_status = on_status
        self._client = client
        self._items = items
        self._download_dir = download_dir
        self._max_in_flight = max_in_flight
        self._max_downloads = max_downloads
        self._poll_policy = poll_policy
        self._retry_unknown = retry_unknown
        self._counts: Counter[str] = Counter()
        self._submitted = 0
        self._results: deque[BatchResult] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._engine: asyncio.Task[None] | None = None
        self._error_raised = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"<BatchRun {self.journal!r} {self.summary}>"

    @property
    def timed_out(self) -> bool:
        """Whether ``timeout`` stopped the run before every request had a result."""
        return self._timed_out

    @property
    def summary(self) -> BatchSummary:
        """The counts of the results yielded so far (final once the iteration ended)."""
        counts = self._counts
        return BatchSummary(
            total=len(self._items),
            completed=counts["completed"],
            failed=counts["failed"],
            cancelled=counts["cancelled"],
            unknown=counts["unknown"],
            error=counts["error"],
            submitted=self._submitted,
        )

    # -- iteration and lifecycle ---------------------------------------------------------

    def __aiter__(self) -> BatchRun:
        return self

    def _start(self) -> asyncio.Task[None]:
        engine = self._engine
        if engine is None:
            engine = self._engine = asyncio.get_running_loop().create_task(self._run())
            engine.add_done_callback(lambda _: self._wake())
        return engine

    async def __anext__(self) -> BatchResult:
        engine = self._start()
        while not self._results:
            if engine.done():
                self._raise_error(engine)
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            except BaseException:  # cancelled: stop the batch cleanly, then go on
                await self._stop()
                raise
            finally:
                self._waiter = None
        result = self._results.popleft()
        self._counts[result.status] += 1
        return result

    async def __aenter__(self) -> BatchRun:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
        else:
            await self._stop()

    async def aclose(self) -> None:
        """Stop the batch if it still runs (the journal stays consistent).

        Raises the error that ended the batch, if the iteration has not raised it.
        """
        await self._stop()
        if self._engine is not None:
            self._raise_error(self._engine)

    async def _stop(self) -> None:
        engine = self._engine
        if engine is not None and not engine.done():
            self._stopped = True
            engine.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([engine])

    def _raise_error(self, engine: asyncio.Task[None]) -> None:
        """Raise (once) what ended the engine, unless it was :meth:`_stop` that did."""
        if self._error_raised or (engine.cancelled() and self._stopped):
            return
        self._error_raised = True
        if engine.cancelled():  # by someone else, e.g. the event loop shutting down
            raise asyncio.CancelledError("the batch was cancelled")
        error = engine.exception()
        if error is not None:
            raise error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _emit(
        self,
        item: _Item,
        status: BatchStatus,
        *,
        task_id: str | None = None,
        error: str | None = None,
        path: Path | None = None,
        video: Video | None = None,
    ) -> None:
        result = BatchResult(item.key, status, task_id, error, path, video, item.request)
        self._results.append(result)
        self._wake()

    # -- the work --------------------------------------------------------------------------

    async def _run(self) -> None:
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
        self._timed_out = scope.cancelled_caught

    async def _begin(self, item: _Item, group: anyio.abc.TaskGroup, limits: _Limits) -> None:
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
                task = self._handle(item, entry.task_id, entry.updated_at)
                group.start_soon(self._track, item, task, limits)
            else:
                group.start_soon(self._submit, item, limits)

    def _handle(self, item: _Item, task_id: str | None, submitted_at: float) -> VideoTask:
        """A handle on ``item``'s task, created about ``submitted_at`` (unix time)."""
        assert task_id is not None  # noqa: S101 - submitted rows have an id
        task = self._client.task(task_id)
        task.request = item.request
        task.submitted_at = submitted_at
        return task

    async def _submit(self, item: _Item, limits: _Limits) -> None:
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

    async def _create(self, item: _Item) -> tuple[VideoTask | None, BatchStatus, str]:
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
        self._submitted += 1
        return task, "completed", ""

    async def _track(self, item: _Item, task: VideoTask, limits: _Limits) -> None:
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

    async def _download(self, item: _Item, source: Video | str | None, limits: _Limits) -> None:
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

    async def _verify(self, item: _Item, limits: _Limits) -> None:
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


def run_batch(
    client: AsyncStarVideos,
    requests: Iterable[VideoRequest],
    *,
    journal: Journal | str | os.PathLike[str],
    download_dir: str | os.PathLike[str] | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    poll_policy: PollPolicy | None = None,
    retry_unknown: bool | Iterable[str] = False,
    max_downloads: int | None = None,
    on_status: StatusHook | None = None,
    timeout: float | None = None,
) -> BatchRun:
    """Run or resume a batch; iterate over the returned :class:`BatchRun` for results.

    Arguments are checked here, before anything is sent; the work starts with
    ``async with`` or the first iteration. See the module docs for what is guaranteed.

    Args:
        client: The client to submit, wait and download with.
        requests: The requests; each gets a key (see :func:`request_keys`).
        journal: A :class:`Journal`, or its path (created when missing). Left open if
            you opened it, else opened and closed by the run.
        download_dir: Where completed videos go (created when missing), named from the
            task id; ``None`` downloads nothing.
        max_in_flight: At most this many tasks submitted but not finished at once.
        poll_policy: How often to ask for statuses; the client's by default.
        retry_unknown: Send again the creates whose outcome is unknown: ``True`` for
            all, or the keys of those to send again. Each may pay twice.
        max_downloads: Downloads at once; the client's ``max_concurrency`` by default.
        on_status: Called as ``on_status(key, video)`` with every status change of
            every task this run waits on (for live progress); must not block.
        timeout: Seconds after which the run stops submitting, waiting and
            downloading (``None``: no limit). The iteration then ends without an
            error: :attr:`BatchRun.timed_out` is true, ``summary.remaining`` counts the
            requests left without a result, and the journal keeps them for the next
            run (creates already on the wire get their answer recorded first).

    Raises:
        InvalidRequestError: Two requests share a key, a ``retry_unknown`` key is not
            in the batch, or an argument is out of range.
        TypeError: An item of ``requests`` is not a :class:`VideoRequest`.
    """
    items = _items(requests)
    if not isinstance(journal, Journal):
        journal = Journal(journal)
    retry: bool | frozenset[str]
    if isinstance(retry_unknown, bool):
        retry = retry_unknown
    else:
        retry = frozenset([retry_unknown] if isinstance(retry_unknown, str) else retry_unknown)
        missing = retry - {item.key for item in items}
        if missing:
            raise InvalidRequestError("retry_unknown", sorted(missing), "keys of this batch")
    downloads = client.max_concurrency if max_downloads is None else max_downloads
    if poll_policy is not None and not isinstance(poll_policy, PollPolicy):
        raise InvalidRequestError("poll_policy", poll_policy, "a PollPolicy or None")
    check_timeout(timeout)
    return BatchRun(
        client,
        items,
        journal,
        None if download_dir is None else Path(os.fspath(download_dir)),
        _count("max_in_flight", max_in_flight),
        _count("max_downloads", downloads),
        poll_policy,
        retry,
        on_status,
        None if timeout is None else float(timeout),
    )
