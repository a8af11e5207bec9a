"""Every program in ``examples/`` runs against the fake service, so the docs never rot.

The command-line examples run in-process (their ``main(argv)``), one of them also as a real
subprocess; the two web backends are served on 127.0.0.1 (aiohttp's ``TestServer``, and
uvicorn for FastAPI) and exercised over real HTTP with an aiohttp client; both also with a
client that disconnects mid-wait (the aiohttp one as the real script, with its own
``run_app`` settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from starvideos_async import AsyncStarVideos, PollPolicy, TaskStatus, Video
from starvideos_async.testing import FakeStarVideos, Fault

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = ["--poll-interval", "0.005"]


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` once, as the module ``examples_<name>``."""
    module_name = f"examples_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # pydantic resolves annotations through it
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture
def env(fake: FakeStarVideos, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point every client the examples make at the fake, through the environment."""
    values = {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (it watches state nothing signals)."""
    with anyio.fail_after(timeout):
        while not condition():
            await asyncio.sleep(0.002)


def listdir(path: Path) -> list[Path]:
    return sorted(path.iterdir())


# -- generate_one.py ------------------------------------------------------------------


async def test_generate_one_submits_waits_and_saves_the_served_bytes(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await load("generate_one").main(["a red kite", "-o", str(tmp_path), *FAST])

    assert code == 0
    (task_id,) = fake.tasks
    (saved,) = listdir(tmp_path)
    assert saved.read_bytes() == fake.video_bytes(task_id)
    assert fake.created == 1
    out = capsys.readouterr().out
    assert f"submitted {task_id}" in out
    assert f"{task_id}: completed" in out


async def test_generate_one_reports_a_failed_task_with_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeStarVideos(time_scale=0.001, failure_rate=1.0) as fake:
        monkeypatch.setenv("STARVIDEOS_API_KEY", fake.api_key)
        monkeypatch.setenv("STARVIDEOS_BASE_URL", fake.base_url)
        code = await load("generate_one").main(["a red kite", "-o", str(tmp_path), *FAST])

    assert code == 1
    assert "failed: " in capsys.readouterr().out
    assert listdir(tmp_path) == []


async def test_generate_one_sends_the_second_models_inputs_with_its_defaults(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path
) -> None:
    refs = ["https://example.com/a.png", "https://example.com/b.png"]
    args = ["a kite", "--model", "starvideos_o3", "-o", str(tmp_path), *FAST]
    args += [arg for ref in refs for arg in ("--reference-image", ref)]

    code = await load("generate_one").main(args)

    assert code == 0
    (create,) = [r for r in fake.requests if r.endpoint == "create"]
    assert create.json == {
        "prompt": "a kite",
        "model": "starvideos_o3",
        "duration": 3,
        "ratio": "9:16",
        "referenceImages": refs,
    }
    (task_id,) = fake.tasks
    (saved,) = listdir(tmp_path)
    assert saved.read_bytes() == fake.video_bytes(task_id)


async def test_generate_one_refuses_an_input_of_the_other_model_before_sending(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["a kite", "--model", "starvideos_o3", "--image", "https://example.com/a.png"]

    code = await load("generate_one").main([*args, "-o", str(tmp_path), *FAST])

    assert code == 2
    assert "reference_images" in capsys.readouterr().out  # the field to use instead
    assert fake.requests == []


async def run_script(name: str, *args: str, env: dict[str, str]) -> tuple[int, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STARVIDEOS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / f"{name}.py"),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**full_env, **env},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_generate_one_runs_as_a_script_with_the_key_from_the_environment(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    env = {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}
    code, out = await run_script("generate_one", "waves", "-o", str(tmp_path), *FAST, env=env)

    assert code == 0, out
    (task_id,) = fake.tasks
    assert (tmp_path / f"{task_id}.mp4").read_bytes() == fake.video_bytes(task_id)
    assert fake.api_key not in out


# -- batch_from_csv.py ----------------------------------------------------------------

CSV = """prompt,duration,ratio,image1,image2,key
a fox in snow,5,16:9,,,fox
waves at dusk,8,9:16,https://example.com/a.png,,
a city at night,,,https://example.com/a.png,https://example.com/b.png,
"""


async def test_batch_from_csv_downloads_every_row_in_its_mode(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(CSV)
    journal, videos = str(tmp_path / "run.sqlite3"), tmp_path / "videos"
    argv = [str(prompts), "--journal", journal, "--download-dir", str(videos), *FAST]

    code = await load("batch_from_csv").main(argv)

    assert code == 0
    assert sorted(len(t.images) for t in fake.tasks.values()) == [0, 1, 2]
    assert sorted(t.duration for t in fake.tasks.values()) == [5, 5, 8]
    assert {p.name for p in listdir(videos)} == {f"{t}.mp4" for t in fake.tasks}
    *results, summary = capsys.readouterr().out.splitlines()
    keys = sorted(line.split()[0] for line in results)
    assert keys[2] == "fox"  # the caller's key; the others: position + content hash
    assert [key[:2] for key in keys[:2]] == ["1-", "2-"]
    assert summary == "3/3 completed, 3 submitted now"


async def test_batch_from_csv_resumed_after_an_interrupt_creates_nothing_twice(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(CSV)
    videos = tmp_path / "videos"
    argv = [str(prompts), "--journal", str(tmp_path / "run.sqlite3")]
    argv += ["--download-dir", str(videos), *FAST]
    batch = load("batch_from_csv")
    fake.auto_advance = False  # every task stays queued: the first run cannot finish

    first = asyncio.create_task(batch.main(argv))
    await eventually(lambda: fake.created == 3)
    first.cancel()  # what Ctrl-C does under asyncio.run
    with pytest.raises(asyncio.CancelledError):
        await first
    fake.auto_advance = True
    code = await batch.main(argv)

    assert code == 0
    assert fake.counters["create"] == 3
    assert len(listdir(videos)) == 3
    assert "3/3 completed, 0 submitted now" in capsys.readouterr().out


async def test_batch_from_csv_names_the_line_of_a_bad_row_and_sends_nothing(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,duration\na fox,5\nwaves,99\n")

    code = await load("batch_from_csv").main([str(prompts), "--journal", str(tmp_path / "j")])

    assert code == 2
    out = capsys.readouterr().out
    assert "line 3" in out
    assert "duration" in out
    assert fake.counters["create"] == 0


# -- the web backends -----------------------------------------------------------------


class Backend:
    """A running example app: its URL and the StarVideos clients it made."""

    def __init__(self, name: str, url: str, clients: list[AsyncStarVideos]) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.clients = clients


@contextlib.asynccontextmanager
async def serve_aiohttp(module: ModuleType) -> AsyncIterator[str]:
    server = TestServer(module.create_app(poll_policy=PollPolicy.fixed(0.005)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def serve_fastapi(module: ModuleType) -> AsyncIterator[str]:
    import uvicorn

    app = module.create_app(poll_policy=PollPolicy.fixed(0.005))
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or serving.done())
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@pytest.fixture(params=["aiohttp_backend", "fastapi_backend"])
async def backend(
    request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Backend]:
    """One of the two web examples, served on 127.0.0.1; records the clients it makes."""
    module = load(request.param)
    clients: list[AsyncStarVideos] = []

    class Recorded(AsyncStarVideos):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            clients.append(self)

    monkeypatch.setattr(module, "AsyncStarVideos", Recorded)
    serve = serve_aiohttp if request.param == "aiohttp_backend" else serve_fastapi
    async with serve(module) as url:
        yield Backend(request.param, url, clients)
    assert [c.closed for c in clients] == [True], "the app's client was not closed at shutdown"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_backend_submits_then_reports_the_status_until_completed(
    backend: Backend, fake: FakeStarVideos, http: aiohttp.ClientSession
) -> None:
    fake.auto_advance = False
    async with http.post(f"{backend.url}/videos", json={"prompt": "a fox", "duration": 7}) as r:
        assert r.status == 202
        created = await r.json()
    task_id = created["id"]
    assert created["status"] == "queued"
    assert fake.tasks[task_id].duration == 7

    async with http.get(f"{backend.url}/videos/{task_id}") as r:
        assert r.status == 200
        assert (await r.json())["status"] == "queued"
    fake.auto_advance = True
    async with http.get(f"{backend.url}/videos/{task_id}", params={"wait": "10"}) as r:
        assert r.status == 200
        done = await r.json()

    assert done["status"] == "completed"
    assert done["video_url"] == fake.file_url(task_id)
    assert fake.created == 1


async def test_backend_uses_one_client_made_at_startup_for_every_request(
    backend: Backend, fake: FakeStarVideos, http: aiohttp.ClientSession
) -> None:
    assert len(backend.clients) == 1, "the client must exist before the first request"
    for prompt in ("one", "two", "three"):
        async with http.post(f"{backend.url}/videos", json={"prompt": prompt}) as r:
            assert r.status == 202
    assert len(backend.clients) == 1
    assert not backend.clients[0].closed
    assert fake.created == 3


async def test_backend_long_poll_returns_the_latest_status_when_the_wait_runs_out(
    backend: Backend, fake: FakeStarVideos, http: aiohttp.ClientSession
) -> None:
    task = fake.create_task()
    fake.hold(task.id)  # stays processing
    fake.advance(10)

    # Long enough for the first status call to answer on a loaded machine (the handle's
    # first poll goes at once); the task stays processing, so the wait runs out.
    async with http.get(f"{backend.url}/videos/{task.id}", params={"wait": "1"}) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "processing"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"prompt": "a fox", "duration": 99}, 422),
        ({"prompt": "a fox", "ratio": "4:3"}, 422),
        ({"prompt": "  "}, 422),
        ({"duration": 5}, {"aiohttp_backend": 400, "fastapi_backend": 422}),
    ],
)
async def test_backend_rejects_invalid_requests_without_calling_the_api(
    backend: Backend,
    fake: FakeStarVideos,
    http: aiohttp.ClientSession,
    body: dict[str, Any],
    status: int | dict[str, int],
) -> None:
    expected = status if isinstance(status, int) else status[backend.name]
    async with http.post(f"{backend.url}/videos", json=body) as r:
        assert r.status == expected
    assert fake.counters["create"] == 0


async def test_backend_answers_404_for_an_unknown_task_and_502_when_the_api_fails(
    backend: Backend, fake: FakeStarVideos, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{backend.url}/videos/video_starvideos_404") as r:
        assert r.status == 404
    fake.inject(Fault.status(500), "create")
    async with http.post(f"{backend.url}/videos", json={"prompt": "a fox"}) as r:
        assert r.status == 502
        assert "500" in await r.text()
    assert fake.counters["create"] == 1  # a create is never retried after a 500


# -- custom_status_fetcher.py -----------------------------------------------------------


async def test_database_fetcher_waits_on_statuses_stored_by_another_process(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    example = load("custom_status_fetcher")
    db_path = str(tmp_path / "statuses.sqlite3")
    reader_db, writer_db = await example.open_db(db_path), await example.open_db(db_path)
    task_id = fake.create_task().id
    try:
        await example.store(writer_db, _video(task_id, "processing"), 0.0)
        fetcher = example.DatabaseStatusFetcher(reader_db)
        seen: list[str] = []
        async with fake.client(status_fetcher=fetcher, poll_policy=PollPolicy.fixed(0.005)) as c:
            waiting = asyncio.create_task(c.task(task_id).wait(on_status=_append_to(seen)))
            await eventually(lambda: seen == ["processing"])
            url = "https://files.example/v.mp4"
            await example.store(writer_db, _video(task_id, "completed", url), 1.0)
            video = await waiting
    finally:
        await reader_db.close()
        await writer_db.close()

    assert seen == ["processing", "completed"]
    assert video.video_url == url
    assert fake.counters["status"] == 0  # the waiting process made no status call


async def test_database_fetcher_ends_the_wait_on_an_id_nobody_recorded(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    example = load("custom_status_fetcher")
    db = await example.open_db(str(tmp_path / "statuses.sqlite3"))
    try:
        fetcher = example.DatabaseStatusFetcher(db)
        async with fake.client(status_fetcher=fetcher) as client:
            with pytest.raises(LookupError, match="video_starvideos_1"):
                await client.task("video_starvideos_1").wait(timeout=5)
    finally:
        await db.close()


async def test_shared_cache_fetcher_makes_one_status_call_per_ttl_across_processes(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    example = load("custom_status_fetcher")
    db_path = str(tmp_path / "cache.sqlite3")
    now = [1000.0]
    task_id = fake.create_task().id
    fake.hold(task_id)
    fake.advance(10)  # past queued; held in processing
    async with fake.client() as client:
        dbs = [await example.open_db(db_path), await example.open_db(db_path)]
        try:
            a, b = (
                example.SharedCacheFetcher(client.retrieve, db, ttl=10, clock=lambda: now[0])
                for db in dbs
            )
            assert (await a(task_id)).status == TaskStatus.PROCESSING
            assert (await b(task_id)).status == TaskStatus.PROCESSING
            assert fake.counters["status"] == 1  # the second "process" read the cache

            fake.complete(task_id)
            now[0] += 11  # past the ttl
            assert (await b(task_id)).status == TaskStatus.COMPLETED
            now[0] += 1000  # a final status is cached for good
            assert (await a(task_id)).video_url == fake.file_url(task_id)
        finally:
            for db in dbs:
                await db.close()
    assert fake.counters["status"] == 2


async def test_custom_status_fetcher_program_waits_through_a_recorder_process(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = load("custom_status_fetcher").main
    db = str(tmp_path / "statuses.sqlite3")
    recorder = asyncio.create_task(main(["recorder", "--db", db, *FAST]))
    try:
        with anyio.fail_after(60):  # (a hang would say nothing: a failure names it)
            assert await main(["wait", "--db", db, *FAST, "a lighthouse"]) == 0
    finally:
        recorder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recorder

    (task_id,) = fake.tasks
    # The waiter read "completed" and the URL from the table, where the recorder put them.
    assert f"{task_id}: completed {fake.file_url(task_id)}" in capsys.readouterr().out


async def test_custom_status_fetcher_program_waits_through_the_shared_cache(
    fake: FakeStarVideos, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = load("custom_status_fetcher").main
    argv = ["cached", "--db", str(tmp_path / "cache.sqlite3"), *FAST, "a lighthouse"]

    assert await main(argv) == 0

    (task_id,) = fake.tasks
    assert f"{task_id}: completed" in capsys.readouterr().out


def _video(task_id: str, status: str, url: str | None = None) -> Video:
    return Video(id=task_id, status=TaskStatus(status), video_url=url)


def _append_to(seen: list[str]) -> Callable[[Any], None]:
    return lambda video: seen.append(video.status_value)


# -- a client that goes away mid-wait ----------------------------------------------------


async def status_calls_settle(
    fake: FakeStarVideos, quiet: float = 0.5, within: float = 15.0
) -> int:
    """Waits until the fake sees no status call for ``quiet`` seconds; the count then.

    Fails after ``within`` seconds: a wait still polling every 5 ms never goes quiet.
    """
    with anyio.fail_after(within):
        count, since = fake.counters["status"], asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - since < quiet:
            await asyncio.sleep(0.05)
            if fake.counters["status"] != count:
                count, since = fake.counters["status"], asyncio.get_running_loop().time()
    return count


async def long_poll_then_hang_up(url: str, fake: FakeStarVideos) -> str:
    """Starts a 30 s long-poll on a task that never ends, and closes the connection once
    the backend is polling for it."""
    task = fake.create_task()
    fake.hold(task.id)  # stays processing: the wait could only end by its timeout
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET /videos/{task.id}?wait=30 HTTP/1.1\r\nHost: {host}\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    before = fake.counters["status"]
    await eventually(lambda: fake.counters["status"] >= before + 3, timeout=15)
    assert not reader.at_eof()  # no answer yet: the backend is waiting
    writer.close()  # the browser tab closed
    await writer.wait_closed()
    return task.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_aiohttp_backend_stops_polling_when_the_client_disconnects(
    fake: FakeStarVideos, env: dict[str, str]
) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "aiohttp_backend.py"),
        *("--port", str(port), *FAST),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/videos/video_starvideos_0") as r:
                        return r.status == 404
                return False

            with anyio.fail_after(30):
                while not await up():
                    await asyncio.sleep(0.1)
        await long_poll_then_hang_up(url, fake)
        settled = await status_calls_settle(fake)
        await asyncio.sleep(0.5)
        assert fake.counters["status"] == settled
    finally:
        proc.terminate()
        await proc.wait()


async def test_aiohttp_without_handler_cancellation_polls_on_for_nobody(
    fake: FakeStarVideos, env: dict[str, str]
) -> None:
    """What the example's run_app(handler_cancellation=True) is for: aiohttp's default."""
    app = load("aiohttp_backend").create_app(poll_policy=PollPolicy.fixed(0.005))
    runner = web.AppRunner(app)  # handler_cancellation=False unless given
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        task_id = await long_poll_then_hang_up(f"http://127.0.0.1:{port}", fake)
        hung_up = fake.counters["status"]
        await eventually(lambda: fake.counters["status"] >= hung_up + 20, timeout=15)
        fake.complete(task_id)  # lets the orphaned wait end, so that the app can stop
    finally:
        await runner.cleanup()


async def test_fastapi_backend_stops_polling_when_the_client_disconnects(
    fake: FakeStarVideos, env: dict[str, str]
) -> None:
    async with serve_fastapi(load("fastapi_backend")) as url:
        await long_poll_then_hang_up(url, fake)
        settled = await status_calls_settle(fake)
        await asyncio.sleep(0.5)
        assert fake.counters["status"] == settled


async def test_fastapi_long_poll_ends_even_if_the_watchers_cancellation_is_lost() -> None:
    """On Python 3.10 a cancellation delivered inside Starlette's is_disconnected() can be
    lost; this request loses every one on any Python, just as the wait ends."""
    asking = asyncio.Event()

    class LosesCancellations:
        async def is_disconnected(self) -> bool:
            asking.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)
            return False

    async def wait() -> str:
        await asking.wait()  # ends while the watcher is inside is_disconnected()
        return "done"

    example = load("fastapi_backend")
    with anyio.fail_after(5):
        assert await example.wait_while_connected(LosesCancellations(), wait()) == "done"


async def test_fastapi_long_poll_that_ends_at_once_answers() -> None:
    """A wait that ends at once, beside Starlette's own is_disconnected(): on Python 3.10
    the watcher's cancellation came inside it and was lost (the handler hung)."""
    from starlette.requests import Request

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client neither sends nor leaves
        return {}

    async def wait() -> str:
        return "done"

    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []}, receive)
    example = load("fastapi_backend")
    with anyio.fail_after(5):
        assert await example.wait_while_connected(request, wait()) == "done"


# -- generate_blocking.py -------------------------------------------------------------


async def test_generate_blocking_downloads_every_prompt_from_a_plain_script(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    env = {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}
    args = ("a fox", "waves", "a kite", "-o", str(tmp_path), *FAST)
    code, out = await run_script("generate_blocking", *args, env=env)

    assert code == 0, out
    assert len(fake.tasks) == 3
    for task_id in fake.tasks:
        assert (tmp_path / f"{task_id}.mp4").read_bytes() == fake.video_bytes(task_id)
        assert f"submitted {task_id}" in out
    assert out.count("saved ") == 3
    assert fake.api_key not in out
