"""What a caller sends: the create request and its rules, checked before any network call.

Per-model rules live in one table, :data:`MODELS`: a model's defaults, ranges, the
inputs it takes and a function for its rules that depend on each other. A model is one
more entry.
Invalid input raises :class:`~starvideos_async.InvalidRequestError` naming the field,
the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from yarl import URL

from ._errors import InvalidRequestError

__all__ = [
    "INPUT_FIELDS",
    "MODELS",
    "ModelSpec",
    "VideoRequest",
    "check_requests",
    "check_timeout",
    "request_of",
]


#: The optional inputs of the create body, by their Python names; each model takes some.
INPUT_FIELDS: tuple[str, ...] = (
    "images",
    "reference_images",
    "first_image",
    "last_image",
    "reference_videos",
)


def _no_rules(request: VideoRequest) -> None:
    """A model whose rules are all in its spec's table fields."""


@attrs.frozen
class ModelSpec:
    """What one model accepts on the create endpoint.

    Attributes:
        name: The wire name, e.g. ``"starvideos_v3"``.
        default_duration: The ``duration`` sent when the caller gives none, seconds.
        default_ratio: The ``ratio`` sent when the caller gives none.
        min_duration: Shortest allowed ``duration``, seconds.
        max_duration: Longest allowed ``duration``, seconds.
        ratios: The allowed ``ratio`` values.
        fields: The optional inputs it takes (names from ``INPUT_FIELDS``); another
            model's input is refused.
        instead: What to use instead, said when another model's input is given.
        max_images: How many ``images`` the model uses (0: it takes no ``images``).
        rules: The model's rules that depend on several fields, called with the
            request before defaults are filled in (an omitted ``duration`` or ``ratio``
            is still None); raises :class:`~starvideos_async.InvalidRequestError`.
    """

    name: str
    default_duration: int
    default_ratio: str
    min_duration: int
    max_duration: int
    ratios: tuple[str, ...]
    fields: frozenset[str]
    instead: str
    max_images: int = 0
    rules: Callable[[VideoRequest], None] = _no_rules


def _starvideos_o3_rules(request: VideoRequest) -> None:
    """starvideos_o3: what its inputs may be combined with (the platform's docs).

    Not stated by the platform, so not checked: how many reference videos, whether
    ``first_image`` may come without ``last_image`` (or the reverse), a video's length
    or format.
    """
    images, videos = request.reference_images, request.reference_videos
    most = 4 if videos else 7
    if len(images) > most:
        beside = " together with reference_videos" if videos else ""
        raise InvalidRequestError("reference_images", images, f"at most {most} images{beside}")
    for name in ("first_image", "last_image"):
        frame = getattr(request, name)
        if frame is not None and images:
            raise InvalidRequestError(
                name,
                frame,
                "not combined with reference_images: a first/last frame or "
                "reference images, not both",
            )
        if frame is not None and videos:
            raise InvalidRequestError(
                name,
                frame,
                "not combined with reference_videos: videos come alone or with reference_images",
            )
    for name in ("duration", "ratio"):
        if videos and getattr(request, name) is not None:
            raise InvalidRequestError(
                name,
                getattr(request, name),
                f"leave it out with reference_videos: the {name} follows the reference "
                "video (the service ignores this field)",
            )


