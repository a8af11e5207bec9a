"""The exception hierarchy of starvideos-async.

Every exception the SDK raises on purpose derives from :class:`StarVideosError`;
foreign exceptions (aiohttp, asyncio timeouts, cattrs) are translated in exactly one
place, :mod:`starvideos_async._http`, and chained with ``raise ... from``. An HTTP
error status becomes an exception in exactly one place too, :func:`error_from_response`,
for the API and the file host alike::

    StarVideosError
    ├── InvalidRequestError (also a ValueError)   bad input, caught before any request
    ├── ConfigurationError (also a ValueError)    a bad client setting (or no API key)
    ├── SubmitManyError                           some creates of submit_many() failed
    ├── ClientClosedError (also a RuntimeError)   the client was closed (also mid-wait)
    ├── WrongEventLoopError (also a RuntimeError) used from another event loop than its own
    ├── APIError                                  something went wrong talking to the API
    │   ├── APIConnectionError                    no (complete) HTTP response
    │   │   └── APITimeoutError                   ... because a timeout passed
    │   ├── APIStatusError                        an HTTP error status
    │   │   ├── BadRequestError                   400, 422
    │   │   ├── AuthenticationError               401
    │   │   ├── PermissionDeniedError             403
    │   │   ├── NotFoundError                     404
    │   │   ├── RateLimitError                    429 (``retry_after``)
    │   │   └── ServerError                       5xx
    │   └── MalformedResponseError                2xx that is not the documented JSON
    ├── TaskFailedError                           the task ended ``failed`` (or ``cancelled``)
    ├── TaskTimeoutError (also a TimeoutError)    ``wait()`` gave up; the task still runs
    ├── ResultExpiredError                        the result URL is gone and no fresh one exists
    ├── InputError (also a ValueError)            a row of a batch input file is unusable
    └── JournalLockedError (also a RuntimeError)  another process runs a batch on this journal

Every :class:`APIError` says which request failed (method, path and task id, when
there is one) in its message and in :attr:`APIError.request`. None of them ever
contains the API key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import attrs

from ._messages import BODY_KEPT, error_message, text_excerpt

if TYPE_CHECKING:
    from ._models import Video

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "InputError",
    "InvalidRequestError",
    "JournalLockedError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestInfo",
    "ResultExpiredError",
    "ServerError",
    "StarVideosError",
    "SubmitManyError",
    "TaskFailedError",
    "TaskTimeoutError",
    "WrongEventLoopError",
    "error_from_response",
]


@attrs.frozen
class RequestInfo:
    """Which request an :class:`APIError` is about.

    Attributes:
        method: The HTTP method, e.g. ``"POST"``.
        path: The path below the base URL, e.g. ``"/v1/result/video_starvideos_1"``.
        task_id: The task the request concerned, when there is one.
    """

    method: str
    path: str
    task_id: str | None = None

    def __str__(self) -> str:
        text = f"{self.method} {self.path}"
        return f"{text} (task {self.task_id})" if self.task_id else text


class StarVideosError(Exception):
    """The root of every exception raised by starvideos-async."""


class InvalidRequestError(StarVideosError, ValueError):
    """The arguments break a documented rule; raised before any network call.

    Attributes:
        field: The name of the offending field (``"duration"``, ``"images[1]"`` ...).
        value: The rejected value.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"invalid {field}: {_shown(value)}; {allowed}")


class ConfigurationError(StarVideosError, ValueError):
    """A client setting breaks a rule (or there is no API key); raised at construction.

    Attributes:
        field: The name of the offending setting (``"max_concurrency"`` ...).
        value: The rejected value.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"invalid {field}: {_shown(value)}; {allowed}")


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


#: The task handles a :class:`SubmitManyError` holds: :class:`~starvideos_async.VideoTask`
#: from :class:`~starvideos_async.AsyncStarVideos`, :class:`~starvideos_async.BlockingVideoTask`
#: from :class:`~starvideos_async.StarVideos` (errors sit below the modules of both).
TaskT = TypeVar("TaskT")


class SubmitManyError(StarVideosError, Generic[TaskT]):
    """Some creates of :meth:`~starvideos_async.AsyncStarVideos.submit_many` failed.

    Nothing is dropped: the created tasks are here, in input order, beside the errors.

    Attributes:
        results: One entry per request, in input order: a
            :class:`~starvideos_async.VideoTask` (a
            :class:`~starvideos_async.BlockingVideoTask` from
            :class:`~starvideos_async.StarVideos`) or the :class:`StarVideosError` its
            create raised.
    """

    def __init__(self, results: list[TaskT | StarVideosError]) -> None:
        self.results = results
        failed = sum(isinstance(r, StarVideosError) for r in results)
        first = next(r for r in results if isinstance(r, StarVideosError))
        super().__init__(
            f"{failed} of {len(results)} creates failed (first: {first}); "
            f"{len(results) - failed} tasks were created, see .tasks"
        )

    @property
    def tasks(self) -> list[TaskT]:
        """The tasks that were created, in input order."""
        return [r for r in self.results if not isinstance(r, StarVideosError)]

    @property
    def errors(self) -> dict[int, StarVideosError]:
        """The errors, by the index of their request."""
        return {i: r for i, r in enumerate(self.results) if isinstance(r, StarVideosError)}


class ClientClosedError(StarVideosError, RuntimeError):
    """The client was closed (``aclose()`` or the end of ``async with``); make a new one.

    Waits still running when the client closes end with this error too.
    """


class WrongEventLoopError(StarVideosError, RuntimeError):
    """The client was used from another event loop than the one it first ran on.

    A client's connections belong to the event loop it first sent a request from, and
    each ``asyncio.run()`` starts a new loop. Make the client inside the coroutine that
    uses it (``async with AsyncStarVideos() as client:``), once per loop.
    """


class APIError(StarVideosError):
    """A request to the StarVideos API did not succeed.

    Attributes:
        message: What went wrong, in words (without the request prefix).
        request: Method, path and task id of the failed request.
    """

    def __init__(self, message: str, *, request: RequestInfo) -> None:
        self.message = message
        self.request = request
        super().__init__(f"{request}: {message}")

    @property
    def task_id(self) -> str | None:
        """The task id this request concerned or that the service returned, if any."""
        return self.request.task_id


class APIConnectionError(APIError):
    """No complete HTTP response arrived (refused, reset, DNS, TLS ...).

    Attributes:
        request_sent: ``False`` only when the request surely never reached the service
            (the connection could not be established). For a create, ``True`` means
            the outcome is unknown: the task may exist. Creates are not re-sent then.
    """

    def __init__(self, message: str, *, request: RequestInfo, request_sent: bool = True) -> None:
        super().__init__(message, request=request)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError, TimeoutError):
    """A connect, read or total timeout passed before the response was complete."""


class APIStatusError(APIError):
    """The API answered with an HTTP error status.

    Attributes:
        status_code: The HTTP status code.
        body: The response body, parsed JSON when it was JSON, else the text
            (truncated to a few KiB).
        headers: The response headers (a read-only mapping).
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status_code: int,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}


