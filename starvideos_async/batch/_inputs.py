"""Reading batch inputs: JSON Lines or CSV files into validated :class:`VideoRequest` s.

JSON Lines: one object a line with the create fields (``prompt``, ``duration``,
``ratio``, ``model``, ``images``; for ``starvideos_o3`` ``reference_images``,
``first_image``, ``last_image``, ``reference_videos``) and an optional ``key``; lists are
JSON arrays. Blank lines and lines starting with ``#`` are skipped.

CSV: a header row naming the same columns; a list cell (``images``,
``reference_images``, ``reference_videos``) holds its URLs separated by ``|`` (or use
``image1``/``image2`` columns for v3's images); empty cells take the model's defaults.

Every problem is reported as :class:`InputError` with the file's line number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starvideos_async._errors import InputError, InvalidRequestError
from starvideos_async._requests import VideoRequest

__all__ = ["InputError", "load_requests", "parse_requests"]

#: The list fields; a CSV cell (or a JSON string) holds their URLs separated by ``|``.
_LISTS = ("images", "reference_images", "reference_videos")
_FIELDS = frozenset(
    {
        "prompt",
        "duration",
        "ratio",
        "model",
        "key",
        "image1",
        "image2",
        "first_image",
        "last_image",
    }
) | frozenset(_LISTS)


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


def _request(row: Mapping[str, Any], source: str, line: int) -> VideoRequest:
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise InputError(source, line, f"unknown field(s): {', '.join(unknown)}")
    fields: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
    for name in _LISTS:
        if name in fields:
            fields[name] = _split(fields[name])
    images = fields.pop("images", None)
    extra_images = [fields.pop(name) for name in ("image1", "image2") if name in fields]
    if extra_images:
        images = [*(images or []), *extra_images]
    if isinstance(fields.get("duration"), str):
        text = fields["duration"].strip()
        fields["duration"] = int(text) if text.isdigit() else text
    if "prompt" not in fields:
        raise InputError(source, line, "missing prompt")
    try:
        return VideoRequest(images=images, **fields)
    except InvalidRequestError as exc:
        raise InputError(source, line, str(exc)) from exc
    except TypeError as exc:
        raise InputError(source, line, f"bad row: {exc}") from exc


def parse_requests(
    text: str, *, source: str = "<input>", fmt: str = "jsonl"
) -> list[VideoRequest]:
    """Parse ``text`` in ``fmt`` (``"jsonl"`` or ``"csv"``) into validated requests."""
    requests: list[VideoRequest] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            raise InputError(source, 1, "empty CSV file (a header row is required)")
        for row in reader:
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            if None in row:
                raise InputError(source, reader.line_num, "more cells than header columns")
            requests.append(_request(row, source, reader.line_num))
        return requests
    if fmt != "jsonl":
        raise ValueError(f"unknown input format {fmt!r}")
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            row = json.loads(stripped)
        except ValueError as exc:
            raise InputError(source, number, f"not valid JSON: {exc.args[0]}") from exc
        if not isinstance(row, dict):
            raise InputError(source, number, "each line must be a JSON object")
        requests.append(_request(row, source, number))
    return requests


def load_requests(path: str | Path) -> list[VideoRequest]:
    """Read a ``.jsonl`` or ``.csv`` file (by its suffix) into validated requests.

    Synchronous: call it before the event loop starts, or through a thread.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    fmt = "csv" if suffix == ".csv" else "jsonl"
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise InputError(str(file), 0, "expected a .jsonl or .csv file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(str(file), 0, f"cannot read: {exc.strerror or exc}") from exc
    return parse_requests(text, source=str(file), fmt=fmt)
