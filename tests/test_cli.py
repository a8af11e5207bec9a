"""The ``starvideos`` command line against the fake service.

Most tests call the console script's function in this process (the ``cli`` fixture);
those about the process itself (``python -m starvideos_async``, its exit codes and
output, signals, a server that runs until interrupted, the demo) run a real subprocess.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from starvideos_async import InvalidRequestError, PollPolicy, VideoRequest
from starvideos_async.batch import DEFAULT_MAX_IN_FLIGHT, Journal, run_batch
from starvideos_async.testing import FakeStarVideos, Fault

if TYPE_CHECKING:
    from conftest import Cli

#: The exit codes ``starvideos --help`` and the README document.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130


async def starvideos(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> tuple[int, str, str]:
    """Run ``python -m starvideos_async ARGS``; return (exit code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STARVIDEOS_")}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starvideos_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=full_env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def env_for(fake: FakeStarVideos) -> dict[str, str]:
    return {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}


@pytest.fixture
async def fake() -> FakeStarVideos:
    async with FakeStarVideos(time_scale=0.002, queued_seconds=5, processing_seconds=20) as fake:
        yield fake  # type: ignore[misc]


async def test_submit_prints_the_new_task_and_sends_one_create(fake: FakeStarVideos) -> None:
    code, out, err = await starvideos(
        "submit", "a fox in snow", "--duration", "7", "--json", env=env_for(fake)
    )
    assert code == EXIT_OK, err
    record = json.loads(out)
    assert record["status"] == "queued"
    assert record["id"] in fake.tasks
    assert fake.counters["create"] == 1
    create = next(r for r in fake.requests if r.endpoint == "create")
    assert create.json == {
        "prompt": "a fox in snow",
        "model": "starvideos_v3",
        "duration": 7,
        "ratio": "16:9",
    }


REF = ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]
CLIP = "https://cdn.example.com/clip.mp4"


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        ([], {"duration": 3, "ratio": "9:16"}),
        (
            ["--reference-image", REF[0], "--reference-image", REF[1], "--duration", "9"],
            {"duration": 9, "ratio": "9:16", "referenceImages": REF},
        ),
        (
            ["--first-image", REF[0], "--last-image", REF[1], "--ratio", "1:1"],
            {"duration": 3, "ratio": "1:1", "first_image": REF[0], "last_image": REF[1]},
        ),
        (
            ["--reference-video", CLIP, "--reference-image", REF[0]],
            {"referenceImages": [REF[0]], "referenceVideos": [CLIP]},
        ),
    ],
)
async def test_submit_sends_the_o3_options(
    fake: FakeStarVideos, options: list[str], sent: dict[str, object], cli: Cli
) -> None:
    code, out, err = await cli(
        "submit", "a fox", "--model", "starvideos_o3", *options, "--json", env=env_for(fake)
    )
    assert code == EXIT_OK, err
    assert json.loads(out)["id"] in fake.tasks
    create = next(r for r in fake.requests if r.endpoint == "create")
    assert create.json == {"prompt": "a fox", "model": "starvideos_o3", **sent}


