"""The shared limits one client uses: a limiter, a rate gate, a status fetcher.

Each one first does what the client would do alone (a local semaphore of
``max_concurrency`` slots, the local rate gate, the client's own status call), then the
shared step in Redis. When Redis is unavailable the shared step is skipped, so the
local limits remain and nothing waits on Redis.

Each is given ``link``, a function returning the client's link to Redis (made on first
use; it raises :class:`Unavailable` once the client is closed), and knows nothing else
of the client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Final

from starvideos_async._limits import RateGate
from starvideos_async._models import Video
from starvideos_async._serde import structure_video

from ._link import Link, Unavailable

__all__ = ["SharedGate", "SharedLimiter", "SharedPolls"]

#: A waiter for a slot asks again after this long even without a notice (a killed
#: holder's lease runs out without one).
_RECHECK: Final = 0.1
#: How long a refused acquire marks the slots as wanted (releases then notify).
_WANTED_MS: Final = 1000
#: How long a waiter for another process's status call waits before asking again.
_ANSWER_WAIT: Final = 1.0
#: How long a snapshot stays in Redis (a final one answers every later poll meanwhile).
_SNAPSHOT_MS: Final = 60_000


class SharedLimiter:
    """A slot of the local semaphore, then a lease on one of the shared slots."""

    def __init__(self, link: Callable[[], Link], slots: int) -> None:
        self._link = link
        self._slots = slots
        self._local = asyncio.Semaphore(slots)
        self._tokens: dict[asyncio.Task[Any] | None, str] = {}
        self._prefix = secrets.token_hex(8)
        self._numbers = itertools.count()

    def __repr__(self) -> str:
        return f"<SharedLimiter slots={self._slots}>"

    async def __aenter__(self) -> None:
        await self._local.acquire()
        try:
            token = await self._take()
        except BaseException:
            self._local.release()
            raise
        if token is not None:
            self._tokens[asyncio.current_task()] = token

    async def _take(self) -> str | None:
        """A shared slot's token, or ``None`` when Redis cannot be used now."""
        try:
            link = self._link()
        except Unavailable:
            return None
        token = f"{self._prefix}:{next(self._numbers)}"
        keys = [link.slots_key, link.waiting_key]
        args = [self._slots, link.lease_ms, token, _WANTED_MS]
        while True:
            try:
                if await link.run("ACQUIRE", keys, args):
                    link.holding(token)
                    return token
            except Unavailable:
                return None
            await link.slot_freed(_RECHECK)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._tokens.pop(asyncio.current_task(), None)
        try:
            if token is not None:
                link = self._link()
                link.held.discard(token)
                await link.run(
                    "RELEASE", [link.slots_key, link.waiting_key], [token, link.released_channel]
                )
        except Unavailable:
            pass  # its lease runs out
        finally:
            self._local.release()


class SharedGate(RateGate):
    """The local rate gate, then a pass of the shared one; a 429 pauses every process."""

    shared: ClassVar[bool] = True
    #: More slack than one process needs: a pass taken in Redis travels back to its
    #: process and on to the service, and several processes add more jitter.
    SLACK: ClassVar[float] = 0.05
    #: No local catching up: the shared cap's script spaces passes on Redis's clock, and
    #: a pass made up here would only be refused there (a round trip for nothing).
    CATCH_UP: ClassVar[bool] = False

    def __init__(self, rate: float | None, link: Callable[[], Link]) -> None:
        super().__init__(rate)
        self._link = link
        self._spacing_us = round(self._spacing * 1_000_000)
        self._refused_until = -math.inf  # (loop time) the shared gate's last "not before"
        self._turn = -math.inf  # (loop time) when the next caller of ready() may return

    def __repr__(self) -> str:
        return f"<SharedGate rate={self.rate}>"

    def delay(self) -> float:
        return max(super().delay(), self._refused_until - _now())

    async def ready(self) -> None:
        """As the local gate's, but callers return one pass apart, not all at once.

        A caller woken for a pass first takes a shared slot (a round trip to Redis), so
        the pass stays free meanwhile; without turns every other caller queued here
        would find it free too, take a slot, be refused the pass and give the slot
        back: two round trips each, for nothing.
        """
        async with self._queue:
            while (delay := max(self.delay(), self._turn - _now())) > 0:  # noqa: ASYNC110
                await asyncio.sleep(max(delay, 0.001))
            self._turn = _now() + self._spacing

    async def confirm(self) -> bool:
        try:
            link = self._link()
            wait_us = await link.run("RATE", [link.gate_key], [self._spacing_us])
        except Unavailable:
            return True  # the local gate let it through
        if wait_us <= 0:
            return True
        self._refused_until = _now() + wait_us / 1_000_000
        return False

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        try:
            link = self._link()
        except Unavailable:
            return
        link.soon(link.run("PAUSE", [link.gate_key], [round(seconds * 1_000_000)]))


