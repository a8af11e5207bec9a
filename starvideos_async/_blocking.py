"""The blocking client: :class:`AsyncStarVideos` run on an event-loop thread of its own.

For scripts, notebooks and threaded web frameworks. One thread per client runs an
asyncio loop (an anyio blocking portal); every method hands the async method of the same
name to that thread and blocks until it is over, so the behaviour, the models, the errors
and the limits are those of the async client. Task handles and iterators are in
``_blocking_task``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import textwrap
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, overload

from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import _retry
from ._blocking_task import BlockingIterator, BlockingVideoTask, Caller
from ._client import AsyncStarVideos
from ._config import Timeout
from ._errors import StarVideosError, SubmitManyError
from ._http import DEFAULT_MAX_RESPONSE_BYTES
from ._limits import Coordinator, Limiter
from ._models import ProgressCallback, Video
from ._poll_policy import PollPolicy
from ._requests import VideoRequest
from ._subscriptions import StatusCallback, StatusFetcher
from ._task import VideoTask

__all__ = ["StarVideos"]


class StarVideos:
    # The docstring is built below from AsyncStarVideos's (the arguments are the same).

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
        limiter: Limiter | None = None,
        max_status_rate: float | None = None,
        retry_policy: _retry.RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        coordinator: Coordinator | None = None,
    ) -> None:
        self._closing = True  # until the thread runs: __del__ has nothing to stop
        self._lock = threading.Lock()
        try:
            # Made here, not in the loop's thread: a refused setting's traceback then
            # passes no frame of the portal's that holds the arguments (the key).
            client = AsyncStarVideos(
                api_key,
                base_url=base_url,
                max_concurrency=max_concurrency,
                max_retries=max_retries,
                timeout=timeout,
                poll_policy=poll_policy,
                status_fetcher=status_fetcher,
                limiter=limiter,
                max_status_rate=max_status_rate,
                retry_policy=retry_policy,
                allow_insecure_http=allow_insecure_http,
                max_response_bytes=max_response_bytes,
                coordinator=coordinator,
            )
        finally:
            api_key = None  # (error reporters record the locals of every frame of a traceback)
        portal_cm = start_blocking_portal("asyncio", name="starvideos-client")
        self._portal_cm = portal_cm
        self._caller = Caller(portal_cm.__enter__())
        self._client = client
        self._closing = False

    def __repr__(self) -> str:
        if "_client" not in vars(self):  # a constructor that failed (error reporters show it)
            return "<StarVideos (not constructed)>"
        closed = " closed" if self.closed else ""
        return (
            f"<StarVideos base_url={str(self.base_url)!r} "
            f"max_concurrency={self.max_concurrency}{closed}>"
        )

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> StarVideos:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether the client was closed."""
        return self._closing or self._client.closed

    def close(self) -> None:
        """Close the async client (as ``aclose()``), stop its event loop and join its thread.

        Idempotent and safe from any thread. Calls still running in other threads end as
        they do when an async client closes (waits with :class:`ClientClosedError`).
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._caller.call(self._client.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)
            self._caller.closed = True

    def __del__(self) -> None:
        if getattr(self, "_closing", True):
            return
        self._closing = True
        warnings.warn(
            f"unclosed {self!r}: close() it or use 'with StarVideos() as client:'",
            ResourceWarning,
            source=self,
            stacklevel=1,
        )
        with contextlib.suppress(Exception):  # stop the loop; its thread ends by itself
            self._caller.portal.start_task_soon(_shut_down, self._client, self._caller.portal)

    @property
    def base_url(self) -> str:
        """The API root the client sends to."""
        return str(self._client.base_url)

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at once (the limiter's slots)."""
        return self._client.max_concurrency

    @property
    def poll_policy(self) -> PollPolicy:
        """The client's poll policy (it runs on the client's event-loop thread)."""
        return self._client.poll_policy

    @property
    def orphaned_tasks(self) -> list[BlockingVideoTask]:
        """Tasks created for a ``submit()``/``submit_many()`` stopped before returning them."""
        return [self._wrap(task) for task in self._client.orphaned_tasks]

    def _wrap(self, task: VideoTask) -> BlockingVideoTask:
        return BlockingVideoTask(self, self._caller, task)

    # -- creating ------------------------------------------------------------------

    def submit(
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
    ) -> BlockingVideoTask:
        """Create one task and return its handle (see :meth:`AsyncStarVideos.submit`)."""
        task = self._caller.call(
            functools.partial(
                self._client.submit,
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
        )
        return self._wrap(task)

    @overload
    def submit_many(
        self,
        requests: Iterable[VideoRequest],
        *,
        return_exceptions: Literal[False] = ...,
        max_retries: int | None = ...,
    ) -> list[BlockingVideoTask]: ...

    @overload
    def submit_many(
        self,
        requests: Iterable[VideoRequest],
        *,
        return_exceptions: Literal[True],
        max_retries: int | None = ...,
    ) -> list[BlockingVideoTask | StarVideosError]: ...

    def submit_many(
        self,
        requests: Iterable[VideoRequest],
        *,
        return_exceptions: bool = False,
        max_retries: int | None = None,
    ) -> list[BlockingVideoTask] | list[BlockingVideoTask | StarVideosError]:
        """Create many tasks concurrently, in input order.

        See :meth:`AsyncStarVideos.submit_many`.

        A :class:`SubmitManyError` raised here holds :class:`BlockingVideoTask` handles.
        """
        results = self._caller.call(
            functools.partial(
                self._client.submit_many,
                list(requests),
                return_exceptions=True,
                max_retries=max_retries,
            )
        )
        wrapped: list[BlockingVideoTask | StarVideosError] = [
            self._wrap(r) if isinstance(r, VideoTask) else r for r in results
        ]
        if not return_exceptions and any(isinstance(r, StarVideosError) for r in wrapped):
            raise SubmitManyError(wrapped)
        return wrapped

    # -- reading -------------------------------------------------------------------

    def task(self, task_id: str) -> BlockingVideoTask:
        """A handle on an existing task by id (e.g. saved earlier); no network call."""
        return self._wrap(self._client.task(task_id))

    def retrieve(self, task_id: str, *, max_retries: int | None = None) -> Video:
        """One ``GET /v1/result/{id}``: the task as the service sees it now."""
        return self._caller.call(
            functools.partial(self._client.retrieve, task_id, max_retries=max_retries)
        )

    # -- downloading ---------------------------------------------------------------

    def download(
        self,
        video_or_task: Video | BlockingVideoTask | str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Path:
        """Download a finished task's video to ``dest`` (see :meth:`AsyncStarVideos.download`).

        ``on_progress`` runs on the client's event-loop thread: keep it quick.
        """
        target: Video | VideoTask | str = (
            video_or_task._task if isinstance(video_or_task, BlockingVideoTask) else video_or_task
        )
        return self._caller.call(
            functools.partial(
                self._client.download,
                target,
                dest,
                overwrite=overwrite,
                on_progress=on_progress,
                timeout=timeout,
            )
        )

    # -- waiting -------------------------------------------------------------------

    def as_completed(
        self,
        tasks: Iterable[BlockingVideoTask],
        *,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> BlockingIterator[BlockingVideoTask]:
        """Iterate over ``tasks`` in the order they finish.

        See :meth:`AsyncStarVideos.as_completed`. Breaking out of the loop stops every
        remaining wait.
        """
        batch = list(tasks)
        handles = {id(task._task): task for task in batch}
        stream = self._client.as_completed(
            _unwrap(batch), poll_policy=poll_policy, status_fetcher=status_fetcher
        )
        return BlockingIterator(self._caller, stream, lambda task: handles[id(task)])

    @overload
    def wait_all(
        self,
        tasks: Iterable[BlockingVideoTask],
        *,
        return_exceptions: Literal[False] = ...,
        poll_policy: PollPolicy | None = ...,
        status_fetcher: StatusFetcher | None = ...,
    ) -> list[Video]: ...

    @overload
    def wait_all(
        self,
        tasks: Iterable[BlockingVideoTask],
        *,
        return_exceptions: Literal[True],
        poll_policy: PollPolicy | None = ...,
        status_fetcher: StatusFetcher | None = ...,
    ) -> list[Video | StarVideosError]: ...

    def wait_all(
        self,
        tasks: Iterable[BlockingVideoTask],
        *,
        return_exceptions: bool = False,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> list[Video] | list[Video | StarVideosError]:
        """Wait for every task; the videos in input order.

        See :meth:`AsyncStarVideos.wait_all`.
        """
        return self._caller.call(
            functools.partial(
                self._client.wait_all,
                _unwrap(tasks),
                return_exceptions=return_exceptions,
                poll_policy=poll_policy,
                status_fetcher=status_fetcher,
            )
        )

    def generate(
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

        See :meth:`AsyncStarVideos.generate`. ``on_status`` runs on the client's
        event-loop thread: keep it quick.
        """
        return self._caller.call(
            functools.partial(
                self._client.generate,
                prompt,
                duration=duration,
                ratio=ratio,
                images=images,
                model=model,
                reference_images=reference_images,
                first_image=first_image,
                last_image=last_image,
                reference_videos=reference_videos,
                timeout=timeout,
                poll_policy=poll_policy,
                on_status=on_status,
                status_fetcher=status_fetcher,
                max_retries=max_retries,
            )
        )


def _unwrap(tasks: Iterable[BlockingVideoTask]) -> list[VideoTask]:
    batch = []
    for index, task in enumerate(tasks):
        if not isinstance(task, BlockingVideoTask):
            raise TypeError(f"tasks[{index}] is {type(task).__name__}, not BlockingVideoTask")
        batch.append(task._task)
    return batch


async def _shut_down(client: AsyncStarVideos, portal: BlockingPortal) -> None:
    """What an unclosed client does when collected: close, and let the loop end."""
    try:
        await client.aclose()
    finally:
        await portal.stop()


def _docstring() -> str:
    """The class docstring: its own head, and the async client's arguments minus ``session``."""
    # (cleandoc: Python 3.13 strips docstrings' indentation itself, earlier ones do not)
    source = inspect.cleandoc(AsyncStarVideos.__doc__ or "")
    args = source[source.index("\nArgs:") + 1 :] if "\nArgs:" in source else ""
    kept: list[str] = []
    skipping = False
    for line in args.splitlines():
        if line.startswith(" " * 4) and not line.startswith(" " * 5):  # an argument
            skipping = line.strip().startswith("session:")
        if not skipping:
            kept.append(line)
    return (
        "A blocking client for the StarVideos API.\n"
        "\n"
        "    For scripts, notebooks and threaded web frameworks (Django, Flask).\n"
        "    ``with StarVideos() as client:`` or ``close()`` it. It runs an\n"
        "    :class:`AsyncStarVideos` on an event-loop thread of its own (one thread per\n"
        "    client): every method is the async one, called on that thread, so arguments,\n"
        "    results, errors and limits are the same. Share one client between threads;\n"
        "    it also works from code that runs inside another event loop (a notebook cell).\n"
        "    Callbacks (``on_status``, ``on_progress``), a status fetcher and a poll policy\n"
        "    run on the client's thread. ``session`` is not an argument: the client makes\n"
        "    its own on its thread.\n"
        "\n" + textwrap.indent("\n".join(kept), "    ") + "\n"
    )


StarVideos.__doc__ = _docstring()
