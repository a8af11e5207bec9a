"""The blocking side of task handles: the portal every call goes through, tasks, iterators.

Nothing here does the work: each method hands the async one to the client's event-loop
thread (an anyio blocking portal) and blocks the calling thread until it is over. The
async objects are only ever touched on that thread, so one client can be shared by any
number of threads.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from anyio.from_thread import BlockingPortal

from ._errors import ClientClosedError

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from ._models import Estimate, ProgressCallback, TaskStatus, Video
    from ._poll_policy import PollPolicy
    from ._requests import VideoRequest
    from ._subscriptions import StatusCallback, StatusFetcher
    from ._task import VideoTask

__all__ = ["BlockingIterator", "BlockingTaskClient", "BlockingVideoTask", "Caller"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Caller:
    """Runs functions and coroutine functions on the client's event-loop thread."""

    __slots__ = ("closed", "loop_thread", "portal")

    def __init__(self, portal: BlockingPortal) -> None:
        self.portal = portal
        self.closed = False
        self.loop_thread: int = portal.call(threading.get_ident)

    @overload
    def call(self, func: Callable[[], Awaitable[T]]) -> T: ...

    @overload
    def call(self, func: Callable[[], T]) -> T: ...

    def call(self, func: Callable[[], Awaitable[T] | T]) -> T:
        """``func()`` (awaited when it returns an awaitable) on the loop thread; its result.

        What it raises is raised here, the same object. When the calling thread is
        interrupted (``KeyboardInterrupt``), the call on the loop thread is cancelled.
        """
        if self.closed:
            raise ClientClosedError("this StarVideos client is closed")
        if threading.get_ident() == self.loop_thread:
            raise RuntimeError(
                "a StarVideos client cannot be called from its own callbacks "
                "(on_status, on_progress, a status fetcher or a poll policy)"
            )
        try:
            future: concurrent.futures.Future[T] = self.portal.start_task_soon(func)  # type: ignore[call-arg,arg-type]
        except RuntimeError:  # the portal stopped: closed meanwhile
            raise ClientClosedError("this StarVideos client is closed") from None
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self.closed:
                raise ClientClosedError(
                    "the StarVideos client was closed during the call"
                ) from None
            raise
        except BaseException:
            future.cancel()  # interrupted: stop the call on the loop (no-op once it ended)
            raise


class _AsyncSource(Protocol[T_co]):
    def __anext__(self) -> Awaitable[T_co]: ...

    def close(self) -> None: ...


