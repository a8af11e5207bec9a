"""The commands of ``starvideos``: one ``cmd_*`` coroutine each, and what they share.

A command gets the parsed options (see ``_parser``) and returns its exit code; bad usage
or input raises :class:`UsageError` (exit 2). The helpers here turn options into the
client, the request and a checked destination; what is printed, and how, is ``_output``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from starvideos_async._client import AsyncStarVideos
from starvideos_async._errors import (
    InvalidRequestError,
    StarVideosError,
    TaskFailedError,
    TaskTimeoutError,
)
from starvideos_async._models import Video
from starvideos_async._poll_policy import PollPolicy
from starvideos_async._requests import VideoRequest

from ._output import note, print_video, video_record

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "UsageError",
    "cmd_batch",
    "cmd_demo",
    "cmd_download",
    "cmd_fake_server",
    "cmd_generate",
    "cmd_status",
    "cmd_submit",
    "cmd_wait",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130

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
    if getattr(args, "redis", None):
        try:
            from starvideos_async.redis import RedisCoordinator
        except ImportError as exc:  # redis-py missing
            raise UsageError("--redis needs: pip install 'starvideos-async[redis]'") from exc
        settings["coordinator"] = RedisCoordinator(args.redis)
    try:
        return AsyncStarVideos(_read_key(args), base_url=args.base_url, **settings)
    except StarVideosError as exc:  # no key, a bad base URL or setting
        raise UsageError(str(exc)) from exc


def _policy(args: argparse.Namespace) -> PollPolicy | None:
    interval = getattr(args, "poll_interval", None)
    return PollPolicy.fixed(interval) if interval else None


def _request_from(args: argparse.Namespace) -> VideoRequest:
    try:
        return VideoRequest(
            prompt=args.prompt,
            duration=args.duration,
            ratio=args.ratio,
            model=args.model,
            images=args.image or (),
            reference_images=args.reference_image or (),
            first_image=args.first_image,
            last_image=args.last_image,
            reference_videos=args.reference_video or (),
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
        print(json.dumps(video_record(video) if video else {"id": task.id, "status": None}))
    else:
        print(task.id)
    note(f"{task.id} {status}")
    return EXIT_OK


async def cmd_status(args: argparse.Namespace) -> int:
    """Print a task's status now."""
    async with _client(args) as client:
        video = await client.retrieve(args.id)
    print_video(video, json_output=args.json)
    return EXIT_OK


async def _wait(client: AsyncStarVideos, task_id: str, args: argparse.Namespace) -> Video:
    def show(video: Video) -> None:
        if not args.json:
            note(f"{video.id} {video.status_value}")

    return await client.task(task_id).wait(
        timeout=args.timeout, poll_policy=_policy(args), on_status=show
    )


def _timed_out(exc: TaskTimeoutError, args: argparse.Namespace, then: str) -> int:
    if exc.video is not None:
        print_video(exc.video, json_output=args.json)
    note(f"starvideos: {exc}\n  go on with: starvideos wait {exc.task_id}{then}")
    return EXIT_TIMEOUT


async def cmd_wait(args: argparse.Namespace) -> int:
    """Wait for a task to finish; print the final state."""
    async with _client(args) as client:
        try:
            video = await _wait(client, args.id, args)
        except TaskFailedError as exc:
            print_video(exc.video, json_output=args.json)
            return EXIT_FAILED
        except TaskTimeoutError as exc:
            return _timed_out(exc, args, "")
    print_video(video, json_output=args.json)
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
        note(f"created {task.id}")
        try:
            video = await _wait(client, task.id, args)
        except TaskFailedError as exc:
            print_video(exc.video, json_output=args.json)
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
    from starvideos_async.batch import run_batch

    from ._output import make_reporter

    reporter = make_reporter(json_output=args.json)
    # Estimates from the client's policy, over every duration (the view knows no request).
    reporter.estimator = lambda created: client.poll_policy.estimate(
        age=max(time.time() - created, 0.0), duration=None
    )
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
            on_status=lambda key, video: reporter.status(
                key, video.id, video.status_value, created=video.created
            ),
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
    from starvideos_async.batch._inputs import InputError, load_requests

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
    from starvideos_async.testing import FakeStarVideos

    out_dir = (
        Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="starvideos-demo-"))
    )
    args.journal = str(out_dir / "journal.sqlite3")
    args.download_dir = str(out_dir / "videos")
    args.poll_interval = args.poll_interval or 0.1
    async with FakeStarVideos(
        time_scale=args.time_scale, seed=args.seed, failure_rate=args.failure_rate
    ) as fake:
        note(f"fake StarVideos service at {fake.base_url} (files at {fake.files_url})")
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
        note(
            f"the service saw {fake.counters['create']} creates and "
            f"{fake.counters['status']} status calls; videos are in {args.download_dir}"
        )
    return code


async def cmd_fake_server(args: argparse.Namespace) -> int:
    """Serve the fake StarVideos service until interrupted (for other tools and languages)."""
    from starvideos_async.testing import FakeStarVideos

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