#: The models this SDK knows, by wire name.
MODELS: Mapping[str, ModelSpec] = {
    "starvideos_v3": ModelSpec(
        name="starvideos_v3",
        default_duration=5,
        default_ratio="16:9",
        min_duration=3,
        max_duration=15,
        ratios=("16:9", "9:16"),
        fields=frozenset({"images"}),
        instead="use images (one image to animate, or two: the first and last frame)",
        max_images=2,
    ),
    "starvideos_o3": ModelSpec(
        name="starvideos_o3",
        default_duration=3,
        default_ratio="9:16",
        min_duration=3,
        max_duration=15,
        ratios=("9:16", "1:1", "16:9"),
        fields=frozenset({"reference_images", "first_image", "last_image", "reference_videos"}),
        instead="use reference_images, or first_image and last_image",
        rules=_starvideos_o3_rules,
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


def _check_url(field: str, url: object) -> None:
    allowed = "an absolute http(s) URL that the service can reach"
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


def _urls(name: str, value: Iterable[str] | None) -> tuple[str, ...]:
    """A list-of-URLs field: any iterable but a string, kept as a tuple."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise InvalidRequestError(name, value, "a list of URL strings is required")
    try:
        return tuple(value)
    except TypeError:
        raise InvalidRequestError(name, value, "a list of URL strings is required") from None


def _to_images(value: Iterable[str] | None) -> tuple[str, ...]:
    return _urls("images", value)


def _to_reference_images(value: Iterable[str] | None) -> tuple[str, ...]:
    return _urls("reference_images", value)


def _to_reference_videos(value: Iterable[str] | None) -> tuple[str, ...]:
    return _urls("reference_videos", value)


def _given(request: VideoRequest, name: str) -> bool:
    return bool(getattr(request, name))  # an empty list or None: not given


@attrs.frozen
class VideoRequest:
    """One create-task request, validated against the documented rules at construction.

    Invalid values raise :class:`~starvideos_async.InvalidRequestError` (a
    ``ValueError``) naming the field, the value and what is allowed, so a bad request
    never reaches the network. Each model takes its own inputs (:data:`MODELS`); an input
    of the other model is refused, naming the one to use.

    ``starvideos_v3`` takes ``images``. ``starvideos_o3`` takes ``reference_images``
    (up to 7; up to 4 with ``reference_videos``), or ``first_image``/``last_image``
    (not with ``reference_images``), and ``reference_videos`` (alone or with
    ``reference_images``; then the video decides duration and ratio, so neither may be
    given). The platform does not say how many reference videos are allowed, nor whether
    ``first_image`` may come without ``last_image``: such requests are sent as they are,
    and the service decides.

    Attributes:
        prompt: The text prompt (subject + action + camera + style works best).
        model: The model's wire name: ``"starvideos_v3"`` or ``"starvideos_o3"``.
        duration: Length in seconds, an ``int`` in 3..15. Left out (None), the model's
            default: 5 for v3, 3 for o3; it stays None (not sent) beside
            ``reference_videos``, and for a model this SDK does not know.
        ratio: v3: ``"16:9"`` (the default) or ``"9:16"``; o3: ``"9:16"`` (the
            default), ``"1:1"`` or ``"16:9"``. Left out (None), as for ``duration``.
        images: v3: up to two public image URLs: none is text-to-video, one animates
            the image, two are the first and last frame. More than two is an error (the
            service would silently ignore the rest).
        reference_images: o3: image URLs the video is to follow (sent as
            ``referenceImages``).
        first_image: o3: the URL of the first frame.
        last_image: o3: the URL of the last frame.
        reference_videos: o3: video URLs the video is to follow (sent as
            ``referenceVideos``).
        allow_unknown_model: Opt out of the model check, for a model released after
            this SDK. Then only model-independent rules apply, and every input given
            is sent.
        key: An optional caller-chosen key (not sent), used by the batch runner.
    """

    prompt: str
    model: str = "starvideos_v3"
    duration: int | None = None
    ratio: str | None = None
    images: tuple[str, ...] = attrs.field(default=(), converter=_to_images)
    reference_images: tuple[str, ...] = attrs.field(
        default=(), converter=_to_reference_images, kw_only=True
    )
    first_image: str | None = attrs.field(default=None, kw_only=True)
    last_image: str | None = attrs.field(default=None, kw_only=True)
    reference_videos: tuple[str, ...] = attrs.field(
        default=(), converter=_to_reference_videos, kw_only=True
    )
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
        if spec is not None:
            for name in INPUT_FIELDS:
                if name not in spec.fields and _given(self, name):
                    raise InvalidRequestError(
                        name,
                        getattr(self, name),
                        f"{spec.name} does not take {name}; {spec.instead}",
                    )
            spec.rules(self)
            if len(self.images) > spec.max_images:
                raise InvalidRequestError(
                    "images",
                    self.images,
                    f"at most {spec.max_images} images (first and last frame); "
                    "the service would silently ignore the rest",
                )
            if self.duration is None and not self.reference_videos:
                object.__setattr__(self, "duration", spec.default_duration)
            if self.ratio is None and not self.reference_videos:
                object.__setattr__(self, "ratio", spec.default_ratio)
        if self.duration is not None:
            if type(self.duration) is not int:
                raise InvalidRequestError("duration", self.duration, "an int number of seconds")
            lo, hi = (spec.min_duration, spec.max_duration) if spec else (1, math.inf)
            if not lo <= self.duration <= hi:
                raise InvalidRequestError(
                    "duration", self.duration, f"allowed: {lo}..{hi} seconds"
                )
        if spec is not None and self.ratio is not None and self.ratio not in spec.ratios:
            raise InvalidRequestError("ratio", self.ratio, f"allowed: {', '.join(spec.ratios)}")
        if spec is None:
            if self.ratio is not None and (not isinstance(self.ratio, str) or not self.ratio):
                raise InvalidRequestError("ratio", self.ratio, "a ratio such as '16:9'")
            _check_text("model", self.model)
            if self.ratio is not None:
                _check_text("ratio", self.ratio)
        for name in ("images", "reference_images", "reference_videos"):
            for index, url in enumerate(getattr(self, name)):
                _check_url(f"{name}[{index}]", url)
        for name in ("first_image", "last_image"):
            if getattr(self, name) is not None:
                _check_url(name, getattr(self, name))
        if self.key is not None and not isinstance(self.key, str):
            raise InvalidRequestError("key", self.key, "a string or None")
        if self.key is not None:
            _check_text("key", self.key)

    @property
    def mode(self) -> str:
        """What kind of create it is, from the inputs given.

        ``"text"``; ``"image"`` (v3's one image, or o3's reference images);
        ``"first_last_frame"`` (v3's two images, or o3's ``first_image``/``last_image``);
        ``"video"`` (o3's reference videos) or ``"image_video"`` (with reference images).
        """
        if self.reference_videos:
            return "image_video" if self.reference_images else "video"
        if self.first_image is not None or self.last_image is not None:
            return "first_last_frame"
        if self.reference_images:
            return "image"
        return ("text", "image", "first_last_frame")[min(len(self.images), 2)]


def request_of(prompt: str | VideoRequest, model: str, inputs: Mapping[str, Any]) -> VideoRequest:
    """What ``submit(prompt, model=..., **inputs)`` asks for: a checked :class:`VideoRequest`.

    ``prompt`` itself when it is one; then ``model`` and every input must be left alone.
    """
    if isinstance(prompt, VideoRequest):
        if model != "starvideos_v3" or any(value is not None for value in inputs.values()):
            raise TypeError("pass either a VideoRequest or keyword arguments, not both")
        return prompt
    return VideoRequest(prompt=prompt, model=model, **inputs)


def check_requests(requests: Iterable[object]) -> list[VideoRequest]:
    """The requests of ``submit_many()`` or a batch, in a list; each a :class:`VideoRequest`."""
    checked = []
    for index, request in enumerate(requests):
        if not isinstance(request, VideoRequest):
            raise TypeError(f"requests[{index}] is {type(request).__name__}, not VideoRequest")
        checked.append(request)
    return checked
