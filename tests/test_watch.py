"""``task.watch()``: one item per status change, in order, ending at a terminal status."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

import anyio
import pytest

from starvideos_async import (
    AsyncStarVideos,
    NotFoundError,
    PollPolicy,
    StatusStream,
    TaskStatus,
    Video,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos

FAST = PollPolicy.fixed(0.005)

pytestmark = pytest.mark.usefixtures("asyncio_stays_quiet")


async def held(client: AsyncStarVideos, fake: FakeStarVideos) -> VideoTask:
    """A new task that stays ``processing`` until the test finishes it."""
    task = await client.submit("a lighthouse in fog")
    fake.hold(task.id)
    return task


async def polls_of(fake: FakeStarVideos, task_id: str, more_than: int) -> None:
    """Until the fake has answered more than ``more_than`` status calls for the task."""
    with anyio.fail_after(5):
        while sum(r.task_id == task_id for r in fake.requests) <= more_than:
            await asyncio.sleep(0.002)


async def test_watch_yields_each_change_exactly_once_and_in_order(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    seen: list[Video] = []
    with anyio.fail_after(5):
        async for video in task.watch():
            seen.append(video)
            polls = fake.counters["status"]
            if video.status is TaskStatus.PROCESSING:
                await polls_of(fake, task.id, polls + 3)  # the same status, 3 more times
                fake.set_status(task.id, "upscaling")  # a status the SDK does not know
            elif video.status == "upscaling":
                await polls_of(fake, task.id, polls + 3)
                fake.complete(task.id)
    assert [v.status_value for v in seen] == ["queued", "processing", "upscaling", "completed"]
    assert isinstance(seen[2].status, str)
    assert fake.counters["status"] >= 8  # far more answers than changes
    assert task.latest is seen[-1]


async def test_watch_starts_with_the_newest_known_snapshot(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    stream = task.watch()
    assert await stream.__anext__() is task.latest  # the create answer, no call needed
    assert fake.counters["status"] == 0
    stream.close()


async def test_watch_of_a_handle_by_id_starts_with_the_first_answer(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    created = await held(client, fake)
    await asyncio.sleep(0.01)
    stream = client.task(created.id).watch()
    first = await stream.__anext__()
    assert first.status is TaskStatus.PROCESSING
    assert fake.counters["status"] == 1
    await stream.aclose()


async def test_watch_ends_after_a_terminal_status(client: AsyncStarVideos) -> None:
    task = await client.submit("a lighthouse")
    stream = task.watch()
    with anyio.fail_after(5):
        statuses = [video.status async for video in stream]
    assert statuses[-1] is TaskStatus.COMPLETED
    assert TaskStatus.COMPLETED not in statuses[:-1]
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_watch_raises_the_error_that_ends_it_then_ends(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    stream = task.watch()
    await stream.__anext__()
    fake.remove(task.id)
    with anyio.fail_after(5), pytest.raises(NotFoundError):
        async for _ in stream:
            pass
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_a_slow_consumer_still_gets_every_change_in_order(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    seen: list[str] = []
    with anyio.fail_after(5):
        async for video in task.watch():
            seen.append(video.status_value)
            if video.status is TaskStatus.PROCESSING:
                fake.set_status(task.id, "upscaling")
                await polls_of(fake, task.id, fake.counters["status"] + 2)
                fake.complete(task.id)
                # The stream polls on while its consumer is busy: latest follows.
                with anyio.fail_after(5):
                    while task.status is not TaskStatus.COMPLETED:
                        await asyncio.sleep(0.002)
    assert seen == ["queued", "processing", "upscaling", "completed"]


async def test_async_with_stops_the_polling_at_the_end_of_the_block(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    task = await held(client, fake)
    async with task.watch() as stream:
        async for video in stream:
            if video.status is TaskStatus.PROCESSING:
                break
    await polling_stopped()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()  # the kept stream is over


async def test_closing_a_stream_wakes_its_consumer_with_the_end(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    task = await held(client, fake)
    stream = task.watch()
    await stream.__anext__()  # queued
    with anyio.fail_after(5):
        await stream.__anext__()  # processing, then nothing changes
    consumer = asyncio.create_task(stream.__anext__())
    await asyncio.sleep(0.01)
    assert not consumer.done()
    stream.close()
    with anyio.fail_after(5), pytest.raises(StopAsyncIteration):
        await consumer
    await polling_stopped()


async def test_a_stream_has_one_consumer_at_a_time(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    stream = task.watch()
    await stream.__anext__()
    first = asyncio.create_task(stream.__anext__())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already being iterated"):
        await stream.__anext__()
    fake.complete(task.id)
    with anyio.fail_after(5):
        assert (await first).status is TaskStatus.COMPLETED


async def test_a_dropped_stream_stops_polling(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    task = await held(client, fake)
    stream = task.watch()
    await stream.__anext__()
    await polls_of(fake, task.id, 1)
    del stream
    gc.collect()
    await asyncio.sleep(0)  # the finaliser closes on the loop's next turn
    await polling_stopped()


async def test_watch_takes_its_own_poll_policy(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    stream = task.watch(poll_policy=PollPolicy.fixed(0.05))
    assert isinstance(stream, StatusStream)
    started = time.monotonic()
    await stream.__anext__()
    await asyncio.sleep(0.12)
    stream.close()
    elapsed = time.monotonic() - started  # 0.12 s, more on a loaded machine
    # one call per 50 ms at the most (timers may fire a little early), not the client's
    # 5 ms (~24 calls in 0.12 s)
    assert 1 <= fake.counters["status"] <= 2 + elapsed / 0.045
