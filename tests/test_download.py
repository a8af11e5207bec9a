"""Downloads: byte-identical files, resume with Range, no key on the file host, safe names."""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from starvideos_async import (
    APIConnectionError,
    APIStatusError,
    AsyncStarVideos,
    InvalidRequestError,
    MalformedResponseError,
    PollPolicy,
    ResultExpiredError,
    TaskFailedError,
    TaskStatus,
    Video,
    VideoRequest,
    VideoTask,
)
from starvideos_async.batch import run_batch
from starvideos_async.testing import FakeStarVideos, Fault

SIZE = 256 * 1024  # the fake's default video_size


# -- fixtures -------------------------------------------------------------------------


class Host:
    """A scripted file host on its own origin: step ``i`` answers request ``i``."""

    def __init__(self, payload: bytes, *steps: Callable[..., Awaitable[web.StreamResponse]]):
        self.payload = payload
        self.steps = steps or (serve,)
        self.requests: list[CIMultiDict[str]] = []
        self.release = asyncio.Event()
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.headers.copy())
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        return await step(self, request)

    def url(self, path: str = "/v.mp4") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))


def _offset(request: web.Request) -> int:
    spec = request.headers.get("Range", "bytes=0-")
    return int(spec.removeprefix("bytes=").rstrip("-"))


async def serve(host: Host, request: web.Request) -> web.StreamResponse:
    """Serve the payload, honouring ``Range: bytes=N-``."""
    start = _offset(request)
    if start == 0 and "Range" not in request.headers:
        return web.Response(body=host.payload, content_type="video/mp4")
    total = len(host.payload)
    return web.Response(
        status=206,
        body=host.payload[start:],
        headers={"Content-Range": f"bytes {start}-{total - 1}/{total}"},
        content_type="video/mp4",
    )


async def ignore_range(host: Host, request: web.Request) -> web.StreamResponse:
    """A host without Range support: always the whole file with 200."""
    return web.Response(body=host.payload, content_type="video/mp4")


