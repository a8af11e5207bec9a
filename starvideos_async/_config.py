"""Client settings: where the API is, which key, and how long to wait.

Resolution order for each setting: the explicit argument, then the environment
(``STARVIDEOS_API_KEY``, ``STARVIDEOS_BASE_URL``), then the documented default.
"""

from __future__ import annotations

import ipaddress
import math
import os
from typing import Any, Final

import aiohttp
import attrs
from yarl import URL

from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "Timeout",
    "check_count",
    "check_rate",
    "check_seconds",
    "resolve_api_key",
    "resolve_base_url",
]

#: The documented base URL; every API path is appended to it.
DEFAULT_BASE_URL: Final = "https://zcbservice.aizfw.cn/kyyReactApiServer"
API_KEY_ENV: Final = "STARVIDEOS_API_KEY"
BASE_URL_ENV: Final = "STARVIDEOS_BASE_URL"


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(
            f"timeout.{attribute.name}", value, "a positive number of seconds or None"
        )


@attrs.frozen
class Timeout:
    """How long one HTTP request may take, in seconds (``None``: no limit).

    Attributes:
        total: The whole request, from connecting to the last byte of the body.
        connect: Getting a connection (from the pool, or a new one).
        read: Between two reads from the socket; a stalled response fails after it.
    """

    total: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    connect: float | None = attrs.field(default=None, validator=_positive_or_none)
    read: float | None = attrs.field(default=None, validator=_positive_or_none)

    @classmethod
    def coerce(cls, value: float | Timeout | None) -> Timeout:
        """Accept a plain number (a total), a :class:`Timeout`, or ``None`` (no limit)."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None)
        return cls(total=value)

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        """The equivalent :class:`aiohttp.ClientTimeout`."""
        return aiohttp.ClientTimeout(total=self.total, connect=self.connect, sock_read=self.read)


def resolve_api_key(api_key: str | None) -> str:
    """The explicit key, else ``$STARVIDEOS_API_KEY``; a clear error when neither exists."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key is None or not key.strip():
        raise ConfigurationError(
            "api_key", None, f"pass api_key=... or set the {API_KEY_ENV} environment variable"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        # Never echo the key itself, not even a bad one (nor keep it in a local: error
        # reporters record the locals of every frame of a traceback).
        key = api_key = None
        raise ConfigurationError("api_key", "<hidden>", "no whitespace or control characters")
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None, *, allow_insecure_http: bool = False) -> URL:
    """The explicit URL, else ``$STARVIDEOS_BASE_URL``, else :data:`DEFAULT_BASE_URL`.

    Plain ``http://`` would send the key in clear text; it is refused unless the host
    is a loopback address or ``allow_insecure_http`` is set.
    """
    raw = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    try:
        url = URL(raw)
    except (ValueError, TypeError):
        raise ConfigurationError("base_url", raw, "an absolute http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ConfigurationError("base_url", raw, "an absolute http(s) URL without query")
    if url.scheme == "http" and not allow_insecure_http and not _is_loopback(url.host):
        raise ConfigurationError(
            "base_url",
            raw,
            "plain http would send the API key in clear text; use https, "
            "or pass allow_insecure_http=True if you really mean it",
        )
    return url.with_path(url.path.rstrip("/"))


def check_count(name: str, value: object, minimum: int) -> int:
    """A whole-number setting (``max_concurrency``...): an ``int`` of ``minimum`` or more."""
    if type(value) is not int or value < minimum:
        raise ConfigurationError(name, value, f"an int >= {minimum}")
    return value


def check_rate(name: str, value: object) -> float | None:
    """A rate setting (``max_status_rate``): a positive number, or ``None`` for no cap."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
    ):
        raise ConfigurationError(name, value, "a positive number or None")
    return value


def check_positive(name: str, value: object, what: str = "a positive number of seconds") -> float:
    """A positive, finite number (``interval``, ``call_cost``...); refuses NaN and bools."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(name, value, what)
    return value


def check_seconds(name: str, value: object, minimum: float) -> float:
    """A duration setting (a lease, a timeout): a number of seconds of ``minimum`` or more."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not minimum <= value < math.inf
    ):
        raise ConfigurationError(name, value, f"a number of seconds >= {minimum}")
    return value
