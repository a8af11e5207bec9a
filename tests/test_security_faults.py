"""Security under faults: the key stays secret and at home whatever the network and the
service do, and downloaded files stay in their folder whatever the service names them.

(``test_security.py`` covers the calm cases: reprs, plain errors, one flow's logs,
redirects answered by the API, plain-http rules.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from starvideos_async import (
    AsyncStarVideos,
    ConfigurationError,
    MalformedResponseError,
    PollPolicy,
    RetryPolicy,
    StarVideosError,
    TaskStatus,
    Timeout,
    Video,
)
from starvideos_async.testing import FakeStarVideos, Fault


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STARVIDEOS_API_KEY", raising=False)
    monkeypatch.delenv("STARVIDEOS_BASE_URL", raising=False)


# -- the key in logs and errors, under every fault --------------------------------------

#: Every fault the fake knows, on the endpoint where it matters, striking once each.
FAULT_TOUR: list[tuple[Literal["create", "status", "file"], Fault]] = [
    ("create", Fault.rate_limit("1")),
    ("create", Fault.status(503, when="after")),
    ("create", Fault.html(502)),
    ("create", Fault.error_payload(when="after")),
    ("create", Fault.empty_body()),
    ("create", Fault.malformed_json(when="after")),
    ("create", Fault.wrong_types(when="after")),
    ("create", Fault.delay(0.4, when="after")),
    ("create", Fault.drop_connection(when="after")),
    ("create", Fault.drop_after(10)),
    ("status", Fault.rate_limit("1")),
    ("status", Fault.status(500)),
    ("status", Fault.html(504)),
    ("status", Fault.error_payload("code_msg")),
    ("status", Fault.empty_body()),
    ("status", Fault.malformed_json()),
    ("status", Fault.wrong_types()),
    ("status", Fault.delay(0.4)),
    ("status", Fault.drop_connection()),
    ("status", Fault.drop_after(10)),
    ("status", Fault.status(401)),
    ("file", Fault.status(503)),
    ("file", Fault.delay(0.4)),
    ("file", Fault.drop_after(100)),
    ("file", Fault.drop_connection()),
    ("file", Fault.status(410)),
]


class Capture(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_key_is_in_no_log_record_or_error_whatever_fault_strikes(
    fake: FakeStarVideos, api_key: str, tmp_path: Path, sleeps: list[float]
) -> None:
    """Every fault once, everything logged at DEBUG and every error raised, searched.

    The retries' waits (a second for each 429's Retry-After) are recorded, not slept.
    """
    capture = Capture()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    errors: list[BaseException] = []
    try:
        async with fake.client(
            timeout=Timeout(total=5, read=0.2),
            poll_policy=PollPolicy.fixed(0.005),
            retry_policy=RetryPolicy(max_retries=3, initial_backoff=0.001, max_backoff=0.005),
        ) as client:
            for endpoint, fault in FAULT_TOUR:
                fake.inject(fault, endpoint)
                try:
                    task = await client.submit("a fox in the snow")
                    video = await task.wait(timeout=5)
                    await client.download(video, tmp_path, overwrite=True)
                except StarVideosError as exc:
                    errors.append(exc)
                fake.clear_faults()
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    # (broken status answers are retried away: the other faults must still raise)
    assert len(errors) >= 9, "the tour should have produced errors to search"
    assert 1.0 in sleeps  # the 429s were retried, after the wait their Retry-After asked
    assert any(r.name == "starvideos_async" and "retry" in r.getMessage() for r in capture.records)
    assert any(r.headers.get("Authorization") == f"Bearer {api_key}" for r in fake.requests)
    texts = [formatter.format(r) + repr(r.args) + repr(r.__dict__) for r in capture.records]
    for error in errors:
        texts.append("".join(traceback.format_exception(type(error), error, error.__traceback__)))
        texts.extend([repr(error), repr(getattr(error, "body", None))])
        texts.append(repr(getattr(error, "headers", None)))
    for text in texts:
        assert api_key not in text
        assert "Bearer" not in text


# -- the key stays at the API origin -------------------------------------------------------


@attrs.define
class Host:
    """A little server on its own port that records who came and with which headers."""

    seen: list[tuple[str, CIMultiDict[str]]] = attrs.Factory(list)
    url: str = ""


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def thief() -> AsyncIterator[Host]:
    """Another origin that serves any path with the bytes ``stolen?``, recording headers."""
    host = Host()

    async def handle(request: web.Request) -> web.Response:
        host.seen.append((request.path, request.headers.copy()))
        return web.Response(body=b"stolen?", content_type="video/mp4")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await _serve(app)
    host.url = str(server.make_url("")).rstrip("/")
    try:
        yield host
    finally:
        await server.close()


@pytest.fixture
async def redirecting_file_host(thief: Host) -> AsyncIterator[Host]:
    """A file host that answers every download with a 302 to the thief's origin."""
    host = Host()

    async def handle(request: web.Request) -> web.Response:
        host.seen.append((request.path, request.headers.copy()))
        raise web.HTTPFound(f"{thief.url}/landing{request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await _serve(app)
    host.url = str(server.make_url("")).rstrip("/")
    try:
        yield host
    finally:
        await server.close()


async def test_a_file_host_redirect_to_another_origin_never_carries_the_key(
    fake_client: AsyncStarVideos, redirecting_file_host: Host, thief: Host, tmp_path: Path
) -> None:
    video = Video(
        id="video_starvideos_1",
        status=TaskStatus.COMPLETED,
        video_url=f"{redirecting_file_host.url}/files/video_starvideos_1.mp4?token=t",
    )
    path = await fake_client.download(video, tmp_path)
    assert path.read_bytes() == b"stolen?"  # the redirect was followed ...
    assert [p for p, _ in thief.seen] == ["/landing/files/video_starvideos_1.mp4"]
    for _, headers in [*redirecting_file_host.seen, *thief.seen]:  # ... without the key
        assert "Authorization" not in headers
        assert "Cookie" not in headers


@pytest.mark.parametrize("where", ["another-origin", "the-api-origin"])
async def test_the_key_is_never_sent_to_the_video_url_host(
    fake: FakeStarVideos, thief: Host, tmp_path: Path, where: str
) -> None:
    """Even a video_url pointing back at the API's own origin gets no Authorization."""
    task = fake.create_task()
    origin = thief.url if where == "another-origin" else fake.base_url.rsplit("/", 1)[0]
    fake.complete(task.id, video_url=f"{origin}/files/{task.id}.mp4?token={task.token}")
    async with fake.client() as client:
        video = await client.retrieve(task.id)
        with contextlib.suppress(StarVideosError):  # only the headers matter
            await client.download(video, tmp_path)
    sent = [h for _, h in thief.seen] + [
        r.headers for r in fake.requests if r.endpoint != "status"
    ]
    assert sent, "the download should have reached a host"
    for headers in sent:
        assert "Authorization" not in headers


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", ["create", "status"])
async def test_an_api_redirect_to_another_origin_is_not_followed(
    thief: Host, api_key: str, code: int, call: str
) -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=code, headers={"Location": f"{thief.url}/steal"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await _serve(app)
    try:
        async with AsyncStarVideos(api_key, base_url=str(server.make_url("/api"))) as client:
            send = client.submit("a fox") if call == "create" else client.retrieve("v_1")
            with pytest.raises(StarVideosError, match="redirects are not followed"):
                await send
    finally:
        await server.close()
    assert thief.seen == []


# -- plain http ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1@evil.example/sv",  # userinfo: the host is evil.example
        "http://localhost.evil.example/sv",
        "http://127.0.0.1.evil.example/sv",
        "http://evil.example/sv#@127.0.0.1",
        "http://0.0.0.0:8000/sv",
        "http://169.254.169.254/latest",
        "http://[fe80::1]/sv",
    ],
)
def test_plain_http_to_a_host_that_only_looks_local_is_refused(
    api_key: str, base_url: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncStarVideos(api_key, base_url=base_url)
    assert caught.value.field == "base_url"
    assert api_key not in str(caught.value)


@pytest.mark.parametrize("base_url", ["http://127.0.0.2:9/sv", "http://localhost/sv"])
def test_plain_http_to_any_loopback_address_is_accepted(api_key: str, base_url: str) -> None:
    assert AsyncStarVideos(api_key, base_url=base_url).base_url.scheme == "http"


def test_plain_http_elsewhere_is_accepted_only_when_asked_for(api_key: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncStarVideos(api_key, base_url="http://10.1.2.3/sv")
    client = AsyncStarVideos(api_key, base_url="http://10.1.2.3/sv", allow_insecure_http=True)
    assert client.base_url.host == "10.1.2.3"


# -- file names cannot leave the download folder -----------------------------------------

HOSTILE_IDS = [
    "../../etc/passwd",
    "..",
    ".",
    "",
    "/etc/passwd",
    "/",
    "C:\\Windows\\system32\\evil",
    "..\\..\\evil",
    "a\x00b",
    "\x00",
    "video/../../../x",
    "x" * 5000,
    "." * 300,
    "CON",
    "nul.mp4",
    "~/.ssh/authorized_keys",
    "$(rm -rf ~)",
    "video\nstarvideos",
    "视频_1234",
    "\ud800",
]
#: Paths of result URLs (on the ``thief`` host, which serves any path).
HOSTILE_URL_PATHS = [
    "/files/../../evil.sh",
    "/files/x.mp4/../../../evil",
    "/%2e%2e%2f%2e%2e%2fevil.mp4",
    "/a.MOV",
]


def _assert_inside(folder: Path, target: Path) -> None:
    assert target.parent == folder
    name = target.name
    assert name not in ("", ".", "..")
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not name.startswith(".")
    assert len(name.encode("utf-8", "surrogatepass")) <= 255
    assert os.path.realpath(target).startswith(os.path.realpath(folder) + os.sep)


async def _download(task_id: str, video_url: str, folder: Path) -> Path:
    """Download a completed task with this id and result URL into ``folder``."""
    video = Video(id=task_id, status=TaskStatus.COMPLETED, video_url=video_url)
    async with AsyncStarVideos("sk-test", base_url="https://api.example.com/v1") as client:
        return await client.download(video, folder)


def _new_folder(parent: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=parent)) / "videos"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("url_path", HOSTILE_URL_PATHS)
@pytest.mark.parametrize("task_id", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
async def test_a_hostile_id_or_url_names_a_file_inside_the_folder(
    thief: Host, tmp_path: Path, task_id: str, url_path: str
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    path = await _download(task_id, thief.url + url_path, folder)
    _assert_inside(folder, path)
    assert path.read_bytes() == b"stolen?"
    assert os.listdir(tmp_path) == ["videos"]
    assert os.listdir(folder) == [path.name]


async def test_a_result_url_that_is_not_one_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    with pytest.raises(MalformedResponseError):
        await _download("../../evil", "not a url", folder)
    assert os.listdir(tmp_path) == ["videos"]
    assert os.listdir(folder) == []


WIRE = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@WIRE
@given(task_id=st.text(max_size=300), url_path=st.text(max_size=60))
async def test_any_id_names_a_file_inside_the_folder(
    thief: Host, tmp_path: Path, task_id: str, url_path: str
) -> None:
    folder = _new_folder(tmp_path)
    try:
        path = await _download(task_id, f"{thief.url}/{url_path}", folder)
    except StarVideosError:  # a URL that is not one: refused before anything is written
        assert os.listdir(folder.parent) == ["videos"]
        assert os.listdir(folder) == []
        return
    _assert_inside(folder, path)
    assert os.listdir(folder.parent) == ["videos"]
    assert os.listdir(folder) == [path.name]


@WIRE
@given(a=st.text(max_size=40), b=st.text(max_size=40))
async def test_distinct_ids_never_share_a_file_name(
    thief: Host, tmp_path: Path, a: str, b: str
) -> None:
    if a != b:
        folder = _new_folder(tmp_path)
        first = await _download(a, f"{thief.url}/v.mp4", folder)
        second = await _download(b, f"{thief.url}/v.mp4", folder)  # FileExistsError if same
        assert first != second
        assert sorted(os.listdir(folder)) == sorted([first.name, second.name])


@pytest.mark.parametrize("task_id", ["../../escaped", "/var/abs", "a\x00b", "y" * 1000])
async def test_downloading_a_task_with_a_hostile_id_writes_inside_the_folder(
    fake: FakeStarVideos, tmp_path: Path, task_id: str
) -> None:
    real = fake.create_task()
    fake.complete(real.id)
    hostile = Video(id=task_id, status=TaskStatus.COMPLETED, video_url=fake.file_url(real.id))
    folder = tmp_path / "videos"
    folder.mkdir()
    async with fake.client() as client:
        path = await client.download(hostile, folder)
    _assert_inside(folder, path)
    assert path.read_bytes() == fake.video_bytes(real.id)
    assert os.listdir(tmp_path) == ["videos"]
    assert os.listdir(folder) == [path.name]