def drop_after(nbytes: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Announce the rest of the file from the requested offset, send ``nbytes``, hang up."""

    async def step(host: Host, request: web.Request) -> web.StreamResponse:
        start = _offset(request)
        response = web.StreamResponse(status=206 if start else 200)
        if start:
            total = len(host.payload)
            response.headers["Content-Range"] = f"bytes {start}-{total - 1}/{total}"
        response.content_length = len(host.payload) - start
        await response.prepare(request)
        await response.write(host.payload[start : start + nbytes])
        if request.transport is not None:
            request.transport.close()
        return response

    return step


def partial(start: int, end: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A well-formed 206 for ``start..end`` whatever was asked."""

    async def step(host: Host, request: web.Request) -> web.StreamResponse:
        total = len(host.payload)
        return web.Response(
            status=206,
            body=host.payload[start : end + 1],
            headers={"Content-Range": f"bytes {start}-{end}/{total}"},
        )

    return step


def stall_after(nbytes: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Send ``nbytes`` of the file, then nothing until the test ends."""

    async def step(host: Host, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(host.payload)
        await response.prepare(request)
        await response.write(host.payload[:nbytes])
        await host.release.wait()
        return response

    return step


@pytest.fixture
def hosts() -> list[Host]:
    return []


@pytest.fixture
async def fake(fake: FakeStarVideos, hosts: list[Host]) -> AsyncIterator[FakeStarVideos]:
    """The conftest fake; afterwards, no file request of the test carried a key."""
    yield fake
    files = [r for r in fake.requests if r.endpoint == "file"]
    assert all("Authorization" not in r.headers for r in files)
    for host in hosts:
        assert all("Authorization" not in headers for headers in host.requests)


@pytest.fixture
async def client(fake: FakeStarVideos) -> AsyncIterator[object]:
    async with fake.client() as client:
        yield client


@pytest.fixture
async def start_host(hosts: list[Host]) -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    servers: list[TestServer] = []

    async def start(host: Host, path: str = "/{tail:.*}") -> Host:
        app = web.Application()
        app.router.add_get(path, host.handle)
        host.server = TestServer(app, host="127.0.0.1")
        await host.server.start_server()
        servers.append(host.server)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.release.set()
    for server in servers:
        await server.close()


@pytest.fixture(autouse=True)
def delays(sleeps: list[float]) -> list[float]:
    """Retry waits, recorded instead of slept (every test here)."""
    return sleeps


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


async def finished(fake: FakeStarVideos, client) -> Video:
    task = fake.create_task()
    fake.complete(task.id)
    video: Video = await client.retrieve(task.id)
    assert video.video_url is not None
    return video


def file_requests(fake: FakeStarVideos):
    return [r for r in fake.requests if r.endpoint == "file"]


# -- the happy path ------------------------------------------------------------------


@pytest.mark.parametrize("given", ["video", "task", "task_with_stale_latest", "id"])
async def test_downloads_identical_bytes_into_folder_named_from_task_id(
    fake, client, folder, given
):
    video = await finished(fake, client)
    item: Video | VideoTask | str = {
        "video": video,
        "task": VideoTask(client, video.id, latest=video),
        "task_with_stale_latest": VideoTask(
            client, video.id, latest=attrs.evolve(video, status="processing", video_url=None)
        ),
        "id": video.id,
    }[given]

    path = await client.download(item, folder)

    assert path == folder / f"{video.id}.mp4"
    assert path.read_bytes() == fake.video_bytes(video.id)
    assert os.listdir(folder) == [path.name]
    if isinstance(item, VideoTask):
        assert item.latest is not None
        assert item.latest.is_completed


async def test_dest_file_path_is_written_exactly_there(fake, client, folder):
    video = await finished(fake, client)
    path = await client.download(video, folder / "mine.bin")
    assert path == folder / "mine.bin"
    assert path.read_bytes() == fake.video_bytes(video.id)
    assert os.listdir(folder) == ["mine.bin"]


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        ("missing/clip.mp4", "missing/clip.mp4"),
        ("missing/", "missing/{id}.mp4"),
        ("a/b/c/", "a/b/c/{id}.mp4"),
        ("a/b/clip.mp4", "a/b/clip.mp4"),
    ],
)
async def test_missing_folders_are_created_parents_too(fake, client, folder, dest, expected):
    video = await finished(fake, client)
    path = await client.download(video, os.path.join(folder, dest))
    assert path == folder / expected.format(id=video.id)
    assert path.read_bytes() == fake.video_bytes(video.id)


@pytest.mark.parametrize("dest", ["a_file/clip.mp4", "a_file/", "a_file/deeper/"])
async def test_a_file_where_a_folder_must_be_fails_before_downloading(fake, client, folder, dest):
    video = await finished(fake, client)
    (folder / "a_file").write_bytes(b"not a folder")
    with pytest.raises(NotADirectoryError):
        await client.download(video, os.path.join(folder, dest))
    assert file_requests(fake) == []
    assert os.listdir(folder) == ["a_file"]


async def test_existing_file_raises_before_downloading_without_overwrite(fake, client, folder):
    video = await finished(fake, client)
    existing = folder / f"{video.id}.mp4"
    existing.write_bytes(b"keep me")

    with pytest.raises(FileExistsError):
        await client.download(video, folder)

    assert existing.read_bytes() == b"keep me"
    assert file_requests(fake) == []
    assert os.listdir(folder) == [existing.name]


async def test_overwrite_replaces_existing_file(fake, client, folder):
    video = await finished(fake, client)
    existing = folder / "clip.mp4"
    existing.write_bytes(b"old")

    path = await client.download(video, existing, overwrite=True)

    assert path.read_bytes() == fake.video_bytes(video.id)
    assert os.listdir(folder) == ["clip.mp4"]


async def test_file_appearing_during_download_is_not_replaced(fake, client, folder):
    video = await finished(fake, client)
    target = folder / f"{video.id}.mp4"

    def progress(done: int, total: int | None) -> None:
        if not target.exists():
            target.write_bytes(b"written by someone else")

    with pytest.raises(FileExistsError):
        await client.download(video, folder, on_progress=progress)

    assert target.read_bytes() == b"written by someone else"
    assert os.listdir(folder) == [target.name]


async def test_long_destination_name_gets_a_short_temporary_name(fake, client, folder):
    video = await finished(fake, client)
    name = "\U0001f3ac" * 60 + ".mp4"  # 244 bytes: a longer temporary name would not fit
    path = await client.download(video, folder / name)
    assert path.read_bytes() == fake.video_bytes(video.id)
    assert os.listdir(folder) == [name]


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_progress_increases_and_ends_at_total(fake, client, folder, style):
    video = await finished(fake, client)
    fake.inject(Fault.drop_after(100_000), endpoint="file")  # a resume too
    seen: list[tuple[int, int | None]] = []

    def sync_progress(done: int, total: int | None) -> None:
        seen.append((done, total))

    async def async_progress(done: int, total: int | None) -> None:
        await asyncio.sleep(0)
        seen.append((done, total))

    progress = sync_progress if style == "sync" else async_progress
    await client.download(video, folder, on_progress=progress)

    done = [d for d, _ in seen]
    assert len(seen) >= 4
    assert done == sorted(done)
    assert all(total == SIZE for _, total in seen)
    assert seen[-1] == (SIZE, SIZE)


async def test_concurrent_downloads_into_one_folder(fake, client, folder):
    videos = [await finished(fake, client) for _ in range(6)]
    paths: list[object] = []

    async def one(video: Video) -> None:
        paths.append(await client.download(video, folder))

    async with anyio.create_task_group() as group:
        for video in videos:
            group.start_soon(one, video)

    assert sorted(os.listdir(folder)) == sorted(f"{v.id}.mp4" for v in videos)
    for video in videos:
        assert (folder / f"{video.id}.mp4").read_bytes() == fake.video_bytes(video.id)


# -- which videos can be downloaded -----------------------------------------------------


@pytest.mark.parametrize("given", ["video", "task", "id"])
@pytest.mark.parametrize(
    ("make", "error"),
    [("processing", InvalidRequestError), ("failed", TaskFailedError)],
)
async def test_unfinished_or_failed_task_is_refused(fake, client, folder, given, make, error):
    task = fake.create_task()
    if make == "failed":
        fake.fail(task.id, "moderated")
    else:
        fake.set_status(task.id, "processing")
    video = await client.retrieve(task.id)
    item = {"video": video, "task": VideoTask(client, task.id), "id": task.id}[given]

    with pytest.raises(error, match=make):
        await client.download(item, folder)

    assert file_requests(fake) == []
    assert os.listdir(folder) == []


async def test_not_a_video_is_a_type_error(client, folder):
    with pytest.raises(TypeError, match="Video, a VideoTask or a task id"):
        await client.download(42, folder)


async def test_non_http_video_url_is_malformed(fake, client, folder):
    video = await finished(fake, client)
    with pytest.raises(MalformedResponseError, match="video_url"):
        await client.download(attrs.evolve(video, video_url="file:///etc/passwd"), folder)
    assert os.listdir(folder) == []


# -- resuming and retrying ------------------------------------------------------------


async def test_dropped_connection_resumes_with_range(fake, client, folder, delays):
    video = await finished(fake, client)
    fake.inject(Fault.drop_after(100_000), endpoint="file")

    path = await client.download(video, folder)

    assert path.read_bytes() == fake.video_bytes(video.id)
    first, second = file_requests(fake)
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=100000-"
    assert second.headers["If-Range"] == first_etag(fake, video.id)
    assert second.status == 206
    assert len(delays) == 1
    assert os.listdir(folder) == [path.name]


def first_etag(fake: FakeStarVideos, task_id: str) -> str:
    task = fake.tasks[task_id]
    return f'"{task.token}-{SIZE}"'


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        (Fault.status(503), None),
        (Fault.html(502), None),
        (Fault.rate_limit("3"), [3.0]),
        (Fault.drop_after(0), None),
    ],
)
async def test_transient_file_host_errors_are_retried(fake, client, folder, delays, fault, waits):
    video = await finished(fake, client)
    fake.inject(fault, endpoint="file")

    path = await client.download(video, folder)

    assert path.read_bytes() == fake.video_bytes(video.id)
    assert len(file_requests(fake)) == 2
    assert len(delays) == 1
    if waits is not None:
        assert delays == waits


async def test_connection_dropped_before_any_answer_is_retried(fake, client, folder):
    video = await finished(fake, client)
    fake.inject(Fault.drop_connection(), endpoint="file", times=3)

    path = await client.download(video, folder)

    assert path.read_bytes() == fake.video_bytes(video.id)


async def test_retries_give_up_per_policy_without_leaving_files(fake, client, folder, delays):
    video = await finished(fake, client)
    fake.inject(Fault.drop_after(0), endpoint="file", times=None)

    with pytest.raises(APIConnectionError, match="file"):
        await client.download(video, folder)

    assert len(file_requests(fake)) == 3  # the default max_retries=2
    assert len(delays) == 2
    assert os.listdir(folder) == []


async def test_client_error_status_is_not_retried(fake, client, folder, delays):
    video = await finished(fake, client)
    fake.inject(Fault.status(400), endpoint="file")

    with pytest.raises(APIStatusError) as caught:
        await client.download(video, folder)

    assert caught.value.status_code == 400
    assert "token" not in str(caught.value)  # the presigned query stays out of errors
    assert delays == []
    assert os.listdir(folder) == []


async def test_progress_made_between_drops_resets_the_retry_count(fake, client, folder, delays):
    video = await finished(fake, client)
    fake.inject(Fault.drop_after(40_000), endpoint="file", times=5)  # > max_retries drops

    path = await client.download(video, folder)

    assert path.read_bytes() == fake.video_bytes(video.id)
    ranges = [r.headers.get("Range") for r in file_requests(fake)]
    assert ranges == [None, *(f"bytes={40_000 * n}-" for n in range(1, 6))]


async def test_host_ignoring_range_restarts_from_zero(fake, client, folder, start_host):
    video = await finished(fake, client)
    host = await start_host(Host(fake.video_bytes(video.id), drop_after(50_000), ignore_range))

    path = await client.download(attrs.evolve(video, video_url=host.url()), folder)

    assert path.read_bytes() == host.payload
    assert [h.get("Range") for h in host.requests] == [None, "bytes=50000-"]


async def test_short_partial_body_is_resumed_not_accepted(fake, client, folder, start_host):
    video = await finished(fake, client)
    host = await start_host(Host(fake.video_bytes(video.id), partial(0, 99_999), serve))

    path = await client.download(attrs.evolve(video, video_url=host.url()), folder)

    assert path.read_bytes() == host.payload
    assert [h.get("Range") for h in host.requests] == [None, "bytes=100000-"]


async def test_mismatched_content_range_starts_over(fake, client, folder, start_host):
    video = await finished(fake, client)
    host = await start_host(
        Host(fake.video_bytes(video.id), drop_after(50_000), partial(0, 9_999), serve)
    )

    path = await client.download(attrs.evolve(video, video_url=host.url()), folder)

    assert path.read_bytes() == host.payload
    assert [h.get("Range") for h in host.requests] == [None, "bytes=50000-", None]


# -- the key never reaches the file host -------------------------------------------------


async def test_file_host_never_receives_authorization(fake, client, folder):
    video = await finished(fake, client)
    await client.download(video, folder)

    (request,) = file_requests(fake)
    assert "Authorization" not in request.headers
    assert request.status == 200
    api = [r for r in fake.requests if r.endpoint == "status"]
    assert api
    assert all(r.headers["Authorization"] == f"Bearer {fake.api_key}" for r in api)


async def test_redirect_to_another_origin_carries_no_key(fake, client, folder, start_host):
    video = await finished(fake, client)
    target = video.video_url

    async def redirect(host: Host, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(target)

    host = await start_host(Host(b"", redirect))

    path = await client.download(attrs.evolve(video, video_url=host.url()), folder)

    assert path.read_bytes() == fake.video_bytes(video.id)
    (hop,) = host.requests
    assert "Authorization" not in hop
    (request,) = file_requests(fake)
    assert "Authorization" not in request.headers
    assert request.host != hop["Host"]


# -- expired result URLs --------------------------------------------------------------


async def test_expired_url_is_refreshed_from_the_service(fake, client, folder):
    video = await finished(fake, client)
    stale = attrs.evolve(video, video_url=video.video_url.replace("token=", "token=old"))
    queries = fake.counters["status"]

    path = await client.download(stale, folder)

    assert path.read_bytes() == fake.video_bytes(video.id)
    assert [r.status for r in file_requests(fake)] == [403, 200]
    assert fake.counters["status"] == queries + 1


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_expired_url_without_fresh_one_raises_result_expired(fake, client, folder, status):
    video = await finished(fake, client)
    fake.expire(video.id, status=status)
    queries = fake.counters["status"]

    with pytest.raises(ResultExpiredError) as caught:
        await client.download(video, folder)

    assert caught.value.task_id == video.id
    assert caught.value.status_code == status
    assert fake.counters["status"] == queries + 1
    assert len(file_requests(fake)) == 1
    assert os.listdir(folder) == []


async def test_task_gone_from_service_is_result_expired(fake, client, folder):
    video = await finished(fake, client)
    fake.remove(video.id)
    with pytest.raises(ResultExpiredError) as caught:
        await client.download(video, folder)
    assert caught.value.status_code == 404


async def test_completed_without_url_is_requeried_once(fake, client, folder):
    video = await finished(fake, client)

    path = await client.download(attrs.evolve(video, video_url=None), folder)

    assert path.read_bytes() == fake.video_bytes(video.id)


async def test_completed_without_url_on_service_raises_result_expired(fake, client, folder):
    task = fake.create_task()
    fake.complete(task.id, video_url=None)
    video = await client.retrieve(task.id)
    queries = fake.counters["status"]

    with pytest.raises(ResultExpiredError) as caught:
        await client.download(video, folder)

    assert caught.value.status_code is None
    assert fake.counters["status"] == queries + 1
    assert file_requests(fake) == []
    assert os.listdir(folder) == []


# -- temporary files ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel_scope", "task_cancel"])
async def test_cancelled_download_leaves_no_temporary_file(
    fake, client, folder, start_host, monkeypatch, how
):
    video = await finished(fake, client)
    host = await start_host(Host(fake.video_bytes(video.id), stall_after(100_000)))
    stalled = attrs.evolve(video, video_url=host.url())
    got_data = asyncio.Event()
    part_seen: list[str] = []

    def progress(done: int, total: int | None) -> None:
        part_seen.extend(os.listdir(folder))
        if done == 100_000:
            got_data.set()

    if how == "cancel_scope":
        with anyio.move_on_after(5) as scope:

            async def cancel_when_stalled() -> None:
                await got_data.wait()
                scope.cancel()

            async with anyio.create_task_group() as group:
                group.start_soon(cancel_when_stalled)
                await client.download(stalled, folder, on_progress=progress)
        assert scope.cancelled_caught
    else:
        job = asyncio.ensure_future(client.download(stalled, folder, on_progress=progress))
        await asyncio.wait_for(got_data.wait(), 5)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    assert any(name.endswith(".part") for name in part_seen)
    assert os.listdir(folder) == []


async def test_failing_progress_callback_leaves_no_temporary_file(fake, client, folder):
    video = await finished(fake, client)

    def progress(done: int, total: int | None) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await client.download(video, folder, on_progress=progress)
    assert os.listdir(folder) == []


async def test_a_batch_removes_only_download_leftovers_from_its_folder(fake, client, folder):
    # What a process killed mid-download leaves; the next batch into the folder clears it.
    leftovers = [".video_1.mp4.0123456789ab.part", ".x.abcdefabcdef.part"]
    kept = ["video_1.mp4", "notes.part", ".hidden.part", ".x.0123456789ab.partial"]
    for name in leftovers + kept:
        (folder / name).write_bytes(b"x")

    requests, journal = [VideoRequest("a fox")], folder.parent / "batch.sqlite"
    fast = PollPolicy.fixed(0.005)
    async with run_batch(
        client, requests, journal=journal, download_dir=folder, poll_policy=fast
    ) as run:
        (result,) = [r async for r in run]

    assert result.path is not None
    assert sorted(os.listdir(folder)) == sorted([*kept, result.path.name])


# -- file names from ids --------------------------------------------------------------

HOSTILE_IDS = [
    "../escape",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\evil",
    "..\\..\\evil",
    "a\x00b",
    ".",
    "..",
    "",
    "...",
    " ",
    "x" * 5000,
    "视频/任务",
    "\u202etxt.exe",
    "\ud800",
    "CON",
    "nul.txt",
    ".bashrc",
    "a/../../b",
]


async def download_named(task_id, url, folder):
    """Download a completed task of this id, whose result is at ``url``, into ``folder``."""
    video = Video(id=task_id, status=TaskStatus.COMPLETED, video_url=url)
    async with AsyncStarVideos("sk-test", base_url="https://api.example.com/v1") as client:
        return await client.download(video, folder)


# "" and a lone surrogate are malformed answers (such ids could never be sent back).
@pytest.mark.parametrize("task_id", [i for i in HOSTILE_IDS if i and i != "\ud800"])
async def test_hostile_task_id_lands_inside_the_folder(fake, client, tmp_path, task_id):
    folder = tmp_path / "out"
    folder.mkdir()
    task = fake.create_task()
    fake.complete(task.id)
    fake.set_fields(task.id, id=task_id)  # the service returns this id
    video = await client.retrieve(task.id)
    assert video.id == task_id

    path = await client.download(video, folder)

    assert path.parent == folder
    assert os.listdir(folder) == [path.name]
    assert os.listdir(tmp_path) == ["out"]
    assert path.read_bytes() == fake.video_bytes(task.id)


@pytest.mark.parametrize("task_id", HOSTILE_IDS)
async def test_any_id_is_saved_under_one_plain_visible_name(start_host, folder, task_id):
    host = await start_host(Host(b"video bytes"))

    path = await download_named(task_id, host.url(), folder)

    name = path.name
    assert path.parent == folder
    assert os.listdir(folder) == [name]
    assert path.read_bytes() == b"video bytes"
    assert name.endswith(".mp4")
    assert not name.startswith(".")
    assert not set(name) & {"/", "\\", "\x00", ":"}
    assert name.isascii()
    assert len(name.encode()) <= 128
    assert name.split(".")[0].upper() not in {"CON", "NUL"}


@pytest.mark.parametrize(
    ("task_id", "url_path", "expected"),
    [
        ("video_starvideos_1774836724", "/v/a.mp4", "video_starvideos_1774836724.mp4"),
        ("video_starvideos_1", "/v/a.MOV?sig=1", "video_starvideos_1.mov"),
        ("video_starvideos_1", "/v/a.webm", "video_starvideos_1.webm"),
        ("video_starvideos_1", "/v/a.exe", "video_starvideos_1.mp4"),
        ("video_starvideos_1", "/v/a.mp4/../x.sh", "video_starvideos_1.mp4"),
        ("video_starvideos_1", "/download", "video_starvideos_1.mp4"),
    ],
)
async def test_a_plain_id_is_the_name_and_a_video_extension_of_the_url_is_kept(
    start_host, folder, task_id, url_path, expected
):
    host = await start_host(Host(b"video bytes"))
    path = await download_named(task_id, host.url("") + url_path, folder)
    assert path == folder / expected


async def test_ids_that_clean_alike_get_distinct_names(start_host, folder):
    host = await start_host(Host(b"video bytes"))
    ids = ["a/b", "a\\b", "a_b", "a:b", "a\x00b", "../a_b"]
    for task_id in ids:  # one folder: a name given twice would raise FileExistsError
        await download_named(task_id, host.url(), folder)
    assert len(os.listdir(folder)) == len(ids)


@pytest.mark.parametrize("given", ["video", "task id"])
@pytest.mark.parametrize("timeout", [0, -1, float("nan"), True, "5"])
async def test_a_bad_download_timeout_is_refused_before_any_request(
    fake, client, folder, timeout, given
):
    video = await finished(fake, client)
    status_calls = fake.counters["status"]
    with pytest.raises(InvalidRequestError, match="timeout"):  # (a task id needs a status call)
        await client.download(video if given == "video" else video.id, folder, timeout=timeout)
    assert file_requests(fake) == []
    assert fake.counters["status"] == status_calls


async def test_an_error_of_the_progress_callback_keeps_its_own_traceback(fake, client, folder):
    def on_progress(done, total):
        raise ValueError("the caller's own bug")

    video = await finished(fake, client)
    with pytest.raises(ValueError, match="the caller's own bug") as caught:
        await client.download(video, folder, on_progress=on_progress)
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "on_progress"  # where it was raised, for its owner to read
    assert os.listdir(folder) == []
