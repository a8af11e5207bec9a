"""JSON in and out: the one converter, and the parsing of every API answer.

:func:`parse_answer` decodes a ``2xx`` body; what it cannot read is a
:class:`~starvideos_async.MalformedResponseError`.

Never the global converter: ``converter`` below is private to the SDK. Structuring is
strict about types (a number where a string belongs is a malformed response, not a
string to invent) and tolerant about content (unknown fields are kept in
``Video.extra``; unknown statuses are kept as strings). A field added to
:class:`~._models.Video` is structured as it is named, or as its ``override`` below
renames it: one edit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs
from cattrs import Converter
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._errors import MalformedResponseError, RequestInfo
from ._messages import BODY_KEPT, error_message, text_excerpt
from ._models import TaskStatus, Video
from ._requests import VideoRequest

__all__ = ["converter", "parse_answer", "request_body", "structure_video", "with_named_task"]

converter: Final = Converter(detailed_validation=False)

T = TypeVar("T")


def _strict_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _strict_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _strict_float(value: object, _: object) -> float:
    if type(value) in (int, float):
        return float(value)  # type: ignore[arg-type]
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _task_id(value: object, _: object) -> str:
    """A task id: a non-empty string that can be sent back (JSON can carry lone surrogates)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a task id string, got {type(value).__name__}")
    if not value:
        raise ValueError("the task id is empty")
    if not _valid_unicode(value):
        raise ValueError("the task id is not valid Unicode text")
    return value


def _status(value: object, _: object) -> TaskStatus | str:
    if not isinstance(value, str):
        raise TypeError(f"expected a status string, got {type(value).__name__}")
    return value  # (Video's converter makes a documented status a TaskStatus)


def _or_none(structure: Callable[[object, object], T]) -> Callable[[object, object], T | None]:
    """The hook of ``X | None`` from the hook of ``X`` (cattrs would look ``X``'s up each time)."""

    def structure_or_none(value: object, type_: object) -> T | None:
        return None if value is None else structure(value, type_)

    return structure_or_none


#: Where the unknown fields of an answer are handed to the structuring function.
_EXTRA: Final = "\x00extra"
#: Video's fields named or checked apart (``extra`` gathers the fields not known).
_VIDEO_OVERRIDES: Final = {
    "id": override(struct_hook=_task_id),
    "actual_duration": override(rename="actualDuration"),
    "extra": override(rename=_EXTRA),
}


def _wire_name(field: attrs.Attribute[Any]) -> str:
    override_ = _VIDEO_OVERRIDES.get(field.name)
    return (override_.rename if override_ is not None else None) or field.name


#: The fields an answer's known to carry; the others go to ``Video.extra``.
_KNOWN: Final = frozenset(_wire_name(f) for f in attrs.fields(Video) if f.name != "extra")


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(float, _strict_float)
converter.register_structure_hook(TaskStatus | str, _status)
converter.register_structure_hook(str | None, _or_none(_strict_str))
converter.register_structure_hook(int | None, _or_none(_strict_int))
converter.register_structure_hook(float | None, _or_none(_strict_float))
converter.register_structure_hook_func(  # Video.extra: kept as sent
    lambda cls: cls == Mapping[str, Any], lambda value, _: value
)
converter.register_structure_hook(
    Video,
    make_dict_structure_fn(Video, converter, **_VIDEO_OVERRIDES),  # type: ignore[arg-type]
)
#: The converter's hook for Video, looked up once (``converter.structure`` looks it up
#: at every call).
_structure_video: Final[Callable[[object, type[Video]], Video]] = converter.get_structure_hook(
    Video
)
converter.register_unstructure_hook(
    VideoRequest,
    make_dict_unstructure_fn(
        VideoRequest,
        converter,
        # Left out when not given: v3's body is as it always was, and an omitted
        # duration or ratio (beside reference videos, or of an unknown model) is the
        # service's to decide.
        duration=override(omit_if_default=True),
        ratio=override(omit_if_default=True),
        images=override(omit_if_default=True, unstruct_hook=list),
        reference_images=override(
            rename="referenceImages", omit_if_default=True, unstruct_hook=list
        ),
        first_image=override(omit_if_default=True),
        last_image=override(omit_if_default=True),
        reference_videos=override(
            rename="referenceVideos", omit_if_default=True, unstruct_hook=list
        ),
        allow_unknown_model=override(omit=True),
        key=override(omit=True),
    ),
)


