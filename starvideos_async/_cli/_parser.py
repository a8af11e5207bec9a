"""The argument parser of ``starvideos``: its options, their environment variables, checks.

Option types check values as they parse (:func:`_number`). The options several commands
share are declared once (``_SHARED``); each command accepts those it uses, before or
after its name, and :func:`resolve_shared` refuses the others and fills in those not
given from their environment variable or the client's default.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from starvideos_async._client import AsyncStarVideos
from starvideos_async._version import __version__

from ._commands import (
    cmd_batch,
    cmd_demo,
    cmd_download,
    cmd_fake_server,
    cmd_generate,
    cmd_status,
    cmd_submit,
    cmd_wait,
)

__all__ = ["build_parser", "resolve_shared"]

EXIT_CODES = """exit codes:
  0    all completed
  1    some failed (or their outcome is unknown)
  2    usage or input error
  124  --timeout passed first (the tasks keep running; run again to go on)
  130  interrupted"""

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


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"not a redis://, rediss:// or unix:// URL: {text!r}")
    return text


_SHARED["redis"] = _Shared(
    "--redis",
    "STARVIDEOS_REDIS_URL",
    None,
    {
        "type": _redis_url,
        "metavar": "URL",
        "help": "share the limits and the polling with every process on this key through "
        "the Redis at URL (default: $STARVIDEOS_REDIS_URL, else none)",
    },
)
#: The shared options each kind of command uses.
_OUTPUT = ("json",)
_API = ("json", "base_url", "api_key_file", "request_timeout", "max_retries", "redis")
_POLLING = (*_API, "max_status_rate")
_BATCH = (*_POLLING, "max_concurrency")


def _add_shared(parser: argparse.ArgumentParser, names: Sequence[str], title: str) -> None:
    # SUPPRESS: an option absent from the namespace was not given (see resolve_shared).
    group = parser.add_argument_group(title)
    for name in names:
        option = _SHARED[name]
        group.add_argument(option.flag, dest=name, default=argparse.SUPPRESS, **option.kwargs)


def resolve_shared(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
    parser.add_argument(
        "--model",
        default="starvideos_v3",
        help="starvideos_v3 (default) or starvideos_o3",
    )
    parser.add_argument(
        "--duration",
        type=int,
        help="seconds, 3-15 (default: the model's, 5 for v3, 3 for o3)",
    )
    parser.add_argument(
        "--ratio",
        help="v3: 16:9 (default) or 9:16; o3: 9:16 (default), 1:1 or 16:9",
    )
    parser.add_argument(
        "--image", action="append", metavar="URL", help="v3: image URL (0-2 times)"
    )
    parser.add_argument(
        "--reference-image",
        action="append",
        metavar="URL",
        help="o3: reference image URL (up to 7 times, 4 with --reference-video)",
    )
    parser.add_argument("--first-image", metavar="URL", help="o3: first frame URL")
    parser.add_argument("--last-image", metavar="URL", help="o3: last frame URL")
    parser.add_argument(
        "--reference-video",
        action="append",
        metavar="URL",
        help="o3: reference video URL (repeatable); the video sets duration and ratio",
    )


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
    from starvideos_async.batch import DEFAULT_MAX_IN_FLIGHT

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
    p.add_argument(
        "input",
        help="a .jsonl or .csv file of requests: prompt, model, duration, ratio, images, "
        "reference_images, first_image, last_image, reference_videos, key (CSV lists: "
        "URLs separated by |)",
    )
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
