"""Every Python block of README.md and ``docs/`` runs, with the context its page implies.

A page's blocks run in order, in one namespace, in a subprocess of their own (so that
``asyncio.run()`` in a block works): the way a reader pastes them one after another into
``python -m asyncio`` or a notebook. A block with a top-level ``await`` runs on one event
loop kept for the whole page; any other block runs as plain code. The environment holds
``STARVIDEOS_API_KEY`` and ``STARVIDEOS_BASE_URL`` of a fake service on 127.0.0.1 (the
one ``starvideos fake-server --time-scale 0.01`` serves), ``STARVIDEOS_REDIS_URL`` of the
suite's redis-server (tests/redis_support.py), and the working directory is an empty
temporary folder.

A page that shows parts of a program of ``examples/`` (a ``literalinclude``) has that
program's definitions in its namespace, as a reader who copied them would; a process the
page says runs beside its code (the status-fetcher guide's recorder) runs.

The one liberty taken: the client's *default* poll policy polls every 50 ms, so that the
examples written with the default (whose first poll comes after 45 s, made for real
videos that take minutes) finish in seconds. A policy a block sets itself is used as
written.

The testing guide's blocks are pytest test modules: each goes into a file of a fresh
project configured as a user's would be (pytest-asyncio in its default strict mode, no
``asyncio_mode``), and pytest runs them there.

A block that cannot run is marked by the line just before its fence: ``% skip-test:
<reason>`` (a MyST comment) or ``<!-- skip-test: <reason> -->`` (an HTML comment, for
README.md on GitHub). Each test is one block, named ``<page>:<line of its fence>``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_support import RedisServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: Pages whose blocks are pytest test modules, run by pytest in a user-like project.
PYTEST_PAGES = {"docs/guides/testing.md"}
PYTHON = {"python", "py", "python3"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
SKIP = re.compile(r"^\s*(?:%|<!--)\s*skip-test:\s*(?P<reason>.+?)\s*(?:-->)?\s*$")
INCLUDE = re.compile(r"^[`~]{3,}\{literalinclude\}\s+(?P<path>\S+\.py)\s*$", re.MULTILINE)
#: Processes that run beside a page's blocks, as the page describes (script and arguments).
PAGE_PROCESSES = {
    "docs/guides/status-fetchers.md": [
        [
            "examples/custom_status_fetcher.py",
            *("recorder", "--db", "statuses.sqlite3", "--poll-interval", "0.05"),
        ],
    ],
}
#: The default poll policy's interval while the docs run (see the module docstring).
FAST_DEFAULT_POLL = 0.05
#: Each block must finish within this many seconds (one-sided, with room for a loaded machine).
BLOCK_SECONDS = 15.0


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a page."""

    page: str  # relative to the repository, with forward slashes
    line: int  # 1-based line of the opening fence
    source: str
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse(text: str, page: str) -> list[Block]:
    """The Python blocks of a markdown (MyST) text, with their skip markers."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    previous = ""  # the last non-blank line before the current one
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = opening["info"].split()
        if words and words[0] in ("{code-block}", "{code}"):
            words = words[1:]
        language = words[0].lower() if words else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        if language in PYTHON:
            marker = SKIP.match(previous)
            skip = marker["reason"] if marker else None
            blocks.append(Block(page, i + 1, "\n".join(body) + "\n", skip))
        previous = lines[j] if j < len(lines) else ""
        i = j + 1
    return blocks


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


BLOCKS = [b for page in PAGES for b in parse(page.read_text(encoding="utf-8"), relative(page))]


# -- the runner, in the subprocess ------------------------------------------------------


class FakeInThread:
    """A ``FakeStarVideos`` served from a thread of its own, on its own event loop."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.base_url = self.api_key = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        from starvideos_async.testing import FakeStarVideos

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with FakeStarVideos(time_scale=0.01) as fake:
            self.base_url, self.api_key = fake.base_url, fake.api_key
            self.started.set()
            await self._stop.wait()

    def __enter__(self) -> FakeInThread:
        self._thread.start()
        if not self.started.wait(30):
            raise RuntimeError("the fake service did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def run_page(page: str, blocks: list[Block], results: Path) -> None:
    """Run ``blocks`` (of ``page``) in order in one namespace; one JSON line per block."""
    from starvideos_async import AsyncStarVideos, PollPolicy

    # The documented defaults stay; only the default policy's schedule is made fast.
    PollPolicy.default = staticmethod(lambda: PollPolicy.fixed(FAST_DEFAULT_POLL))  # type: ignore[method-assign,assignment,return-value]
    module = types.ModuleType("docs_page")
    sys.modules[module.__name__] = module  # classes defined in a block can be found
    namespace = module.__dict__
    loop = asyncio.new_event_loop()
    with FakeInThread() as fake, results.open("w", encoding="utf-8") as out:
        os.environ["STARVIDEOS_API_KEY"] = fake.api_key
        os.environ["STARVIDEOS_BASE_URL"] = fake.base_url
        text = (ROOT / page).read_text(encoding="utf-8") if (ROOT / page).exists() else ""
        for include in sorted({m["path"] for m in INCLUDE.finditer(text)}):
            program = ((ROOT / page).parent / include).resolve()
            exec(compile(program.read_text(), str(program), "exec", dont_inherit=True), namespace)  # noqa: S102
        helpers = [
            subprocess.Popen([sys.executable, str(ROOT / script), *args])  # noqa: S603
            for script, *args in PAGE_PROCESSES.get(page, [])
        ]
        for block in blocks:
            print(json.dumps({"line": block.line, "started": True}), file=out, flush=True)
            start = time.perf_counter()
            error = None
            try:
                code = compile(
                    "\n" * block.line + block.source,
                    str(ROOT / block.page),
                    "exec",
                    flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                    dont_inherit=True,
                )
                if code.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(code, namespace))  # noqa: S307
                else:
                    exec(code, namespace)  # noqa: S102
            except BaseException:  # reported per block
                error = traceback.format_exc()
            seconds = time.perf_counter() - start
            record = {"line": block.line, "error": error, "seconds": seconds}
            print(json.dumps(record), file=out, flush=True)
        # What a reader's session would leave open at its end is closed, as the end of
        # a script would: only clients the blocks kept in the namespace.
        for value in list(namespace.values()):
            if isinstance(value, AsyncStarVideos) and not value.closed:
                loop.run_until_complete(value.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        for helper in helpers:
            helper.terminate()
            helper.wait(10)


PYTEST_INI = "[pytest]\n"  # what a new project has: pytest-asyncio in strict mode


def run_pytest_page(blocks: list[Block], results: Path) -> None:
    """Write each block as a test module of a fresh project and run pytest there."""
    with tempfile.TemporaryDirectory() as project:
        where = Path(project)
        (where / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
        for block in blocks:
            (where / f"test_block_{block.line}.py").write_text(block.source, encoding="utf-8")
        report = where / "report.xml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STARVIDEOS_", "PYTEST_"))}
        start = time.perf_counter()
        options = ["-p", "no:cacheprovider", "--continue-on-collection-errors"]
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "pytest", *options, f"--junitxml={report}"],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        seconds = time.perf_counter() - start
        failures: dict[int, list[str]] = {}
        cases = ET.parse(report).getroot().iter("testcase")  # noqa: S314 - pytest's report
        for case in cases:
            found = re.search(r"test_block_(\d+)", f"{case.get('classname')} {case.get('name')}")
            problems = [p for p in case if p.tag in ("failure", "error")]
            if found and problems:
                for problem in problems:
                    text = f"{case.get('name')}: {problem.get('message')}\n{problem.text}"
                    failures.setdefault(int(found[1]), []).append(text)
        with results.open("w", encoding="utf-8") as out:
            for block in blocks:
                error = "\n".join(failures.get(block.line, [])) or None
                if not failures and proc.returncode not in (0, 5):
                    error = f"pytest exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                record = {"line": block.line, "error": error, "seconds": seconds / len(blocks)}
                print(json.dumps(record), file=out, flush=True)


