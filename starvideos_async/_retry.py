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

Every caller retries through :func:`retrying`: API requests, status calls of custom
fetchers, and downloads. Stamina (``retry_context``) was considered: it would leave us
the rules above (per method, the server's hint, the shared pause on 429, a download's
count of consecutive failures that resets when data arrives) to write in hooks anyway,
and its instrumentation and test mode are process-wide (by default it logs every
scheduled retry at WARNING through the user's logging), which a library should not
impose on the application that imports it.

For tests, :func:`instant_retries` turns the waiting off and records the waits.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

import anyio
import anyio.lowlevel
import attrs

from ._errors import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    MalformedResponseError,
    RateLimitError,
    StarVideosError,
)

__all__ = [
    "RetryPolicy",
    "instant_retries",
    "parse_retry_after",
    "retrying",
    "server_hint",
    "should_retry",
]

logger: Final = logging.getLogger("starvideos_async")
T = TypeVar("T")

_RETRY_STATUS = frozenset({408, 429})


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(attribute.name, value, "a non-negative number")


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


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    method: str,
    what: object,
    retries: int | None = None,
    on_rate_limit: Callable[[float], None] | None = None,
    progress: Callable[[], int] | None = None,
    max_attempts: int | None = None,
    foreign_errors: bool = False,
) -> T:
    """Call ``attempt()`` until it returns, retrying what :func:`should_retry` allows.

    THE retry loop of the SDK.

    Args:
        attempt: One try; its SDK errors are retried by the rules above.
        policy: The waits and the number of retries.
        method: ``"GET"`` or ``"POST"``: which rules apply.
        what: Names the request in log records (formatted with ``str()`` only when logged).
        retries: Overrides ``policy.max_retries``.
        on_rate_limit: Called with the wait after a 429 (to pause other calls too).
        progress: Returns a count that grows when an attempt made progress (bytes
            received): the failures are then counted afresh, from 1.
        max_attempts: Attempts at the most, whatever the progress.
        foreign_errors: Retry any other ``Exception`` too (a custom status fetcher's
            own trouble, a database or a cache, is taken for transient).
    """
    allowed = policy.max_retries if retries is None else retries
    failures = attempts = 0
    while True:
        before = progress() if progress is not None else 0
        attempts += 1
        try:
            return await attempt()
        except Exception as exc:
            made_progress = progress is not None and progress() > before
            failures = 1 if made_progress else failures + 1
            retryable = (
                should_retry(exc, method=method)
                if isinstance(exc, StarVideosError)
                else foreign_errors
            )
            if (
                not retryable
                or failures > allowed
                or (max_attempts is not None and attempts >= max_attempts)
            ):
                raise
            delay = policy.backoff(failures, server_hint(exc))
            if on_rate_limit is not None and isinstance(exc, RateLimitError) and _instant is None:
                on_rate_limit(delay)  # (a pause is a wait too: none while instant)
            logger.debug(
                "%s failed (%s), retry %d/%d in %.2fs",
                what,
                type(exc).__name__,
                failures,
                allowed,
                delay,
            )
            await _wait(delay)


#: While :func:`instant_retries` is on: the waits retries would have made.
_instant: list[float] | None = None


async def _wait(seconds: float) -> None:
    if _instant is not None:
        _instant.append(seconds)
        await anyio.lowlevel.checkpoint()
    else:
        await anyio.sleep(seconds)


@contextlib.contextmanager
def instant_retries() -> Iterator[list[float]]:
    """Retry without waiting, for tests; yields the list of waits that were skipped.

    A 429 does not pause the other status calls either. Process-wide while the
    ``with`` block runs (every client, every task).
    """
    global _instant
    previous, _instant = _instant, []
    try:
        yield _instant
    finally:
        _instant = previous
