"""What a caller sends: the create request and its rules, checked before any network call.

Per-model rules live in one table, :data:`MODELS`, so that a second model
(``starvideos_o3`` is documented on the same endpoint) is one more entry.
Invalid input raises :class:`~starvideos_async.InvalidRequestError` naming the field,
the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs
from yarl import URL

from ._errors import InvalidRequestError

__all__ = ["MODELS", "ModelSpec", "VideoRequest", "check_timeout"]


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
