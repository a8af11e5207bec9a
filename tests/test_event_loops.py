"""A client belongs to the event loop it first ran on; another loop gets a clear error.

Run as a user would: a script whose client outlives one ``asyncio.run()`` and is used
from a second, against the fake service served from a thread of its own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, threading

    from starvideos_async import AsyncStarVideos, WrongEventLoopError
    from starvideos_async.testing import FakeStarVideos

    ready, stop, box = threading.Event(), threading.Event(), {}

    def serve():
        async def main():
            async with FakeStarVideos() as fake:
                box["fake"] = fake
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.01)
        asyncio.run(main())

    server = threading.Thread(target=serve)
    server.start()
    ready.wait()
    fake = box["fake"]
    client = AsyncStarVideos(fake.api_key, base_url=fake.base_url)

    async def submit():
        return (await client.submit("a fox in snow")).id

    print("first:", asyncio.run(submit()))
    for attempt in ("second", "third"):
        try:
            asyncio.run(submit())
        except WrongEventLoopError as exc:
            print(attempt + ":", type(exc).__name__, "-", exc)
    print("creates:", fake.counters["create"])
    stop.set()
    server.join()
    """
)


def test_a_client_used_from_a_second_asyncio_run_raises_a_clear_error() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("first: video_starvideos_")
    for line in lines[1:3]:
        assert "WrongEventLoopError" in line
        assert "another event loop" in line
        assert "Create the client inside the coroutine" in line
    assert lines[3] == "creates: 1", "a request went out from the wrong loop"
    assert "Event loop is closed" not in done.stderr
    assert "Unclosed client session" not in done.stderr
