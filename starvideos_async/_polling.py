"""One status scheduler per client: every ``wait()``/``watch()`` of the client is served here.

How it works:

* Every task being waited on is an ``Entry`` (one per status fetcher and task id), with
  the ``Subscription`` of each waiter (both in :mod:`._subscriptions`). Waiters on the
  same task share the entry, hence one status call per due time, and every one of them
  gets its answer.
* Entries wait in a heap by due time (the ``Plan``, also in :mod:`._subscriptions`).
  One driver task sleeps until the earliest one is due (one timer), then starts each
  due call as an asyncio task (the entry holds it; dropping the entry cancels it), at
  most ``max_in_flight`` at once. A call's answer goes to every subscriber; the entry
  is then due again when the most eager subscriber's policy says.
* A call's task, its answer delivered, goes on with the next call due by then, if any,
  instead of ending and leaving it to a new task. Under a steady stream of due calls a
  task per call would make the garbage collector run about ten times as often (each
  call's objects freed in one step of the event loop, the next call's made in the
  next: the collector's allocation count only rises), which cost a tenth of a status
  call's CPU. (Plain asyncio tasks, not an anyio task group: the SDK runs on asyncio
  through aiohttp, and a task group's spawn and cancel scope cost a third.)
* Status calls pass the client's rate gate: the client's own status call
  (``retrieve``) passes it right before it is sent, and retries by itself; a custom
  fetcher passes it here, and its errors are retried here by the same retry helper.

Lifetimes, which is where the races hide:

* The driver lives only while someone waits. When the last subscription of an entry
  closes (finished, cancelled, broken out of), the entry is dropped and its call in
  flight cancelled; when no entry is left the driver returns. A subscription arriving
  as it returns starts a new driver.
* Whatever goes wrong in the driver or in delivering an answer (a policy that raises, a
  bug) ends the waits concerned with that error rather than leaving them hanging.
* :meth:`Scheduler.aclose` ends every wait with :class:`ClientClosedError`, then
  cancels and awaits the driver and the calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Final

from . import _retry
from ._errors import ClientClosedError
from ._limits import RateGate
from ._models import TaskStatus, Video
from ._poll_policy import PollPolicy
from ._subscriptions import Entry, Plan, Sink, StatusFetcher, Subscription, Update, void

__all__ = ["Scheduler"]

logger: Final = logging.getLogger("starvideos_async")


class Scheduler:
    """Serves every wait of one client; see the module docstring.

    Args:
        gate: The client's status rate gate (``max_status_rate`` and 429 pauses).
        retry: How failures of custom fetchers are retried (the client's own status
            call retries by itself).
        max_in_flight: Status calls in flight at once.
    """

    def __init__(
        self, *, gate: RateGate, retry: _retry.RetryPolicy, max_in_flight: int = 8
    ) -> None:
        self._gate = gate
        self._retry = retry
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        # Entries by fetcher, then task id (no key tuple per wait: with a hundred thousand
        # waits, each would be one more object for every full pass of the garbage
        # collector to walk).
        self._entries: dict[StatusFetcher, dict[str, Entry]] = {}
        self._waiting = 0  # entries, over every fetcher
        self._plan = Plan()
        self._driver: asyncio.Task[None] | None = None
        self._drivers: set[asyncio.Task[None]] = set()  # (the calls are the entries')
        self._wakeup: asyncio.Future[None] | None = None  # the driver's sleep
        self._asleep_until = -math.inf  # when the driver's sleep ends by itself (awake)
        self._closed = False
        #: Status calls started (fetcher invocations), for benchmarks.
        self.status_calls = 0

    @property
    def waiting(self) -> int:
        """Number of tasks being polled now."""
        return self._waiting

    def subscribe(
        self,
        task_id: str,
        *,
        fetcher: StatusFetcher,
        gated: bool,
        policy: PollPolicy,
        origin: float | None,
        duration: int | None,
        sink: Sink,
        poll_now: bool,
        running_since: float | None = None,
        tag: object = None,
    ) -> Subscription:
        """Start (or join) polling ``task_id``; updates go to ``sink``.

        Args:
            task_id: The task.
            fetcher: Where statuses come from; with ``task_id``, the entry's key.
            gated: Whether ``fetcher`` passes the rate gate itself (the client's does).
            policy: This subscriber's poll policy.
            origin: Wall-clock time the task was created, or ``None`` when unknown
                (then taken from the first snapshot's ``created``).
            duration: Requested duration, for the policy's learning buckets.
            sink: Called (synchronously, from the event loop) with each snapshot, or
                the error that ends the wait. After a terminal snapshot or an error
                the subscription is over.
            poll_now: Poll at once (nothing is known of the task yet).
            running_since: Wall time the task was last known running, if known (for
                learning when the first answer is already final).
            tag: Stored on the subscription for the sink.

        Raises:
            ClientClosedError: The client was closed.
        """
        if self._closed:
            raise ClientClosedError("this StarVideos client is closed")
        subscription = Subscription(self, policy, origin, running_since, sink, tag)
        # Ask the policy before registering anything: if it raises, nothing is left over.
        delay = 0.0 if poll_now else subscription.next_delay(duration, time.time())
        entries = self._entries.setdefault(fetcher, {})
        entry = entries.get(task_id)
        if entry is None:
            entry = entries[task_id] = Entry(task_id, fetcher, gated, duration)
            self._waiting += 1
        subscription.entry = entry
        entry.subscribers.append(subscription)
        due = asyncio.get_running_loop().time() + delay
        if entry.call is None and (entry.plan is None or due < entry.plan[0]):
            self._schedule(entry, due)
        if self._driver is None or self._driver.done():
            self._start_driver()
        return subscription

    def offer(self, fetcher: StatusFetcher, task_id: str, answer: Callable[[], Video]) -> None:
        """A final status of ``task_id`` got elsewhere (another process's status call).

        Ends the waits on ``(fetcher, task_id)`` with it now, rather than at their next
        due time. ``answer`` is only called when someone here waits on the task and no
        call of theirs is in flight (that call's answer comes anyway); an answer that is
        not final, or that cannot be read, changes nothing.
        """
        entry = self._entries.get(fetcher, {}).get(task_id)
        if entry is None or entry.call is not None or self._closed:
            return
        try:
            video = answer()
        except Exception:  # (a malformed message: the next due poll asks the service)
            logger.debug("ignoring an unreadable status of %s shared by another process", task_id)
            return
        if not video.is_terminal:
            return
        try:
            self._deliver(entry, video)
        except Exception as exc:  # a policy raised: end these waits with its error
            self._end(entry, exc)

    async def aclose(self) -> None:
        """Stop the drivers and end every wait with :class:`ClientClosedError`.

        The waits end a slice per step of the event loop (a hundred thousand at once
        would hold it for over a tenth of a second); cancelled meanwhile, it ends the
        rest at once.
        """
        self._closed = True
        loop = asyncio.get_running_loop()
        drivers = [task for task in self._drivers if task.get_loop() is loop]
        for task in drivers:
            task.cancel()
        error = ClientClosedError("the StarVideos client was closed during the wait")
        entries = self._all_entries()  # (each let go of once ended: freed a slice at a time)
        try:
            while entries:
                self._end(entries.pop(), error)
                if entries and not len(entries) % _END_SLICE:
                    self._plan.cut(_END_SLICE)  # (each item would be void by the end)
                    await asyncio.sleep(0)
        finally:
            while entries:
                self._end(entries.pop(), error)
        if drivers:
            await asyncio.gather(*drivers, return_exceptions=True)

    # -- bookkeeping (synchronous: no await between a check and its action) ---------------

    def _all_entries(self) -> list[Entry]:
        return [entry for entries in self._entries.values() for entry in entries.values()]

    def _schedule(self, entry: Entry, due: float) -> None:
        """Plan ``entry``'s next call at ``due`` (its older plan, if any, is void)."""
        if self._plan.put(entry, due):  # first in the plan: start it or wake for it
            self._start_due()

    def _start_due(self) -> None:
        """Start the calls due now while there is room; wake the driver for the next.

        Called wherever room or a due call appears (a call ends, an entry is planned),
        so a place that frees is taken at once, without a turn of the driver.
        """
        if self._driver is None or self._closed:
            return  # (subscribe() starts a driver, which starts them)
        loop = self._driver.get_loop()
        now = loop.time()
        while self._in_flight < self._max_in_flight:
            entry = self._plan.take(now)
            if entry is None:
                break
            self._in_flight += 1
            entry.call = loop.create_task(self._call(entry), name="starvideos-async call")
        if self._next_wake() < self._asleep_until:
            self._wake()  # the driver sets its timer anew

    def _next_wake(self) -> float:
        """When the driver must look again: the next due time, once there is room."""
        return self._plan.next_due() if self._in_flight < self._max_in_flight else math.inf

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def unsubscribe(self, subscription: Subscription) -> None:
        entry, subscription.entry = subscription.entry, None
        if entry is not None and subscription in entry.subscribers:
            entry.subscribers.remove(subscription)
            if not entry.subscribers:
                self._drop(entry)

    def _drop(self, entry: Entry) -> None:
        """Stop polling ``entry``: forget it, cancel its call in flight."""
        if not entry.live:
            return
        entry.live = False
        entries = self._entries[entry.fetcher]
        del entries[entry.task_id]
        if not entries:
            del self._entries[entry.fetcher]
        self._waiting -= 1
        void(entry)
        if entry.call is not None:  # its place is free at once; the task ends in a turn
            entry.call.cancel()
            self._call_ended(entry, entry.call)
        entry.tell_ended()
        if not self._waiting:
            self._plan.clear()
            self._wake()  # the driver returns

    def _end(self, entry: Entry, update: Update) -> None:
        """Drop ``entry`` and give every subscriber its last update."""
        self._drop(entry)
        subscribers, entry.subscribers = entry.subscribers, []
        for subscriber in subscribers:
            subscriber.entry = None
        for subscriber in subscribers:
            _send(subscriber, update)

    # -- the driver and the calls -------------------------------------------------------

    def _start_driver(self) -> None:
        driver = asyncio.get_running_loop().create_task(
            self._run(), name="starvideos-async scheduler"
        )
        self._driver = driver
        self._drivers.add(driver)
        driver.add_done_callback(self._drivers.discard)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                self._start_due()
                await self._sleep(loop, self._next_wake())
        except Exception as exc:  # a bug: end the waits with it rather than hang them
            logger.exception("the status scheduler failed; ending every wait")
            for entry in self._all_entries():
                self._end(entry, exc)
        finally:
            # (nobody waits any more, or aclose(): a new subscriber starts a new driver)
            if self._driver is asyncio.current_task():
                self._driver = None

    async def _sleep(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        """Sleep until ``until`` (loop time), or until something changes."""
        wakeup = self._wakeup = loop.create_future()
        self._asleep_until = until
        timer = loop.call_at(until, _resolve, wakeup) if until < math.inf else None
        try:
            await wakeup
        finally:
            self._wakeup = None
            self._asleep_until = -math.inf  # awake: nothing to wake
            if timer is not None:
                timer.cancel()

    async def _call(self, entry: Entry | None) -> None:
        """Make ``entry``'s status call and deliver its answer; then the next one due.

        Cancelled (by :meth:`_drop`) when nobody waits for the entry of its call any more.
        """
        call = asyncio.current_task()
        while entry is not None:
            for subscriber in entry.subscribers:
                subscriber.polls += 1
            self.status_calls += 1
            try:
                if entry.gated:  # the client's own status call: gate and retries inside
                    outcome: Update = _checked(await entry.fetcher(entry.task_id))
                else:
                    outcome = await self._fetch_with_retries(entry)
            except Exception as exc:
                outcome = exc
            except asyncio.CancelledError:  # (by _drop: the entry is gone; else ask again later)
                self._call_ended(entry, call)
                if entry.live and not self._closed:
                    self._schedule(entry, asyncio.get_running_loop().time() + _AFTER_STRAY_CANCEL)
                raise
            if entry.call is call and entry.live:
                entry.call = None  # (its place stays with this task for the next call)
                try:
                    if isinstance(outcome, Video):
                        self._deliver(entry, outcome)
                    else:
                        self._end(entry, outcome)
                except Exception as exc:  # a policy raised: end these waits with its error
                    self._end(entry, exc)
                entry = self._take_due(call)
            else:
                entry = None

    def _take_due(self, call: asyncio.Task[None] | None) -> Entry | None:
        """The entry due now, handed to the running ``call`` (it keeps its place); or None.

        With nothing due, ``call`` gives up its place (and ends).
        """
        entry = self._plan.take(asyncio.get_running_loop().time()) if not self._closed else None
        if entry is None:
            self._in_flight -= 1
            self._start_due()
            return None
        entry.call = call
        return entry

    def _call_ended(self, entry: Entry, call: object) -> None:
        """Free the place of ``entry``'s call ``call``, once.

        When the call ends, or when :meth:`_drop` cancels it (a task cancelled before
        its first step never runs its coroutine).
        """
        if entry.call is call and call is not None:
            entry.call = None
            self._in_flight -= 1
            self._start_due()

    async def _fetch_with_retries(self, entry: Entry) -> Video:
        """A custom fetcher's call: through the rate gate, retried like the client's."""

        async def attempt() -> Video:
            await self._gate.wait()
            try:
                return _checked(await entry.fetcher(entry.task_id))
            except asyncio.CancelledError:
                if _cancel_requested():
                    raise
                # raised by the fetcher itself, nobody cancelled the call: a failure
                raise RuntimeError("the status fetcher raised CancelledError") from None

        return await _retry.retrying(
            attempt,
            policy=self._retry,
            method="GET",
            what=f"status of {entry.task_id}",
            on_rate_limit=self._gate.pause,
            foreign_errors=True,
        )

    # -- an answer ------------------------------------------------------------------------

    def _deliver(self, entry: Entry, video: Video) -> None:
        now_wall = time.time()
        subscribers = list(entry.subscribers)
        if video.created is not None:
            for subscriber in subscribers:
                if not subscriber.origin_known:
                    subscriber.origin = float(video.created)
                    subscriber.origin_known = True
        if video.is_terminal:
            if video.status is TaskStatus.COMPLETED:
                entry.tell_finished(now_wall)
            self._end(entry, video)
            return
        entry.tell_running(now_wall)
        for subscriber in subscribers:
            _send(subscriber, video)
        if entry.subscribers and entry.live:
            delay = min(s.next_delay(entry.duration, now_wall) for s in entry.subscribers)
            self._schedule(entry, asyncio.get_running_loop().time() + delay)


#: Waits ended in one step of the event loop when the client closes.
_END_SLICE = 1000

#: Seconds before a call that was cancelled by something else than the scheduler (a
#: fetcher raising CancelledError itself, on Python 3.10) is made again.
_AFTER_STRAY_CANCEL = 1.0


def _cancel_requested() -> bool:
    """Whether the current task is being cancelled (not a stray ``CancelledError``)."""
    task = asyncio.current_task()
    if sys.version_info >= (3, 11) and task is not None:
        return task.cancelling() > 0
    return True  # (3.10 cannot tell: taken as a cancellation)


def _checked(answer: object) -> Video:
    if not isinstance(answer, Video):
        raise TypeError(f"the status fetcher returned {type(answer).__name__}, not a Video")
    return answer


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _send(subscriber: Subscription, update: Update) -> None:
    """Hand one update to a subscriber; a failing sink must not starve the others."""
    try:
        subscriber.sink(subscriber, update)
    except Exception:
        logger.exception("a status subscriber failed to take an update")
