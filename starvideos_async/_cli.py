"""The ``starvideos`` command line (also ``python -m starvideos_async``).

Exit codes: 0 every task completed, 1 some failed (or their outcome is unknown),
2 usage or input error, 124 ``--timeout`` passed first (the tasks keep running: wait
again, or run the same batch again to resume), 130 interrupted. The API key comes from
``$STARVIDEOS_API_KEY`` or ``--api-key-file`` and is never printed.

Each command accepts only the options it uses; the shared ones (``--json``, the
connection and client settings) may stand before or after the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import anyio

from ._client import AsyncStarVideos
from ._errors import InvalidRequestError, StarVideosError, TaskFailedError, TaskTimeoutError
from ._models import Video, VideoRequest
from ._poll_policy import PollPolicy
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130

EXIT_CODES = """exit codes:
  0    all completed
  1    some failed (or their outcome is unknown)
  2    usage or input error
  124  --timeout passed first (the tasks keep running; run again to go on)
  130  interrupted"""

DEMO_PROMPTS = (
    "a cyberpunk city at night, neon rain, slow push-in",
    "a red fox trotting through fresh snow, tracking shot, golden hour",
    "waves crashing on black volcanic sand, aerial drone shot, moody",
    "a paper boat drifting down a rain gutter, macro lens, shallow depth of field",
    "a lighthouse in a storm, lightning, wide angle, cinematic",
    "a hummingbird hovering at a flower, slow motion, close-up",
    "steam rising from a cup of coffee by a window, morning light, static shot",
)
DEMO_IMAGES = (
    "https://images.example.com/starvideos-demo/first-frame.png",
    "https://images.example.com/starvideos-demo/last-frame.png",
)


class UsageError(Exception):
    """Bad command-line usage or input: exit code 2."""


def _demo_requests(count: int) -> list[VideoRequest]:
    requests = []
    for index in range(count):
        mode = index % 3  # text, one image, first + last frame
        requests.append(
            VideoRequest(
                prompt=DEMO_PROMPTS[index % len(DEMO_PROMPTS)],
                duration=3 + index % 13,
                ratio=("16:9", "9:16")[index % 2],
                images=DEMO_IMAGES[:mode],
                key=f"demo-{index:03d}",
            )
        )
    return requests


def _read_key(args: argparse.Namespace) -> str | None:
    if args.api_key_file is None:
        return None
    try:
        key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read --api-key-file: {exc.strerror or exc}") from exc
    if not key:
        raise UsageError("--api-key-file is empty")
    return key


#: Client settings of the command line, by option dest -> ``AsyncStarVideos`` argument.
_CLIENT_SETTINGS = {
    "request_timeout": "timeout",
    "max_concurrency": "max_concurrency",
    "max_retries": "max_retries",
    "max_status_rate": "max_status_rate",
}


def _client(args: argparse.Namespace) -> AsyncStarVideos:
    settings = {
        arg: getattr(args, dest) for dest, arg in _CLIENT_SETTINGS.items() if dest in args.shared
    }
    try:
        return AsyncStarVideos(_read_key(args), base_url=args.base_url, **settings)
    except StarVideosError as exc:  # no key, a bad base URL or setting
        raise UsageError(str(exc)) from exc


def _policy(args: argparse.Namespace) -> PollPolicy | None:
    interval = getattr(args, "poll_interval", None)
    return PollPolicy.fixed(interval) if interval else None


def _video_record(video: Video) -> dict[str, Any]:
    return {
        "id": video.id,
        "status": video.status_value,
        "created": video.created,
        "model": video.model,
        "video_url": video.video_url,
        "actual_duration": video.actual_duration,
        "error": video.error,
        "extra": dict(video.extra),
    }


def _print_video(video: Video, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(_video_record(video)))
        return
    line = f"{video.id} {video.status_value}"
    if video.video_url:
        line += f" {video.video_url}"
    if video.error:
        line += f" error={video.error!r}"
    print(line)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _request_from(args: argparse.Namespace) -> VideoRequest:
    try:
        return VideoRequest(
            prompt=args.prompt,
            duration=args.duration,
            ratio=args.ratio,
            model=args.model,
            images=args.image or (),
        )
    except InvalidRequestError as exc:
        raise UsageError(str(exc)) from exc


def _exists_error(exc: FileExistsError) -> UsageError:
    where = exc.filename or "the destination"
    return UsageError(f"{where} exists; pass --overwrite to replace it")


def _check_dest(dest: str | None, *, overwrite: bool) -> None:
    """Refuse an existing file early (before anything is paid for) unless ``--overwrite``."""
    if dest is None or overwrite or dest.endswith(("/", os.sep)):
        return
    path = Path(dest)
    if os.path.lexists(path) and not path.is_dir():
        raise _exists_error(FileExistsError(17, "file exists", dest))


# -- commands -------------------------------------------------------------------------


async def cmd_submit(args: argparse.Namespace) -> int:
    """Create one task and print its id alone (``ID=$(starvideos submit ...)``)."""
    request = _request_from(args)
    async with _client(args) as client:
        task = await client.submit(request)
    video = task.latest
    status = video.status_value if video is not None else "created"
    if args.json:
        print(json.dumps(_video_record(video) if video else {"id": task.id, "status": None}))
    else:
        print(task.id)
    _note(f"{task.id} {status}")
    return EXIT_OK


async def cmd_status(args: argparse.Namespace) -> int:
    """Print a task's status now."""
    async with _client(args) as client:
        video = await client.retrieve(args.id)
    _print_video(video, args)
    return EXIT_OK


