"""Sending API requests: session, auth, limits, exception mapping, retries, parsing.

This is the only module that talks to aiohttp for the API, and the only place where
aiohttp, asyncio-timeout and parsing exceptions become SDK exceptions
(:func:`_translate`), always chained with ``raise ... from``.

* The ``Authorization`` header is only ever sent to the base URL's origin: every URL is
  the base URL plus a path built here, and redirects are not followed.
* Every attempt holds one slot of the client's :class:`~._limiter.Limiter` while it is
  on the wire; status calls also pass the client's :class:`~._limiter.RateGate`.
* Log records (logger ``starvideos_async``) carry method, path, status, latency and
  attempt; never headers, bodies or the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn, TypeVar

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import _retry
from ._config import Timeout
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    ServerError,
    WrongEventLoopError,
)
from ._limiter import Limiter, RateGate
from ._serde import error_message, task_id_in, text_excerpt
from ._version import __version__

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Abandoned", "HTTPTransport"]

logger: Final = logging.getLogger("starvideos_async")

#: A JSON body larger than this is refused rather than read into memory.
DEFAULT_MAX_RESPONSE_BYTES: Final = 1024 * 1024
_BODY_KEPT: Final = 4096

T = TypeVar("T")

_STATUS_ERRORS: Final[Mapping[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
}


class Abandoned(Exception):
    """A request was not sent because its caller stopped waiting (see ``abandoned``)."""


class HTTPTransport:
    """Sends JSON requests to one API origin with one key, under one limiter."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: URL,
        timeout: Timeout,
        retry: _retry.RetryPolicy,
        limiter: Limiter,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = 100,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry
        self.limiter = limiter
        self.max_response_bytes = max_response_bytes
        self._base = str(base_url)
        # Paths are escaped here (``result_path``), so URLs are built from the parsed
        # base without parsing a string per request (a status call's URL is new to
        # yarl's parse cache each time when thousands of tasks are polled in turn).
        self._base_path = base_url.raw_path.rstrip("/")
        self._client_timeout = timeout.to_aiohttp()
        # URLs by path, the create path's and the status paths' (a task is polled again
        # and again; each new URL object would compute its host, port and netloc
        # afresh inside aiohttp). Bounded (see _URLS_KEPT): emptied when full, so a wait
        # over more tasks than it holds costs one dict insert per call.
        self._urls: dict[str, URL] = {}
        self._session = session
        self._owns_session = session is None
        self._connection_limit = connection_limit
        self._closed = False
        self._files: aiohttp.ClientSession | None = None
        #: The event loop of the first request: the sessions' connections belong to it.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Sent with every API request. On the client's own session they are all the
        #: session's defaults, key included, so most requests pass no headers at all
        #: (aiohttp merges per-request headers into the defaults one by one). That
        #: session only ever reaches the base URL; other hosts (video files) get a
        #: session of their own, :meth:`file_session`, which has no key to leak.
        plain = {
            "Accept": "application/json",
            "User-Agent": f"starvideos-async/{__version__} aiohttp/{aiohttp.__version__}",
        }
        auth = {"Authorization": f"Bearer {api_key}"}
        self._session_headers: Final = CIMultiDictProxy(CIMultiDict(plain, **auth))
        json_type = {"Content-Type": "application/json"}
        # Built once, as aiohttp's own type: it would convert a dict on every request.
        self._get_headers: Final = None if session is None else self._session_headers
        self._post_headers: Final = CIMultiDictProxy(
            CIMultiDict(json_type) if session is None else CIMultiDict(plain, **auth, **json_type)
        )

    def __repr__(self) -> str:
        return f"<HTTPTransport {self._base!r}>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def refuse_new_requests(self) -> None:
        """Closing starts: requests not yet on the wire fail with ClientClosedError."""
        self._closed = True

    def session(self) -> aiohttp.ClientSession:
        """The session for API requests, creating the client's own on first use."""
        if self._closed:
            raise ClientClosedError("this StarVideos client is closed")
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            session = self._session = aiohttp.ClientSession(
                connector=connector, headers=self._session_headers
            )
        elif session.closed:
            raise ClientClosedError("the aiohttp session given to the client is closed")
        return session

    def file_session(self) -> aiohttp.ClientSession:
        """The session for other hosts (video files): never the API key.

        The client's own API session sends the key with every request, so files are
        fetched on a second session without default headers. A caller-supplied session
        serves both (its defaults are the caller's business; the key is never one).
        """
        if not self._owns_session:
            return self.session()
        if self._closed:
            raise ClientClosedError("this StarVideos client is closed")
        files = self._files
        if files is None:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            files = self._files = aiohttp.ClientSession(connector=connector)
        return files

    async def aclose(self) -> None:
        """Close the client's own sessions (never a caller-supplied one)."""
        self._closed = True
        session, self._session = self._session, None
        files, self._files = self._files, None
        if self._owns_session:
            try:
                if session is not None:
                    await session.close()
            finally:
                if files is not None:
                    await files.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        parse: Callable[[object], T],
        body: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        max_retries: int | None = None,
        gate: RateGate | None = None,
        abandoned: Callable[[], bool] | None = None,
    ) -> T:
        """Send one API request, with retries per policy, and parse the JSON answer.

        Args:
            method: ``"GET"`` or ``"POST"``.
            path: The path below the base URL (already escaped).
            parse: Turns the decoded JSON into the result; its ``ValueError``,
                ``TypeError`` or ``KeyError`` become :class:`MalformedResponseError`.
            body: The JSON body (POST).
            task_id: The task concerned, for error messages.
            max_retries: Overrides the client's retry count for this call.
            gate: A rate gate each attempt passes before it is sent.
            abandoned: Asked right before each attempt is sent (holding its slot);
                ``True`` raises :class:`Abandoned` instead of sending.
        """
        # One coroutine for every attempt (a frame less on each resume than an
        # ``_attempt`` helper); the ``RequestInfo`` of errors is built only for them.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            await self._adopt_loop(loop)
        payload = None if body is None else _dumps(body).encode()
        urls = self._urls
        url = urls.get(path)
        if url is None:
            url = self.base_url.with_path(self._base_path + path, encoded=True)
            if len(path) <= _URL_KEPT_UP_TO:
                if len(urls) >= _URLS_KEPT:
                    urls.clear()
                urls[path] = url
        attempt = 1
        while True:
            try:
                async with self.limiter:
                    session = self._session
                    if session is None or self._closed or session.closed:
                        session = self.session()  # (after the wait: the client may have closed)
                    # The gate is passed while holding the slot, so the request leaves
                    # at once; but never *wait* for it holding the slot: creates would
                    # queue behind a slow status rate.
                    if abandoned is not None and abandoned():
                        raise Abandoned(f"{method} {path} was not sent: its caller is gone")
                    if gate is not None and gate.try_pass():
                        raw = None
                    else:
                        started = time.perf_counter()
                        received: list[bytes] = []  # the body so far, also when cut
                        status = 0
                        try:
                            response = await session.request(
                                method,
                                url,
                                data=payload,
                                # (not bound to a local: frame-capturing error reporters
                                # would record the key with every exception raised here)
                                headers=self._get_headers
                                if payload is None
                                else self._post_headers,
                                timeout=self._client_timeout,
                                allow_redirects=False,
                            )
                            try:
                                status = response.status
                                raw = await self._read(
                                    response, RequestInfo(method, path, task_id), received
                                )
                                response_headers = response.headers
                            finally:
                                response.release()
                        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                            if task_id is None and 200 <= status < 300:
                                # a create answer cut short may still name its task
                                text = b"".join(received).decode("utf-8", "replace")
                                task_id = task_id_in(text)
                            _translate(exc, RequestInfo(method, path, task_id))
                        except RuntimeError as exc:
                            if not session.closed:
                                raise
                            # closed by aclose() while this request was on its way out
                            raise ClientClosedError(
                                "this StarVideos client is closed"
                            ) from _scrubbed(exc)
                if raw is None:  # refused by the gate: queue for its next pass
                    await gate.ready()  # type: ignore[union-attr]
                    continue
                logger.debug(
                    "%s %s -> %d in %.1f ms (attempt %d)",
                    method,
                    path,
                    status,
                    (time.perf_counter() - started) * 1000,
                    attempt,
                )
                if 200 <= status < 300:
                    return _parse_success(raw, parse, method, path, task_id)
                raise _status_error(
                    status, raw, response_headers, RequestInfo(method, path, task_id)
                )
            except (APIConnectionError, APIStatusError, MalformedResponseError) as exc:
                retries = self.retry.max_retries if max_retries is None else max_retries
                if attempt > retries or not _retry.should_retry(exc, method=method):
                    raise
                hint = _retry.server_hint(exc)
                delay = self.retry.backoff(attempt, hint)
                if isinstance(exc, RateLimitError) and gate is not None:
                    gate.pause(delay)
                logger.debug(
                    "%s %s failed (%s), retry %d/%d in %.2fs",
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                    retries,
                    delay,
                )
                await _retry.sleep(delay)
                attempt += 1

    async def _adopt_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to ``loop`` on the first request; refuse any other loop after that.

        When the first loop is gone (an ``asyncio.run()`` ended), its sessions can only
        be closed, so they are, here, to leave no unclosed session behind.
        """
        first = self._loop
        if first is None:
            self._loop = loop
            return
        if first.is_closed() and self._owns_session:
            stale = [s for s in (self._session, self._files) if s is not None]
            self._session = self._files = None
            for session in stale:
                with contextlib.suppress(Exception):  # its loop is gone: close what is left
                    await session.close()
        raise WrongEventLoopError(
            "this StarVideos client was first used on another event loop "
            f"({'now closed' if first.is_closed() else 'still running'}); each "
            "asyncio.run() starts a new loop. Create the client inside the coroutine "
            "that uses it (async with AsyncStarVideos() as client: ...), once per loop"
        )

    async def _read(
        self, response: aiohttp.ClientResponse, info: RequestInfo, received: list[bytes]
    ) -> bytes:
        """The body, into ``received`` as it arrives (what came is kept if it breaks)."""
        if response.status >= 300:
            # An error page only feeds the message: keep its start, never refuse it
            # (a huge 502 page must stay a retryable ServerError).
            return await _read_prefix(response, _BODY_KEPT)
        cap = self.max_response_bytes
        length = _decoded_length(response)
        if length is not None and length > cap:
            response.close()
            raise MalformedResponseError(
                f"response body of {length} bytes exceeds the {cap}-byte limit", request=info
            )
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > cap:
                response.close()
                raise MalformedResponseError(
                    f"response body exceeds the {cap}-byte limit", request=info
                )
            received.append(chunk)
        return b"".join(received)


#: How many URLs :attr:`HTTPTransport._urls` holds: enough for every task of a batch of
#: thousands polled in turn. About 550 bytes each for the usual id, key included; paths
#: longer than :data:`_URL_KEPT_UP_TO` (a long or escaped id: up to 6 KB) are not kept,
#: so the whole stays under about 8 MB.
_URLS_KEPT: Final = 8192
_URL_KEPT_UP_TO: Final = 160


def _decoded_length(response: aiohttp.ClientResponse) -> int | None:
    """The body's size as read, when known: a compressed one is counted as it streams.

    aiohttp decompresses on the fly, so a ``Content-Length`` of a few KB can hide
    megabytes of JSON: it only tells the size of a body sent as it is.
    """
    length = response.content_length
    if length is not None and response.headers.get("Content-Encoding", "identity") != "identity":
        return None
    return length


async def _read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _translate(exc: BaseException, info: RequestInfo) -> NoReturn:
    """Turn an aiohttp or timeout exception into the SDK's, chained to it (scrubbed)."""
    detail = str(exc) or type(exc).__name__
    cause = _scrubbed(exc)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        raise APITimeoutError(
            f"timed out connecting: {detail}", request=info, request_sent=False
        ) from cause
    if isinstance(exc, asyncio.TimeoutError):  # sock_read and total timeouts too
        raise APITimeoutError(
            f"timed out waiting for the response: {detail}", request=info
        ) from cause
    if isinstance(exc, aiohttp.ClientConnectorError):
        raise APIConnectionError(
            f"could not connect: {detail}", request=info, request_sent=False
        ) from cause
    raise APIConnectionError(f"connection failed: {detail}", request=info) from cause


