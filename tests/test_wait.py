"""``wait()``, ``refresh()``, ``generate()``, ``as_completed()`` and ``wait_all()``.

Against the fake service (a task takes 30 ms) with a 5 ms poll interval; tasks that
must stay running are held by the fake and finished by the test at a chosen moment.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from starvideos_async import (
    APIConnectionError,
    AsyncStarVideos,
    InvalidRequestError,
    NotFoundError,
    PollPolicy,
    RateLimitError,
    RequestInfo,
    RetryPolicy,
    ServerError,
    TaskFailedError,
    TaskStatus,
    TaskTimeoutError,
    Video,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos

FAST = PollPolicy.fixed(0.005)
INFO = RequestInfo("GET", "/v1/result/x", "x")


async def held(client: AsyncStarVideos, fake: FakeStarVideos) -> VideoTask:
    """A new task that stays ``processing`` until the test finishes it."""
    task = await client.submit("a heron taking off")
    fake.hold(task.id)
    return task


def on_processing(action: Callable[[], object]) -> Callable[[Video], None]:
    """An ``on_status`` that does ``action`` once, when the task is first seen running."""
    done = False

    def callback(video: Video) -> None:
        nonlocal done
        if video.status is TaskStatus.PROCESSING and not done:
            done = True
            action()

    return callback


def values(videos: list[Video]) -> list[str]:
    return [video.status_value for video in videos]


def scripted(*statuses: str, calls: list[str] | None = None) -> Callable[[str], Any]:
    """A custom status fetcher answering the given statuses, then the last one forever."""
    answers = list(statuses)

    async def fetch(task_id: str) -> Video:
        if calls is not None:
            calls.append(task_id)
        status = answers.pop(0) if len(answers) > 1 else answers[0]
        completed = status == "completed"
        return Video(
            id=task_id,
            status=TaskStatus(status) if status in {s.value for s in TaskStatus} else status,
            video_url="https://files.example/v.mp4" if completed else None,
        )

    return fetch


# -- one task: the lifecycle -------------------------------------------------------------


async def test_wait_returns_the_completed_video_after_queued_and_processing(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    seen: list[Video] = []
    finish = on_processing(lambda: fake.complete(task.id))

    def on_status(video: Video) -> None:
        seen.append(video)
        finish(video)

    video = await task.wait(on_status=on_status)

    assert video.is_completed
    assert video.video_url == fake.file_url(task.id)
    assert values(seen) == ["queued", "processing", "completed"]
    assert task.latest is video
    assert task.status is TaskStatus.COMPLETED


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_status_sees_the_same_changes_as_watch(
    client: AsyncStarVideos, fake: FakeStarVideos, kind: str
) -> None:
    task = await held(client, fake)
    finish = on_processing(lambda: fake.complete(task.id))
    by_callback: list[Video] = []

    def sync_callback(video: Video) -> None:
        by_callback.append(video)
        finish(video)

    async def async_callback(video: Video) -> None:
        await asyncio.sleep(0)
        sync_callback(video)

    async def watch() -> list[Video]:
        return [video async for video in task.watch()]

    by_watch = asyncio.create_task(watch())
    with anyio.fail_after(5):
        await task.wait(on_status=sync_callback if kind == "sync" else async_callback)
        watched = await by_watch
    assert values(by_callback) == ["queued", "processing", "completed"]
    assert values(watched) == values(by_callback)


async def test_failed_task_raises_task_failed_error_with_the_video_and_its_reason(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    seen: list[Video] = []
    fail = on_processing(lambda: fake.fail(task.id, "content moderation: rejected"))

    def on_status(video: Video) -> None:
        seen.append(video)
        fail(video)

    with pytest.raises(TaskFailedError) as caught:
        await task.wait(on_status=on_status)

    assert values(seen) == ["queued", "processing", "failed"]
    assert caught.value.video.status is TaskStatus.FAILED
    assert caught.value.video is task.latest
    assert caught.value.error == "content moderation: rejected"
    assert caught.value.task_id == task.id
    assert "content moderation: rejected" in str(caught.value)


async def test_a_cancelled_task_is_a_failure_too(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    fake.set_status(task.id, "cancelled")
    with pytest.raises(TaskFailedError) as caught:
        await task.wait()
    assert caught.value.video.status is TaskStatus.CANCELLED


async def test_timeout_carries_the_latest_video_and_a_second_wait_succeeds(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    task = await held(client, fake)

    with pytest.raises(TaskTimeoutError) as caught:
        await task.wait(timeout=0.05)

    assert isinstance(caught.value, TimeoutError)
    assert caught.value.timeout == 0.05
    assert caught.value.task_id == task.id
    assert caught.value.video is task.latest
    assert caught.value.video is not None
    assert caught.value.video.status is TaskStatus.PROCESSING
    await polling_stopped()  # the timed-out wait stopped polling

    fake.complete(task.id)
    video = await task.wait(timeout=5)
    assert video.is_completed


@pytest.mark.parametrize("ending", ["completed", "failed"])
async def test_the_final_status_is_the_outcome_even_when_on_status_outlasts_the_timeout(
    client: AsyncStarVideos, fake: FakeStarVideos, ending: str
) -> None:
    """The task is over and wait() has its final Video: the timeout still bounds the
    wait (the slow on_status is cancelled), but the outcome is not a TaskTimeoutError."""
    task = await held(client, fake)
    handling: list[str] = []

    async def slow_on_the_final_status(video: Video) -> None:
        if video.is_terminal:
            handling.append("started")
            try:
                await asyncio.sleep(30)  # far past the timeout
            except asyncio.CancelledError:
                handling.append("cancelled")
                raise

    if ending == "completed":
        fake.complete(task.id)
    else:
        fake.fail(task.id, "content moderation: rejected")
    with anyio.fail_after(10):  # one-sided: the timeout, not on_status, ends the wait
        if ending == "completed":
            video = await task.wait(timeout=0.1, on_status=slow_on_the_final_status)
            assert video.is_completed
            assert video is task.latest
        else:
            with pytest.raises(TaskFailedError) as caught:
                await task.wait(timeout=0.1, on_status=slow_on_the_final_status)
            assert caught.value.video is task.latest
    assert handling == ["started", "cancelled"]


async def test_a_final_status_the_handle_saw_before_the_timeout_is_the_outcome(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    """The wait's own status call hangs, but the handle learned the task is over (here by
    refresh(); a snapshot can also arrive in the same instant as the timeout): the task
    does not "keep running", so no TaskTimeoutError."""
    task = await held(client, fake)
    fetching = asyncio.Event()

    async def stuck(task_id: str) -> Video:
        fetching.set()
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    wait = asyncio.ensure_future(task.wait(timeout=0.2, status_fetcher=stuck))
    await fetching.wait()
    fake.complete(task.id)
    final = await task.refresh()
    with anyio.fail_after(10):
        assert await wait is final


async def test_waiting_on_a_finished_task_answers_at_once_without_a_status_call(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await client.submit("a heron")
    video = await task.wait()
    calls = fake.counters["status"]
    seen: list[Video] = []

    assert await task.wait(on_status=seen.append) is video
    assert seen == [video]
    assert [v async for v in task.watch()] == [video]
    assert await client.wait_all([task]) == [video]
    assert fake.counters["status"] == calls


@pytest.mark.parametrize("timeout", [0, -1, math.nan, True, "5"])
async def test_a_bad_timeout_is_refused_before_any_call(
    client: AsyncStarVideos, fake: FakeStarVideos, timeout: Any
) -> None:
    with pytest.raises(InvalidRequestError, match="timeout"):
        await client.task("video_starvideos_1").wait(timeout=timeout)
    assert fake.counters["status"] == 0


async def test_an_exception_in_on_status_ends_the_wait_and_its_polling(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    task = await held(client, fake)

    def on_status(video: Video) -> None:
        if video.status is TaskStatus.PROCESSING:
            raise KeyError("my bug")

    with pytest.raises(KeyError, match="my bug"):
        await task.wait(on_status=on_status)
    calls = fake.counters["status"]
    await asyncio.sleep(0.03)
    assert fake.counters["status"] == calls
    await polling_stopped()


# -- statuses the SDK does not expect ------------------------------------------------------


async def test_an_unknown_status_is_kept_and_the_wait_goes_on(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    fake.set_status(task.id, "paused_for_review")
    seen: list[Video] = []

    with pytest.raises(TaskTimeoutError) as caught:
        await task.wait(timeout=0.05, on_status=seen.append)

    assert caught.value.video is not None
    assert caught.value.video.status == "paused_for_review"
    assert not caught.value.video.is_terminal
    assert values(seen) == ["queued", "paused_for_review"]

    fake.complete(task.id)
    assert (await task.wait(timeout=5)).is_completed


async def test_an_id_that_disappears_mid_wait_raises_not_found(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    with anyio.fail_after(5), pytest.raises(NotFoundError) as caught:
        await task.wait(on_status=on_processing(lambda: fake.remove(task.id)))
    assert caught.value.status_code == 404
    assert caught.value.task_id == task.id
    assert task.latest is not None
    assert task.latest.status is TaskStatus.PROCESSING


async def test_an_unknown_id_raises_not_found_after_one_call(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    with anyio.fail_after(5), pytest.raises(NotFoundError):
        await client.task("video_starvideos_404").wait()
    assert fake.counters["status"] == 1


# -- custom status fetchers ----------------------------------------------------------------


async def test_a_client_status_fetcher_replaces_http(fake: FakeStarVideos) -> None:
    calls: list[str] = []
    fetch = scripted("queued", "processing", "processing", "completed", calls=calls)
    async with fake.client(poll_policy=FAST, status_fetcher=fetch) as client:
        task = client.task("video_starvideos_42")
        seen: list[Video] = []
        video = await task.wait(on_status=seen.append)
        assert values(seen) == ["queued", "processing", "completed"]
        assert video.is_completed
        assert calls == ["video_starvideos_42"] * 4
        assert (await task.refresh()).is_completed
        [other] = await client.wait_all([client.task("video_starvideos_43")])
        assert other.id == "video_starvideos_43"
    assert fake.counters["status"] == 0


async def test_a_status_fetcher_per_wait_replaces_http_for_that_wait(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = client.task("video_starvideos_7")
    fetch = scripted("processing", "completed")
    assert (await task.wait(status_fetcher=fetch)).is_completed
    assert [v.status_value async for v in client.task("x").watch(status_fetcher=fetch)] == [
        "completed"
    ]
    [done] = [t async for t in client.as_completed([client.task("y")], status_fetcher=fetch)]
    assert done.status is TaskStatus.COMPLETED
    assert fake.counters["status"] == 0


def _errors() -> dict[str, BaseException]:
    return {
        "server error": ServerError("HTTP 503", request=INFO, status_code=503),
        "connection error": APIConnectionError("reset", request=INFO),
        "rate limit": RateLimitError("HTTP 429", request=INFO, retry_after=0.01),
    }


@pytest.mark.parametrize("name", list(_errors()))
async def test_retryable_errors_of_a_custom_fetcher_are_retried_then_surface_as_themselves(
    fake: FakeStarVideos, name: str
) -> None:
    error = _errors()[name]
    calls = 0

    async def flaky(task_id: str) -> Video:
        nonlocal calls
        calls += 1
        raise error

    retry = RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.001)
    async with fake.client(poll_policy=FAST, retry_policy=retry, status_fetcher=flaky) as client:
        with anyio.fail_after(5), pytest.raises(type(error)) as caught:
            await client.task("video_starvideos_1").wait()
    assert caught.value is error
    assert calls == 3  # the first try and two retries


async def test_a_custom_fetcher_recovering_within_its_retries_ends_the_wait_normally(
    fake: FakeStarVideos,
) -> None:
    answers: list[BaseException | str] = [_errors()["server error"], "processing"]
    answers += [_errors()["connection error"], _errors()["server error"], "completed"]

    async def flaky(task_id: str) -> Video:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return Video(id=task_id, status=TaskStatus(answer))

    retry = RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.001)
    async with fake.client(poll_policy=FAST, retry_policy=retry, status_fetcher=flaky) as client:
        with anyio.fail_after(5):
            assert (await client.task("video_starvideos_1").wait()).is_completed
    assert answers == []


# (A custom fetcher's own exceptions, a database error say, are retried per policy
# and then surface as themselves: tests/test_cancellation_safety.py.)
async def test_a_non_retryable_sdk_error_of_a_custom_fetcher_ends_the_wait_at_once(
    client: AsyncStarVideos,
) -> None:
    error = NotFoundError("HTTP 404", request=INFO, status_code=404)

    calls = 0

    async def broken(task_id: str) -> Video:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)) as caught:
        await client.task("video_starvideos_1").wait(status_fetcher=broken)
    assert caught.value is error
    assert calls == 1


async def test_a_fetcher_that_returns_no_video_is_a_type_error(
    client: AsyncStarVideos, sleeps: list[float]
) -> None:
    async def wrong(task_id: str) -> Any:
        return {"id": task_id, "status": "completed"}

    with pytest.raises(TypeError, match="dict, not a Video"):
        await client.task("video_starvideos_1").wait(status_fetcher=wrong)


# -- refresh and generate ------------------------------------------------------------------


async def test_refresh_is_one_status_call_that_updates_latest(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    task = await held(client, fake)
    assert task.status is TaskStatus.QUEUED
    await asyncio.sleep(0.01)  # past the fake's 3 ms in the queue
    video = await task.refresh()
    assert video.status is TaskStatus.PROCESSING
    assert task.latest is video
    assert fake.counters["status"] == 1


async def test_generate_submits_and_waits(client: AsyncStarVideos, fake: FakeStarVideos) -> None:
    seen: list[Video] = []
    video = await client.generate("a heron", duration=7, on_status=seen.append)
    assert video.is_completed
    assert fake.created == 1
    assert fake.tasks[video.id].duration == 7
    assert values(seen)[0] == "queued"
    assert values(seen)[-1] == "completed"


async def test_generate_timeout_names_the_task_that_still_runs(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    fake.processing_seconds = 10_000
    with pytest.raises(TaskTimeoutError) as caught:
        await client.generate("a heron", timeout=0.03)
    assert caught.value.task_id in fake.tasks


# -- many tasks ----------------------------------------------------------------------------


async def test_as_completed_yields_tasks_in_the_order_they_finish(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    first, second, third = [await held(client, fake) for _ in range(3)]
    fake.complete(second.id)
    order: list[VideoTask] = []
    with anyio.fail_after(5):
        async for task in client.as_completed([first, second, third]):
            order.append(task)
            if task is second:
                fake.fail(third.id, "no")
            elif task is third:
                fake.complete(first.id)
    assert order == [second, third, first]
    with pytest.raises(TaskFailedError):
        await third.wait()  # answered from latest, at once
    assert (await first.wait()).is_completed


async def test_as_completed_raises_an_error_that_ends_a_wait_and_stops_the_others(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    running = await held(client, fake)
    with pytest.raises(NotFoundError):
        async for _ in client.as_completed([running, client.task("video_starvideos_404")]):
            pass
    await asyncio.sleep(0)
    await polling_stopped()


async def test_wait_all_returns_videos_in_input_order(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    tasks = [await held(client, fake) for _ in range(4)]
    for task in reversed(tasks):
        fake.complete(task.id)
        await asyncio.sleep(0.01)
    with anyio.fail_after(5):
        videos = await client.wait_all(tasks)
    assert [v.id for v in videos] == [t.id for t in tasks]
    assert all(v.is_completed for v in videos)
    assert await client.wait_all([]) == []


async def test_wait_all_raises_the_first_failure_and_stops_waiting(
    client: AsyncStarVideos,
    fake: FakeStarVideos,
    polling_stopped: Callable[[], Awaitable[None]],
) -> None:
    done, failing, running = [await held(client, fake) for _ in range(3)]
    fake.complete(done.id)
    fake.fail(failing.id, "moderation")
    with pytest.raises(TaskFailedError) as caught:
        await client.wait_all([done, failing, running])
    assert caught.value.task_id == failing.id
    await polling_stopped()


async def test_wait_all_with_return_exceptions_puts_each_failure_in_its_place(
    client: AsyncStarVideos, fake: FakeStarVideos
) -> None:
    done, failing = [await held(client, fake) for _ in range(2)]
    fake.complete(done.id)
    fake.fail(failing.id, "moderation")
    gone = client.task("video_starvideos_404")
    with anyio.fail_after(5):
        results = await client.wait_all([done, failing, gone], return_exceptions=True)
    assert isinstance(results[0], Video)
    assert results[0].is_completed
    assert isinstance(results[1], TaskFailedError)
    assert results[1].error == "moderation"
    assert isinstance(results[2], NotFoundError)
