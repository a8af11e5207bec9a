"""Data the service sends back: task statuses, the task snapshot, a finish estimate.

No I/O and no validation here (what a caller sends is checked in :mod:`._requests`).
"""

from __future__ import annotations

import datetime
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

__all__ = ["Estimate", "ProgressCallback", "TaskStatus", "Video"]

#: Called with ``(bytes_done, bytes_total_or_None)`` as a download progresses.
ProgressCallback = Callable[[int, "int | None"], "Awaitable[object] | object"]


class TaskStatus(str, enum.Enum):
    """The documented statuses of a task.

    A task moves ``queued`` → ``processing`` → ``completed`` or ``failed``. The
    platform documents ``cancelled`` for other models; it is terminal too. A status
    string the SDK does not know is kept as a plain ``str`` on :class:`Video` and
    treated as not terminal.
    """

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the task will not change any more."""
        return self in _TERMINAL

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
_BY_VALUE: dict[str, TaskStatus] = {status.value: status for status in TaskStatus}


def _to_status(value: TaskStatus | str) -> TaskStatus | str:
    """A documented status string becomes its :class:`TaskStatus`; others stay as they are."""
    if isinstance(value, TaskStatus):
        return value
    return _BY_VALUE.get(value, value) if isinstance(value, str) else value


@attrs.frozen
class Video:
    """A snapshot of a task as the service reported it.

    Attributes:
        id: The task id; the only handle on a paid job, keep it.
        status: A :class:`TaskStatus`, or the raw string when the service sent a
            status this SDK does not know (treated as not terminal).
        object: Always ``"video"`` so far.
        created: Creation time, unix seconds.
        model: The model's wire name.
        video_url: Where the finished video can be downloaded. A temporary URL
            (about 24 hours): download promptly.
        actual_duration: The real output length in seconds (``actualDuration``).
        error: The service's reason when the task failed.
        extra: Every field the SDK does not know, kept as sent.
    """

    id: str
    status: TaskStatus | str = attrs.field(converter=_to_status)
    object: str = "video"
    created: int | None = None
    model: str | None = None
    video_url: str | None = None
    actual_duration: float | None = None
    error: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def status_value(self) -> str:
        """The status as the plain string sent on the wire."""
        status = self.status
        return status.value if isinstance(status, TaskStatus) else status

    @property
    def is_terminal(self) -> bool:
        """Whether the task will not change any more (unknown statuses are not terminal)."""
        status = self.status
        return type(status) is TaskStatus and status in _TERMINAL

    @property
    def is_completed(self) -> bool:
        """Whether the task finished with a video."""
        return self.status is TaskStatus.COMPLETED


@attrs.frozen
class Estimate:
    """When a task will likely be done, learnt from the completions its client has seen.

    Made by :meth:`VideoTask.estimate`. Both figures count from :attr:`made_at` and are
    conditional on the task's age then: for a task older than most, they are the time
    left to tasks that ran that long. See "When will it be done?" in the docs for how it
    is learnt and how wrong it can be.

    Attributes:
        median: Seconds from :attr:`made_at` until the task is done, at even odds:
            about half the tasks finish sooner, half later.
        p90: Seconds from :attr:`made_at` by which about 90 % of such tasks are done.
        age: The task's age when the estimate was made, seconds since its creation.
        samples: Completions of tasks of the same kind (requested duration) it is
            learnt from.
        made_at: Unix time the estimate was made.
    """

    median: float
    p90: float
    age: float
    samples: int
    made_at: float = attrs.field(factory=time.time, kw_only=True)

    @property
    def median_at(self) -> datetime.datetime:
        """The wall-clock time of :attr:`median` (UTC; ``.astimezone()`` for local)."""
        return datetime.datetime.fromtimestamp(self.made_at + self.median, datetime.timezone.utc)

    @property
    def p90_at(self) -> datetime.datetime:
        """The wall-clock time of :attr:`p90` (UTC; ``.astimezone()`` for local)."""
        return datetime.datetime.fromtimestamp(self.made_at + self.p90, datetime.timezone.utc)