def _scrubbed(exc: BaseException) -> BaseException:
    """``exc`` and the exceptions chained to it, without what can hold the API key.

    aiohttp's request frames keep the merged request headers (``Authorization``
    included) as locals, and error reporters record the locals of every frame of a
    traceback (Sentry by default, ``TracebackException(capture_locals=True)``). So the
    tracebacks of the foreign exceptions go, and so do the request headers some aiohttp
    errors carry (``request_info``); their types and messages stay.
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


#: Built once: ``json.dumps`` with any argument builds an encoder per call.
_dumps: Final = json.JSONEncoder(ensure_ascii=False).encode


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except RecursionError as exc:  # nested deeper than the decoder's stack
        raise ValueError("JSON nested too deeply") from exc


#: Built once; ``raw_decode`` parses without ``json.loads``'s layers.
_raw_decode: Final = json.JSONDecoder().raw_decode


def _loads(raw: bytes) -> Any:
    """``json.loads(raw)``: the same result or error, at half the cost for the usual body.

    ``json.loads`` on bytes sniffs the encoding, decodes, strips whitespace and checks
    for trailing data through three more calls. The usual answer is plain UTF-8 JSON
    with nothing around it: decoded and parsed directly, and when it parses to its
    last character that is exactly what ``json.loads`` returns (an encoding it would
    sniff, a BOM or surrounding whitespace cannot parse that way). Anything else goes
    through ``json.loads`` itself, for its result or its exception.
    """
    try:
        text = raw.decode()
        data, end = _raw_decode(text)
    except ValueError:  # (JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return json.loads(raw)
    return data if end == len(text) else json.loads(raw)


def _parse_success(
    raw: bytes, parse: Callable[[object], T], method: str, path: str, task_id: str | None
) -> T:
    text = raw[:_BODY_KEPT].decode("utf-8", "replace")
    error: Exception
    try:
        data = _loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        what = "an empty body" if not raw.strip() else f"not JSON: {text_excerpt(text)!r}"
        reason, error = f"expected a JSON object, got {what}", exc
    else:
        try:
            return parse(data)
        except (ValueError, TypeError, KeyError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            reason, error = f"unexpected response: {detail}", exc
    if task_id is None:  # a create's answer: the task may exist, so keep its id
        task_id = task_id_in(raw.decode("utf-8", "replace"))
    raise MalformedResponseError(
        reason, request=RequestInfo(method, path, task_id), body=text
    ) from error


def _status_error(
    status: int, raw: bytes, headers: Mapping[str, str], info: RequestInfo
) -> APIStatusError:
    text = raw[:_BODY_KEPT].decode("utf-8", "replace")
    body: object = text
    message = None
    if raw.strip():
        try:
            body = _decode(raw)
        except ValueError:
            message = text_excerpt(text)
        else:
            message = error_message(body) or text_excerpt(text)
    if not message:
        message = "no error details in the response"
    message = f"HTTP {status}: {message}"
    if status == 429:
        return RateLimitError(
            message,
            request=info,
            body=body,
            headers=headers,
            retry_after=_retry.parse_retry_after(headers),
        )
    if 300 <= status < 400:
        message += " (redirects are not followed, so the API key never leaves the API origin)"
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIStatusError)
    return cls(message, request=info, status_code=status, body=body, headers=headers)