async def test_status_wait_and_download_of_an_existing_task(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    task = fake.create_task({"prompt": "waves", "model": "starvideos_v3"})
    fake.hold(task.id)  # stays "processing" until released
    await asyncio.sleep(0.05)  # past its 10 ms in the queue
    env = env_for(fake)

    code, out, _ = await cli("status", task.id, env=env)
    assert code == EXIT_OK
    assert out.split()[:2] == [task.id, "processing"]
    fake.release(task.id)

    code, out, err = await cli("wait", task.id, "--poll-interval", "0.01", env=env)
    assert code == EXIT_OK, err
    assert out.split()[:2] == [task.id, "completed"]
    assert f"{task.id} completed" in err  # each status change is shown on stderr

    code, out, err = await cli("download", task.id, str(tmp_path), "--json", env=env)
    assert code == EXIT_OK, err
    path = Path(json.loads(out)["path"])
    assert path.parent == tmp_path
    assert path.read_bytes() == fake.video_bytes(task.id)


async def test_wait_exits_1_when_the_task_failed(fake: FakeStarVideos, cli: Cli) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.fail(task.id, error="content moderation")
    code, out, _ = await cli(
        "wait", task.id, "--poll-interval", "0.01", "--json", env=env_for(fake)
    )
    assert code == EXIT_FAILED
    assert json.loads(out)["error"] == "content moderation"


async def test_generate_submits_waits_and_downloads(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    target = tmp_path / "dusk.mp4"
    code, out, err = await cli(
        "generate",
        "waves at dusk",
        "--image",
        "https://example.com/a.png",
        "--ratio",
        "9:16",
        "--poll-interval",
        "0.01",
        "-o",
        str(target),
        env=env_for(fake),
    )
    assert code == EXIT_OK, err
    assert Path(out.strip()) == target
    (task_id,) = fake.tasks
    assert target.read_bytes() == fake.video_bytes(task_id)
    assert fake.tasks[task_id].request["images"] == ["https://example.com/a.png"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["submit", "x", "--duration", "99"], "duration"),
        (["submit", "   "], "prompt"),
        (["submit", "x", "--ratio", "4:3"], "ratio"),
        (["submit", "x", "--image", "file:///etc/passwd"], "images[0]"),
        (
            ["submit", "x", "--model", "starvideos_v9"],
            "known models: starvideos_o3, starvideos_v3",
        ),
        (["submit", "x", "--model", "starvideos_o3", "--image", REF[0]], "use reference_images"),
        (["submit", "x", "--reference-image", REF[0]], "starvideos_v3 does not take"),
        (["generate", "x", "--first-image", REF[0]], "invalid first_image"),
        (
            [
                "submit",
                "x",
                "--model",
                "starvideos_o3",
                "--reference-video",
                CLIP,
                "--ratio",
                "1:1",
            ],
            "follows the reference video",
        ),
        (
            ["submit", "x", "--model", "starvideos_o3", "--first-image", "ftp://a/b.png"],
            "invalid first_image",
        ),
        (["submit", "x", "--model", "starvideos_o3", "--ratio", "4:3"], "9:16, 1:1, 16:9"),
        (["wait", "x", "--timeout", "-1"], "must be > 0"),
        (["frobnicate"], "invalid choice"),
    ],
)
async def test_bad_arguments_exit_2_before_any_request(
    fake: FakeStarVideos, args: list[str], needle: str, cli: Cli
) -> None:
    code, _, err = await cli(*args, env=env_for(fake))
    assert code == EXIT_USAGE
    assert needle in err
    assert fake.counters["create"] == fake.counters["status"] == 0


async def test_missing_key_is_a_usage_error_that_names_the_variable(cli: Cli) -> None:
    code, _, err = await cli("status", "video_starvideos_1")
    assert code == EXIT_USAGE
    assert "STARVIDEOS_API_KEY" in err


async def test_key_from_file_is_used_and_never_printed(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(fake.api_key + "\n")
    env = {"STARVIDEOS_BASE_URL": fake.base_url}
    code, out, err = await cli("--api-key-file", str(key_file), "submit", "a fox", env=env)
    assert code == EXIT_OK, err
    assert fake.api_key not in out + err
    # A wrong key: a typed error, still without the key.
    key_file.write_text("sk-wrong-key-123")
    code, out, err = await cli("--api-key-file", str(key_file), "submit", "a fox", env=env)
    assert code == EXIT_FAILED
    assert "AuthenticationError" in err
    assert "sk-wrong-key-123" not in out + err


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        (
            "bad.jsonl",
            '{"prompt": "ok"}\n{"prompt": "x", "model": "starvideos_o3", '
            '"images": ["https://cdn.example.com/a.png"]}\n',
            2,
        ),
        (
            "bad.csv",
            "prompt,model,reference_images\nok,,\nno,starvideos_v3,https://a.test/1.png\n",
            3,
        ),
    ],
)
async def test_bad_o3_batch_rows_exit_2_with_the_line_number(
    fake: FakeStarVideos, tmp_path: Path, name: str, content: str, line: int, cli: Cli
) -> None:
    source = tmp_path / name
    source.write_text(content)
    code, _, err = await cli(
        "batch", str(source), "--journal", str(tmp_path / "j.sqlite3"), env=env_for(fake)
    )
    assert code == EXIT_USAGE
    assert f"{source}:{line}:" in err
    assert fake.counters["create"] == 0


