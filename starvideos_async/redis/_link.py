"""The connection to Redis of one event loop, and what keeps the shared state honest.

* :class:`Health`: whether Redis answers. The first failure of an outage logs one
  WARNING and makes every shared step give way to the local limits at once; a probe at
  most once a second finds Redis back (one INFO), and sharing resumes.
* :class:`Link`: one per coordinator and event loop (redis-py's connections belong to
  a loop). It runs the scripts (each bounded in time: a hung Redis costs a request at
  most ``timeout`` seconds; during an outage, only the request that probes for Redis's
  return pays it, the others go on at once), renews the leases of the slots its
  process holds, and listens on the namespace's channels: released slots wake one
  local waiter, published status answers resolve the local waiters on that task.
  Its background tasks live while clients use it; the last client to close stops them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from redis.exceptions import RedisError

from . import _scripts

if TYPE_CHECKING:
    import redis.asyncio
    from redis.commands.core import AsyncScript

__all__ = ["Health", "Link", "Published", "Unavailable"]

logger: Final = logging.getLogger("starvideos_async")
T = TypeVar("T")
#: A status answer published by the process that made the call: its JSON (``None``: the
#: call failed) and when it was fetched (Redis clock, ms).
Published = tuple[str | None, int]

#: What a failing Redis raises (a refused or dropped connection, a timeout, an error
#: answer): all of it means "go on without Redis".
_FAILURES: Final = (RedisError, OSError, asyncio.TimeoutError, EOFError)


class Unavailable(Exception):
    """Redis cannot be used now: the caller goes on under its local limits."""


class Health:
    """Whether Redis answers; one WARNING per outage, one probe a second while down."""

    #: Seconds between attempts while Redis is down.
    RETRY: Final = 1.0

    def __init__(self, where: str) -> None:
        self.where = where
        self.down_since: float | None = None
        self._up_since = -1.0
        self._next_try = 0.0

    def usable(self) -> bool:
        """Whether to try Redis now: always while up, once a second while down."""
        if self.down_since is None:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.RETRY  # this caller probes; the others stay local
        return True

    def failed(self, error: BaseException, started: float) -> None:
        """A step that began at ``started`` (monotonic) failed with ``error``."""
        now = time.monotonic()
        self._next_try = now + self.RETRY
        if self.down_since is not None or started < self._up_since:
            return  # this outage was told already (or the step began before the last one)
        self.down_since = now
        logger.warning(
            "Redis at %s is unreachable (%s: %s): limits and polling go on per process "
            "until it is back",
            self.where,
            type(error).__name__,
            error,
        )

    def ok(self) -> None:
        """A step succeeded."""
        if self.down_since is not None:
            now = time.monotonic()
            logger.info(
                "Redis at %s answers again after %.1f s: limits and polling are shared again",
                self.where,
                now - self.down_since,
            )
            self.down_since = None
            self._up_since = now


class Link:
    """One event loop's use of Redis for one namespace (see the module's docstring)."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        owned: bool,
        health: Health,
        prefix: str,
        lease: float,
        timeout: float,
    ) -> None:
        self.redis = redis
        self._owned = owned
        self.health = health
        self.prefix = prefix
        self.lease_ms = max(1, round(lease * 1000))
        self.timeout = timeout
        self.users = 0
        self.slots_key = f"{prefix}:slots"
        self.waiting_key = f"{prefix}:waiting"
        self.gate_key = f"{prefix}:gate"
        self.released_channel = f"{prefix}:released"
        self.polled_channel = f"{prefix}:polled"
        self.scripts: dict[str, AsyncScript] = {
            name: redis.register_script(getattr(_scripts, name)) for name in _scripts.__all__
        }
        self.held: set[str] = set()  # slot tokens this process holds (their leases renewed)
        self.round_trips = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._poll_waiters: dict[str, list[asyncio.Future[Published | None]]] = {}
        #: Told ``(task_id, answer)`` of every status answer published on the key.
        self.listeners: set[Callable[[str, str], None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[Any]] = set()

    # -- one step --------------------------------------------------------------------------

    async def run(self, name: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        """Run script ``name``; :class:`Unavailable` when Redis is down or fails now."""
        if not self.health.usable():
            raise Unavailable
        started = time.monotonic()
        self.round_trips += 1
        try:
            result = await _bounded(
                self.scripts[name](keys=keys, args=args),  # type: ignore[arg-type]
                self.timeout,
            )
        except _FAILURES as error:
            self.health.failed(error, started)
            raise Unavailable from None
        self.health.ok()
        return result

    def soon(self, step: Awaitable[object]) -> None:
        """Run ``step`` in the background (a step nobody needs to wait for)."""
        task = asyncio.ensure_future(step)
        self._chores.add(task)
        task.add_done_callback(self._chore_done)

    def _chore_done(self, task: asyncio.Task[Any]) -> None:
        self._chores.discard(task)
        if not task.cancelled():
            task.exception()  # Unavailable: Health has told (once)

    # -- slots -----------------------------------------------------------------------------

    def holding(self, token: str) -> None:
        """A slot was taken: keep its lease alive while held."""
        self.held.add(token)
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        """Every third of the lease, extend the leases of the slots held (one script)."""
        try:
            while self.held:
                await asyncio.sleep(self.lease_ms / 3000)
                if self.held:
                    with contextlib.suppress(Unavailable):
                        await self.run("RENEW", [self.slots_key], [self.lease_ms, *self.held])
        finally:
            self._renewer = None

    async def slot_freed(self, seconds: float) -> None:
        """Wait until a slot is released anywhere (one local waiter per notice) or a while."""
        self.listen()
        waiter = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            if not waiter.done():
                waiter.cancel()

    # -- polls -----------------------------------------------------------------------------

    def expect(self, task_id: str) -> asyncio.Future[Published | None]:
        """A future for the next status answer of ``task_id`` published by anyone."""
        self.listen()
        future: asyncio.Future[Published | None] = asyncio.get_running_loop().create_future()
        self._poll_waiters.setdefault(task_id, []).append(future)
        return future

    def forget(self, task_id: str, future: asyncio.Future[Published | None]) -> None:
        waiters = self._poll_waiters.get(task_id)
        if waiters is not None:
            with contextlib.suppress(ValueError):
                waiters.remove(future)
            if not waiters:
                del self._poll_waiters[task_id]

    # -- the channels ----------------------------------------------------------------------

    def listen(self) -> None:
        """Start listening on the channels, if not yet."""
        if self._listener is None:
            self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        """Deliver the channels' messages; resubscribe after a failure (once a second).

        Runs while clients use the link, so that Redis coming back is seen within a
        second even when nothing else asks it.
        """
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            started = time.monotonic()
            try:
                await _bounded(
                    pubsub.subscribe(self.released_channel, self.polled_channel), self.timeout
                )
                self.health.ok()  # (also how an idle process finds Redis back)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except _FAILURES as error:
                self.health.failed(error, started)
                self._wake_all()  # nobody waits on a channel that is gone
            finally:
                with contextlib.suppress(*_FAILURES):
                    await asyncio.shield(_bounded(pubsub.aclose(), self.timeout))
            await asyncio.sleep(Health.RETRY)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        if channel == self.released_channel:
            while self._slot_waiters:
                waiter = self._slot_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break
            return
        data = message["data"]
        try:
            fetched_at, _, text = (data.decode() if isinstance(data, bytes) else data).partition(
                " "
            )
            task_id, answer = json.loads(text)
            fetched = int(fetched_at)
        except (ValueError, TypeError, UnicodeDecodeError):
            # (not ours, e.g. another SDK version's: the listening must go on)
            logger.debug("ignoring an unreadable message on %s", channel)
            return
        for future in self._poll_waiters.pop(task_id, ()):
            if not future.done():
                future.set_result((answer, fetched))
        if answer is not None:
            for listener in list(self.listeners):
                try:
                    listener(task_id, answer)
                except Exception:  # (a client's waits; the listening must go on)
                    logger.exception("delivering a shared status of %s failed", task_id)

    def _wake_all(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        waiters, self._poll_waiters = self._poll_waiters, {}
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)

    # -- the end ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the background tasks, give back the slots held, close what is ours."""
        tasks = [t for t in (self._listener, self._renewer, *self._chores) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._listener = self._renewer = None
        self._wake_all()
        if self.held:
            held, self.held = list(self.held), set()
            for token in held:
                with contextlib.suppress(Unavailable):
                    await self.run(
                        "RELEASE",
                        [self.slots_key, self.waiting_key],
                        [token, self.released_channel],
                    )
        if self._owned:
            with contextlib.suppress(*_FAILURES):
                await self.redis.aclose()


if sys.version_info >= (3, 11):

    async def _bounded(step: Awaitable[T], seconds: float) -> T:
        async with asyncio.timeout(seconds):
            return await step

else:  # pragma: no cover - Python 3.10

    async def _bounded(step: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(step, seconds)
