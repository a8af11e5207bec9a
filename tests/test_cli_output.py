"""What ``starvideos batch`` prints (plain lines, JSON, the live view of a terminal), and
the input files it reads, through the command against the fake service.

The plain and JSON runs are in-process (the ``cli`` fixture); the live view needs a
terminal, so that command runs in a subprocess whose stdout is a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from starvideos_async import VideoRequest
from starvideos_async.batch import Journal, request_keys
from starvideos_async.testing import FakeStarVideos, Fault

if TYPE_CHECKING:
    from conftest import Cli

#: The command's documented exit codes used here.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 124

needs_a_terminal = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")


def env_of(fake: FakeStarVideos) -> dict[str, str]:
    return {"STARVIDEOS_API_KEY": fake.api_key, "STARVIDEOS_BASE_URL": fake.base_url}


def batch_args(source: Path, tmp_path: Path, *extra: str) -> list[str]:
    journal, videos = str(tmp_path / "j.sqlite3"), str(tmp_path / "videos")
    return ["batch", str(source), "--journal", journal, "--download-dir", videos, *extra]


# -- four requests, four ends ----------------------------------------------------------


@contextlib.asynccontextmanager
async def four_ends(
    fake: FakeStarVideos, tmp_path: Path, last_after: float = 0.0
) -> AsyncIterator[list[str]]:
    """A batch file of ``a`` ``b`` ``c`` ``d``, and the service ending them one by one.

    ``a`` and ``d`` complete (``d`` ``last_after`` seconds after it was created), ``b``
    fails with ``content moderation``, the create of ``c`` gets a 502 (its outcome is
    unknown). Yields the arguments of a batch that sends one create at a time.
    """
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"prompt": "shot {k}", "key": "{k}"}}\n' for k in "abcd"))
    fake.auto_advance = False  # a task ends when told

    async def direct() -> None:
        seen: set[str] = set()
        while True:
            for task in list(fake.tasks.values()):
                if task.id in seen:
                    continue
                seen.add(task.id)
                key = task.prompt[-1]
                if key == "b":
                    fake.fail(task.id, "content moderation")
                    fake.inject(Fault.status(502, when="after"), "create")  # the next: c
                elif key == "d":
                    await asyncio.sleep(last_after)
                if key in "ad":
                    fake.complete(task.id)
            await asyncio.sleep(0.005)

    director = asyncio.ensure_future(direct())
    try:
        yield batch_args(source, tmp_path, "--max-in-flight", "1", "--poll-interval", "0.01")
    finally:
        director.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await director


def task_of(fake: FakeStarVideos, key: str) -> str:
    (task_id,) = [t.id for t in fake.tasks.values() if t.prompt == f"shot {key}"]
    return task_id


async def test_plain_output_prints_one_line_per_result_and_a_summary(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    async with four_ends(fake, tmp_path) as args:
        code, out, _ = await cli(*args, env=env_of(fake))

    assert code == EXIT_FAILED  # some did not complete
    lines = out.splitlines()
    assert lines[0].endswith("in.jsonl: 4 requests")
    results = [line for line in lines if re.match(r"\[\d/4\] [a-z]+ key=", line)]
    assert [line.split()[0] for line in results] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    by_key = {line.split()[2]: line.split(" ", 1)[1] for line in results}
    videos = tmp_path / "videos"
    a, b, d = (task_of(fake, key) for key in "abd")
    assert by_key["key=a"] == f"completed key=a id={a} file={videos / f'{a}.mp4'}"
    assert by_key["key=b"] == f"failed key=b id={b} error='content moderation'"
    assert by_key["key=c"].startswith("unknown key=c error='the outcome of the create is unknown")
    assert by_key["key=d"] == f"completed key=d id={d} file={videos / f'{d}.mp4'}"
    assert lines[-1].startswith("summary: 4/4 done in ")
    assert lines[-1].endswith("(2 completed, 1 failed, 1 unknown)")


async def test_json_output_is_one_record_per_event(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli
) -> None:
    async with four_ends(fake, tmp_path) as args:
        code, out, _ = await cli(*args, "--json", env=env_of(fake))

    assert code == EXIT_FAILED
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["event"] == "start"
    assert records[0]["total"] == 4
    assert {r["event"] for r in records[1:-1]} == {"status", "result"}
    results = {r["key"]: r for r in records if r["event"] == "result"}
    a = task_of(fake, "a")
    assert results["a"]["path"] == str(tmp_path / "videos" / f"{a}.mp4")
    assert results["b"]["error"] == "content moderation"
    assert results["c"]["status"] == "unknown"
    assert records[-1]["event"] == "summary"
    assert records[-1]["counts"] == {"completed": 2, "failed": 1, "unknown": 1}
    assert (records[-1]["total"], records[-1]["unfinished"]) == (4, 0)


# -- on a terminal ---------------------------------------------------------------------


async def in_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run ``python -m starvideos_async ARGS`` with a 160x50 terminal as its stdout.

    Returns the exit code and what the terminal got, escape sequences removed.
    """
    import fcntl
    import pty
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    terminal = {"TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "starvideos_async", *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=follower, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **env, **terminal},
        )  # fmt: skip
    finally:
        os.close(follower)

    def read_all() -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # Linux: EIO once the last writer closed its side
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        shown, (_, err) = await asyncio.wait_for(
            asyncio.gather(asyncio.to_thread(read_all), process.communicate()), 60
        )
    finally:
        os.close(leader)
    assert process.returncode is not None, err
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r", "", shown.decode())
    return process.returncode, text


