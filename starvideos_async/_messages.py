"""Text for error messages: a human message out of an error body, an excerpt of one.

:func:`error_message` reads the error shapes the service may answer with (JSON);
:func:`text_excerpt` makes one line of any other body (an HTML page, a proxy's text).
Both serve :func:`~._errors.error_from_response` and the parsing of answers
(:mod:`._serde`); :data:`BODY_KEPT` bounds how much of a body they ever see.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

__all__ = ["BODY_KEPT", "error_message", "text_excerpt"]

#: How much of an error body is kept (and shown).
BODY_KEPT: Final = 4096


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


_TAG: Final = re.compile(r"<[^>]+>")
_SPACE: Final = re.compile(r"\s+")
_TITLE: Final = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def text_excerpt(text: str, limit: int = 200) -> str:
    """A short one-line excerpt of a non-JSON body (an HTML page's title, tags dropped)."""
    title = _TITLE.search(text)
    if title and title.group(1).strip():
        text = title.group(1)
    flat = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
