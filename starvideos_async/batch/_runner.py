"""The batch runner: :func:`run_batch` and the run it returns, :class:`BatchRun`.

:func:`run_batch` checks its arguments before anything is sent; :class:`BatchRun` starts
the work (``_work``) with ``async with`` or the first iteration, yields each result,
and stops the work cleanly when left early or cancelled. The promises it keeps are in
the docstring of :mod:`starvideos_async.batch`, its public face; what it yields is in
``_results``, the keys of the requests in ``_keys``, the journal it writes ``_journal``,
the input files the command line reads ``_inputs``.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

import anyio

from starvideos_async._errors import ConfigurationError, InvalidRequestError
from starvideos_async._poll_policy import PollPolicy
from starvideos_async._requests import VideoRequest, check_timeout

from ._journal import Journal
from ._keys import BatchItem, batch_items
from ._results import BatchResult, BatchSummary, StatusHook
from ._work import BatchWork

if TYPE_CHECKING:
    from starvideos_async._client import AsyncStarVideos
    from starvideos_async._limits import Coordinator

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "BatchRun", "run_batch"]

#: ``run_batch``'s default bound on tasks submitted but not finished.
DEFAULT_MAX_IN_FLIGHT: Final = 16


def _count(name: str, value: object) -> int:
    if type(value) is not int or value < 1:
        raise InvalidRequestError(name, value, "an int >= 1")
    return value


class BatchRun:
    """A running batch: iterate over it for one :class:`BatchResult` per request.

    Made by :func:`run_batch`; the work starts with ``async with`` or the first
    iteration. Use ``async with`` (or call :meth:`aclose`) when you might stop
    iterating early: leaving it stops the batch.

    Attributes:
        journal: The batch's :class:`Journal`.
    """

    def __init__(
        self,
        client: AsyncStarVideos,
        items: list[BatchItem],
        journal: Journal,
        download_dir: Path | None,
        max_in_flight: int,
        max_downloads: int,
        poll_policy: PollPolicy | None,
        retry_unknown: bool | frozenset[str],
        on_status: StatusHook | None = None,
        timeout: float | None = None,
    ) -> None:
        self.journal = journal
        self._total = len(items)
        self._work = BatchWork(
            client,
            items,
            journal,
            download_dir,
            max_in_flight,
            max_downloads,
            poll_policy,
            retry_unknown,
            on_status,
            timeout,
            self._deliver,
        )
        self._counts: Counter[str] = Counter()
        self._results: deque[BatchResult] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._engine: asyncio.Task[None] | None = None
        self._error_raised = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"<BatchRun {self.journal!r} {self.summary}>"

    @property
    def timed_out(self) -> bool:
        """Whether ``timeout`` stopped the run before every request had a result."""
        return self._work.timed_out

    @property
    def summary(self) -> BatchSummary:
        """The counts of the results yielded so far (final once the iteration ended)."""
        counts = self._counts
        return BatchSummary(
            total=self._total,
            completed=counts["completed"],
            failed=counts["failed"],
            cancelled=counts["cancelled"],
            unknown=counts["unknown"],
            error=counts["error"],
            submitted=self._work.submitted,
        )

    # -- iteration and lifecycle ---------------------------------------------------------

    def __aiter__(self) -> BatchRun:
        return self

    def _start(self) -> asyncio.Task[None]:
        engine = self._engine
        if engine is None:
            engine = self._engine = asyncio.get_running_loop().create_task(self._work.run())
            engine.add_done_callback(lambda _: self._wake())
        return engine

    async def __anext__(self) -> BatchResult:
        engine = self._start()
        while not self._results:
            if engine.done():
                self._raise_error(engine)
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            except BaseException:  # cancelled: stop the batch cleanly, then go on
                await self._stop()
                raise
            finally:
                self._waiter = None
        result = self._results.popleft()
        self._counts[result.status] += 1
        return result

    async def __aenter__(self) -> BatchRun:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
        else:
            await self._stop()

    async def aclose(self) -> None:
        """Stop the batch if it still runs (the journal stays consistent).

        Raises the error that ended the batch, if the iteration has not raised it.
        """
        await self._stop()
        if self._engine is not None:
            self._raise_error(self._engine)

    async def _stop(self) -> None:
        engine = self._engine
        if engine is not None and not engine.done():
            self._stopped = True
            engine.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([engine])

    def _raise_error(self, engine: asyncio.Task[None]) -> None:
        """Raise (once) what ended the engine, unless it was :meth:`_stop` that did."""
        if self._error_raised or (engine.cancelled() and self._stopped):
            return
        self._error_raised = True
        if engine.cancelled():  # by someone else, e.g. the event loop shutting down
            raise asyncio.CancelledError("the batch was cancelled")
        error = engine.exception()
        if error is not None:
            raise error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver(self, result: BatchResult) -> None:
        self._results.append(result)
        self._wake()


def run_batch(
    client: AsyncStarVideos,
    requests: Iterable[VideoRequest],
    *,
    journal: Journal | str | os.PathLike[str],
    download_dir: str | os.PathLike[str] | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    poll_policy: PollPolicy | None = None,
    retry_unknown: bool | Iterable[str] = False,
    max_downloads: int | None = None,
    on_status: StatusHook | None = None,
    timeout: float | None = None,
    coordinator: Coordinator | None = None,
) -> BatchRun:
    """Run or resume a batch; iterate over the returned :class:`BatchRun` for results.

    Arguments are checked here, before anything is sent; the work starts with
    ``async with`` or the first iteration. See the module docs for what is guaranteed.

    Args:
        client: The client to submit, wait and download with.
        requests: The requests; each gets a key (see :func:`request_keys`).
        journal: A :class:`Journal`, or its path (created when missing). Left open if
            you opened it, else opened and closed by the run.
        download_dir: Where completed videos go (created when missing), named from the
            task id; ``None`` downloads nothing.
        max_in_flight: At most this many tasks submitted but not finished at once.
        poll_policy: How often to ask for statuses; the client's by default.
        retry_unknown: Send again the creates whose outcome is unknown: ``True`` for
            all, or the keys of those to send again. Each may pay twice.
        max_downloads: Downloads at once; the client's ``max_concurrency`` by default.
        on_status: Called as ``on_status(key, video)`` with every status change of
            every task this run waits on (for live progress); must not block.
        timeout: Seconds after which the run stops submitting, waiting and
            downloading (``None``: no limit). The iteration then ends without an
            error: :attr:`BatchRun.timed_out` is true, ``summary.remaining`` counts the
            requests left without a result, and the journal keeps them for the next
            run (creates already on the wire get their answer recorded first).
        coordinator: The :class:`~starvideos_async.redis.RedisCoordinator` the batch
            must share its limits through, with every other client on the same key
            (web backends, other batches, in any process). The batch sends everything
            through ``client``, so it must be the client's own (made with
            ``AsyncStarVideos(coordinator=...)``): then the batch's creates, status
            calls and downloads share ``max_concurrency``, ``max_status_rate`` and the
            polling of each task. Another coordinator, or a client without one, is
            refused rather than run on limits that are not shared.

    Raises:
        ConfigurationError: ``coordinator`` is not the client's coordinator.
        InvalidRequestError: Two requests share a key, a ``retry_unknown`` key is not
            in the batch, or an argument is out of range.
        TypeError: An item of ``requests`` is not a :class:`VideoRequest`.
    """
    if coordinator is not None and coordinator is not client.coordinator:
        raise ConfigurationError(
            "coordinator",
            coordinator,
            "the client's own: make the client with AsyncStarVideos(coordinator=...)"
            if client.coordinator is None
            else "the coordinator the client was made with",
        )
    items = batch_items(requests)
    if not isinstance(journal, Journal):
        journal = Journal(journal)
    retry: bool | frozenset[str]
    if isinstance(retry_unknown, bool):
        retry = retry_unknown
    else:
        retry = frozenset([retry_unknown] if isinstance(retry_unknown, str) else retry_unknown)
        missing = retry - {item.key for item in items}
        if missing:
            raise InvalidRequestError("retry_unknown", sorted(missing), "keys of this batch")
    downloads = client.max_concurrency if max_downloads is None else max_downloads
    if poll_policy is not None and not isinstance(poll_policy, PollPolicy):
        raise InvalidRequestError("poll_policy", poll_policy, "a PollPolicy or None")
    check_timeout(timeout)
    return BatchRun(
        client,
        items,
        journal,
        None if download_dir is None else Path(os.fspath(download_dir)),
        _count("max_in_flight", max_in_flight),
        _count("max_downloads", downloads),
        poll_policy,
        retry,
        on_status,
        None if timeout is None else float(timeout),
    )