def request_body(request: VideoRequest) -> dict[str, Any]:
    """The JSON object sent to create ``request``: only the inputs given, by wire name."""
    body: dict[str, Any] = converter.unstructure(request)
    return body


def structure_video(data: object) -> Video:
    """Build a :class:`Video` from a decoded JSON answer.

    Raises:
        ValueError: ``data`` is not the documented object (also when it is an error
            payload sent with a 2xx status, or its id is empty or not valid Unicode).
        TypeError, KeyError: a documented field is missing or of the wrong type.
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if isinstance(data.get("error"), dict) or ("id" not in data and error_message(data)):
        raise ValueError(f"the service answered with an error: {error_message(data)}")
    if data.keys() <= _KNOWN:  # the usual answer: no field to keep aside
        video = _structure_video(data, Video)
    else:
        extra = {key: value for key, value in data.items() if key not in _KNOWN}
        video = _structure_video({**data, _EXTRA: extra}, Video)
    return video


def parse_answer(raw: bytes, parse: Callable[[object], T], info: RequestInfo) -> T:
    """Decode a 2xx body and parse it; anything unexpected is a MalformedResponseError.

    A create's broken answer that names its task in full puts that id in the error
    (:func:`with_named_task`): the task exists.
    """
    error: Exception
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        what = "an empty body" if not raw.strip() else f"not JSON: {text_excerpt(_text(raw))!r}"
        reason, error = f"expected a JSON object, got {what}", exc
    else:
        try:
            return parse(data)
        except (ValueError, TypeError, KeyError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            reason, error = f"unexpected response: {detail}", exc
    raise MalformedResponseError(
        reason, request=with_named_task(info, raw), body=_text(raw)
    ) from error


def with_named_task(info: RequestInfo, received: bytes) -> RequestInfo:
    """``info``, naming the task that what was received of its broken answer names.

    For a create's ``2xx`` answer that broke off or is unusable (cut, malformed, over
    the size limit) yet named its task in full (:func:`task_id_in`): the task exists,
    and the error must carry its id. A request about a known task keeps it.
    """
    if info.task_id is not None:
        return info
    return RequestInfo(info.method, info.path, task_id_in(received.decode("utf-8", "replace")))


def _text(raw: bytes) -> str:
    """The start of a body, as text (for errors)."""
    return raw[:BODY_KEPT].decode("utf-8", "replace")


_decoder: Final = json.JSONDecoder()


def task_id_in(text: str) -> str | None:
    """The task id a JSON object's text names at its top level, even when the text is cut.

    Reads the members of the top-level object in order until ``"id"``, and returns its
    value when that member is complete and a usable id (a non-blank string of valid
    Unicode). Returns ``None`` when the text is not an object, breaks before or inside
    the id, or names none: an id is never guessed from anything else.
    """
    at = _skip_blank(text, 0)
    if not text.startswith("{", at):
        return None
    try:
        while True:
            name, at = _decoder.raw_decode(text, _skip_blank(text, at + 1))
            at = _skip_blank(text, at)
            if not isinstance(name, str) or not text.startswith(":", at):
                return None
            value, at = _decoder.raw_decode(text, _skip_blank(text, at + 1))
            if name == "id":
                usable = isinstance(value, str) and value.strip() and _valid_unicode(value)
                return value if usable else None
            at = _skip_blank(text, at)
            if not text.startswith(",", at):
                return None
    except (ValueError, RecursionError):  # cut short, or not JSON there
        return None


def _skip_blank(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _valid_unicode(text: str) -> bool:
    """Whether ``text`` can be sent back (JSON can carry lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
