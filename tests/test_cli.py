"""The ``starvideos`` command line, run as a real subprocess against the fake service."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from starvideos_async._cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from starvideos_async.testing import FakeStarVideos


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


async def test_status_wait_and_download_of_an_existing_task(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    task = fake.create_task({"prompt": "waves", "model": "starvideos_v3"})
    fake.hold(task.id)  # stays "processing" until released
    env = env_for(fake)

    code, out, _ = await starvideos("status", task.id, env=env)
    assert code == EXIT_OK
    assert out.split()[:2] == [task.id, "processing"]
    fake.release(task.id)

    code, out, err = await starvideos("wait", task.id, "--poll-interval", "0.01", env=env)
    assert code == EXIT_OK, err
    assert out.split()[:2] == [task.id, "completed"]
    assert f"{task.id} completed" in err  # each status change is shown on stderr

    code, out, err = await starvideos("download", task.id, str(tmp_path), "--json", env=env)
    assert code == EXIT_OK, err
    path = Path(json.loads(out)["path"])
    assert path.parent == tmp_path
    assert path.read_bytes() == fake.video_bytes(task.id)


async def test_wait_exits_1_when_the_task_failed(fake: FakeStarVideos) -> None:
    task = fake.create_task({"prompt": "x", "model": "starvideos_v3"})
    fake.fail(task.id, error="content moderation")
    code, out, _ = await starvideos(
        "wait", task.id, "--poll-interval", "0.01", "--json", env=env_for(fake)
    )
    assert code == EXIT_FAILED
    assert json.loads(out)["error"] == "content moderation"


async def test_generate_submits_waits_and_downloads(fake: FakeStarVideos, tmp_path: Path) -> None:
    target = tmp_path / "dusk.mp4"
    code, out, err = await starvideos(
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
        (["wait", "x", "--timeout", "-1"], "must be > 0"),
        (["frobnicate"], "invalid choice"),
    ],
)
async def test_bad_arguments_exit_2_before_any_request(
    fake: FakeStarVideos, args: list[str], needle: str
) -> None:
    code, _, err = await starvideos(*args, env=env_for(fake))
    assert code == EXIT_USAGE
    assert needle in err
    assert fake.counters["create"] == fake.counters["status"] == 0


async def test_missing_key_is_a_usage_error_that_names_the_variable() -> None:
    code, _, err = await starvideos("status", "video_starvideos_1")
    assert code == EXIT_USAGE
    assert "STARVIDEOS_API_KEY" in err


async def test_key_from_file_is_used_and_never_printed(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(fake.api_key + "\n")
    env = {"STARVIDEOS_BASE_URL": fake.base_url}
    code, out, err = await starvideos("--api-key-file", str(key_file), "submit", "a fox", env=env)
    assert code == EXIT_OK, err
    assert fake.api_key not in out + err
    # A wrong key: a typed error, still without the key.
    key_file.write_text("sk-wrong-key-123")
    code, out, err = await starvideos("--api-key-file", str(key_file), "submit", "a fox", env=env)
    assert code == EXIT_FAILED
    assert "AuthenticationError" in err
    assert "sk-wrong-key-123" not in out + err


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("bad.jsonl", '{"prompt": "ok"}\n\n{"prompt": "x", "duration": 2}\n', 3),
        ("bad.jsonl", '{"prompt": "ok"}\nnot json\n', 2),
        ("bad.csv", "prompt,duration\nok,5\nfine,6\n,7\n", 4),
        ("bad.csv", "prompt,ratio\nok,16:9\nno,4:3\n", 3),
    ],
)
async def test_bad_batch_rows_exit_2_with_the_line_number(
    fake: FakeStarVideos, tmp_path: Path, name: str, content: str, line: int
) -> None:
    source = tmp_path / name
    source.write_text(content)
    code, _, err = await starvideos(
        "batch", str(source), "--journal", str(tmp_path / "j.sqlite3"), env=env_for(fake)
    )
    assert code == EXIT_USAGE
    assert f"{source}:{line}:" in err
    assert fake.counters["create"] == 0


async def test_batch_runs_to_the_end_and_resumes_without_creating_twice(
    fake: FakeStarVideos, tmp_path: Path
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
    code, out, err = await starvideos(*args, env=env_for(fake))
    assert code == EXIT_OK, err + out
    assert "summary: 3/3" in out  # plain output when not a terminal
    results = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in results) == ["a", "b", "c"]
    for record in results:
        assert record["status"] == "completed"
        assert Path(record["path"]).read_bytes() == fake.video_bytes(record["task_id"])
    assert fake.created == 3

    code, out, err = await starvideos(*args, "--json", env=env_for(fake))
    assert code == EXIT_OK, err
    assert fake.created == 3  # resumed: nothing created twice
    summary = json.loads(out.splitlines()[-1])
    assert summary["event"] == "summary"


async def test_batch_exits_1_when_some_tasks_failed(fake: FakeStarVideos, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a", "key": "a"}\n{"prompt": "b", "key": "b"}\n')
    fake.failure_rate = 1.0  # every task created from now on fails
    code, out, _ = await starvideos(
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