class BadRequestError(APIStatusError):
    """400 or 422: the service rejected the request's content."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this (quota, plan, region ...)."""


class NotFoundError(APIStatusError):
    """404: unknown path or unknown task id."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: Seconds the service asked us to wait (from ``Retry-After``, given
            in seconds or as an HTTP date), or ``None`` when it did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status_code: int = 429,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, request=request, status_code=status_code, body=body, headers=headers
        )
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the service or a gateway in front of it failed."""


class MalformedResponseError(APIError):
    """A 2xx response that is not the documented JSON, or that carries an error.

    Status calls raise it only once the malformation outlasted the retries; it names
    the task in :attr:`task_id`. A create whose broken answer still named its task in
    full is not an error: ``submit()`` returns that task.

    Attributes:
        body: The raw body text (truncated to a few KiB).
    """

    def __init__(self, message: str, *, request: RequestInfo, body: str = "") -> None:
        super().__init__(message, request=request)
        self.body = body


class TaskFailedError(StarVideosError):
    """The task ended without a video (status ``failed``, or ``cancelled``).

    Attributes:
        video: The final :class:`~starvideos_async.Video` as the service reported it.
        error: The service's reason, if it gave one.
    """

    def __init__(self, video: Video) -> None:
        self.video = video
        self.error = video.error
        reason = video.error or "no reason given"
        super().__init__(f"task {video.id} ended {video.status_value}: {reason}")

    @property
    def task_id(self) -> str:
        """The id of the task that failed."""
        return self.video.id


class TaskTimeoutError(StarVideosError, TimeoutError):
    """``wait()`` ran out of time. The task still runs on the service: wait again.

    Attributes:
        task_id: The task's id.
        video: The newest :class:`~starvideos_async.Video` seen, or ``None``.
        timeout: The timeout that passed, in seconds.
    """

    def __init__(self, task_id: str, video: Video | None, timeout: float) -> None:
        self.task_id = task_id
        self.video = video
        self.timeout = timeout
        status = video.status_value if video is not None else "unknown"
        super().__init__(
            f"task {task_id} not finished after {timeout:g}s (last status: {status}); "
            "it keeps running on the service, wait() again to go on"
        )


class ResultExpiredError(StarVideosError):
    """The result URL answered 403/404/410 and the service has no fresh one.

    Attributes:
        task_id: The task whose video could not be fetched.
        status_code: What the file host answered.
    """

    def __init__(self, task_id: str, status_code: int | None) -> None:
        self.task_id = task_id
        self.status_code = status_code
        super().__init__(
            f"the video of task {task_id} is no longer available "
            f"(file host answered {status_code}); result URLs expire after about 24 hours"
        )


class InputError(StarVideosError, ValueError):
    """A row of a batch input file is unusable.

    Attributes:
        line: The 1-based line number in the file.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"{source}:{line}: {reason}")


class JournalLockedError(StarVideosError, RuntimeError):
    """Another process has this journal open (a batch is already running on it)."""


# -- an HTTP error status, as an exception ---------------------------------------------------

#: The exception class of each HTTP error status the API documents; 5xx is ServerError.
_STATUS_ERRORS: Final[Mapping[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_from_response(
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    request: RequestInfo,
    *,
    retry_after: float | None = None,
) -> APIStatusError:
    """THE status -> exception table, for API answers and file host answers alike.

    Args:
        status: The HTTP status (300 or more).
        raw: The start of the body (up to ``BODY_KEPT`` bytes are used).
        headers: The response headers.
        request: Which request it answered.
        retry_after: The server's wait hint, seconds (kept on :class:`RateLimitError`).
    """
    text = raw[:BODY_KEPT].decode("utf-8", "replace")
    body: object = text
    message = text_excerpt(text)
    if raw.strip():
        try:
            body = json.loads(raw[:BODY_KEPT])
        except (ValueError, RecursionError):  # not JSON (or nested too deeply)
            pass
        else:
            message = error_message(body) or message
    message = f"HTTP {status}: {message or 'no error details in the response'}"
    if 300 <= status < 400:
        message += " (redirects are not followed, so the API key never leaves the API origin)"
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIStatusError)
    if cls is RateLimitError:
        return RateLimitError(
            message, request=request, body=body, headers=headers, retry_after=retry_after
        )
    return cls(message, request=request, status_code=status, body=body, headers=headers)
