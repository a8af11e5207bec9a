"""The ``starvideos`` command line (also ``python -m starvideos_async``).

Exit codes: 0 every task completed, 1 some failed (or their outcome is unknown),
2 usage or input error, 124 ``--timeout`` passed first (the tasks keep running: wait
again, or run the same batch again to resume), 130 interrupted. The API key comes from
``$STARVIDEOS_API_KEY`` or ``--api-key-file`` and is never printed.

Each command accepts only the options it uses; the shared ones (``--json``, the
connection and client settings) may stand before or after the command.

Here: :func:`main`, which parses (``_parser``: options, environment variables, checks),
runs the command (``_commands``: one coroutine each) and turns errors into exit codes;
``_output`` prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from starvideos_async._errors import StarVideosError

from ._commands import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    UsageError,
)
from ._parser import build_parser, resolve_shared

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TIMEOUT", "EXIT_USAGE", "main"]


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
    resolve_shared(parser, args)
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
