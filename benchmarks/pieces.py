"""Instructions per call of the pieces of a request, each counted apart under valgrind.

Each piece runs in a loop of 20,000 calls in a process of its own under
``valgrind --tool=callgrind``, and once with no call; the difference of the two
instruction totals, divided by 20,000, is the piece's cost per call (start-up and
imports cancel out). Steady within about 1 % from run to run, whatever the load.

::

    python benchmarks/pieces.py                  # every piece, about 6 minutes
    python benchmarks/pieces.py video semaphore  # some of them

Needs valgrind (Debian: ``apt-get install valgrind``). Point ``PYTHONPATH`` at another
checkout to count another version. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

#: Calls per counted run.
CALLS = 20_000
#: A status answer as the fake service sends it.
ANSWER = (
    b'{"id":"video_starvideos_abc123","object":"video","created":1700000000,'
    b'"model":"starvideos_v3","status":"processing"}'
)


def pieces() -> dict[str, tuple[str, Callable[[], Any]]]:
    """Each piece: what it is, and one call of it (set up beforehand, not counted)."""
    from yarl import URL

    from starvideos_async import AsyncStarVideos, Video, VideoRequest
    from starvideos_async._errors import RequestInfo
    from starvideos_async._http import result_path, translate_errors
    from starvideos_async._limits import RateGate
    from starvideos_async._serde import request_body, structure_video

    data = json.loads(ANSWER)
    info = RequestInfo("GET", "/v1/result/video_starvideos_abc123", "video_starvideos_abc123")
    request = VideoRequest(prompt="a cat surfing a wave at sunset")
    client = AsyncStarVideos(api_key="benchmark", base_url="http://127.0.0.1:9")
    base = URL("http://127.0.0.1:9")
    gate = RateGate(None)
    semaphore = asyncio.Semaphore(64)

    def translate() -> None:
        with translate_errors(info):
            pass

    async def enter_semaphore() -> None:
        async with semaphore:
            pass

    return {
        "call": ("a call of `lambda: None` (in every figure below)", lambda: None),
        "loads": ("`json.loads` of a status answer", lambda: json.loads(ANSWER)),
        "video": ("`structure_video()` of the decoded answer", lambda: structure_video(data)),
        "video-init": (
            "`Video(...)` with the answer's five fields",
            lambda: Video(id="a", status="processing", object="video", created=1, model="m"),
        ),
        "request": (
            "`VideoRequest(prompt=...)`",
            lambda: VideoRequest(prompt="a cat surfing a wave at sunset"),
        ),
        "handle": ("`client.task(id)`", lambda: client.task("video_starvideos_abc123")),
        "semaphore": ("`async with asyncio.Semaphore`, uncontended", enter_semaphore),
        "path": ("`result_path(id)`", lambda: result_path("video_starvideos_abc123")),
        "body": ("`request_body(request)`", lambda: request_body(request)),
        "info": ("`RequestInfo(...)`", lambda: RequestInfo("GET", "/v1/result/x", "x")),
        "translate": ("`with translate_errors(info):`, nothing raised", translate),
        "url": (
            "`URL.with_path()` of a status path",
            lambda: base.with_path("/v1/result/video_starvideos_abc123", encoded=True),
        ),
        "gate": ("`RateGate(None).delay()`", gate.delay),
    }


def run_piece(name: str, calls: int) -> None:
    """In the counted process: ``calls`` calls of piece ``name``."""

    async def main() -> None:
        call = pieces()[name][1]
        if asyncio.iscoroutinefunction(call):
            for _ in range(calls):
                await call()
        else:
            for _ in range(calls):
                call()

    asyncio.run(main())


def count(name: str, calls: int) -> int:
    """Instructions of a process making ``calls`` calls of ``name``, counted by valgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        name,
        str(calls),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # both runs alike
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)  # noqa: S603
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--run"]:
        run_piece(sys.argv[2], int(sys.argv[3]))
        return
    names = list(pieces())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pieces", nargs="*", help=f"some of: {', '.join(names)}")
    args = parser.parse_args()
    unknown = set(args.pieces) - set(names)
    if unknown:
        parser.error(f"unknown pieces: {', '.join(sorted(unknown))}")
    print("| piece | instructions per call |\n| --- | ---: |")
    for name in args.pieces or names:
        per_call = (count(name, CALLS) - count(name, 0)) / CALLS
        print(f"| {pieces()[name][0]} | {per_call / 1000:.1f}k |", flush=True)


if __name__ == "__main__":
    main()
