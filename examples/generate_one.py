"""Generate one video and save it: submit, wait, download.

    export STARVIDEOS_API_KEY=sk-...
    python examples/generate_one.py "a red kite over the sea, aerial shot" -o videos/

The key comes from ``$STARVIDEOS_API_KEY`` and the API root from ``--base-url`` or
``$STARVIDEOS_BASE_URL`` (the documented URL otherwise). Without ``--poll-interval`` the
SDK's adaptive policy decides when to ask for the status.
"""

from __future__ import annotations

import argparse
import asyncio

import anyio

from starvideos_async import (
    AsyncStarVideos,
    PollPolicy,
    TaskFailedError,
    TaskTimeoutError,
    Video,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--duration", type=int, default=5, help="seconds, 3..15")
    parser.add_argument("--ratio", default="16:9", choices=["16:9", "9:16"])
    parser.add_argument("--image", action="append", help="first (and last) frame URL")
    parser.add_argument("-o", "--out", default=".", help="folder for the video")
    parser.add_argument("--timeout", type=float, help="give up waiting after N seconds")
    parser.add_argument("--base-url", help="default: $STARVIDEOS_BASE_URL")
    parser.add_argument("--poll-interval", type=float, help="fixed polling, in seconds")
    return parser.parse_args(argv)


def show(video: Video) -> None:
    print(f"{video.id}: {video.status_value}")


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    policy = PollPolicy.fixed(args.poll_interval) if args.poll_interval else None
    await anyio.Path(args.out).mkdir(parents=True, exist_ok=True)
    async with AsyncStarVideos(base_url=args.base_url, poll_policy=policy) as client:
        task = await client.submit(
            args.prompt, duration=args.duration, ratio=args.ratio, images=args.image
        )
        print(f"submitted {task.id}")  # save it: the id is the only handle on a paid job
        try:
            video = await task.wait(timeout=args.timeout, on_status=show)
        except TaskFailedError as exc:
            print(f"{exc.task_id} failed: {exc.error}")
            return 1
        except TaskTimeoutError as exc:
            print(f"{exc.task_id} still running; wait again with: starvideos wait {exc.task_id}")
            return 3
        path = await client.download(video, args.out)
        print(f"saved {path} ({video.actual_duration} s of video)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
