"""The ``starvideos`` command line (also ``python -m starvideos_async``).

Exit codes: 0 every task completed, 1 some failed (or their outcome is unknown),
2 usage or input error, 130 interrupted. The API key comes from
``$STARVIDEOS_API_KEY`` or ``--api-key-file`` and is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio

from ._client import AsyncStarVideos
from ._errors import InvalidRequestError, StarVideosError, TaskFailedError
from ._models import Video, VideoRequest
from ._poll_policy import PollPolicy
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

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


def _client(args: argparse.Namespace, **kwargs: Any) -> AsyncStarVideos:
    try:
        return AsyncStarVideos(_read_key(args), base_url=args.base_url, **kwargs)
    except InvalidRequestError as exc:
        raise UsageError(str(exc)) from exc
    except StarVideosError as exc:  # no key
        raise UsageError(str(exc)) from exc


def _policy(args: argparse.Namespace) -> PollPolicy | None:
    interval = getattr(args, "poll_interval", None)
    return PollPolicy.fixed(interval) if interval else None


def _print_video(video: Video, args: argparse.Namespace) -> None:
    if args.json:
        record = {
            "id": video.id,
            "status": video.status_value,
            "created": video.created,
            "model": video.model,
            "video_url": video.video_url,
            "actual_duration": video.actual_duration,
            "error": video.error,
            "extra": dict(video.extra),
        }
        print(json.dumps(record))
        return
    line = f"{video.id} {video.status_value}"
    if video.video_url:
        line += f" {video.video_url}"
    if video.error:
        line += f" error={video.error!r}"
    print(line)


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


# -- commands -------------------------------------------------------------------------


async def cmd_submit(args: argparse.Namespace) -> int:
    """Create one task and print its id (the video comes later: save the id)."""
    request = _request_from(args)
    async with _client(args) as client:
        task = await client.submit(request)
    assert task.latest is not None  # noqa: S101 - submit always returns the create answer
    _print_video(task.latest, args)
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
            print(f"{video.id} {video.status_value}", file=sys.stderr, flush=True)

    return await client.task(task_id).wait(
        timeout=args.timeout, poll_policy=_policy(args), on_status=show
    )


async def cmd_wait(args: argparse.Namespace) -> int:
    """Wait for a task to finish; print the final state."""
    async with _client(args) as client:
        try:
            video = await _wait(client, args.id, args)
        except TaskFailedError as exc:
            _print_video(exc.video, args)
            return EXIT_FAILED
    _print_video(video, args)
    return EXIT_OK


async def cmd_download(args: argparse.Namespace) -> int:
    """Download a finished task's video to a file or folder."""
    async with _client(args) as client:
        path = await client.download(args.id, args.dest, overwrite=args.overwrite)
    print(json.dumps({"id": args.id, "path": str(path)}) if args.json else path)
    return EXIT_OK


async def cmd_generate(args: argparse.Namespace) -> int:
    """Submit, wait and download in one go."""
    request = _request_from(args)
    async with _client(args) as client:
        task = await client.submit(request)
        print(f"created {task.id}", file=sys.stderr, flush=True)
        try:
            video = await _wait(client, task.id, args)
        except TaskFailedError as exc:
            _print_video(exc.video, args)
            return EXIT_FAILED
        dest = Path(args.output) if args.output else Path.cwd()
        path = await client.download(video, dest, overwrite=args.overwrite)
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
    out = await anyio.open_file(out_path, "a", encoding="utf-8") if out_path else None
    reporter.start(len(requests), title=title)
    failed = 0
    try:
        run = run_batch(
            client,
            requests,
            journal=args.journal,
            download_dir=args.download_dir,
            max_in_flight=args.max_in_flight,
            poll_policy=_policy(args),
            retry_unknown=getattr(args, "retry_unknown", False),
            on_status=lambda key, video: reporter.status(key, video.id, video.status_value),
        )
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
    reporter.finish()
    return EXIT_FAILED if failed else EXIT_OK


async def cmd_batch(args: argparse.Namespace) -> int:
    """Run (or resume) a batch from a .jsonl or .csv file, journaled for crash safety."""
    from ._inputs import InputError, load_requests

    try:
        requests = await asyncio.to_thread(load_requests, args.input)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    argv = ["starvideos", *sys.argv[1:]] if sys.argv[1:] else ["starvideos", "batch"]
    async with _client(args) as client:
        return await _run_batch(
            client, requests, args, title=f"batch {args.input}", resume_hint=shlex.join(argv)
        )


