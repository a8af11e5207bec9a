"""The client: one per application, shared by every request of that application."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, overload

import aiohttp

from . import _retry
from ._config import Timeout, check_count, check_rate, resolve_api_key, resolve_base_url
from ._creates import Creates
from ._errors import StarVideosError, TaskFailedError, TaskTimeoutError
from ._http import DEFAULT_MAX_RESPONSE_BYTES, HTTPTransport, result_path
from ._limits import ClientLimits, Coordinator, Limiter, check_limits
from ._models import ProgressCallback, Video
from ._outcomes import AsCompleted, Outcomes, wait_all
from ._poll_policy import PollPolicy
from ._polling import Scheduler
from ._requests import VideoRequest, check_requests, request_of
from ._serde import structure_video
from ._subscriptions import StatusCallback, StatusFetcher
from ._task import TaskContext, VideoTask

__all__ = ["AsyncStarVideos"]

logger = logging.getLogger("starvideos_async")


class AsyncStarVideos:
    """An asyncio client for the StarVideos API.

    Create one per application and share it; close it with ``aclose()`` or use it as
    ``async with AsyncStarVideos() as client:``.

    Args:
        api_key: The key; defaults to ``$STARVIDEOS_API_KEY``. It is never logged,
            never in a repr or an error, and only sent to ``base_url``'s origin.
        base_url: The API root; defaults to ``$STARVIDEOS_BASE_URL``, then the
            documented URL. Plain ``http://`` is only accepted for loopback hosts
            unless ``allow_insecure_http=True``.
        max_concurrency: Slots of the limiter every API request of this client
            passes (requests in flight at once).
        max_retries: Retries per request (see :mod:`starvideos_async` docs: creates
            are only retried when the service surely did not create the task).
        timeout: Seconds per HTTP request, or a :class:`Timeout` with
            connect/read/total.
        poll_policy: How often ``wait()`` polls; defaults to the adaptive
            :meth:`PollPolicy.default`.
        status_fetcher: ``async (task_id) -> Video`` used by ``wait()``/``watch()``;
            defaults to ``GET /v1/result/{id}``.
        session: An ``aiohttp.ClientSession`` to use (never closed by the client);
            by default the client makes its own on first use and closes it.
        limiter: Replaces the default limiter of ``max_concurrency`` slots, e.g. with
            one shared between clients or processes.
        max_status_rate: At most this many status calls in any one-second window,
            across every wait of the client (``None``: no cap).
        retry_policy: Full control of backoff; ``max_retries`` is ignored when given.
        allow_insecure_http: Accept a non-loopback ``http://`` base URL.
        max_response_bytes: API responses larger than this are refused.
        coordinator: Shares ``max_concurrency``, ``max_status_rate`` and the polling
            of each task with every client on the same key and base URL, in any
            process on any host: a :class:`starvideos_async.redis.RedisCoordinator`.
            Replaces ``limiter``; a custom ``status_fetcher`` shares the limits but
            not its polls. See the deployment guide.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 2,
        timeout: float | Timeout | None = 60.0,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
        session: aiohttp.ClientSession | None = None,
        limiter: Limiter | None = None,
        max_status_rate: float | None = None,
        retry_policy: _retry.RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        coordinator: Coordinator | None = None,
    ) -> None:
        try:
            check_count("max_concurrency", max_concurrency, 1)
            check_count("max_retries", max_retries, 0)
            check_count("max_response_bytes", max_response_bytes, 1)
            check_rate("max_status_rate", max_status_rate)
            self.base_url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)
            self.max_concurrency = max_concurrency
            self.poll_policy = poll_policy if poll_policy is not None else PollPolicy.default()
            checked_timeout = Timeout.coerce(timeout)
            retry = retry_policy or _retry.RetryPolicy(max_retries=max_retries)
            check_limits(limiter, coordinator)
            api_key = resolve_api_key(api_key)  # (once every setting is checked)
            self._limits = ClientLimits(
                limiter,
                coordinator,
                api_key=api_key,
                base_url=str(self.base_url),
                max_concurrency=max_concurrency,
                max_status_rate=max_status_rate,
            )
            self._http = HTTPTransport(
                api_key=api_key,
                base_url=self.base_url,
                timeout=checked_timeout,
                retry=retry,
                limiter=self._limits.limiter,
                session=session,
                connection_limit=max(100, max_concurrency),
                max_response_bytes=max_response_bytes,
            )
        except BaseException:
            api_key = None  # (error reporters record the locals of every frame of a traceback)
            raise
        self._scheduler = Scheduler(
            gate=self._limits.gate, retry=self._http.retry, max_in_flight=max_concurrency
        )
        # retrieve(); with a coordinator, its polls are shared with other processes
        own = self._limits.status_fetcher(self.retrieve, self._scheduler.offer)
        self._tasks = TaskContext(
            client=self,
            scheduler=self._scheduler,
            status_fetcher=status_fetcher if status_fetcher is not None else own,
            own_fetcher=own,
        )
        self._creates = Creates(self._http, self._tasks, workers=max_concurrency)

    def __repr__(self) -> str:
        if "_http" not in vars(self):  # a constructor that failed (error reporters show it)
            return "<AsyncStarVideos (not constructed)>"
        return (
            f"<AsyncStarVideos base_url={str(self.base_url)!r} "
            f"max_concurrency={self.max_concurrency}{' closed' if self.closed else ''}>"
        )

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> AsyncStarVideos:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def coordinator(self) -> Coordinator | None:
        """The coordinator the client shares its limits through (``None``: its own)."""
        return self._limits.coordinator

    @property
    def closed(self) -> bool:
        """Whether the client was closed."""
        return self._http.closed

    async def aclose(self) -> None:
        """Stop polling and close the client's own HTTP session. Idempotent.

        Creates already on the wire are let finish first (each within the client's
        timeout), so that the ids the service returns are not lost.
        """
        self._http.refuse_new_requests()
        await self._scheduler.aclose()
        await self._creates.drain()
        await self._http.aclose()
        await self._limits.aclose()  # shared slots, subscriptions (after the last request)

    @property
    def orphaned_tasks(self) -> list[VideoTask]:
        """Tasks created for a ``submit()``/``submit_many()`` stopped before returning them.

        Cancelling a create that is already on the wire cannot un-send it: the SDK
        lets the answer arrive, logs the id at WARNING and keeps the task here, so a
        paid video is never lost without a trace.
        """
        return list(self._creates.orphans)

    # -- creating ------------------------------------------------------------------

    async def submit(
        self,
        prompt: str | VideoRequest,
        *,
        duration: int | None = None,
        ratio: str | None = None,
        images: Sequence[str] | None = None,
        model: str = "starvideos_v3",
        reference_images: Sequence[str] | None = None,
        first_image: str | None = None,
        last_image: str | None = None,
        reference_videos: Sequence[str] | None = None,
        max_retries: int | None = None,
    ) -> VideoTask:
        """Create one task and return its handle at once (the video comes later).

        The request is validated first (:class:`InvalidRequestError`, no network).
        A create is retried only when the service surely did not create the task
        (connection refused before sending, or 429). After a read timeout, a reset
        after sending, or a 5xx the task may exist, so the error is raised and not
        retried: creating twice pays twice. Such errors have ``request_sent=True``.

        Args:
            prompt: The text prompt, or a ready :class:`VideoRequest` (then the other
                arguments must be left alone).
            duration: Seconds, 3..15; None (left out) is the model's default: 5 for
                ``starvideos_v3``, 3 for ``starvideos_o3``. Not with ``reference_videos``.
            ratio: v3: ``"16:9"`` or ``"9:16"``; o3: ``"9:16"``, ``"1:1"`` or
                ``"16:9"``. None is the model's default (v3 ``"16:9"``, o3 ``"9:16"``).
                Not with ``reference_videos``.
            images: ``starvideos_v3``: None, one image URL, or two (first and last
                frame).
            model: The model's wire name, ``"starvideos_v3"`` or ``"starvideos_o3"``.
            reference_images: ``starvideos_o3``: image URLs to follow, up to 7 (4 with
                ``reference_videos``).
            first_image: ``starvideos_o3``: the first frame's URL.
            last_image: ``starvideos_o3``: the last frame's URL.
            reference_videos: ``starvideos_o3``: video URLs to follow; the video decides
                duration and ratio.
            max_retries: Overrides the client's retry count for this call.

        See :class:`VideoRequest` for every rule (which inputs go together).
        """
        inputs = {
            "duration": duration,
            "ratio": ratio,
            "images": images,
            "reference_images": reference_images,
            "first_image": first_image,
            "last_image": last_image,
            "reference_videos": reference_videos,
        }
        return await self._creates.one(request_of(prompt, model, inputs), max_retries)

    @overload
    async def submit_many(
        self,
        requests: Iterable[VideoRequest],
        *,
        return_exceptions: Literal[False] = ...,
        max_retries: int | None = ...,
    ) -> list[VideoTask]: ...

    @overload
    async def submit_many(
        self,
        requests: Iterable[VideoRequest],
        *,
        return_exceptions: Literal[True],
        max_retries: int | None = ...,
    ) -> list[VideoTask | StarVideosError]: ...

    async def submit_many(
        self,
        requests: Iterable[VideoRequest],
        *,
        return_exceptions: bool = False,
        max_retries: int | None = None,
    ) -> list[VideoTask] | list[VideoTask | StarVideosError]:
        """Create many tasks concurrently (under the client's limiter), in input order.

        Every create runs to its end even when another fails, so no created task is
        lost. Then, with ``return_exceptions=False`` (the default), a
        :class:`SubmitManyError` holding every created task and every error is
        raised if any create failed; with ``True`` the errors are returned in place.
        """
        return await self._creates.many(
            check_requests(requests), return_exceptions=return_exceptions, max_retries=max_retries
        )

    # -- reading -------------------------------------------------------------------

    def task(self, task_id: str) -> VideoTask:
        """A handle on an existing task by id (e.g. saved earlier); no network call."""
        result_path(task_id)
        return VideoTask(self._tasks, task_id)

    async def retrieve(self, task_id: str, *, max_retries: int | None = None) -> Video:
        """One ``GET /v1/result/{id}``: the task as the service sees it now.

        It is a status call like the polls of ``wait()``: it passes the client's
        ``max_status_rate`` cap and pauses with them on a 429.
        """
        return await self._http.request(
            "GET",
            result_path(task_id),
            parse=structure_video,
            task_id=task_id,
            max_retries=max_retries,
            gate=self._limits.gate,
        )

    # -- downloading ---------------------------------------------------------------

    async def download(
        self,
        video_or_task: Video | VideoTask | str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Path:
        """Download a finished task's video to ``dest`` (a file path or a folder).

        Streams into a temporary file beside the destination and renames it into
        place, so a partial file never has the final name. Resumes with ``Range``
        when the connection drops. The API key is never sent to the file host. An
        expired result URL (403/404/410) is refreshed once from the API (that query is
        retried like any status call, and a task seen unfinished there is waited on);
        :class:`ResultExpiredError` is raised only when the service says the task is
        gone or has no new URL.

        Args:
            video_or_task: A completed :class:`Video`, a :class:`VideoTask`, or a task id.
            dest: A folder (``"videos/"`` or an existing folder: the file is then named
                from the task id, made safe) or a file path. Missing folders are created.
            overwrite: Replace an existing file instead of raising ``FileExistsError``.
            on_progress: Called with ``(bytes_done, bytes_total_or_None)`` as data arrives.
            timeout: Seconds for the transfer, waiting for a fresh URL included
                (``None``: no limit beyond each request's own timeout). When it passes,
                :class:`APITimeoutError` is raised and no file is left behind.
        """
        from . import _download  # late: most programs never download

        return await _download.download_task(
            self._http,
            video_or_task,
            dest,
            retrieve=self.retrieve,
            task=self.task,
            overwrite=overwrite,
            on_progress=on_progress,
            timeout=timeout,
        )

    # -- waiting -------------------------------------------------------------------

    def as_completed(
        self,
        tasks: Iterable[VideoTask],
        *,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> AsCompleted:
        """Iterate over ``tasks`` in the order they finish (completed or failed).

        ``await task.wait()`` on a yielded task returns its video or raises its
        :class:`TaskFailedError` at once. An error that ends a wait otherwise (status
        calls failing after retries, e.g. 404) is raised by the iterator, which then
        stops waiting on the rest. Breaking out stops every remaining wait.
        """
        batch = list(tasks)
        return AsCompleted(Outcomes(batch, poll_policy, status_fetcher), batch)

    @overload
    async def wait_all(
        self,
        tasks: Iterable[VideoTask],
        *,
        return_exceptions: Literal[False] = ...,
        poll_policy: PollPolicy | None = ...,
        status_fetcher: StatusFetcher | None = ...,
    ) -> list[Video]: ...

    @overload
    async def wait_all(
        self,
        tasks: Iterable[VideoTask],
        *,
        return_exceptions: Literal[True],
        poll_policy: PollPolicy | None = ...,
        status_fetcher: StatusFetcher | None = ...,
    ) -> list[Video | StarVideosError]: ...

    async def wait_all(
        self,
        tasks: Iterable[VideoTask],
        *,
        return_exceptions: bool = False,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> list[Video] | list[Video | StarVideosError]:
        """Wait for every task; the completed videos in input order.

        With ``return_exceptions=False`` the first failure (a
        :class:`TaskFailedError`, or an API error that ended a wait) is raised and
        the other waits stop (the tasks go on on the service). With ``True`` each
        failure takes its task's place in the list.
        """
        return await wait_all(
            list(tasks),
            return_exceptions=return_exceptions,
            poll_policy=poll_policy,
            status_fetcher=status_fetcher,
        )

    async def generate(
        self,
        prompt: str | VideoRequest,
        *,
        duration: int | None = None,
        ratio: str | None = None,
        images: Sequence[str] | None = None,
        model: str = "starvideos_v3",
        reference_images: Sequence[str] | None = None,
        first_image: str | None = None,
        last_image: str | None = None,
        reference_videos: Sequence[str] | None = None,
        timeout: float | None = None,
        poll_policy: PollPolicy | None = None,
        on_status: StatusCallback | None = None,
        status_fetcher: StatusFetcher | None = None,
        max_retries: int | None = None,
    ) -> Video:
        """Submit and wait in one call; the completed :class:`Video`.

        The request's arguments are :meth:`submit`'s. Raises what :meth:`submit` and
        :meth:`VideoTask.wait` raise; a :class:`TaskTimeoutError` carries the task id
        (the task still runs). When the wait ends any other way (cancelled, client
        closed, status calls failing), the id is logged at WARNING: the task still runs.
        """
        task = await self.submit(
            prompt,
            duration=duration,
            ratio=ratio,
            images=images,
            model=model,
            reference_images=reference_images,
            first_image=first_image,
            last_image=last_image,
            reference_videos=reference_videos,
            max_retries=max_retries,
        )
        try:
            return await task.wait(
                timeout=timeout,
                poll_policy=poll_policy,
                on_status=on_status,
                status_fetcher=status_fetcher,
            )
        except (TaskFailedError, TaskTimeoutError):
            raise  # both carry the task id
        except BaseException:
            logger.warning("generate() stopped waiting; task %s still runs", task.id)
            raise