class SharedPolls:
    """The client's status call, made once per due time for every process on the key.

    A snapshot fetched by another process since this one's last answer for the task,
    less than ``window`` seconds ago (or a final one), answers at once; otherwise the
    first process to ask claims the call and publishes its answer, and the others wait
    for it (or, if it does not come, ask again).
    """

    #: Tasks whose last answer's time is kept, at most (then forgotten all at once).
    MAX_TRACKED: ClassVar[int] = 200_000

    def __init__(
        self,
        link: Callable[[], Link],
        fetch: Callable[[str], Awaitable[Video]],
        window: float,
        offer: Callable[[str, Callable[[], Video]], None],
    ) -> None:
        self._link = link
        self._fetch = fetch
        self._offer = offer
        self._window_ms = round(window * 1000)
        self._me = secrets.token_hex(8)
        self._fetched: dict[str, int] = {}  # task id -> when its last answer was fetched

    def __repr__(self) -> str:
        return f"<shared polls of {self._fetch!r}>"

    async def __call__(self, task_id: str) -> Video:
        while True:
            try:
                link = self._link()
            except Unavailable:
                return await self._fetch(task_id)
            keys = [f"{link.prefix}:snapshot:{task_id}", f"{link.prefix}:claim:{task_id}"]
            answer = link.expect(task_id)  # before asking: the answer may come at once
            args = [self._window_ms, link.lease_ms, self._me, self._fetched.get(task_id, 0)]
            try:
                try:
                    reply = await link.run("CLAIM", keys, args)
                except Unavailable:
                    return await self._fetch(task_id)
                kind = _text(reply[0])
                if kind == "snapshot":
                    return self._seen(task_id, _text(reply[1]), int(reply[2]))
                if kind == "claimed":
                    return await self._call(link, keys, task_id)
                left = max(0.05, min(_ANSWER_WAIT, int(reply[1]) / 1000))
                done, _ = await asyncio.wait({answer}, timeout=left)
                published = answer.result() if done else None
                if published is not None and published[0] is not None:
                    return self._seen(task_id, published[0], published[1])
                # no answer (the claimant failed, died or was slow): ask again
            finally:
                link.forget(task_id, answer)

    def published(self, task_id: str, text: str) -> None:
        """An answer published by another process (or this one), for the client's waits.

        A final one ends them at once instead of at their next due time.
        """
        self._offer(task_id, lambda: _video(text))

    def _seen(self, task_id: str, text: str, fetched: int) -> Video:
        video = _video(text)
        self._remember(task_id, video, fetched)
        return video

    def _remember(self, task_id: str, video: Video, fetched: int) -> None:
        if video.is_terminal:
            self._fetched.pop(task_id, None)
        else:
            if len(self._fetched) >= self.MAX_TRACKED:
                self._fetched.clear()
            self._fetched[task_id] = fetched

    async def _call(self, link: Link, keys: list[str], task_id: str) -> Video:
        """The claimed status call; its answer (or its failure) told to everyone."""
        try:
            video = await self._fetch(task_id)
        except BaseException:  # the others ask again at once (in the background: cancelled)
            failed = json.dumps([task_id, None])
            args = [self._me, "", "R", _SNAPSHOT_MS, link.polled_channel, failed]
            link.soon(link.run("PUBLISH", keys, args))
            raise
        data = _wire(video)
        final = "F" if video.is_terminal else "R"
        message = json.dumps([task_id, data])
        args = [self._me, data, final, _SNAPSHOT_MS, link.polled_channel, message]
        try:
            fetched = int(await link.run("PUBLISH", keys, args))
        except Unavailable:  # (the others' waits time out and ask again)
            fetched = 0
        self._remember(task_id, video, fetched)
        return video


def _wire(video: Video) -> str:
    """``video`` as the service sent it (JSON), for the other processes."""
    data: dict[str, Any] = dict(video.extra)
    data.update(
        id=video.id,
        status=video.status_value,
        object=video.object,
        created=video.created,
        model=video.model,
        video_url=video.video_url,
        actualDuration=video.actual_duration,
        error=video.error,
    )
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


def _video(text: str) -> Video:
    return structure_video(json.loads(text))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now() -> float:
    return asyncio.get_running_loop().time()