async def _wait(client: AsyncStarVideos, task_id: str, args: argparse.Namespace) -> Video:
    def show(video: Video) -> None:
        if not args.json:
            _note(f"{video.id} {video.status_value}")

    return await client.task(task_id).wait(
        timeout=args.timeout, poll_policy=_policy(args), on_status=show
    )


def _timed_out(exc: TaskTimeoutError, args: argparse.Namespace, then: str) -> int:
    if exc.video is not None:
        _print_video(exc.video, args)
    _note(f"starvideos: {exc}\n  go on with: starvideos wait {exc.task_id}{then}")
    return EXIT_TIMEOUT


async def cmd_wait(args: argparse.Namespace) -> int:
    """Wait for a task to finish; print the final state."""
    async with _client(args) as client:
        try:
            video = await _wait(client, args.id, args)
        except TaskFailedError as exc:
            _print_video(exc.video, args)
            return EXIT_FAILED
        except TaskTimeoutError as exc:
            return _timed_out(exc, args, "")
    _print_video(video, args)
    return EXIT_OK


async def cmd_download(args: argparse.Namespace) -> int:
    """Download a finished task's video to a file or folder (created when missing)."""
    _check_dest(args.dest, overwrite=args.overwrite)
    async with _client(args) as client:
        try:
            path = await client.download(args.id, args.dest, overwrite=args.overwrite)
        except FileExistsError as exc:
            raise _exists_error(exc) from exc
    print(json.dumps({"id": args.id, "path": str(path)}) if args.json else path)
    return EXIT_OK


async def cmd_generate(args: argparse.Namespace) -> int:
    """Submit, wait and download in one go."""
    request = _request_from(args)
    _check_dest(args.output, overwrite=args.overwrite)
    dest = args.output or os.curdir
    async with _client(args) as client:
        task = await client.submit(request)
        _note(f"created {task.id}")
        try:
            video = await _wait(client, task.id, args)
        except TaskFailedError as exc:
            _print_video(exc.video, args)
            return EXIT_FAILED
        except TaskTimeoutError as exc:
            return _timed_out(exc, args, f" && starvideos download {exc.task_id} {dest}")
        try:
            path = await client.download(video, dest, overwrite=args.overwrite)
        except FileExistsError as exc:
            raise _exists_error(exc) from exc
    if args.json:
        print(json.dumps({"id": video.id, "status": video.status_value, "path": str(path)}))
    else:
        print(path)
    return EXIT_OK


async def _run_batch(
    client: AsyncStarVideos,
    requests: Sequence[VideoRequest],
    args: argparse.Namespace,
    *,
    title: str,
    resume_hint: str | None,
    ok_statuses: frozenset[str] = frozenset({"completed"}),
) -> int:
    from ._cli_output import make_reporter
    from .batch import run_batch

    reporter = make_reporter(json_output=args.json)
    out_path = getattr(args, "out", None)
    try:
        run = run_batch(
            client,
            requests,
            journal=args.journal,
            download_dir=args.download_dir,
            max_in_flight=args.max_in_flight,
            poll_policy=_policy(args),
            retry_unknown=getattr(args, "retry_unknown", False),
            timeout=getattr(args, "timeout", None),
            on_status=lambda key, video: reporter.status(key, video.id, video.status_value),
        )
    except InvalidRequestError as exc:  # e.g. two rows with the same key
        raise UsageError(str(exc)) from exc
    out = await anyio.open_file(out_path, "a", encoding="utf-8") if out_path else None
    reporter.start(len(requests), title=title)
    failed = 0
    try:
        async for result in run:
            reporter.result(result)
            failed += result.status not in ok_statuses
            if out is not None:
                record = {
                    "key": result.key,
                    "task_id": result.task_id,
                    "status": result.status,
                    "error": result.error,
                    "path": str(result.path) if result.path else None,
                }
                await out.write(json.dumps(record) + "\n")
                await out.flush()
    except asyncio.CancelledError:
        reporter.finish()
        if resume_hint:
            reporter.message(
                f"interrupted; the journal is consistent. Resume with:\n  {resume_hint}"
            )
        raise
    finally:
        if out is not None:
            await out.aclose()
    reporter.finish(timed_out=run.timed_out)
    if run.timed_out:
        reporter.message(
            f"--timeout passed: {run.summary.remaining} requests unfinished; their tasks "
            "keep running and the journal keeps them."
            + (f" Resume with:\n  {resume_hint}" if resume_hint else "")
        )
        return EXIT_TIMEOUT
    return EXIT_FAILED if failed else EXIT_OK


