"""starvideos-async: an asyncio-first SDK for the StarVideos video-generation API.

Quick start::

    from starvideos_async import AsyncStarVideos

    async with AsyncStarVideos() as client:  # key from $STARVIDEOS_API_KEY
        task = await client.submit("a neon city at night, slow push-in")
        video = await task.wait()
        print(video.video_url)

Everything public is exported here; modules whose names start with ``_`` are private.
``starvideos_async.testing`` holds a fake StarVideos service for your tests.
"""

from ._blocking import StarVideos
from ._blocking_task import BlockingIterator, BlockingVideoTask
from ._client import AsyncStarVideos
from ._config import DEFAULT_BASE_URL, Timeout
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    ResultExpiredError,
    ServerError,
    StarVideosError,
    SubmitManyError,
    TaskFailedError,
    TaskTimeoutError,
    WrongEventLoopError,
)
from ._limits import Limiter
from ._models import Estimate, ProgressCallback, TaskStatus, Video
from ._outcomes import AsCompleted
from ._poll_policy import AdaptivePollPolicy, FixedPollPolicy, PollPolicy
from ._requests import ModelSpec, VideoRequest
from ._retry import RetryPolicy
from ._subscriptions import StatusCallback, StatusFetcher
from ._task import StatusStream, VideoTask
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AdaptivePollPolicy",
    "AsCompleted",
    "AsyncStarVideos",
    "AuthenticationError",
    "BadRequestError",
    "BlockingIterator",
    "BlockingVideoTask",
    "ClientClosedError",
    "ConfigurationError",
    "Estimate",
    "FixedPollPolicy",
    "InvalidRequestError",
    "Limiter",
    "MalformedResponseError",
    "ModelSpec",
    "NotFoundError",
    "PermissionDeniedError",
    "PollPolicy",
    "ProgressCallback",
    "RateLimitError",
    "RequestInfo",
    "ResultExpiredError",
    "RetryPolicy",
    "ServerError",
    "StarVideos",
    "StarVideosError",
    "StatusCallback",
    "StatusFetcher",
    "StatusStream",
    "SubmitManyError",
    "TaskFailedError",
    "TaskStatus",
    "TaskTimeoutError",
    "Timeout",
    "Video",
    "VideoRequest",
    "VideoTask",
    "WrongEventLoopError",
    "__version__",
]


def _publish() -> None:
    # Tracebacks and docs then say ``starvideos_async.InvalidRequestError``, the name
    # users import, instead of the private module it happens to live in.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and obj.__module__.startswith(f"{__name__}._"):
            obj.__module__ = __name__


_publish()
