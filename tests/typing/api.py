"""The public API as users' type checkers see it: only type-checked (``mypy --strict``).

Never run: every function here is an example of ordinary use, with ``assert_type``
pinning what the checker must infer.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import anyio

import starvideos_async
from starvideos_async import (
    DEFAULT_BASE_URL,
    APIConnectionError,
    APIStatusError,
    AsyncStarVideos,
    BlockingIterator,
    BlockingVideoTask,
    Estimate,
    InvalidRequestError,
    Limiter,
    MalformedResponseError,
    PollPolicy,
    RateLimitError,
    RequestInfo,
    RetryPolicy,
    StarVideos,
    StarVideosError,
    StatusFetcher,
    SubmitManyError,
    TaskFailedError,
    TaskStatus,
    TaskTimeoutError,
    Timeout,
    Video,
    VideoRequest,
    VideoTask,
)
from starvideos_async.testing import FakeStarVideos, Fault

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


async def construct() -> None:
    timeout = Timeout(total=120.0, connect=5.0, read=30.0)
    async with AsyncStarVideos(
        "sk-...",
        base_url=DEFAULT_BASE_URL,
        max_concurrency=16,
        max_retries=3,
        timeout=timeout,
        poll_policy=PollPolicy.fixed(10.0),
    ) as client:
        assert_type(client, AsyncStarVideos)
    assert_type(client.closed, bool)
    AsyncStarVideos(timeout=30.0)
    AsyncStarVideos(timeout=None, retry_policy=RetryPolicy(max_retries=5, max_backoff=20.0))
    async with aiohttp.ClientSession() as session:
        shared = AsyncStarVideos(session=session)
        await shared.aclose()
    limiter: Limiter = anyio.CapacityLimiter(4)
    AsyncStarVideos(limiter=limiter, max_status_rate=5.0)


async def submit_and_read(client: AsyncStarVideos) -> None:
    task = await client.submit(
        "a neon city at night, slow push-in",
        duration=8,
        ratio="9:16",
        images=["https://cdn.example.com/first.png", "https://cdn.example.com/last.png"],
        model="starvideos_v3",
    )
    assert_type(task, VideoTask)
    assert_type(task.id, str)
    assert_type(task.client.poll_policy, PollPolicy)
    assert_type(task.status, TaskStatus | str | None)
    assert_type(task.latest, Video | None)
    assert_type(task.request, VideoRequest | None)

    again = await client.submit(VideoRequest(prompt="a fox", duration=3), max_retries=0)
    assert_type(again, VideoTask)

    refs = ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]
    o3 = await client.submit("a fox in snow", model="starvideos_o3", reference_images=refs)
    assert_type(o3, VideoTask)
    await client.submit(
        "a fox", model="starvideos_o3", first_image=refs[0], last_image=refs[1], ratio="1:1"
    )
    await client.submit(
        "a fox",
        model="starvideos_o3",
        reference_videos=("https://cdn.example.com/clip.mp4",),
        reference_images=refs[:1],
        duration=None,
        ratio=None,
    )
    o3_request = VideoRequest(
        prompt="a fox",
        model="starvideos_o3",
        reference_images=tuple(refs),
        first_image=None,
        last_image=None,
        reference_videos=(),
    )
    assert_type(o3_request.duration, int | None)
    assert_type(o3_request.ratio, str | None)
    assert_type(o3_request.reference_images, tuple[str, ...])
    assert_type(o3_request.first_image, str | None)
    assert_type(o3_request.last_image, str | None)
    assert_type(o3_request.reference_videos, tuple[str, ...])
    assert_type(o3_request.mode, str)
    assert_type(await client.generate("a fox", model="starvideos_o3", first_image=refs[0]), Video)

    video = await client.retrieve(task.id)
    assert_type(video, Video)
    assert_type(video.id, str)
    assert_type(video.status, TaskStatus | str)
    assert_type(video.status_value, str)
    assert_type(video.video_url, str | None)
    assert_type(video.actual_duration, float | None)
    assert_type(video.error, str | None)
    assert_type(video.created, int | None)
    assert_type(video.extra, Mapping[str, Any])
    assert_type(video.is_terminal, bool)
    if video.status is TaskStatus.COMPLETED and video.video_url is not None:
        url: str = video.video_url
        del url

    same = client.task("video_starvideos_1234567890")
    assert_type(same, VideoTask)
    assert_type(await same.refresh(), Video)


async def many(client: AsyncStarVideos) -> None:
    requests = [VideoRequest(prompt=f"shot {i}", ratio="16:9") for i in range(10)]
    tasks = await client.submit_many(requests)
    assert_type(tasks, list[VideoTask])
    mixed = await client.submit_many(requests, return_exceptions=True)
    assert_type(mixed, list[VideoTask | StarVideosError])
    try:
        await client.submit_many(requests, max_retries=1)
    except SubmitManyError as exc:
        # Generic in its task handles (an except clause cannot name them): they take the
        # type they are given, VideoTask from this client.
        created: list[VideoTask] = exc.tasks
        results: list[VideoTask | StarVideosError] = exc.results
        del created, results
        assert_type(exc.errors, dict[int, StarVideosError])
    blocking_error = SubmitManyError[BlockingVideoTask]([StarVideosError("no")])
    assert_type(blocking_error.tasks, list[BlockingVideoTask])

    videos = await client.wait_all(tasks)
    assert_type(videos, list[Video])
    outcomes = await client.wait_all(tasks, return_exceptions=True)
    assert_type(outcomes, list[Video | StarVideosError])
    async for done in client.as_completed(tasks):
        assert_type(done, VideoTask)


async def wait(task: VideoTask) -> None:
    seen: list[str] = []

    def show(video: Video) -> None:
        seen.append(video.status_value)

    try:
        video = await task.wait(timeout=600, poll_policy=PollPolicy.default(), on_status=show)
        assert_type(video, Video)
    except TaskFailedError as exc:
        assert_type(exc.video, Video)
        assert_type(exc.error, str | None)
        assert_type(exc.task_id, str)
    except TaskTimeoutError as exc:
        assert_type(exc.task_id, str)
        assert_type(exc.video, Video | None)
    async for snapshot in task.watch(poll_policy=PollPolicy.fixed(5.0)):
        assert_type(snapshot, Video)


async def errors(client: AsyncStarVideos) -> None:
    try:
        await client.submit("a fox")
    except InvalidRequestError as exc:
        assert_type(exc.field, str)
        assert_type(exc.value, object)
        value_error: ValueError = exc
        del value_error
    except RateLimitError as exc:
        assert_type(exc.retry_after, float | None)
        assert_type(exc.status_code, int)
    except APIStatusError as exc:
        assert_type(exc.status_code, int)
        assert_type(exc.body, object)
        assert_type(exc.headers, Mapping[str, str])
        assert_type(exc.message, str)
        assert_type(exc.request, RequestInfo)
    except APIConnectionError as exc:
        assert_type(exc.request_sent, bool)
        assert_type(exc.task_id, str | None)
    except MalformedResponseError as exc:
        assert_type(exc.task_id, str | None)
        assert_type(exc.body, str)
    except StarVideosError:
        pass


async def custom_fetcher() -> None:
    async def from_cache(task_id: str) -> Video:
        return Video(id=task_id, status=TaskStatus.PROCESSING)

    fetcher: StatusFetcher = from_cache
    async with AsyncStarVideos(status_fetcher=fetcher) as client:
        plain: StatusFetcher = client.retrieve
        del plain


async def with_the_fake() -> None:
    async with FakeStarVideos(time_scale=0.001) as fake:
        fake.inject(Fault.rate_limit("1"), endpoint="create")
        async with fake.client(max_retries=1) as client:
            assert_type(client, AsyncStarVideos)
            await client.submit("a fox")
        assert_type(fake.created, int)


async def estimate(task: VideoTask) -> None:
    guess = task.estimate()
    assert_type(guess, Estimate | None)
    if guess is not None:
        assert_type(guess.median, float)
        assert_type(guess.p90, float)
        assert_type(guess.median_at, datetime.datetime)
        assert_type(guess.p90_at, datetime.datetime)
        assert_type(guess.samples, int)
    assert_type(task.estimate(poll_policy=PollPolicy.adaptive()), Estimate | None)
    assert_type(PollPolicy.default().estimate(age=30.0, duration=5), Estimate | None)


def blocking() -> None:
    with StarVideos("sk-...", max_concurrency=4, poll_policy=PollPolicy.fixed(10.0)) as client:
        assert_type(client, StarVideos)
        task = client.submit("a fox in snow", duration=8, ratio="9:16")
        assert_type(task, BlockingVideoTask)
        o3 = client.submit(
            "a fox",
            model="starvideos_o3",
            reference_images=["https://cdn.example.com/a.png"],
            reference_videos=["https://cdn.example.com/clip.mp4"],
        )
        assert_type(o3, BlockingVideoTask)
        framed = client.generate(
            "a fox",
            model="starvideos_o3",
            first_image="https://cdn.example.com/a.png",
            last_image="https://cdn.example.com/b.png",
        )
        assert_type(framed, Video)
        assert_type(task.id, str)
        assert_type(task.status, TaskStatus | str | None)
        assert_type(task.latest, Video | None)
        assert_type(task.client.download(task, "videos/"), Path)
        owner = task.client
        assert isinstance(owner, StarVideos)  # what it is; typed by what a handle uses of it
        assert_type(owner, StarVideos)
        assert_type(task.wait(timeout=900), Video)
        assert_type(task.refresh(), Video)
        assert_type(task.estimate(), Estimate | None)
        assert_type(task.download("videos/"), Path)
        stream = task.watch(poll_policy=PollPolicy.fixed(5.0))
        assert_type(stream, BlockingIterator[Video])
        for snapshot in stream:
            assert_type(snapshot, Video)
        iterator: Iterator[Video] = task.watch()
        del iterator

        requests = [VideoRequest(prompt=f"shot {i}") for i in range(3)]
        tasks = client.submit_many(requests)
        assert_type(tasks, list[BlockingVideoTask])
        assert_type(
            client.submit_many(requests, return_exceptions=True),
            list[BlockingVideoTask | StarVideosError],
        )
        assert_type(client.wait_all(tasks), list[Video])
        assert_type(client.wait_all(tasks, return_exceptions=True), list[Video | StarVideosError])
        with client.as_completed(tasks) as finished:
            for done in finished:
                assert_type(done, BlockingVideoTask)
        assert_type(client.retrieve(task.id), Video)
        assert_type(client.task(task.id), BlockingVideoTask)
        video = client.generate("waves", timeout=900.0, on_status=print)
        assert_type(video, Video)
        assert_type(client.download(video, "videos/", overwrite=True), Path)
        assert_type(client.orphaned_tasks, list[BlockingVideoTask])
    assert_type(client.closed, bool)
    client.close()


assert_type(starvideos_async.__version__, str)
assert_type(TaskStatus.COMPLETED.is_terminal, bool)