async def cmd_batch(args: argparse.Namespace) -> int:
    """Run (or resume) a batch from a .jsonl or .csv file, journaled for crash safety."""
    from .batch._inputs import InputError, load_requests

    try:
        requests = await asyncio.to_thread(load_requests, args.input)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    async with _client(args) as client:
        return await _run_batch(
            client,
            requests,
            args,
            title=f"batch {args.input}",
            resume_hint=shlex.join(["starvideos", *args.argv]),
        )


async def cmd_demo(args: argparse.Namespace) -> int:
    """Run a 20-prompt batch against the built-in fake service: no key, no network."""
    from .testing import FakeStarVideos

    out_dir = (
        Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="starvideos-demo-"))
    )
    args.journal = str(out_dir / "journal.sqlite3")
    args.download_dir = str(out_dir / "videos")
    args.poll_interval = args.poll_interval or 0.1
    async with FakeStarVideos(
        time_scale=args.time_scale, seed=args.seed, failure_rate=args.failure_rate
    ) as fake:
        _note(f"fake StarVideos service at {fake.base_url} (files at {fake.files_url})")
        async with fake.client() as client:
            # The fake fails a share of tasks on purpose (--failure-rate): those are
            # the show, not a problem of the run; only errors and unknowns exit 1.
            code = await _run_batch(
                client,
                _demo_requests(args.count),
                args,
                title="demo",
                resume_hint=None,
                ok_statuses=frozenset({"completed", "failed", "cancelled"}),
            )
        _note(
            f"the service saw {fake.counters['create']} creates and "
            f"{fake.counters['status']} status calls; videos are in {args.download_dir}"
        )
    return code


async def cmd_fake_server(args: argparse.Namespace) -> int:
    """Serve the fake StarVideos service until interrupted (for other tools and languages)."""
    from .testing import FakeStarVideos

    fake = FakeStarVideos(
        args.api_key,
        host=args.host,
        port=args.port,
        files_port=args.files_port,
        time_scale=args.time_scale,
        seed=args.seed,
        failure_rate=args.failure_rate,
        latency=args.latency,
        record_requests=False,
    )
    await fake.start()
    info = {"base_url": fake.base_url, "files_url": fake.files_url, "api_key": fake.api_key}
    text = f"serving {fake.base_url} (files at {fake.files_url}; key: {fake.api_key})"
    print(json.dumps(info) if args.json else text, flush=True)
    await fake.serve_forever()
    return EXIT_OK


# -- option types -----------------------------------------------------------------------


