"""What the command line prints: a video's state, notes, and a batch's progress.

A video is one line (``ID STATUS [URL] [error=...]``) or one JSON object; notes go to
stderr. A batch's progress goes through a reporter: rich on a terminal, plain lines
otherwise, or JSON. Every reporter gets the same calls: :meth:`Reporter.start` with the
number of requests, :meth:`Reporter.result` for each request that reached its end, and
:meth:`Reporter.finish`. ``rich`` is imported only when a terminal asks for it.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starvideos_async._models import Estimate, Video

#: When a task created at the given unix time will likely be done (the client's policy).
Estimator = Callable[[float], "Estimate | None"]

__all__ = ["Reporter", "make_reporter", "note", "print_video", "video_record"]


def video_record(video: Video) -> dict[str, Any]:
    """``video`` as the JSON object the commands print."""
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


def print_video(video: Video, *, json_output: bool) -> None:
    """Print ``video``'s state on stdout: one line, or one JSON object."""
    if json_output:
        print(json.dumps(video_record(video)))
        return
    line = f"{video.id} {video.status_value}"
    if video.video_url:
        line += f" {video.video_url}"
    if video.error:
        line += f" error={video.error!r}"
    print(line)


def note(text: str) -> None:
    """Print ``text`` on stderr, at once (progress and hints, never the result)."""
    print(text, file=sys.stderr, flush=True)


class ResultLike(Protocol):
    """What a reporter reads from a batch result."""

    @property
    def key(self) -> str: ...
    @property
    def task_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def path(self) -> Any: ...


