"""The requests of a batch as the run handles them: each with its key and stored body.

A request's key is its own :attr:`VideoRequest.key`, else its position plus a hash of
the body it is created with, so the same input gives the same keys in every run; the
body is stored in (and compared against) the journal in one canonical spelling.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import attrs

from starvideos_async._errors import InvalidRequestError
from starvideos_async._requests import VideoRequest, check_requests
from starvideos_async._serde import request_body

from ._journal import JournalEntry, canonical_json

__all__ = ["BatchItem", "batch_items", "request_keys"]


@attrs.define(eq=False)
class BatchItem:
    """One request of a batch, and (once the run read it) its journal entry."""

    key: str
    position: int
    request: VideoRequest
    body: str  # canonical JSON of the create body
    entry: JournalEntry | None = None


def batch_items(requests: Iterable[VideoRequest]) -> list[BatchItem]:
    """The requests with their keys and bodies; refuses duplicate or empty keys.

    Raises:
        InvalidRequestError: Two requests share a key, or a key is empty.
        TypeError: An item is not a :class:`VideoRequest`.
    """
    items: list[BatchItem] = []
    seen: set[str] = set()
    for position, request in enumerate(check_requests(requests)):
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
        items.append(BatchItem(key, position, request, body))
    return items


def request_keys(requests: Iterable[VideoRequest]) -> list[str]:
    """The batch key of each request, in order (see the module docs).

    Raises:
        InvalidRequestError: Two requests share a key, or a key is empty.
        TypeError: An item is not a :class:`VideoRequest`.
    """
    return [item.key for item in batch_items(requests)]