class BlockingIterator(Generic[T]):
    """A plain iterator over one of the async client's wait iterators.

    Returned by :meth:`BlockingVideoTask.watch` and :meth:`StarVideos.as_completed`.
    Each ``next()`` blocks until the next item. Breaking out of a ``for`` loop and
    dropping the iterator stops its polling; ``close()`` or ``with ... as it:`` stop it
    at once. One consumer at a time.
    """

    __slots__ = ("_caller", "_convert", "_done", "_source")

    def __init__(
        self, caller: Caller, source: _AsyncSource[Any], convert: Callable[[Any], T]
    ) -> None:
        self._caller = caller
        self._source = source
        self._convert = convert
        self._done = False

    def __iter__(self) -> BlockingIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            item = self._caller.call(self._source.__anext__)
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None
        except BaseException:
            # The async iterator ended with the error, or the caller was interrupted
            # (Ctrl+C) while waiting for the item: either way, no more polling.
            self.close()
            raise
        return self._convert(item)

    def close(self) -> None:
        """Stop the polling of the items not yet returned; iterating further ends at once."""
        if self._done:
            return
        self._done = True
        if not self._caller.closed:
            with contextlib.suppress(ClientClosedError):  # closed meanwhile: no polls
                self._caller.call(self._source.close)

    def __enter__(self) -> BlockingIterator[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class BlockingTaskClient(Protocol):
    """What a handle uses of its :class:`StarVideos`; the type of :attr:`BlockingVideoTask.client`.

    Not the client's class: this module, which the client's imports, does not import it.
    """

    def download(
        self,
        video_or_task: BlockingVideoTask,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Path: ...


class BlockingVideoTask:
    """A handle on one task, for :class:`StarVideos`: :class:`VideoTask` with blocking calls.

    Made by the client (``submit()``, ``task(id)``...), not directly. Every method runs
    the :class:`VideoTask` method of the same name on the client's event-loop thread and
    waits for it; arguments, results and errors are the same.
    """

    __slots__ = ("_caller", "_owner", "_task")

    def __init__(self, owner: BlockingTaskClient, caller: Caller, task: VideoTask) -> None:
        self._owner = owner
        self._caller = caller
        self._task = task

    def __repr__(self) -> str:
        return repr(self._task).replace("<VideoTask", "<BlockingVideoTask", 1)

    @property
    def id(self) -> str:
        """The task id (save it: it is the only handle on a paid job)."""
        return self._task.id

    @property
    def latest(self) -> Video | None:
        """The newest :class:`Video` seen for this task, or ``None``."""
        return self._task.latest

    @property
    def status(self) -> TaskStatus | str | None:
        """The newest status seen, or ``None`` before any was."""
        return self._task.status

    @property
    def request(self) -> VideoRequest | None:
        """The :class:`VideoRequest` it was created from, when known."""
        return self._task.request

    @property
    def submitted_at(self) -> float | None:
        """Wall-clock time this process created the task, or ``None``."""
        return self._task.submitted_at

    @property
    def client(self) -> BlockingTaskClient:
        """The client this handle belongs to (the :class:`StarVideos` that made it).

        Typed by what a handle uses of it; ``isinstance()`` narrows it to the client.
        """
        return self._owner

    def wait(
        self,
        timeout: float | None = None,
        poll_policy: PollPolicy | None = None,
        on_status: StatusCallback | None = None,
        *,
        status_fetcher: StatusFetcher | None = None,
    ) -> Video:
        """Block until the task finishes; the completed :class:`Video`.

        See :meth:`VideoTask.wait` for the arguments.

        ``on_status`` runs on the client's event-loop thread: keep it quick.

        Raises:
            TaskFailedError: The task ended ``failed`` (or ``cancelled``).
            TaskTimeoutError: ``timeout`` passed; the task still runs.
            APIError: Status calls kept failing (after retries).
            ClientClosedError: The client was closed during the wait.
        """
        return self._caller.call(
            functools.partial(
                self._task.wait,
                timeout,
                poll_policy,
                on_status,
                status_fetcher=status_fetcher,
            )
        )

    def watch(
        self,
        *,
        poll_policy: PollPolicy | None = None,
        status_fetcher: StatusFetcher | None = None,
    ) -> BlockingIterator[Video]:
        """Iterate over the task's statuses, one per change, ending at a terminal one.

        See :meth:`VideoTask.watch`; breaking out of the loop stops the polling.
        """
        stream = self._task.watch(poll_policy=poll_policy, status_fetcher=status_fetcher)
        return BlockingIterator(self._caller, stream, _same)

    def refresh(self, *, status_fetcher: StatusFetcher | None = None) -> Video:
        """One status fetch now; updates and returns :attr:`latest`."""
        return self._caller.call(
            functools.partial(self._task.refresh, status_fetcher=status_fetcher)
        )

    def download(
        self,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Path:
        """Download this task's video to ``dest`` (see :meth:`StarVideos.download`)."""
        return self._owner.download(
            self, dest, overwrite=overwrite, on_progress=on_progress, timeout=timeout
        )

    def estimate(self, *, poll_policy: PollPolicy | None = None) -> Estimate | None:
        """When this task will likely be done, or ``None`` (see :meth:`VideoTask.estimate`)."""
        estimate = functools.partial(self._task.estimate, poll_policy=poll_policy)
        if self._caller.closed:  # nothing changes the policy any more
            return estimate()
        return self._caller.call(estimate)


def _same(item: T) -> T:
    return item
