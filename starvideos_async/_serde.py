"""The one cattrs converter: request bodies out, task snapshots in.

Never the global converter: ``converter`` below is private to the SDK. Structuring is
strict about types (a number where a string belongs is a malformed response, not a
string to invent) and tolerant about content (unknown fields are kept in
``Video.extra``; unknown statuses are kept as strings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from cattrs import Converter
from cattrs.gen import make_dict_unstructure_fn, override

from ._models import TaskStatus, Video, VideoRequest

__all__ = [
    "VIDEO_OVERRIDES",
    "converter",
    "error_message",
    "request_body",
    "structure_video",
    "task_id_in",
]

converter: Final = Converter(detailed_validation=False)

_EXTRA_KEY: Final = "\x00extra"
_KNOWN_FIELDS: Final = frozenset(
    {"id", "object", "created", "model", "status", "video_url", "actualDuration", "error"}
)
_STATUSES: Final = {s.value: s for s in TaskStatus}


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


def _status(value: object, _: object) -> TaskStatus | str:
    if not isinstance(value, str):
        raise TypeError(f"expected a status string, got {type(value).__name__}")
    return _STATUSES.get(value, value)


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(float, _strict_float)
converter.register_structure_hook(TaskStatus | str, _status)


def _or_none(strict: Any) -> Any:
    def structure(value: object, _: object) -> Any:
        return None if value is None else strict(value, _)

    return structure


# Direct hooks for the optional fields: cattrs' generic Optional hook dispatches again
# on every call.
converter.register_structure_hook(str | None, _or_none(_strict_str))
converter.register_structure_hook(int | None, _or_none(_strict_int))
converter.register_structure_hook(float | None, _or_none(_strict_float))
converter.register_structure_hook_func(
    lambda cls: cls == Mapping[str, Any], lambda value, _: value
)

#: What cattrs would generate for Video (tests compare it with the hook below).
VIDEO_OVERRIDES: Final = {
    "actual_duration": override(rename="actualDuration"),
    "extra": override(rename=_EXTRA_KEY),
}


def _video(o: Mapping[str, Any], extra: Mapping[str, Any]) -> Video:
    """Video's structure hook, written out: one status call parses one of these.

    Equivalent to ``make_dict_structure_fn(Video, converter, **VIDEO_OVERRIDES)`` (same
    results, same exception types; ``tests/test_fuzz.py`` checks it on generated
    inputs) at a third of its cost: the hooks above are inlined instead of called
    through two levels of dispatch per field.
    """
    obj = o.get("object", "video")
    if not isinstance(obj, str):
        obj = _strict_str(obj, None)
    created = o.get("created")
    if created is not None and type(created) is not int:
        created = _strict_int(created, None)
    model = o.get("model")
    if model is not None and not isinstance(model, str):
        model = _strict_str(model, None)
    video_url = o.get("video_url")
    if video_url is not None and not isinstance(video_url, str):
        video_url = _strict_str(video_url, None)
    actual = o.get("actualDuration")
    if actual is not None:
        actual = _strict_float(actual, None)
    error = o.get("error")
    if error is not None and not isinstance(error, str):
        error = _strict_str(error, None)
    # (id and status last: the same order of checks, hence of exceptions, as cattrs)
    task_id = o["id"]
    if type(task_id) is not str:
        task_id = _strict_str(task_id, None)
    status = o["status"]
    status = _STATUSES.get(status, status) if type(status) is str else _status(status, None)
    return Video(
        task_id,
        status,
        obj,
        created,
        model,
        video_url,
        actual,
        error,
        extra,
    )


def _video_hook(o: object, _: object) -> Video:
    if not isinstance(o, Mapping):  # what the generated function raises on a non-mapping
        raise TypeError(f"expected a mapping, got {type(o).__name__}")
    return _video(o, o.get(_EXTRA_KEY, {}))


converter.register_structure_hook(Video, _video_hook)

converter.register_unstructure_hook(
    VideoRequest,
    make_dict_unstructure_fn(
        VideoRequest,
        converter,
        images=override(omit_if_default=True, unstruct_hook=list),
        allow_unknown_model=override(omit=True),
        key=override(omit=True),
    ),
)


def request_body(request: VideoRequest) -> dict[str, Any]:
    """The JSON object sent to create ``request`` (no ``images`` key when there are none)."""
    body: dict[str, Any] = converter.unstructure(request)
    return body


def error_message(body: object) -> str | None:
    """Pull a human message out of any of the error shapes the service may use.

    Handles ``{"error": {"message": ..., "code": ...}}``, ``{"error": "..."}``,
    ``{"message": ...}``, ``{"code": ..., "msg": ...}`` and ``{"detail": ...}``.
    Returns ``None`` when ``body`` holds no error.
    """
    if not isinstance(body, Mapping):
        return None
    err = body.get("error")
    if isinstance(err, Mapping):
        message = err.get("message") or err.get("msg") or err.get("type")
        code = err.get("code")
        text = str(message) if message else json.dumps(err)[:200]
        return f"{text} (code {code})" if code not in (None, "") else text
    if isinstance(err, str) and err:
        return err
    for key in ("message", "msg", "detail", "error_description"):
        value = body.get(key)
        if isinstance(value, str) and value:
            code = body.get("code")
            return f"{value} (code {code})" if code not in (None, "", 0, 200) else value
    return None


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def text_excerpt(text: str, limit: int = 200) -> str:
    """A short one-line excerpt of a non-JSON body (HTML tags dropped)."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and title.group(1).strip():
        text = title.group(1)
    flat = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def structure_video(data: object) -> Video:
    """Build a :class:`Video` from a decoded JSON response.

    Raises:
        ValueError: ``data`` is not the documented object (also when it is an error
            payload sent with a 2xx status); the message says why.
        TypeError, KeyError: a documented field is missing or of the wrong type.
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    err = data.get("error")
    # Decoded JSON: a nested object is a dict (a plain type check, not the Mapping ABC).
    if isinstance(err, dict) or ("id" not in data and error_message(data)):
        raise ValueError(f"the service answered with an error: {error_message(data)}")
    if data.keys() <= _KNOWN_FIELDS:  # the usual answer: nothing to keep aside
        extra: dict[str, Any] = {}
    else:
        extra = {k: v for k, v in data.items() if k not in _KNOWN_FIELDS}
    video = _video(data, extra)  # the registered hook, without dispatch or a copy
    task_id = video.id
    if not task_id:
        raise ValueError("the task id is empty")
    if not task_id.isascii():
        try:
            task_id.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (JSON "\ud800"): such an id can never be sent back.
            raise ValueError("the task id is not valid Unicode text") from None
    return video


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