async def cmd_demo(args: argparse.Namespace) -> int:
    """Run a 20-prompt batch against the built-in fake service: no key, no network."""
    from .testing import FakeStarVideos

    out_dir = (
        Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="starvideos-demo-"))
    )
    args.journal = str(out_dir / "journal.sqlite3")
    args.download_dir = str(out_dir / "videos")
    await anyio.Path(args.download_dir).mkdir(parents=True, exist_ok=True)
    args.poll_interval = args.poll_interval or 0.1
    async with FakeStarVideos(
        time_scale=args.time_scale, seed=args.seed, failure_rate=args.failure_rate
    ) as fake:
        print(
            f"fake StarVideos service at {fake.base_url} (files at {fake.files_url})",
            file=sys.stderr,
        )
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
        print(
            f"the service saw {fake.counters['create']} creates and "
            f"{fake.counters['status']} status calls; videos are in {args.download_dir}",
            file=sys.stderr,
        )
    return code


async def cmd_fake_server(args: argparse.Namespace) -> int:
    """Serve the fake StarVideos service until interrupted (for other tools and languages)."""
    from .testing import FakeStarVideos

    fake = FakeStarVideos(
        host=args.host,
        port=args.port,
        files_port=args.files_port,
        time_scale=args.time_scale,
        seed=args.seed,
        failure_rate=args.failure_rate,
        record_requests=False,
    )
    await fake.start()
    info = {"base_url": fake.base_url, "files_url": fake.files_url, "api_key": fake.api_key}
    print(
        json.dumps(info) if args.json else f"serving {fake.base_url} (key: {fake.api_key})",
        flush=True,
    )
    await fake.serve_forever()
    return EXIT_OK


# -- parsing and running --------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _add_request_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the text prompt")
    parser.add_argument("--image", action="append", metavar="URL", help="image URL (0-2 times)")
    parser.add_argument("--duration", type=int, default=5, help="seconds, 3-15 (default 5)")
    parser.add_argument("--ratio", default="16:9", help="16:9 (default) or 9:16")
    parser.add_argument("--model", default="starvideos_v3", help="model (default starvideos_v3)")


def _add_wait_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_positive_float, help="give up waiting after S seconds")
    parser.add_argument(
        "--poll-interval", type=_positive_float, help="poll every S seconds (default: adaptive)"
    )


def _common_options(default: Any) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=False if default is None else default,
        help="machine-readable JSON output",
    )
    common.add_argument(
        "--base-url",
        default=default,
        help="API base URL (default: $STARVIDEOS_BASE_URL, then the official one)",
    )
    common.add_argument(
        "--api-key-file",
        default=default,
        help="read the API key from this file (default: $STARVIDEOS_API_KEY)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``starvideos``."""
    # The options may stand before or after the command; the copy given to the
    # commands defaults to SUPPRESS so it does not overwrite a value given before.
    top, common = _common_options(None), _common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="starvideos", description="StarVideos from the command line.", parents=[top]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", parents=[common], help="create a task, print its id")
    _add_request_args(p)
    p.set_defaults(run=cmd_submit)

    p = sub.add_parser("status", parents=[common], help="print a task's status")
    p.add_argument("id")
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("wait", parents=[common], help="wait for a task to finish")
    p.add_argument("id")
    _add_wait_args(p)
    p.set_defaults(run=cmd_wait)

    p = sub.add_parser("download", parents=[common], help="download a finished task's video")
    p.add_argument("id")
    p.add_argument("dest", help="file path or existing folder")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_download)

    p = sub.add_parser("generate", parents=[common], help="submit, wait and download")
    _add_request_args(p)
    _add_wait_args(p)
    p.add_argument("-o", "--output", help="file or folder for the video (default: here)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("batch", parents=[common], help="run or resume a journaled batch")
    p.add_argument("input", help="a .jsonl or .csv file of requests")
    p.add_argument("--journal", required=True, help="SQLite journal (resume by running again)")
    p.add_argument("--download-dir", help="download finished videos here")
    p.add_argument("--max-in-flight", type=int, default=32, help="tasks running at once (32)")
    p.add_argument("--out", help="append one JSON line per result to this file")
    p.add_argument(
        "--retry-unknown", action="store_true", help="re-send creates of unknown outcome"
    )
    _add_wait_args(p)
    p.set_defaults(run=cmd_batch)

    p = sub.add_parser("demo", parents=[common], help="a batch against the built-in fake service")
    p.add_argument("--count", type=int, default=20, help="number of prompts (20)")
    p.add_argument("--out-dir", help="where the journal and videos go (default: a temp folder)")
    p.add_argument("--max-in-flight", type=int, default=8)
    p.add_argument(
        "--time-scale",
        type=_positive_float,
        default=0.02,
        help="fake's seconds per simulated second",
    )
    p.add_argument("--failure-rate", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--poll-interval", type=_positive_float)
    p.set_defaults(run=cmd_demo, timeout=None)

    p = sub.add_parser("fake-server", parents=[common], help="serve the fake StarVideos service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--files-port", type=int, default=0)
    p.add_argument("--time-scale", type=_positive_float, default=1.0)
    p.add_argument("--failure-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_fake_server)
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
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
