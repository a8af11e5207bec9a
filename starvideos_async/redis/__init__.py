"""Limits and polling shared by every process and host on one API key, through Redis.

Install with ``pip install 'starvideos-async[redis]'``, then give each client a
coordinator::

    from starvideos_async import AsyncStarVideos
    from starvideos_async.redis import RedisCoordinator

    coordinator = RedisCoordinator("redis://127.0.0.1:6379/0", lease=30.0)
    async with AsyncStarVideos(
        max_concurrency=16, max_status_rate=20, coordinator=coordinator
    ) as client:
        ...

Every client on the same Redis, API key and base URL origin shares ``max_concurrency``
(requests in flight), ``max_status_rate`` (status calls a second, and the pause after a
429) and the polling of each task (one status call per due time, whatever the number
of processes waiting on it). When Redis is down, clients go on under their own limits
and share again once it is back. See the deployment guide.
"""

from __future__ import annotations

from ._coordinator import RedisCoordinator

__all__ = ["RedisCoordinator"]
