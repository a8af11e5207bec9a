"""Keeping the API key out of exceptions: aiohttp's, and what passes its frames.

aiohttp's request frames keep the merged request headers (``Authorization`` included) as
locals, and error reporters record the locals of every frame of a traceback (Sentry by
default, ``TracebackException(capture_locals=True)``). :func:`~._http.translate_errors`
chains the SDK's errors to :func:`scrubbed` causes, and re-raises what it does not
translate scrubbed when :func:`through_aiohttp` says it came out of those frames.
"""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["scrubbed", "through_aiohttp"]


def through_aiohttp(exc: BaseException) -> bool:
    """Whether ``exc``'s traceback passes aiohttp's frames (which hold the headers)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("aiohttp."):
            return True
        tb = tb.tb_next
    return False


def scrubbed(exc: BaseException) -> BaseException:
    """``exc`` and the exceptions chained to it, without what can hold the API key.

    Their tracebacks go, and so do the request headers some aiohttp errors carry
    (``request_info``); their types and messages stay.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = None
        info = getattr(error, "request_info", None)
        if isinstance(info, aiohttp.RequestInfo):
            error.request_info = aiohttp.RequestInfo(  # type: ignore[attr-defined]
                info.url, info.method, CIMultiDictProxy(CIMultiDict()), info.real_url
            )
        pending += [e for e in (error.__cause__, error.__context__) if e is not None]
    return exc
