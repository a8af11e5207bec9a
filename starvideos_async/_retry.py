"""When a failed request is tried again, and how long to wait first.

The rule that matters most: **a create (POST) is re-sent only when the service surely
did not create the task**, that is when the connection could not be established (the
request never left) or the service answered 429 (it refused before doing anything).
After a read timeout, a reset after sending, or a 5xx, the task may exist: sending the
create again could pay twice, so the error surfaces instead and carries
``request_sent=True``.

Status queries (GET) are idempotent and are retried on connection errors, timeouts,
408, 429, 5xx, and a malformed 2xx answer (cut JSON, an HTML page, an error payload,
wrong types): one glitch must not end a wait. Waits grow exponentially with full
jitter, capped; a ``Retry-After`` (or ``retry-after-ms``) from the service replaces the
computed wait, capped at :attr:`RetryPolicy.max_retry_after`.

Stamina was considered; the policy above needs per-method rules, full jitter, the
server's hint and a shared pause for rate limits, which left little for it to do.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import Any

import anyio
import attrs

from ._errors import (
    APIConnectionError,
    APIStatusError,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitError,
)

__all__ = ["RetryPolicy", "parse_retry_after", "server_hint", "should_retry", "sleep"]

_RETRY_STATUS = frozenset({408, 429})


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidRequestError(attribute.name, value, "a non-negative number")


@attrs.frozen
class RetryPolicy:
    """How failed requests are retried.

    Attributes:
        max_retries: Retries after the first attempt (0: never retry).
        initial_backoff: The first wait's upper bound, seconds.
        max_backoff: No computed wait exceeds this, seconds.
        max_retry_after: The longest server-requested wait honoured, seconds.
    """

    max_retries: int = attrs.field(default=2, validator=_non_negative)
    initial_backoff: float = attrs.field(default=0.5, validator=_non_negative)
    max_backoff: float = attrs.field(default=8.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        The server's hint wins when there is one; otherwise full jitter:
        uniform in ``[0, min(max_backoff, initial_backoff * 2 ** (retry - 1))]``.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** min(retry - 1, 30))
        return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not cryptography


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, then ``Retry-After`` (seconds or HTTP date).

    Returns ``None`` when there is no usable hint; never a negative, infinite or
    NaN number.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return max(delay, 0.0) if math.isfinite(delay) else None


def server_hint(error: BaseException) -> float | None:
    """The server's wait hint: ``Retry-After`` counts on 429 and on 408/5xx alike."""
    if isinstance(error, RateLimitError):
        return error.retry_after
    if isinstance(error, APIStatusError):
        return parse_retry_after(error.headers)
    return None


def should_retry(error: Exception, *, method: str) -> bool:
    """Whether ``error`` from a ``method`` request may be retried (see module docs)."""
    if method != "GET":
        if isinstance(error, APIConnectionError):
            return not error.request_sent
        return isinstance(error, RateLimitError)
    if isinstance(error, (APIConnectionError, MalformedResponseError)):
        return True
    if isinstance(error, APIStatusError):
        return error.status_code in _RETRY_STATUS or error.status_code >= 500
    return False


async def sleep(seconds: float) -> None:
    """The one place where retries wait; tests replace it to skip the waiting."""
    await anyio.sleep(seconds)