O3_ROWS = {  # key: the body each row sends
    "text": {"prompt": "a fox", "model": "starvideos_o3", "duration": 3, "ratio": "9:16"},
    "refs": {
        "prompt": "a boat",
        "model": "starvideos_o3",
        "duration": 8,
        "ratio": "1:1",
        "referenceImages": REF,
    },
    "frames": {
        "prompt": "a lake",
        "model": "starvideos_o3",
        "duration": 3,
        "ratio": "9:16",
        "first_image": REF[0],
        "last_image": REF[1],
    },
    "video": {
        "prompt": "a tree",
        "model": "starvideos_o3",
        "referenceImages": [REF[0]],
        "referenceVideos": [CLIP],
    },
    "v3": {"prompt": "a cat", "model": "starvideos_v3", "duration": 5, "ratio": "16:9"},
}
O3_JSONL = "\n".join(
    json.dumps(row)
    for row in [
        {"key": "text", "prompt": "a fox", "model": "starvideos_o3"},
        {
            "key": "refs",
            "prompt": "a boat",
            "model": "starvideos_o3",
            "duration": 8,
            "ratio": "1:1",
            "reference_images": REF,
        },
        {
            "key": "frames",
            "prompt": "a lake",
            "model": "starvideos_o3",
            "first_image": REF[0],
            "last_image": REF[1],
        },
        {
            "key": "video",
            "prompt": "a tree",
            "model": "starvideos_o3",
            "reference_images": [REF[0]],
            "reference_videos": [CLIP],
        },
        {"key": "v3", "prompt": "a cat"},
    ]
)
O3_CSV = (
    "key,prompt,model,duration,ratio,reference_images,first_image,last_image,reference_videos\n"
    "text,a fox,starvideos_o3,,,,,,\n"
    f"refs,a boat,starvideos_o3,8,1:1,{REF[0]} | {REF[1]},,,\n"
    f"frames,a lake,starvideos_o3,,,,{REF[0]},{REF[1]},\n"
    f"video,a tree,starvideos_o3,,,{REF[0]},,,{CLIP}\n"
    "v3,a cat,,,,,,,\n"
)


@pytest.mark.parametrize(("name", "content"), [("o3.jsonl", O3_JSONL), ("o3.csv", O3_CSV)])
async def test_batch_rows_take_the_o3_fields(
    fake: FakeStarVideos, tmp_path: Path, name: str, content: str, cli: Cli
) -> None:
    source = tmp_path / name
    source.write_text(content)
    journal = str(tmp_path / "j.sqlite3")
    code, out, err = await cli(
        "batch", str(source), "--journal", journal, "--poll-interval", "0.01", env=env_for(fake)
    )
    assert code == EXIT_OK, err + out
    sent = {rec.json["prompt"]: rec.json for rec in fake.requests if rec.endpoint == "create"}
    assert sent == {body["prompt"]: body for body in O3_ROWS.values()}


async def test_batch_runs_to_the_end_and_resumes_without_creating_twice(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "key,prompt,duration,images\n"
        "a,a fox,5,\n"
        "b,a boat,3,https://example.com/1.png\n"
        "c,a lake,15,https://example.com/1.png|https://example.com/2.png\n"
    )
    args = [
        "batch",
        str(source),
        "--journal",
        str(tmp_path / "journal.sqlite3"),
        "--download-dir",
        str(tmp_path / "videos"),
        "--poll-interval",
        "0.01",
        "--out",
        str(tmp_path / "results.jsonl"),
    ]
    (tmp_path / "videos").mkdir()
    code, out, err = await cli(*args, env=env_for(fake))
    assert code == EXIT_OK, err + out
    assert "summary: 3/3" in out  # plain output when not a terminal
    results = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in results) == ["a", "b", "c"]
    for record in results:
        assert record["status"] == "completed"
        assert Path(record["path"]).read_bytes() == fake.video_bytes(record["task_id"])
    assert fake.created == 3

    code, out, err = await cli(*args, "--json", env=env_for(fake))
    assert code == EXIT_OK, err
    assert fake.created == 3  # resumed: nothing created twice
    summary = json.loads(out.splitlines()[-1])
    assert summary["event"] == "summary"


