"""Generate one video and save it: submit, wait, download.

    export STARVIDEOS_API_KEY=sk-...
    python examples/generate_one.py "a red kite over the sea, aerial shot" -o videos/
    python examples/generate_one.py "the same kite, closer" --model starvideos_o3 \
        --reference-image https://example.com/kite.png -o videos/

The key comes from ``$STARVIDEOS_API_KEY`` and the API root from ``--base-url`` or
``$STARVIDEOS_BASE_URL`` (the documented URL otherwise). Without ``--poll-interval`` the
SDK's adaptive policy decides when to ask for the status. Without ``--duration`` and
``--ratio`` the model's defaults apply (``starvideos_v3``: 5 s, 16:9; ``starvideos_o3``:
3 s, 9:16). The inputs of one model given to the other are refused before anything is
sent.
"""

from __future__ import annotations

import argparse
import asyncio

import anyio

from starvideos_async import (
    AsyncStarVideos,
    InvalidRequestError,
    PollPolicy,
    TaskFailedError,
    TaskTimeoutError,
    Video,
    VideoTask,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--model", default="starvideos_v3")
    parser.add_argument("--duration", type=int, help="seconds, 3..15")
    parser.add_argument("--ratio", help="16:9 or 9:16 (and 1:1 on starvideos_o3)")
    parser.add_argument("--image", action="append", help="v3: first (and last) frame URL")
    o3 = parser.add_argument_group("starvideos_o3 inputs")
    o3.add_argument("--reference-image", action="append", help="up to 7 image URLs")
    o3.add_argument("--reference-video", action="append", help="video URLs")
    o3.add_argument("--first-image", help="first frame URL")
    o3.add_argument("--last-image", help="last frame URL")
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
        try:
            task = await submit(client, args)
        except InvalidRequestError as exc:  # checked before anything is sent
            print(f"not sent: {exc}")
            return 2
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


async def submit(client: AsyncStarVideos, args: argparse.Namespace) -> VideoTask:
    """Create the task the command line describes (omitted inputs: the model's defaults)."""
    return await client.submit(
        args.prompt,
        model=args.model,
        duration=args.duration,
        ratio=args.ratio,
        images=args.image,
        reference_images=args.reference_image,
        reference_videos=args.reference_video,
        first_image=args.first_image,
        last_image=args.last_image,
    )


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