def main() -> None:
    page, results = sys.argv[1], Path(sys.argv[2])
    blocks = [b for b in BLOCKS if b.page == page and b.skip is None]
    if page in PYTEST_PAGES:
        run_pytest_page(blocks, results)
    else:
        run_page(page, blocks, results)


# -- the tests -------------------------------------------------------------------------


@dataclass
class PageRun:
    """What running one page's blocks gave."""

    results: dict[int, dict[str, Any]]
    returncode: int | None
    output: str


_runs: dict[str, subprocess.Popen[str]] = {}
_finished: dict[str, PageRun] = {}


def _start(page: str, workdir: Path, redis_url: str) -> None:
    results = workdir / "results.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARVIDEOS_")}
    env["STARVIDEOS_REDIS_URL"] = redis_url  # the suite's redis-server (the deployment guide)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    _runs[page] = subprocess.Popen(  # noqa: S603
        [sys.executable, __file__, page, str(results)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def page_run(page: str, tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> PageRun:
    """Runs every page once (all at the same time, at the first request); one page's result."""
    if not _runs:
        for name in sorted({b.page for b in BLOCKS if b.skip is None}):
            _start(name, tmp_path_factory.mktemp("page"), redis_url)
    if page not in _finished:
        proc = _runs[page]
        count = sum(1 for b in BLOCKS if b.page == page and b.skip is None)
        try:
            output, _ = proc.communicate(timeout=60 + BLOCK_SECONDS * count)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        results: dict[int, dict[str, Any]] = {}
        path = Path(proc.args[3])  # type: ignore[index]
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for line in lines:
            record = json.loads(line)
            results.setdefault(record["line"], {}).update(record)
        _finished[page] = PageRun(results, proc.returncode, output)
    return _finished[page]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs(
    block: Block, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> None:
    if block.skip is not None:
        pytest.skip(f"marked in the page: {block.skip}")
    run = page_run(block.page, tmp_path_factory, redis_server.url)
    result = run.results.get(block.line)
    if result is None or "error" not in result:
        what = "did not finish" if result else "never started (an earlier block hung?)"
        pytest.fail(f"{block.id} {what}; exit code {run.returncode}\n{run.output}")
    assert result["error"] is None, f"{block.id} failed:\n{result['error']}\n{run.output}"
    assert result["seconds"] < BLOCK_SECONDS, f"{block.id} took {result['seconds']:.1f} s"


@pytest.mark.parametrize("page", sorted({b.page for b in BLOCKS if b.skip is None}))
def test_page_leaves_nothing_behind(
    page: str, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> None:
    run = page_run(page, tmp_path_factory, redis_server.url)
    for sign in ("Unclosed", "Task was destroyed", "Traceback", "Exception ignored"):
        assert sign not in run.output, run.output
    assert run.returncode == 0, run.output


def test_the_parser_finds_every_python_fence_and_its_marker() -> None:
    text = "\n".join(
        [
            "# A page",  # 1
            "```python",  # 2
            "x = 1",
            "```",
            "% skip-test: shows a signature only",  # 5
            "",
            "```py",  # 7
            "def f(x): ...",
            "```",
            "````markdown",  # 10: a fence inside another is not a block
            "```python",
            "nested = True",
            "```",
            "````",
            "<!-- skip-test: needs a real key -->",  # 15
            "~~~ {code-block} python",  # 16
            "    y = 2",
            "~~~",
            "```pycon",  # 19: another language is not run
            ">>> 1",
            "```",
        ]
    )
    blocks = parse(text, "page.md")
    assert [(b.line, b.skip) for b in blocks] == [
        (2, None),
        (7, "shows a signature only"),
        (16, "needs a real key"),
    ]
    assert blocks[0].source == "x = 1\n"
    assert blocks[2].source == "    y = 2\n"


def test_every_page_with_python_has_its_blocks_found() -> None:
    found = {b.page for b in BLOCKS}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        if re.search(r"^```(python|py)\s*$", text, re.MULTILINE):
            assert relative(page) in found
    assert "README.md" in found
    assert len(BLOCKS) >= 20


def test_a_failing_block_is_reported_with_its_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n```python\nraise ValueError(x)\n```\n")
    blocks = parse(page.read_text(), "page.md")
    results = tmp_path / "results.jsonl"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_docs as t;"
        "t.ROOT = t.Path(sys.argv[2]);"
        "t.run_page('page.md', t.parse(t.Path(sys.argv[3]).read_text(), 'page.md'),"
        " t.Path(sys.argv[4]))"
    )
    paths = [Path(__file__).parent, tmp_path, page, results]
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", script, *map(str, paths)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    records = [json.loads(line) for line in results.read_text().splitlines()]
    done = [r for r in records if "error" in r]
    assert [(r["line"], r["error"] is None) for r in done] == [(1, True), (5, False)]
    assert f'{tmp_path / "page.md"}", line 6' in done[1]["error"]
    assert "ValueError: 1" in done[1]["error"]
    assert [b.line for b in blocks] == [1, 5]


STRICT_PROJECT_TESTS = """
from starvideos_async import PollPolicy


async def test_with_the_fixture_and_no_marker(fake_starvideos):
    async with fake_starvideos.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        video = await client.generate("a fox in snow")
    assert video.video_url is not None


async def test_without_the_fixture_and_no_marker():
    pass
"""


def test_the_fixture_runs_unmarked_tests_in_strict_mode_and_only_those(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    (tmp_path / "test_user.py").write_text(STRICT_PROJECT_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARVIDEOS_", "PYTEST_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-W", "default"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "mode=Mode.STRICT" in out or "mode=strict" in out, out  # 3.11+ or 3.10's str()
    assert "PASSED test_user.py::test_with_the_fixture_and_no_marker" in out, out
    # Strict mode still applies to every other test: that one is not run.
    assert "PASSED test_user.py::test_without_the_fixture_and_no_marker" not in out, out


if __name__ == "__main__":
    main()