class Reporter:
    """Plain output: one line per event, for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.running: dict[str, str] = {}  # key -> latest status, until its result
        self.created: dict[str, float] = {}  # key -> its running task's creation time
        self.estimator: Estimator | None = None
        self.started = time.monotonic()

    def start(self, total: int, *, title: str = "batch") -> None:
        """A batch of ``total`` requests begins."""
        self.total = total
        self.started = time.monotonic()
        self._line(f"{title}: {total} requests")

    def status(self, key: str, task_id: str, status: str, *, created: float | None = None) -> None:
        """A running task changed status (queued, processing ...); ``created``: unix time."""
        self._track(key, status, created)
        line = f"[{self.done}/{self.total}] key={key} id={task_id} is now {status}"
        estimate = self.estimate(key)
        if estimate is not None:
            line += f" ({describe(estimate)})"
        self._line(line)

    def _track(self, key: str, status: str, created: float | None) -> None:
        self.running[key] = status
        if created is not None:
            self.created[key] = created

    def estimate(self, key: str) -> Estimate | None:
        """When the running task of ``key`` will likely be done, once the client can say."""
        created = self.created.get(key)
        if created is None or self.estimator is None or key not in self.running:
            return None
        return self.estimator(created)

    def in_flight(self) -> tuple[Estimate, Estimate] | None:
        """The running tasks' estimates with the latest median and the latest p90."""
        estimates = [e for e in map(self.estimate, list(self.running)) if e is not None]
        if not estimates:
            return None
        return max(estimates, key=lambda e: e.median), max(estimates, key=lambda e: e.p90)

    def result(self, result: ResultLike) -> None:
        """One request reached its end."""
        self.running.pop(result.key, None)
        self.created.pop(result.key, None)
        self.counts[result.status] += 1
        parts = [f"[{self.done}/{self.total}]", result.status, f"key={result.key}"]
        if result.task_id:
            parts.append(f"id={result.task_id}")
        if result.path:
            parts.append(f"file={result.path}")
        if result.error:
            parts.append(f"error={result.error!r}")
        self._line(" ".join(parts))

    def message(self, text: str) -> None:
        """A free-form note (goes to stderr for plain and JSON output)."""
        print(text, file=sys.stderr, flush=True)

    def finish(self, *, timed_out: bool = False) -> None:
        """The batch ended (``timed_out``: its time limit stopped it); print the summary."""
        elapsed = time.monotonic() - self.started
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))
        line = f"summary: {self.done}/{self.total} done in {elapsed:.1f}s ({counts or 'none'})"
        if timed_out:
            line += f"; timed out, {self.total - self.done} unfinished (resumable)"
        self._line(line)

    @property
    def done(self) -> int:
        """Requests that reached their end so far."""
        return sum(self.counts.values())

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the pace so far."""
        if not self.done or self.done >= self.total:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * (self.total - self.done)

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class JsonReporter(Reporter):
    """One JSON object per line: ``{"event": ..., ...}``."""

    def start(self, total: int, *, title: str = "batch") -> None:
        """See :meth:`Reporter.start`."""
        self.total = total
        self.started = time.monotonic()
        self._emit({"event": "start", "title": title, "total": total})

    def status(self, key: str, task_id: str, status: str, *, created: float | None = None) -> None:
        """See :meth:`Reporter.status`."""
        self._track(key, status, created)
        self._emit({"event": "status", "key": key, "task_id": task_id, "status": status})

    def result(self, result: ResultLike) -> None:
        """See :meth:`Reporter.result`."""
        self.running.pop(result.key, None)
        self.created.pop(result.key, None)
        self.counts[result.status] += 1
        self._emit(
            {
                "event": "result",
                "key": result.key,
                "task_id": result.task_id,
                "status": result.status,
                "error": result.error,
                "path": str(result.path) if result.path else None,
            }
        )

    def finish(self, *, timed_out: bool = False) -> None:
        """See :meth:`Reporter.finish`."""
        self._emit(
            {
                "event": "summary",
                "total": self.total,
                "counts": dict(self.counts),
                "unfinished": self.total - self.done,
                "timed_out": timed_out,
                "seconds": round(time.monotonic() - self.started, 3),
            }
        )

    def _emit(self, record: dict[str, Any]) -> None:
        print(json.dumps(record), file=self.stream, flush=True)


class RichReporter(Reporter):
    """Live progress on a terminal: counts per status, ETA, the latest task lines."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=self.stream)
        self._recent: list[str] = []
        self._timed_out = False
        self._live = Live(console=self._console, refresh_per_second=8, transient=False)

    def start(self, total: int, *, title: str = "batch") -> None:
        """See :meth:`Reporter.start`."""
        self.total = total
        self.title = title
        self.started = time.monotonic()
        self._live.start()
        self._live.update(self._render())

    def status(self, key: str, task_id: str, status: str, *, created: float | None = None) -> None:
        """See :meth:`Reporter.status`."""
        self._track(key, status, created)
        self._live.update(self._render())

    def result(self, result: ResultLike) -> None:
        """See :meth:`Reporter.result`."""
        self.running.pop(result.key, None)
        self.created.pop(result.key, None)
        self.counts[result.status] += 1
        line = f"{result.status:<10} {result.key:<24} {result.task_id or '-'}"
        if result.error:
            line += f"  {result.error}"
        elif result.path:
            line += f"  -> {result.path}"
        self._recent = [*self._recent[-9:], line]
        self._live.update(self._render())

    def message(self, text: str) -> None:
        """See :meth:`Reporter.message`."""
        self._console.print(text)

    def finish(self, *, timed_out: bool = False) -> None:
        """See :meth:`Reporter.finish`."""
        self._timed_out = timed_out
        self._live.update(self._render(final=True))
        self._live.stop()

    def _render(self, *, final: bool = False) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"StarVideos {getattr(self, 'title', 'batch')}", expand=False)
        table.add_column("status")
        table.add_column("count", justify="right")
        live = Counter(self.running.values())
        for status, count in sorted(live.items()):
            table.add_row(status, str(count), style="cyan")
        for status, count in sorted(self.counts.items()):
            table.add_row(status, str(count))
        table.add_row("not started", str(max(0, self.total - self.done - len(self.running))))
        eta = self.eta()
        elapsed = time.monotonic() - self.started
        info = f"{self.done}/{self.total} done, {elapsed:.1f}s elapsed"
        if eta is not None and not final:
            info += f", about {eta:.0f}s left"
        if self._timed_out:
            info += f"; timed out, {self.total - self.done} unfinished (resumable)"
        lines = self._estimates()  # (also at the end: a timed-out batch's tasks run on)
        bar = ProgressBar(total=max(self.total, 1), completed=self.done, width=40)
        return Group(table, bar, Text(info), *lines, Text("\n".join(self._recent)))

    def _estimates(self) -> list[Any]:
        """The batch's and the first running tasks' estimates, as lines."""
        from rich.text import Text

        latest = self.in_flight()
        if latest is None:
            return []
        by_median, by_p90 = latest
        lines = [
            Text(
                f"in flight: the last likely done in {seconds(by_median.median)} "
                f"(90 %: {seconds(by_p90.p90)})",
                style="cyan",
            )
        ]
        for key in list(self.running)[:5]:
            estimate = self.estimate(key)
            if estimate is not None:
                lines.append(Text(f"  {self.running[key]:<10} {key:<24} {describe(estimate)}"))
        return lines


def seconds(value: float) -> str:
    """``42s``, ``3m05s`` or ``1h02m``."""
    value = max(round(value), 0)
    if value < 60:
        return f"{value}s"
    if value < 3600:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value // 3600}h{value % 3600 // 60:02d}m"


def describe(estimate: Estimate) -> str:
    """An estimate in words: ``likely done in 42s, 90 %: 1m10s``."""
    return f"likely done in {seconds(estimate.median)}, 90 %: {seconds(estimate.p90)}"


def make_reporter(*, json_output: bool, stream: IO[str] | None = None) -> Reporter:
    """JSON when asked, rich on a terminal (when installed), plain lines otherwise."""
    out = stream or sys.stdout
    if json_output:
        return JsonReporter(out)
    if out.isatty():
        try:
            return RichReporter(out)
        except ImportError:
            pass
    return Reporter(out)