async def test_batch_exits_1_when_some_tasks_failed(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a", "key": "a"}\n{"prompt": "b", "key": "b"}\n')
    fake.failure_rate = 1.0  # every task created from now on fails
    code, out, _ = await cli(
        "batch",
        str(source),
        "--journal",
        str(tmp_path / "j.sqlite3"),
        "--poll-interval",
        "0.01",
        env=env_for(fake),
    )
    assert code == EXIT_FAILED
    assert out.count(" failed ") == 2


async def test_demo_runs_to_completion_without_a_key(tmp_path: Path) -> None:
    code, out, err = await starvideos(
        "demo", "--count", "9", "--out-dir", str(tmp_path), "--failure-rate", "0"
    )
    assert code == EXIT_OK, err
    assert "summary: 9/9" in out
    videos = sorted((tmp_path / "videos").iterdir())
    assert len(videos) == 9
    assert all(v.stat().st_size > 0 for v in videos)


async def test_fake_server_serves_until_interrupted() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starvideos_async",
        "fake-server",
        "--port",
        "0",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        from starvideos_async import AsyncStarVideos

        async with AsyncStarVideos(info["api_key"], base_url=info["base_url"]) as client:
            task = await client.submit("served by a separate process")
            assert (await client.retrieve(task.id)).id == task.id
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode in (EXIT_OK, EXIT_INTERRUPTED)


async def test_interrupting_a_batch_exits_130_and_prints_how_to_resume(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"prompt": "p{i}", "key": "k{i}"}}\n' for i in range(5)))
    fake.auto_advance = False  # tasks never finish: the batch waits until interrupted
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starvideos_async",
        "batch",
        str(source),
        "--journal",
        str(tmp_path / "j.sqlite3"),
        "--poll-interval",
        "0.05",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env_for(fake)},
    )
    for _ in range(400):
        if fake.created == 5:
            break
        await asyncio.sleep(0.025)
    assert fake.created == 5
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()
    assert "Resume with:" in err.decode()
    assert "starvideos batch" in err.decode()


# -- in-process runs (the cli fixture) ------------------------------------------------


def write_prompts(path: Path, count: int) -> Path:
    path.write_text("".join(f'{{"prompt": "p{i}", "key": "k{i}"}}\n' for i in range(count)))
    return path


async def journal_states(path: Path) -> dict[str, tuple[str, str | None]]:
    async with Journal(path) as journal:
        return {e.key: (e.state, e.task_id) for e in await journal.entries()}


def no_requests(fake: FakeStarVideos) -> bool:
    return fake.counters["create"] == fake.counters["status"] == fake.counters["file"] == 0


async def test_batch_timeout_stops_waiting_and_the_same_command_resumes(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 5)
    journal = tmp_path / "j.sqlite3"
    args = ["batch", str(source), "--journal", str(journal), "--poll-interval", "0.05"]
    fake.auto_advance = False  # the tasks never finish while the clock stands
    started = time.monotonic()
    code, out, err = await cli(*args, "--timeout", "1", env=env_for(fake))
    assert code == EXIT_TIMEOUT, err
    assert time.monotonic() - started < 30  # stopped waiting (it used to wait forever)
    assert "timed out, 5 unfinished (resumable)" in out.splitlines()[-1]
    assert "--timeout passed: 5 requests unfinished" in err
    assert f"Resume with:\n  starvideos {shlex.join(args)} --timeout 1" in err
    states = await journal_states(journal)
    assert sorted(state for state, _ in states.values()) == ["submitted"] * 5
    assert {task_id for _, task_id in states.values()} == set(fake.tasks)
    assert fake.counters["status"] >= 5  # --poll-interval: the adaptive policy waits 45 s

    fake.advance(1000)  # every task finishes; the same command resumes them
    code, out, err = await cli(*args, "--timeout", "30", "--json", env=env_for(fake))
    assert code == EXIT_OK, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["counts"] == {"completed": 5}
    assert (summary["timed_out"], summary["unfinished"]) == (False, 0)
    assert fake.created == 5  # nothing created twice