@needs_a_terminal
async def test_a_terminal_gets_a_live_view_of_counts_time_left_and_the_latest_tasks(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    async with four_ends(fake, tmp_path, last_after=0.5) as args:
        code, shown = await in_a_terminal(*args, env=env_of(fake))

    assert code == EXIT_FAILED
    assert "StarVideos batch" in shown  # the table's title
    assert re.search(r"completed\s+│\s+2", shown)  # counts per status
    assert re.search(r"failed\s+│\s+1", shown)
    assert re.search(r"unknown\s+│\s+1", shown)
    assert re.search(r"3/4 done, [\d.]+s elapsed, about \d+s left", shown)  # while d runs
    assert "4/4 done" in shown
    assert f"{task_of(fake, 'b')}  content moderation" in shown  # the latest tasks
    assert "timed out" not in shown


@needs_a_terminal
async def test_a_timed_out_live_view_says_how_many_are_unfinished(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a", "key": "a"}\n{"prompt": "b", "key": "b"}\n')
    fake.auto_advance = False  # never done

    args = batch_args(source, tmp_path, "--timeout", "1", "--poll-interval", "0.05")
    code, shown = await in_a_terminal(*args, env=env_of(fake))

    assert code == EXIT_TIMEOUT
    assert "StarVideos batch" in shown  # the live view
    assert "0/2 done" in shown
    assert "timed out, 2 unfinished (resumable)" in shown


@needs_a_terminal
async def test_json_is_printed_on_a_terminal_too_when_asked(
    fake: FakeStarVideos, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a", "key": "a"}\n')

    args = batch_args(source, tmp_path, "--json", "--poll-interval", "0.01")
    code, shown = await in_a_terminal(*args, env=env_of(fake))

    assert code == EXIT_OK
    events = [json.loads(line)["event"] for line in shown.splitlines() if line.strip()]
    assert events[0] == "start"
    assert events[-1] == "summary"


# -- input files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "comments.jsonl",
            '# a comment\n{"prompt": "a", "duration": 7, "key": "k1"}\n\n',
            [({"prompt": "a", "duration": 7}, "k1")],
        ),
        (
            "images.jsonl",
            '{"prompt": "b", "images": ["https://x.test/1.png"], "ratio": "9:16"}\n',
            [({"prompt": "b", "images": ["https://x.test/1.png"], "ratio": "9:16"}, None)],
        ),
        (
            "columns.csv",
            "prompt,duration,image1,image2\nc,3,https://x.test/1.png,https://x.test/2.png\n",
            [
                (
                    {
                        "prompt": "c",
                        "duration": 3,
                        "images": ["https://x.test/1.png", "https://x.test/2.png"],
                    },
                    None,
                )
            ],
        ),
        (
            "listed.csv",  # images separated by "|"; a blank row is skipped
            "prompt,images\nd,https://x.test/1.png | https://x.test/2.png\n,\n",
            [({"prompt": "d", "images": ["https://x.test/1.png", "https://x.test/2.png"]}, None)],
        ),
        (
            "spreadsheet.csv",  # a byte order mark, as spreadsheets write
            "\ufeffprompt\ne\n",
            [({"prompt": "e"}, None)],
        ),
    ],
)
async def test_input_rows_become_these_create_requests(
    fake: FakeStarVideos,
    tmp_path: Path,
    cli: Cli,
    name: str,
    text: str,
    expected: list[tuple[dict[str, object], str | None]],
) -> None:
    source = tmp_path / name
    source.write_text(text)
    code, _, err = await cli(
        *batch_args(source, tmp_path, "--poll-interval", "0.01"), env=env_of(fake)
    )
    assert code == EXIT_OK, err

    defaults = {"model": "starvideos_v3", "duration": 5, "ratio": "16:9"}
    bodies = [r.json for r in fake.requests if r.endpoint == "create"]
    assert bodies == [{**defaults, **body} for body, _ in expected]
    async with Journal(tmp_path / "j.sqlite3") as journal:
        keys = [entry.key for entry in await journal.entries()]
    requests = [VideoRequest(**{**defaults, **body}, key=key) for body, key in expected]
    assert keys == request_keys(requests)  # the file's key, else the usual one


