"""Data: task statuses, the create request and the task snapshot. No I/O here.

Per-model rules live in one table, :data:`MODELS`, so that a second model
(``starvideos_o3`` is documented on the same endpoint) is one more entry.
"""

from __future__ import annotations

import datetime
import enum
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs
from yarl import URL

from ._errors import InvalidRequestError

__all__ = [
    "MODELS",
    "Estimate",
    "ModelSpec",
    "ProgressCallback",
    "TaskStatus",
    "Video",
    "VideoRequest",
    "check_timeout",
]

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


@attrs.frozen
class ModelSpec:
    """What one model accepts on the create endpoint.

    Attributes:
        name: The wire name, e.g. ``"starvideos_v3"``.
        min_duration: Shortest allowed ``duration``, seconds.
        max_duration: Longest allowed ``duration``, seconds.
        ratios: The allowed ``ratio`` values.
        max_images: How many ``images`` the model uses.
    """

    name: str
    min_duration: int
    max_duration: int
    ratios: tuple[str, ...]
    max_images: int


#: The models this SDK knows, by wire name.
MODELS: Mapping[str, ModelSpec] = {
    "starvideos_v3": ModelSpec(
        name="starvideos_v3",
        min_duration=3,
        max_duration=15,
        ratios=("16:9", "9:16"),
        max_images=2,
    ),
}


def check_timeout(timeout: float | None) -> None:
    """A ``timeout=`` argument (of a wait, a download, a batch): positive seconds or None."""
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout < math.inf  # also refuses NaN
    ):
        raise InvalidRequestError("timeout", timeout, "a positive number of seconds or None")


def _check_prompt(prompt: object) -> None:
    if not isinstance(prompt, str):
        raise InvalidRequestError("prompt", prompt, "a non-empty string is required")
    if not prompt.strip():
        raise InvalidRequestError("prompt", prompt, "a non-empty string is required")
    _check_text("prompt", prompt)


def _check_text(field: str, value: str) -> None:
    """Refuse text UTF-8 cannot encode (lone surrogates): it could never be sent."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(
            field, value, "valid Unicode text (no lone surrogates)"
        ) from None


def _check_image(index: int, url: object) -> None:
    field = f"images[{index}]"
    allowed = "each image must be an absolute http(s) URL that the service can reach"
    if not isinstance(url, str) or not url or url != url.strip():
        raise InvalidRequestError(field, url, allowed)
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidRequestError(field, url, allowed)
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise InvalidRequestError(field, url, allowed) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidRequestError(field, url, allowed)


def _to_images(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise InvalidRequestError("images", value, "a list of URL strings is required")
    try:
        return tuple(value)
    except TypeError:
        raise InvalidRequestError("images", value, "a list of URL strings is required") from None


@attrs.frozen
class VideoRequest:
    """One create-task request, validated against the documented rules at construction.

    Invalid values raise :class:`~starvideos_async.InvalidRequestError` (a
    ``ValueError``) naming the field, the value and what is allowed, so a bad request
    never reaches the network.

    Attributes:
        prompt: The text prompt (subject + action + camera + style works best).
        model: The model's wire name; only ``"starvideos_v3"`` is documented.
        duration: Length in seconds, an ``int`` in 3..15.
        ratio: ``"16:9"`` (landscape) or ``"9:16"`` (portrait).
        images: Up to two public image URLs: none is text-to-video, one animates the
            image, two are the first and last frame. More than two is an error (the
            service would silently ignore the rest).
        allow_unknown_model: Opt out of the model check, for a model released after
            this SDK. Then only model-independent rules apply.
        key: An optional caller-chosen key (not sent), used by the batch runner.
    """

    prompt: str
    model: str = "starvideos_v3"
    duration: int = 5
    ratio: str = "16:9"
    images: tuple[str, ...] = attrs.field(default=(), converter=_to_images)
    allow_unknown_model: bool = attrs.field(default=False, kw_only=True, repr=False)
    key: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        _check_prompt(self.prompt)
        spec = MODELS.get(self.model) if isinstance(self.model, str) else None
        if spec is None and not (self.allow_unknown_model and isinstance(self.model, str)):
            known = ", ".join(sorted(MODELS))
            raise InvalidRequestError(
                "model",
                self.model,
                f"known models: {known} (pass allow_unknown_model=True for a newer one)",
            )
        if type(self.duration) is not int:
            raise InvalidRequestError("duration", self.duration, "an int number of seconds")
        lo, hi = (spec.min_duration, spec.max_duration) if spec else (1, math.inf)
        if not lo <= self.duration <= hi:
            raise InvalidRequestError("duration", self.duration, f"allowed: {lo}..{hi} seconds")
        if spec is not None and self.ratio not in spec.ratios:
            raise InvalidRequestError("ratio", self.ratio, f"allowed: {', '.join(spec.ratios)}")
        if spec is None and (not isinstance(self.ratio, str) or not self.ratio):
            raise InvalidRequestError("ratio", self.ratio, "a ratio such as '16:9'")
        if spec is None:
            _check_text("model", self.model)
            _check_text("ratio", self.ratio)
        max_images = spec.max_images if spec else len(self.images)
        if len(self.images) > max_images:
            raise InvalidRequestError(
                "images",
                self.images,
                f"at most {max_images} images (first and last frame); "
                "the service would silently ignore the rest",
            )
        for index, url in enumerate(self.images):
            _check_image(index, url)
        if self.key is not None and not isinstance(self.key, str):
            raise InvalidRequestError("key", self.key, "a string or None")
        if self.key is not None:
            _check_text("key", self.key)

    @property
    def mode(self) -> str:
        """``"text"``, ``"image"`` or ``"first_last_frame"``, from the number of images."""
        return ("text", "image", "first_last_frame")[min(len(self.images), 2)]


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
