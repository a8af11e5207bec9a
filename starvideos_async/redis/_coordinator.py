"""RedisCoordinator: the shared limits of every client on one key, kept in Redis."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from yarl import URL

from starvideos_async._config import check_seconds
from starvideos_async._errors import ConfigurationError
from starvideos_async._models import Video

from ._link import Health, Link, Unavailable
from ._shared import SharedGate, SharedLimiter, SharedPolls

__all__ = ["Coordinated", "RedisCoordinator"]


class RedisCoordinator:
    """Shares limits and polling between every client on one key, through Redis.

    Give the same coordinator settings (the same Redis) to the clients of every process
    and host; those that use the same API key and base URL origin share:

    * ``max_concurrency``: requests in flight across all of them (each slot a lease of
      ``lease`` seconds, renewed while held: a killed process's slots come back within
      ``lease``);
    * ``max_status_rate``: status calls per second across all of them; a 429 pauses
      all of them;
    * the polling of each task: one status call per due time, whoever waits on it.

    When Redis is unreachable, each client goes on under its own limits (one WARNING
    per outage) and shares again once Redis answers.

    Args:
        redis: A ``redis://`` (or ``rediss://``, ``unix://``) URL, or a
            ``redis.asyncio.Redis`` you made (never closed by the coordinator; use it
            on one event loop).
        lease: Seconds a slot stays taken when its process stops renewing it (killed,
            frozen, cut off).
        namespace: Keeps these limits apart from other coordinators on the same key.
        share_window: Seconds a status answer fetched by one process answers the polls
            of the others (a final answer always does).
        timeout: Seconds a Redis step may take before Redis is taken for down.

    Redis keys are named after a hash of the base URL origin and the API key; the key
    itself is never sent to Redis.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        lease: float = 30.0,
        namespace: str | None = None,
        share_window: float = 1.0,
        timeout: float = 1.0,
    ) -> None:
        check_seconds("lease", lease, 0.1)
        check_seconds("share_window", share_window, 0.0)
        check_seconds("timeout", timeout, 0.001)
        if namespace is not None and (
            not isinstance(namespace, str)
            or not namespace
            or any(c in namespace for c in "{} \t\r\n")
        ):
            raise ConfigurationError("namespace", namespace, "a word (no braces or spaces)")
        if isinstance(redis, str):
            try:
                url = URL(redis)
            except ValueError:
                url = None
            if url is None or url.scheme not in ("redis", "rediss", "unix"):
                raise ConfigurationError("redis", "<url>", "a redis://, rediss:// or unix:// URL")
            self._url: str | None = redis
            self._redis: Redis | None = None
            where = f"{url.host}:{url.port or 6379}{url.path}" if url.host else url.path
        elif isinstance(redis, Redis):
            self._url = None
            self._redis = redis
            kwargs = redis.connection_pool.connection_kwargs
            where = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}"
        else:
            raise ConfigurationError("redis", redis, "a Redis URL or a redis.asyncio.Redis")
        self.lease = float(lease)
        self.namespace = namespace
        self.share_window = float(share_window)
        self.timeout = float(timeout)
        self._health = Health(where)
        self._links: dict[tuple[asyncio.AbstractEventLoop, str], Link] = {}

    def __repr__(self) -> str:
        return f"<RedisCoordinator {self._health.where} lease={self.lease}>"

    @property
    def redis_available(self) -> bool:
        """Whether Redis answered the last step (``False`` during an outage)."""
        return self._health.down_since is None

    def coordinate(
        self,
        *,
        api_key: str,
        base_url: str,
        max_concurrency: int,
        max_status_rate: float | None,
    ) -> Coordinated:
        """The shared limits of one client (called by :class:`AsyncStarVideos`)."""
        origin = str(URL(base_url).origin())
        digest = hashlib.sha256(f"starvideos\0{origin}\0{api_key}".encode()).hexdigest()[:20]
        scope = f"{self.namespace}:" if self.namespace else ""
        return Coordinated(
            self, f"starvideos:{scope}{{{digest}}}", max_concurrency, max_status_rate
        )

    # -- links (one per event loop and namespace, while clients use it) ---------------------

    def _attach(self, prefix: str) -> Link:
        loop = asyncio.get_running_loop()
        for other, other_prefix in list(self._links):
            if other.is_closed():  # a loop that ended without closing its clients
                del self._links[other, other_prefix]
        link = self._links.get((loop, prefix))
        if link is None:
            owned = self._redis is None
            client = self._connect() if owned else self._redis
            assert client is not None  # noqa: S101
            link = Link(
                client,
                owned=owned,
                health=self._health,
                prefix=prefix,
                lease=self.lease,
                timeout=self.timeout,
            )
            self._links[loop, prefix] = link
        link.users += 1
        link.listen()
        return link

    async def _detach(self, link: Link) -> None:
        link.users -= 1
        if link.users == 0:
            for key, value in list(self._links.items()):
                if value is link:
                    del self._links[key]
            await link.aclose()

    def _connect(self) -> Redis:
        assert self._url is not None  # noqa: S101
        return Redis.from_url(
            self._url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            # One retry at once, on a new connection: after a restart of Redis each pooled
            # connection fails once (closed by the server) though Redis answers; a
            # second failure is an outage (no waiting on retries).
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )


class Coordinated:
    """One client's shared limits (what :meth:`RedisCoordinator.coordinate` returns)."""

    def __init__(
        self,
        coordinator: RedisCoordinator,
        prefix: str,
        max_concurrency: int,
        max_status_rate: float | None,
    ) -> None:
        self._coordinator = coordinator
        self.prefix = prefix
        self.limiter = SharedLimiter(self.link, max_concurrency)
        self.gate: SharedGate = SharedGate(max_status_rate, self.link)
        self._link: Link | None = None
        self._closed = False
        self._listeners: list[Callable[[str, str], None]] = []  # (of the shared polls)

    def link(self) -> Link:
        """This client's link to Redis (made on first use, on the client's loop)."""
        if self._link is None:
            if self._closed:
                raise Unavailable
            self._link = self._coordinator._attach(self.prefix)
            self._link.listeners.update(self._listeners)
        return self._link

    def share_polls(
        self,
        fetch: Callable[[str], Awaitable[Video]],
        offer: Callable[[str, Callable[[], Video]], None],
    ) -> Callable[[str], Awaitable[Video]]:
        polls = SharedPolls(self.link, fetch, self._coordinator.share_window, offer)
        self._listeners.append(polls.published)
        if self._link is not None:
            self._link.listeners.add(polls.published)
        return polls

    async def aclose(self) -> None:
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            link.listeners.difference_update(self._listeners)
            await self._coordinator._detach(link)
