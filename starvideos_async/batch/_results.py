"""What a batch yields: one :class:`BatchResult` per request, and the counts of them.

Also the types users meet in :func:`~starvideos_async.batch.run_batch`'s signature:
:data:`BatchStatus` and :data:`StatusHook`. Nothing here runs anything: the run is
``_runner``, the work it does ``_work``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import attrs

from starvideos_async._models import Video
from starvideos_async._requests import VideoRequest

__all__ = ["BatchResult", "BatchStatus", "BatchSummary", "StatusHook"]

#: The outcome of one request of a batch.
BatchStatus = Literal["completed", "failed", "cancelled", "unknown", "error"]

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