@pytest.mark.parametrize(
    ("name", "text", "line", "needle"),
    [
        ("in.jsonl", '{"prompt": "a"}\n[1, 2]\n', 2, "JSON object"),
        ("in.jsonl", '{"prompt": "a"}\nnot json\n', 2, "not valid JSON"),
        ("in.jsonl", '{"prompt": "a", "colour": "red"}\n', 1, "unknown field(s): colour"),
        ("in.jsonl", '{"duration": 5}\n', 1, "missing prompt"),
        ("in.jsonl", '{"prompt": "a", "duration": "five"}\n', 1, "invalid duration"),
        ("in.jsonl", '{"prompt": "ok"}\n\n{"prompt": "x", "duration": 2}\n', 3, "duration"),
        ("in.csv", "", 1, "header row"),
        ("in.csv", "prompt\na,extra\n", 2, "more cells than header columns"),
        ("in.csv", "prompt,duration\nok,5\nfine,6\n,7\n", 4, "missing prompt"),
        ("in.csv", "prompt,ratio\nok,16:9\nno,4:3\n", 3, "ratio"),
    ],
)
async def test_a_bad_input_row_is_named_by_its_line_before_any_request(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli, name: str, text: str, line: int, needle: str
) -> None:
    source = tmp_path / name
    source.write_text(text)
    code, _, err = await cli(*batch_args(source, tmp_path), env=env_of(fake))
    assert code == EXIT_USAGE
    assert f"{source}:{line}: " in err
    assert needle in err
    assert sum(fake.counters.values()) == 0


@pytest.mark.parametrize(
    ("name", "needle"),
    [("in.txt", r"expected a .jsonl or .csv file"), ("missing.jsonl", "cannot read")],
)
async def test_an_input_file_that_is_not_one_is_refused(
    fake: FakeStarVideos, tmp_path: Path, cli: Cli, name: str, needle: str
) -> None:
    (tmp_path / "in.txt").write_text("prompt\nz\n")
    code, _, err = await cli(*batch_args(tmp_path / name, tmp_path), env=env_of(fake))
    assert code == EXIT_USAGE
    assert needle in err
    assert sum(fake.counters.values()) == 0
