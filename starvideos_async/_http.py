"""Sending API requests: sessions, paths, one attempt, retries, exception mapping, parsing.

A request goes: :meth:`HTTPTransport.request` -> :func:`~._retry.retrying` ->
:meth:`HTTPTransport._attempt` (a limiter slot, the rate gate for status calls) ->
:meth:`HTTPTransport.send_once` (the bytes on the wire) -> the status -> exception table
(:func:`~._errors.error_from_response`) or the parser. aiohttp and timeout exceptions
become SDK exceptions in one place, :class:`translate_errors`, chained with
``raise ... from`` to a cause scrubbed of anything that could hold the key.

* The ``Authorization`` header is only ever sent to the base URL's origin: every URL is
  the base URL plus a path built here, and redirects are not followed. Other hosts
  (video files) are fetched on a session of their own, without the key.
* Log records (logger ``starvideos_async``) carry method, path, status, latency and
  attempt; never headers, bodies or the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, NoReturn, TypeVar
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import _retry
from ._config import Timeout
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    InvalidRequestError,
    MalformedResponseError,
    RequestInfo,
    WrongEventLoopError,
    error_from_response,
)
from ._limits import Limiter, RateGate
from ._messages import BODY_KEPT
from ._scrub import scrubbed, through_aiohttp
from ._serde import parse_answer, with_named_task
from ._version import __version__

__all__ = [
    "CREATE_PATH",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Abandoned",
    "HTTPTransport",
    "result_path",
    "translate_errors",
]

logger: Final = logging.getLogger("starvideos_async")

#: Where tasks are created, below the base URL.
CREATE_PATH: Final = "/v1/starvideos/videos"
_RESULT_PATH: Final = "/v1/result/"
#: One encoder for every request body (``json.dumps`` with options makes one per call).
_encode_json: Final = json.JSONEncoder(ensure_ascii=False).encode
#: A JSON body larger than this is refused rather than read into memory.
DEFAULT_MAX_RESPONSE_BYTES: Final = 1024 * 1024
T = TypeVar("T")


def result_path(task_id: str) -> str:
    """The status path of ``task_id``, escaped; rejects ids that cannot be one."""
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > 512:
        raise InvalidRequestError("task_id", task_id, "a non-empty task id string")
    if task_id in (".", ".."):  # a path segment of its own: would query another URL
        raise InvalidRequestError("task_id", task_id, "a task id, not a path segment")
    try:
        return _RESULT_PATH + quote(task_id, safe="")
    except UnicodeEncodeError:
        raise InvalidRequestError("task_id", task_id, "valid Unicode text") from None


class Abandoned(Exception):
    """A request was not sent because its caller stopped waiting (see ``abandoned``)."""


@attrs.define  # (made for every request, read once: a frozen class costs twice as much)
class Answer:
    """An HTTP answer, read: status, headers and (the start of) the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


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
        self._session = session
        self._owns_session = session is None
        self._files: aiohttp.ClientSession | None = None
        self._connection_limit = connection_limit
        self._closed = False
        #: The event loop of the first request: the sessions' connections belong to it.
        self._loop: asyncio.AbstractEventLoop | None = None
        # The key goes in the API session's default headers (or, on a caller's session,
        # in each request's): never bound to a local where a request is sent, since
        # error reporters record the locals of every frame of a traceback.
        plain = {
            "Accept": "application/json",
            "User-Agent": f"starvideos-async/{__version__} aiohttp/{aiohttp.__version__}",
        }
        self._default_headers: Final = CIMultiDictProxy(
            CIMultiDict(plain, Authorization=f"Bearer {api_key}")
        )
        # What each request adds to its session's defaults: the client's own session has
        # the key as a default; a caller's session gets it with each request.
        own = {} if session is None else self._default_headers
        self._get_headers: Final = CIMultiDictProxy(CIMultiDict(own))
        self._post_headers: Final = CIMultiDictProxy(
            CIMultiDict(own, **{"Content-Type": "application/json"})
        )
        self._client_timeout: Final = timeout.to_aiohttp()

    def __repr__(self) -> str:
        return f"<HTTPTransport {str(self.base_url)!r}>"

    # -- sessions -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` (or :meth:`refuse_new_requests`) was called."""
        return self._closed

    def refuse_new_requests(self) -> None:
        """Closing starts: requests not yet on the wire fail with ClientClosedError."""
        self._closed = True

    def api_session(self) -> aiohttp.ClientSession:
        """The session for API requests, creating the client's own on first use."""
        if self._closed:
            raise ClientClosedError("this StarVideos client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit),
                headers=self._default_headers,
            )
        elif self._session.closed:
            raise ClientClosedError("the aiohttp session given to the client is closed")
        return self._session

    def file_session(self) -> aiohttp.ClientSession:
        """The session for other hosts (video files): never the API key.

        A caller-supplied session serves both (its defaults are the caller's business;
        the key is never one of them).
        """
        if not self._owns_session:
            return self.api_session()
        if self._closed:
            raise ClientClosedError("this StarVideos client is closed")
        if self._files is None:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            self._files = aiohttp.ClientSession(connector=connector)
        return self._files

    async def aclose(self) -> None:
        """Close the client's own sessions (never a caller-supplied one)."""
        self._closed = True
        sessions = [self._session, self._files] if self._owns_session else []
        self._session = self._files = None
        for session in sessions:
            if session is not None:
                await session.close()

    async def refuse_other_loop(self, loop: asyncio.AbstractEventLoop) -> NoReturn:
        """Raise :class:`WrongEventLoopError`: the client runs on another loop.

        When its own loop is gone (an ``asyncio.run()`` ended), its sessions can only be
        closed, so they are, to leave no unclosed session behind.
        """
        assert self._loop is not None  # noqa: S101 - bound by the first request
        if self._loop.is_closed() and self._owns_session:
            sessions, self._session, self._files = (self._session, self._files), None, None
            for session in sessions:
                if session is not None:
                    with contextlib.suppress(Exception):  # its loop is gone: best effort
                        await session.close()
        raise WrongEventLoopError(
            "this StarVideos client was first used on another event loop "
            f"({'now closed' if self._loop.is_closed() else 'still running'}); each "
            "asyncio.run() starts a new loop. Create the client inside the coroutine "
            "that uses it (async with AsyncStarVideos() as client: ...), once per loop"
        )

    # -- a request --------------------------------------------------------------------------

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
        """Send one API request, with retries per policy, and parse its JSON answer.

        Args:
            method: ``"GET"`` or ``"POST"``.
            path: The path below the base URL (already escaped).
            parse: Turns the decoded JSON into the result; its ``ValueError``,
                ``TypeError`` or ``KeyError`` become :class:`MalformedResponseError`.
            body: The JSON body (POST).
            task_id: The task concerned, for error messages.
            max_retries: Overrides the client's retry count for this call.
            gate: A rate gate each attempt passes right before it is sent (status
                calls); a 429 pauses it.
            abandoned: Asked right before each attempt is sent; ``True`` raises
                :class:`Abandoned` instead of sending.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop  # the sessions' connections belong to it
        elif loop is not self._loop:
            await self.refuse_other_loop(loop)
        info = RequestInfo(method, path, task_id)
        payload = None if body is None else _encode_json(body).encode()
        return await _retry.retrying(
            functools.partial(self._attempt, info, payload, parse, gate, abandoned),
            policy=self.retry,
            method=method,
            what=info,
            retries=max_retries,
            on_rate_limit=gate.pause if gate is not None else None,
        )

    async def _attempt(
        self,
        info: RequestInfo,
        payload: bytes | None,
        parse: Callable[[object], T],
        gate: RateGate | None,
        abandoned: Callable[[], bool] | None,
    ) -> T:
        """One attempt: a limiter slot, the gate, the exchange, the status, the parse."""
        while True:
            if gate is not None and gate.delay() > 0:
                # No slot taken (and given back) for a pass that is surely not there yet:
                # with a shared limiter, each is a round trip to Redis.
                await gate.ready()
            async with self.limiter:
                # Checked holding the slot, right before sending: the client may have
                # closed, or the caller left, while this attempt queued.
                session = self.api_session()
                if abandoned is not None and abandoned():
                    raise Abandoned(f"{info} was not sent: its caller is gone")
                # The gate is passed holding the slot, so the call leaves at once and
                # calls cannot bunch up behind busy slots; but never *wait* for the gate
                # holding the slot (creates would queue behind a slow status rate). A cap
                # shared with other processes confirms the pass (one async step).
                if gate is None or (gate.try_pass() and (not gate.shared or await gate.confirm())):
                    answer = await self.send_once(session, info, payload)
                    break
            await gate.ready()
        if answer.status >= 300:
            raise error_from_response(
                answer.status,
                answer.body,
                answer.headers,
                info,
                retry_after=_retry.parse_retry_after(answer.headers),
            )
        return parse_answer(answer.body, parse, info)

    async def send_once(
        self, session: aiohttp.ClientSession, info: RequestInfo, payload: bytes | None
    ) -> Answer:
        """Put one request on the wire and read its answer (any status)."""
        url = self.base_url.with_path(self.base_url.raw_path.rstrip("/") + info.path, encoded=True)
        received: list[bytes] = []  # a 2xx body so far, kept when the answer breaks off
        started = time.perf_counter()
        with translate_errors(info, session, received):
            response = await session.request(
                info.method,
                url,
                data=payload,
                headers=self._get_headers if payload is None else self._post_headers,
                timeout=self._client_timeout,
                allow_redirects=False,
            )
            try:
                if response.status < 300:
                    await self._read_body(response, info, received)
                    body = b"".join(received)
                else:  # an error page only feeds the message: keep its start
                    body = await _read_start(response, BODY_KEPT)
            finally:
                response.release()
        if logger.isEnabledFor(logging.DEBUG):
            elapsed = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s %s -> %d in %.1f ms", info.method, info.path, response.status, elapsed
            )
        return Answer(response.status, response.headers, body)

    async def _read_body(
        self, response: aiohttp.ClientResponse, info: RequestInfo, received: list[bytes]
    ) -> None:
        """Read a 2xx body into ``received``, refusing one over the size limit.

        The body is counted as it streams, announced ``Content-Length`` or not: aiohttp
        decompresses on the fly, and a create's answer too long to keep may have named
        its task already (the error then carries that id: the task exists).
        """
        cap = self.max_response_bytes
        size = 0
        while chunk := await response.content.readany():
            size += len(chunk)
            received.append(chunk)
            if size > cap:
                response.close()
                raise MalformedResponseError(
                    f"response body exceeds the {cap}-byte limit",
                    request=with_named_task(info, b"".join(received)),
                )


async def _read_start(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of a body (all of it when shorter)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := await response.content.read(limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class translate_errors:  # (a context manager, named like contextlib.suppress)
    """THE map of aiohttp and timeout exceptions to the SDK's, chained to a scrubbed cause.

    Use as ``with translate_errors(info): ...`` around what talks to aiohttp. Any other
    exception goes on as itself; scrubbed as well (:func:`~._scrub.scrubbed`) when it came out
    of aiohttp's frames (a cancellation inside the request).

    Args:
        info: The request, for the error's message and attributes.
        session: The session it was sent on (closed by ``aclose()`` meanwhile: a
            :class:`ClientClosedError`).
        received: What arrived of a 2xx answer: a create's answer cut short after
            naming its task puts that id in the error (the task exists).
    """

    __slots__ = ("info", "received", "session")

    def __init__(
        self,
        info: RequestInfo,
        session: aiohttp.ClientSession | None = None,
        received: list[bytes] | None = None,
    ) -> None:
        self.info, self.session, self.received = info, session, received

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        del tb  # (aiohttp's frames: see _scrub)
        if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
            raise _translated(exc, self.info, self.received) from scrubbed(exc)
        if isinstance(exc, RuntimeError) and self.session is not None and self.session.closed:
            # closed by aclose() while this request was on its way out
            raise ClientClosedError("this StarVideos client is closed") from scrubbed(exc)
        if through_aiohttp(exc):  # e.g. a cancellation inside the request
            raise scrubbed(exc)
        # anything else (the caller's progress callback, the disk) goes on as it is


def _translated(
    exc: BaseException, info: RequestInfo, received: list[bytes] | None
) -> APIConnectionError:
    if received:
        info = with_named_task(info, b"".join(received))
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"timed out connecting: {detail}", request=info, request_sent=False)
    if isinstance(exc, asyncio.TimeoutError):  # sock_read and total timeouts too
        return APITimeoutError(f"timed out waiting for the response: {detail}", request=info)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(f"could not connect: {detail}", request=info, request_sent=False)
    return APIConnectionError(f"connection failed: {detail}", request=info)
