"""examples/fastapi_backend.py as tests/test_redis.py serves it under ``uvicorn --workers 4``.

``uvicorn --factory fastapi_workers_app:create_app`` with ``examples/`` and ``tests/`` on
``PYTHONPATH``: the example's own app (its coordinator from ``$STARVIDEOS_REDIS_URL``),
made with the limits and poll interval of ``$APP_SETTINGS`` (JSON), plus ``GET /pid`` so
that the test can tell that every worker is up.
"""

from __future__ import annotations

import json
import os

from fastapi import FastAPI
from fastapi_backend import create_app as create_example_app

from starvideos_async import PollPolicy


def create_app() -> FastAPI:
    settings = json.loads(os.environ["APP_SETTINGS"])
    app = create_example_app(
        poll_policy=PollPolicy.fixed(settings["poll"]),
        max_concurrency=settings["max_concurrency"],
        max_status_rate=settings["max_status_rate"],
    )

    @app.get("/pid")
    async def pid() -> int:
        return os.getpid()

    return app
