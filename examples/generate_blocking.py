"""Generate several videos from a plain (non-async) script, with their estimates.

    export STARVIDEOS_API_KEY=sk-...
    python examples/generate_blocking.py "a fox in snow" "waves at dusk" -o videos/

The blocking client, ``StarVideos``: no ``async``/``await``. The prompts are submitted
at once, and each video is downloaded as soon as it is done. While they run, the script
says when each will likely be done, once the client has seen enough tasks finish.
"""

from __future__ import annotations

import argparse

from starvideos_async import PollPolicy, StarVideos, TaskFailedError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--duration", type=int, default=5, help="seconds, 3..15")
    parser.add_argument("-o", "--out", default=".", help="folder for the videos")
    parser.add_argument("--base-url", help="default: $STARVIDEOS_BASE_URL")
    parser.add_argument("--poll-interval", type=float, help="fixed polling, in seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    policy = PollPolicy.fixed(args.poll_interval) if args.poll_interval else None
    failed = 0
    with StarVideos(base_url=args.base_url, poll_policy=policy) as client:
        tasks = [client.submit(prompt, duration=args.duration) for prompt in args.prompts]
        for task in tasks:
            estimate = task.estimate()  # None until the client saw 8 such tasks finish
            when = f", likely done in {estimate.median:.0f} s" if estimate else ""
            print(f"submitted {task.id}{when}")  # save the id: the only handle on the job
        for task in client.as_completed(tasks):
            try:
                path = task.download(args.out)
            except TaskFailedError as exc:
                print(f"{task.id} failed: {exc.error}")
                failed += 1
                continue
            print(f"saved {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