def _number(
    kind: type[int] | type[float], low: float, high: float = math.inf, *, above: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` in ``[low, high]`` (``(low, high]`` if ``above``)."""
    bound = (f"> {low:g}" if above else f">= {low:g}") if high == math.inf else ""
    bound = bound or f"between {low:g} and {high:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not (low < value if above else low <= value) or not value <= high:  # NaN too
            raise argparse.ArgumentTypeError(f"must be {bound}: {text!r}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite: {text!r}")
        return value

    return parse


_positive_float = _number(float, 0.0, above=True)
_non_negative_float = _number(float, 0.0)
_positive_int = _number(int, 1)
_non_negative_int = _number(int, 0)
_port = _number(int, 0, 65535)
_rate = _number(float, 0.0, 1.0)


# -- shared options ---------------------------------------------------------------------

_CLIENT_DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(AsyncStarVideos.__init__).parameters.items()
}


class _Shared(NamedTuple):
    """An option several commands share; ``env`` names its environment variable."""

    flag: str
    env: str | None
    default: Any
    kwargs: dict[str, Any]


def _setting(flag: str, env: str, arg: str, kind: Callable[[str], Any], what: str) -> _Shared:
    default = _CLIENT_DEFAULTS[arg]
    shown = "no limit" if default is None else f"{default:g}"
    metavar = "S" if kind is _positive_float and arg == "timeout" else "N"
    kwargs = {"type": kind, "metavar": metavar, "help": f"{what} (default: ${env}, else {shown})"}
    return _Shared(flag, env, default, kwargs)


_SHARED: dict[str, _Shared] = {
    "json": _Shared(
        "--json", None, False, {"action": "store_true", "help": "machine-readable JSON output"}
    ),
    "base_url": _Shared(
        "--base-url",
        None,
        None,
        {
            "metavar": "URL",
            "help": "API base URL (default: $STARVIDEOS_BASE_URL, else the official)",
        },
    ),
    "api_key_file": _Shared(
        "--api-key-file",
        None,
        None,
        {"metavar": "FILE", "help": "read the API key from FILE (default: $STARVIDEOS_API_KEY)"},
    ),
    "request_timeout": _setting(
        "--request-timeout",
        "STARVIDEOS_REQUEST_TIMEOUT",
        "timeout",
        _positive_float,
        "seconds one HTTP request may take",
    ),
    "max_retries": _setting(
        "--max-retries",
        "STARVIDEOS_MAX_RETRIES",
        "max_retries",
        _non_negative_int,
        "retries per request",
    ),
    "max_status_rate": _setting(
        "--max-status-rate",
        "STARVIDEOS_MAX_STATUS_RATE",
        "max_status_rate",
        _positive_float,
        "at most N status calls in any one second",
    ),
    "max_concurrency": _setting(
        "--max-concurrency",
        "STARVIDEOS_MAX_CONCURRENCY",
        "max_concurrency",
        _positive_int,
        "HTTP requests in flight at once",
    ),
}
#: The shared options each kind of command uses.
_OUTPUT = ("json",)
_API = ("json", "base_url", "api_key_file", "request_timeout", "max_retries")
_POLLING = (*_API, "max_status_rate")
_BATCH = (*_POLLING, "max_concurrency")


def _add_shared(parser: argparse.ArgumentParser, names: Sequence[str], title: str) -> None:
    # SUPPRESS: an option absent from the namespace was not given (see _resolve_shared).
    group = parser.add_argument_group(title)
    for name in names:
        option = _SHARED[name]
        group.add_argument(option.flag, dest=name, default=argparse.SUPPRESS, **option.kwargs)


def _resolve_shared(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse shared options the command does not use; fill the rest from env or default."""
    for name, option in _SHARED.items():
        if name not in args.shared:
            if hasattr(args, name):  # given before the command
                parser.error(f"{option.flag} does nothing for '{args.command}'")
            continue
        if hasattr(args, name):
            continue
        value = option.default
        raw = os.environ.get(option.env) if option.env else None
        if option.env and raw:
            try:
                value = option.kwargs["type"](raw)
            except argparse.ArgumentTypeError as exc:
                parser.error(f"${option.env}: {exc}")
        setattr(args, name, value)


# -- the parser ---------------------------------------------------------------------------


def _add_request_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the text prompt")
    parser.add_argument("--image", action="append", metavar="URL", help="image URL (0-2 times)")
    parser.add_argument("--duration", type=int, default=5, help="seconds, 3-15 (default 5)")
    parser.add_argument("--ratio", default="16:9", help="16:9 (default) or 9:16")
    parser.add_argument("--model", default="starvideos_v3", help="model (default starvideos_v3)")


def _add_poll_interval(parser: argparse.ArgumentParser, default: str = "adaptive") -> None:
    parser.add_argument(
        "--poll-interval",
        type=_positive_float,
        metavar="S",
        help=f"poll every S seconds (default: {default})",
    )


def _add_wait_args(parser: argparse.ArgumentParser, timeout_help: str) -> None:
    parser.add_argument("--timeout", type=_positive_float, metavar="S", help=timeout_help)
    _add_poll_interval(parser)


def _command(
    sub: Any,
    name: str,
    run: Callable[[argparse.Namespace], Awaitable[int]],
    shared: Sequence[str],
    summary: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    env = ["STARVIDEOS_API_KEY", "STARVIDEOS_BASE_URL"] if "base_url" in shared else []
    env += [e for n in shared if (e := _SHARED[n].env)]
    epilog = "".join(f"environment:\n  {e}\n" for e in env[:1]) + "".join(
        f"  {e}\n" for e in env[1:]
    )
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description or f"{summary[0].upper()}{summary[1:]}.",
        epilog=epilog + ("\n" if epilog else "") + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_shared(parser, shared, "shared options")
    parser.set_defaults(run=run, shared=frozenset(shared))
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``starvideos``."""
    from .batch import DEFAULT_MAX_IN_FLIGHT

    parser = argparse.ArgumentParser(
        prog="starvideos",
        description="StarVideos from the command line.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_shared(
        parser, list(_SHARED), "shared options (also after the command; refused where unused)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "submit", cmd_submit, _API, "create a task, print its id alone")
    _add_request_args(p)

    p = _command(sub, "status", cmd_status, _API, "print a task's status")
    p.add_argument("id")

    p = _command(sub, "wait", cmd_wait, _POLLING, "wait for a task to finish")
    p.add_argument("id")
    _add_wait_args(p, "stop waiting after S seconds (exit 124; the task keeps running)")

    p = _command(sub, "download", cmd_download, _API, "download a finished task's video")
    p.add_argument("id")
    p.add_argument("dest", help="file path, or folder (existing or ending in /; created)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")

    p = _command(sub, "generate", cmd_generate, _POLLING, "submit, wait and download")
    _add_request_args(p)
    _add_wait_args(p, "stop waiting after S seconds (exit 124; the task keeps running)")
    p.add_argument("-o", "--output", help="file, or folder ending in / (default: here)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")

    p = _command(sub, "batch", cmd_batch, _BATCH, "run or resume a journaled batch")
    p.add_argument("input", help="a .jsonl or .csv file of requests")
    p.add_argument("--journal", required=True, help="SQLite journal (resume by running again)")
    p.add_argument("--download-dir", help="download finished videos here (created)")
    p.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=DEFAULT_MAX_IN_FLIGHT,
        metavar="N",
        help=f"tasks submitted but not finished at once (default {DEFAULT_MAX_IN_FLIGHT})",
    )
    p.add_argument("--out", help="append one JSON line per result to this file")
    p.add_argument(
        "--retry-unknown", action="store_true", help="re-send creates of unknown outcome"
    )
    _add_wait_args(
        p,
        "stop after S seconds: unfinished tasks keep running and stay in the journal; "
        "run the same command again to resume (exit 124)",
    )

    p = _command(
        sub, "demo", cmd_demo, _OUTPUT, "a batch against the built-in fake service (no key)"
    )
    p.add_argument("--count", type=_positive_int, default=20, help="number of prompts (20)")
    p.add_argument("--out-dir", help="where the journal and videos go (default: a temp folder)")
    p.add_argument(
        "--max-in-flight", type=_positive_int, default=8, metavar="N", help="tasks at once (8)"
    )
    p.add_argument(
        "--time-scale",
        type=_positive_float,
        default=0.02,
        help="real seconds per simulated second (0.02)",
    )
    p.add_argument("--failure-rate", type=_rate, default=0.1, help="share of tasks that fail")
    p.add_argument("--seed", type=int, default=7, help="seeds ids, timelines and failures (7)")
    _add_poll_interval(p, "0.1")

    p = _command(
        sub,
        "fake-server",
        cmd_fake_server,
        _OUTPUT,
        "serve the fake StarVideos service",
        "Serve the fake StarVideos service on HOST:PORT until interrupted.\n"
        "It accepts only the key given by --api-key (default: sk-fake-starvideos)\n"
        "and prints its base URL and key when ready.",
    )
    p.add_argument("--api-key", default="sk-fake-starvideos", help="the only key accepted")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="API port (8000; 0: a free one)")
    p.add_argument("--files-port", type=_port, default=0, help="file host port (0: a free one)")
    p.add_argument(
        "--time-scale", type=_positive_float, default=1.0, help="real s per simulated s (1.0)"
    )
    p.add_argument("--failure-rate", type=_rate, default=0.0, help="share of tasks that fail")
    p.add_argument("--seed", type=int, default=0, help="seeds ids, timelines and failures (0)")
    p.add_argument(
        "--latency",
        type=_non_negative_float,
        default=0.0,
        metavar="S",
        help="seconds added to every API answer (0)",
    )
    return parser


# -- running ------------------------------------------------------------------------------


async def _main_async(
    run: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - we are inside asyncio.run
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, task.cancel)
    return await run(args)


def _fail(code: int, message: str) -> NoReturn:
    print(f"starvideos: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _resolve_shared(parser, args)
    args.argv = argv
    try:
        code = asyncio.run(_main_async(args.run, args))
    except UsageError as exc:
        _fail(EXIT_USAGE, str(exc))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("starvideos: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except StarVideosError as exc:
        _fail(EXIT_FAILED, f"{type(exc).__name__}: {exc}")
    except (FileExistsError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        _fail(EXIT_USAGE, str(exc))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