async def test_run_batch_timeout_ends_the_iteration_and_keeps_the_rest(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    requests = [VideoRequest(f"p{i}", key=f"k{i}") for i in range(3)]
    journal = tmp_path / "j.sqlite3"
    for bad in (0, -1.0, math.nan, math.inf, True, "1"):
        with pytest.raises(InvalidRequestError, match="timeout"):
            run_batch(fake.client(), requests, journal=journal, timeout=bad)  # type: ignore[arg-type]
    fake.auto_advance = False
    async with fake.client(poll_policy=PollPolicy.fixed(0.02)) as client:
        async with run_batch(client, requests, journal=journal, timeout=0.5) as run:
            results = [result async for result in run]
        assert results == []
        assert run.timed_out
        assert run.summary.remaining == 3
        assert sorted(s for s, _ in (await journal_states(journal)).values()) == ["submitted"] * 3

        fake.advance(1000)
        async with run_batch(client, requests, journal=journal, timeout=30) as run:
            results = [result async for result in run]
        assert sorted(r.status for r in results) == ["completed"] * 3
        assert not run.timed_out
    assert fake.created == 3


async def test_batch_max_in_flight_bounds_the_tasks_submitted_at_once(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", DEFAULT_MAX_IN_FLIGHT + 4)
    fake.auto_advance = False
    base = ["batch", str(source), "--poll-interval", "0.05", "--timeout", "1"]
    code, _, err = await cli(*base, "--journal", str(tmp_path / "a.sqlite3"), env=env_for(fake))
    assert code == EXIT_TIMEOUT, err
    assert fake.created == DEFAULT_MAX_IN_FLIGHT  # the default is run_batch's
    code, _, err = await cli(
        *base, "--journal", str(tmp_path / "b.sqlite3"), "--max-in-flight", "3"
    )
    assert code == EXIT_TIMEOUT, err
    assert fake.created == DEFAULT_MAX_IN_FLIGHT + 3


@pytest.mark.parametrize("how", ["option", "env"])
async def test_batch_max_concurrency_caps_requests_at_once(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli, how: str
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 6)
    fake.auto_advance = False
    fake.latency = 0.1  # the creates overlap unless capped (three rounds of two: 0.3 s)
    env = env_for(fake)
    extra = ["--max-concurrency", "2"]
    if how == "env":
        env["STARVIDEOS_MAX_CONCURRENCY"], extra = "2", []
    code, _, err = await cli(
        "batch", str(source), "--journal", str(tmp_path / "j.sqlite3"), "--timeout", "1.5",
        "--poll-interval", "0.05", *extra, env=env,
    )  # fmt: skip
    assert code == EXIT_TIMEOUT, err
    assert fake.created == 6
    assert fake.max_in_flight == 2  # 6 creates at once without the cap (the default is 8)


@pytest.mark.parametrize("how", ["option", "env"])
async def test_max_status_rate_caps_status_calls_per_second(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli, how: str
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 4)
    fake.auto_advance = False
    env = env_for(fake)
    extra = ["--max-status-rate", "3"]
    if how == "env":
        env["STARVIDEOS_MAX_STATUS_RATE"], extra = "3", []
    code, _, err = await cli(
        "batch", str(source), "--journal", str(tmp_path / "j.sqlite3"), "--timeout", "1.5",
        "--poll-interval", "0.01", *extra, env=env,
    )  # fmt: skip
    assert code == EXIT_TIMEOUT, err
    assert fake.counters["status"] >= 3
    assert fake.max_calls_in_window("status", 1.0) <= 3  # about 100/s per task without


async def test_batch_retry_unknown_sends_an_unknown_create_again(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 2)
    args = ["batch", str(source), "--journal", str(tmp_path / "j.sqlite3")]
    args += ["--poll-interval", "0.01"]
    fake.inject(Fault.status(500), "create", times=1)  # sent, no answer: outcome unknown
    code, out, _ = await cli(*args, env=env_for(fake))
    assert code == EXIT_FAILED
    assert "1 completed, 1 unknown" in out
    creates = fake.counters["create"]
    code, out, _ = await cli(*args)
    assert code == EXIT_FAILED
    assert fake.counters["create"] == creates  # not sent again unless asked
    code, out, err = await cli(*args, "--retry-unknown")
    assert code == EXIT_OK, err
    assert fake.counters["create"] == creates + 1
    assert "(2 completed)" in out


@pytest.mark.parametrize("how", ["option", "env"])
async def test_max_retries_sets_the_retries_per_request(
    fake: FakeStarVideos, cli: Cli, how: str
) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.inject(Fault.rate_limit("0", code=503), "status", times=None)
    env = env_for(fake)
    code, _, err = await cli("status", task.id, env=env)
    assert code == EXIT_FAILED
    assert fake.counters["status"] == 3  # the client's default: 2 retries
    extra = ["--max-retries", "4"]
    if how == "env":
        env["STARVIDEOS_MAX_RETRIES"], extra = "4", []
    code, _, err = await cli("status", task.id, *extra, env=env)
    assert code == EXIT_FAILED
    assert "ServerError" in err
    assert fake.counters["status"] == 3 + 5


@pytest.mark.parametrize("how", ["option", "env"])
async def test_request_timeout_bounds_each_request(
    fake: FakeStarVideos, cli: Cli, how: str
) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.latency = 3.0
    env = env_for(fake)
    extra = ["--request-timeout", "0.2"]
    if how == "env":
        env["STARVIDEOS_REQUEST_TIMEOUT"], extra = "0.2", []
    code, _, err = await cli("status", task.id, "--max-retries", "0", *extra, env=env)
    assert code == EXIT_FAILED
    assert "Timeout" in err  # the 3 s answer was not awaited
    assert fake.counters["status"] == 1


async def test_submit_prints_the_id_alone_for_the_shell(fake: FakeStarVideos, cli: Cli) -> None:
    code, out, err = await cli("submit", "a fox", env=env_for(fake))
    assert code == EXIT_OK, err
    (task_id,) = fake.tasks
    assert out == f"{task_id}\n"
    assert f"{task_id} queued" in err
    bash = shutil.which("bash")
    if bash is None:  # pragma: no cover - every CI image has bash
        pytest.skip("no bash")
    cmd = shlex.join([sys.executable, "-m", "starvideos_async"])
    script = f'ID=$({cmd} submit "a boat") && {cmd} status "$ID"'
    proc = await asyncio.create_subprocess_exec(
        bash, "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env_for(fake)},
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == EXIT_OK, stderr.decode()
    new_id = (set(fake.tasks) - {task_id}).pop()
    assert stdout.decode().split()[0] == new_id  # `status` of the captured id


async def test_download_onto_an_existing_file_names_the_overwrite_flag(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.complete(task.id)
    env = env_for(fake)
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"mine")
    code, _, err = await cli("download", task.id, str(target), env=env)
    assert code == EXIT_USAGE
    assert f"{target} exists; pass --overwrite to replace it" in err
    assert "overwrite=True" not in err
    assert target.read_bytes() == b"mine"
    # A folder: the file name comes from the task, so the library finds the clash.
    code, _, err = await cli("download", task.id, str(tmp_path), env=env)
    assert code == EXIT_OK, err
    code, _, err = await cli("download", task.id, str(tmp_path), env=env)
    assert code == EXIT_USAGE
    assert "pass --overwrite" in err
    assert "overwrite=True" not in err
    code, _out, err = await cli("download", task.id, str(target), "--overwrite", env=env)
    assert code == EXIT_OK, err
    assert target.read_bytes() == fake.video_bytes(task.id)


async def test_download_into_a_missing_folder_creates_it(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.complete(task.id)
    folder = tmp_path / "videos" / "today"
    code, out, err = await cli("download", task.id, f"{folder}{os.sep}", env=env_for(fake))
    assert code == EXIT_OK, err
    path = Path(out.strip())
    assert path.parent == folder
    assert path.read_bytes() == fake.video_bytes(task.id)


async def test_generate_into_a_missing_folder_and_onto_an_existing_file(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    env = env_for(fake)
    existing = tmp_path / "taken.mp4"
    existing.write_bytes(b"mine")
    code, _, err = await cli("generate", "x", "-o", str(existing), env=env)
    assert code == EXIT_USAGE
    assert "pass --overwrite" in err
    assert no_requests(fake)  # refused before anything was paid for
    folder = tmp_path / "new" / "dir"
    code, out, err = await cli(
        "generate", "waves", "--duration", "9", "--model", "starvideos_v3",
        "--poll-interval", "0.01", "-o", f"{folder}{os.sep}", env=env,
    )  # fmt: skip
    assert code == EXIT_OK, err
    (task_id,) = fake.tasks
    assert Path(out.strip()).parent == folder
    assert Path(out.strip()).read_bytes() == fake.video_bytes(task_id)
    assert fake.tasks[task_id].request["duration"] == 9
    code, out, err = await cli(
        "generate", "x", "--poll-interval", "0.01", "-o", str(existing), "--overwrite",
        "--json", env=env,
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert existing.read_bytes() != b"mine"
    assert json.loads(out)["path"] == str(existing)


async def test_wait_and_generate_timeouts_exit_124_and_say_how_to_go_on(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.hold(task.id)
    env = env_for(fake)
    code, out, err = await cli(
        "wait", task.id, "--timeout", "0.5", "--poll-interval", "0.05", "--json", env=env
    )
    assert code == EXIT_TIMEOUT
    assert json.loads(out)["status"] == "processing"
    assert f"go on with: starvideos wait {task.id}" in err
    assert fake.counters["status"] >= 2  # --poll-interval (the adaptive policy waits 45 s)
    fake.reset_stats()
    code, _, _ = await cli(
        "wait", task.id, "--timeout", "1.5", "--poll-interval", "0.01",
        "--max-status-rate", "2", env=env,
    )  # fmt: skip
    assert code == EXIT_TIMEOUT
    assert fake.counters["status"] >= 2
    assert fake.max_calls_in_window("status", 1.0) <= 2  # about 100/s without the cap

    fake.auto_advance = False
    code, _, err = await cli(
        "generate", "y", "--timeout", "0.5", "--poll-interval", "0.05", "-o", "out/", env=env
    )
    assert code == EXIT_TIMEOUT
    (new_id,) = set(fake.tasks) - {task.id}
    assert f"created {new_id}" in err
    assert f"starvideos wait {new_id} && starvideos download {new_id} out/" in err


@pytest.mark.parametrize(
    "args",
    [
        ["fake-server", "--api-key-file", "key"],
        ["fake-server", "--base-url", "http://127.0.0.1:1"],
        ["--base-url", "http://127.0.0.1:1", "fake-server"],
        ["--max-retries", "1", "demo"],
        ["demo", "--timeout", "5"],
        ["submit", "x", "--max-concurrency", "2"],
        ["submit", "x", "--timeout", "3"],
        ["submit", "x", "--max-status-rate", "3"],
        ["status", "video_1", "--poll-interval", "1"],
        ["--max-concurrency", "2", "wait", "video_1"],
        ["download", "video_1", "d", "--max-status-rate", "1"],
        ["generate", "x", "--journal", "j"],
    ],
)
async def test_options_a_command_does_not_use_are_refused(
    fake: FakeStarVideos, cli: Cli, args: list[str]
) -> None:
    code, _, err = await cli(*args, env=env_for(fake))
    assert code == EXIT_USAGE
    assert "unrecognized arguments" in err or "does nothing for" in err
    assert no_requests(fake)


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["status", "v", "--request-timeout", "0"], {}, "must be > 0: '0'"),
        (["status", "v", "--max-retries", "-1"], {}, "must be >= 0: '-1'"),
        (["batch", "in.jsonl", "--journal", "j", "--max-concurrency", "0"], {}, ">= 1"),
        (["wait", "v", "--max-status-rate", "nan"], {}, "must be > 0: 'nan'"),
        (["batch", "in.jsonl", "--journal", "j", "--max-in-flight", "0"], {}, ">= 1"),
        (["status", "v"], {"STARVIDEOS_REQUEST_TIMEOUT": "soon"}, "$STARVIDEOS_REQUEST_TIMEOUT"),
        (["status", "v"], {"STARVIDEOS_MAX_RETRIES": "1.5"}, "$STARVIDEOS_MAX_RETRIES"),
        (["wait", "v"], {"STARVIDEOS_MAX_STATUS_RATE": "-2"}, "$STARVIDEOS_MAX_STATUS_RATE"),
        (["batch", "in.jsonl", "--journal", "j"], {"STARVIDEOS_MAX_CONCURRENCY": "x"}, "not an"),
        (["fake-server", "--port", "70000"], {}, "between 0 and 65535"),
        (["fake-server", "--latency", "-1"], {}, ">= 0"),
        (["demo", "--failure-rate", "2"], {}, "between 0 and 1"),
        (["demo", "--count", "0"], {}, ">= 1"),
    ],
)
async def test_bad_settings_exit_2_before_any_request(
    fake: FakeStarVideos, cli: Cli, args: list[str], env: dict[str, str], needle: str
) -> None:
    code, _, err = await cli(*args, env={**env_for(fake), **env})
    assert code == EXIT_USAGE
    assert needle in err
    assert no_requests(fake)


async def test_base_url_option_before_or_after_the_command_and_status_json(
    fake: FakeStarVideos, cli: Cli, closed_port: int
) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    env = {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}
    nowhere = f"http://127.0.0.1:{closed_port}/kyyReactApiServer"
    code, _, err = await cli(
        "status", task.id, "--base-url", nowhere, "--max-retries", "0", env=env
    )
    assert code == EXIT_FAILED  # the option wins over the environment: refused
    assert "APIConnectionError" in err
    assert fake.counters["status"] == 0
    code, out, err = await cli("--base-url", fake.base_url, "status", task.id, "--json")
    assert code == EXIT_OK, err
    assert json.loads(out)["id"] == task.id
    assert fake.counters["status"] == 1


async def test_an_environment_setting_is_ignored_by_commands_without_it(
    fake: FakeStarVideos, cli: Cli
) -> None:
    env = {**env_for(fake), "STARVIDEOS_MAX_CONCURRENCY": "not a number"}
    code, out, err = await cli("submit", "x", env=env)  # submit has no --max-concurrency
    assert code == EXIT_OK, err
    assert out.strip() in fake.tasks


async def test_help_documents_settings_environment_and_exit_codes(cli: Cli) -> None:
    code, out, _ = await cli("batch", "--help")
    assert code == EXIT_OK
    for needle in (
        "--request-timeout", "--max-concurrency", "--max-retries", "--max-status-rate",
        "STARVIDEOS_REQUEST_TIMEOUT", "STARVIDEOS_MAX_CONCURRENCY", "STARVIDEOS_MAX_RETRIES",
        "STARVIDEOS_MAX_STATUS_RATE", "STARVIDEOS_API_KEY",
        f"(default {DEFAULT_MAX_IN_FLIGHT})",
    ):  # fmt: skip
        assert needle in out
    codes = out.split("exit codes:")[1].split()
    for code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED):
        assert str(code) in codes  # the codes these tests expect are the documented ones
    code, out, _ = await cli("fake-server", "--help")
    assert code == EXIT_OK
    assert "accepts only the key given by --api-key (default: sk-fake-starvideos)" in out
    assert "--latency" in out
    assert "--base-url" not in out
    assert "--api-key-file" not in out


def demo_events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


async def test_demo_options_reach_the_fake_and_the_batch(tmp_path: Path, cli: Cli) -> None:
    fast = ["--time-scale", "0.001", "--failure-rate", "0", "--json"]
    # --seed: the same seed gives the same task ids, another seed others.
    ids = []
    for run, seed in enumerate(("3", "3", "4")):
        out_dir = tmp_path / f"seed{run}"
        code, out, err = await cli(
            "demo", "--count", "2", "--seed", seed, "--out-dir", str(out_dir), *fast
        )
        assert code == EXIT_OK, err
        ids.append(sorted(str(e["task_id"]) for e in demo_events(out) if e["event"] == "result"))
        assert len(list((out_dir / "videos").iterdir())) == 2  # --count, --out-dir
    assert ids[0] == ids[1] != ids[2]

    # --failure-rate: every task fails (the show of the demo, so still exit 0).
    code, out, err = await cli(
        "demo", "--count", "3", "--failure-rate", "1", "--time-scale", "0.001",
        "--out-dir", str(tmp_path / "fail"),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert "(3 failed)" in out

    # --max-in-flight: never more than 2 tasks between their first and their final status.
    code, out, err = await cli(
        "demo", "--count", "6", "--max-in-flight", "2", "--out-dir", str(tmp_path / "mif"),
        "--time-scale", "0.005", "--poll-interval", "0.01", "--json", "--failure-rate", "0",
    )  # fmt: skip
    assert code == EXIT_OK, err
    open_keys: set[object] = set()
    peak = 0
    for event in demo_events(out):
        if event["event"] == "status" and event["status"] in ("queued", "processing"):
            open_keys.add(event["key"])
        elif event["event"] in ("status", "result"):
            open_keys.discard(event["key"])
        peak = max(peak, len(open_keys))
    assert 1 <= peak <= 2

    # --time-scale and --poll-interval: a 30 simulated s task at 0.08 takes >= 2.4 s,
    # polled about once a second (every 0.1 s by default).
    code, out, err = await cli(
        "demo", "--count", "1", "--time-scale", "0.08", "--poll-interval", "1",
        "--failure-rate", "0", "--json", "--out-dir", str(tmp_path / "slow"),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert float(demo_events(out)[-1]["seconds"]) >= 2.0  # type: ignore[arg-type]
    status_calls = int(err.split(" creates and ")[1].split()[0])
    assert status_calls <= 5


async def test_fake_server_options_take_effect(closed_port: int) -> None:
    from starvideos_async import AsyncStarVideos, AuthenticationError, TaskFailedError

    files_port = closed_port  # free a moment ago
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starvideos_async", "fake-server", "--port", str(port),
        "--files-port", str(files_port), "--host", "localhost", "--api-key", "sk-mine-42",
        "--latency", "0.3", "--failure-rate", "1", "--time-scale", "0.001", "--seed", "5",
        "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert info["api_key"] == "sk-mine-42"
        assert info["base_url"].startswith(f"http://localhost:{port}/")
        assert info["files_url"] == f"http://localhost:{files_port}"
        async with AsyncStarVideos("sk-fake-starvideos", base_url=info["base_url"]) as client:
            with pytest.raises(AuthenticationError):  # only --api-key is accepted
                await client.submit("x")
        async with AsyncStarVideos(
            "sk-mine-42", base_url=info["base_url"], poll_policy=PollPolicy.fixed(0.05)
        ) as client:
            started = time.monotonic()
            task = await client.submit("served by a separate process")
            assert time.monotonic() - started >= 0.29  # --latency
            async with FakeStarVideos(seed=5) as same_seed:
                assert (
                    task.id == same_seed.create_task({"prompt": "x", "model": "starvideos_v3"}).id
                )  # --seed
            with pytest.raises(TaskFailedError):  # --failure-rate 1
                await task.wait(timeout=20)  # --time-scale: 30 ms, not 30 s
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
