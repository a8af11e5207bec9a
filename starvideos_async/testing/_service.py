"""The fake StarVideos service without its HTTP: tasks on a simulated clock, and controls.

:class:`SimulatedService` holds the tasks, creates them as a valid create request would,
computes each task's status from the simulated clock (no timer per task), renders the
JSON a query answers, and gives a test its hands on a task (complete it, fail it, pin a
status, force or omit fields, hold it, forget it, expire its file). The data types and
the create-body rules are in ``_tasks``; ``FakeStarVideos`` (``_server``) adds the two
sites, and ``_routes`` the way requests are answered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._tasks import (
    _MODEL,
    DurationSampler,
    FakeTask,
    _Checked,
    _digest,
    _draw_task,
    _Unset,
    _validate,
)

__all__ = ["NOT_STARTED", "SimulatedService"]

#: What a fake says when asked for an address before it started.
NOT_STARTED = "FakeStarVideos is not started: use 'async with' or await start()"


class SimulatedService:
    """The tasks of a fake service, their clock, and the controls a test has over them.

    The base of ``FakeStarVideos``, which documents the arguments.
    """

    def __init__(
        self,
        api_key: str,
        *,
        time_scale: float,
        seed: int,
        failure_rate: float,
        queued_seconds: float,
        processing_seconds: float,
        duration_sampler: DurationSampler | None,
        auto_advance: bool,
    ) -> None:
        self._auto_advance = auto_advance
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._time_scale = 1.0
        self._fail_below = 0
        self._auth = ""
        self.api_key = api_key
        self.time_scale = time_scale
        self.seed = seed
        self.failure_rate = failure_rate
        self.queued_seconds = queued_seconds
        self.processing_seconds = processing_seconds
        self.duration_sampler = duration_sampler
        #: Every task, by id.
        self.tasks: dict[str, FakeTask] = {}
        #: How many tasks were created (by ``create`` requests and :meth:`create_task`).
        self.created = 0
        self._id_base = 1_000_000_000 + int.from_bytes(_digest("ids", seed)[:8], "big") % (
            8_000_000_000
        )
        self._file_prefix = ""  # the video_url up to the file name, once the sites run

    # -- the clock and the settings --------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The only key the API accepts (can be changed, to test key rotation)."""
        return self._auth.removeprefix("Bearer ")

    @api_key.setter
    def api_key(self, value: str) -> None:
        self._auth = f"Bearer {value}"

    @property
    def time_scale(self) -> float:
        """Real seconds per simulated second; changing it does not move the clock."""
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if not value > 0:
            msg = "time_scale must be > 0"
            raise ValueError(msg)
        self._offset, self._t0 = self.sim_now(), time.monotonic()
        self._time_scale = value

    @property
    def failure_rate(self) -> float:
        """The share of tasks created from now on whose timeline ends ``failed``."""
        return self._fail_below / 2**64

    @failure_rate.setter
    def failure_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            msg = "failure_rate must be within [0, 1]"
            raise ValueError(msg)
        self._fail_below = int(value * 2**64)

    @property
    def auto_advance(self) -> bool:
        """Whether the simulated clock follows real time (can be switched any time)."""
        return self._auto_advance

    @auto_advance.setter
    def auto_advance(self, value: bool) -> None:
        self._offset, self._t0 = self.sim_now(), time.monotonic()
        self._auto_advance = value

    def sim_now(self) -> float:
        """The simulated clock, in simulated seconds."""
        if self._auto_advance:
            return (time.monotonic() - self._t0) / self._time_scale + self._offset
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward by ``seconds`` simulated seconds."""
        self._offset += seconds

    # -- tasks and manual control ------------------------------------------------------------

    def create_task(self, request: Mapping[str, Any] | None = None, /, **fields: Any) -> FakeTask:
        """Create a task directly, as a valid create request would (no request recorded).

        Args:
            request: The create body; ``prompt`` and ``model`` have test defaults.
            **fields: More body fields.

        Returns:
            The new task.

        Raises:
            ValueError: If the service would answer 400 to this body.
        """
        body = {"prompt": "a test video", "model": _MODEL, **(request or {}), **fields}
        checked = _validate(body)
        if isinstance(checked, str):
            raise ValueError(checked)
        return self._new_task(body, checked)

    def status_of(self, task_id: str, /) -> str:
        """The status a query for ``task_id`` would answer now."""
        return self.tasks[task_id].status_at(self.sim_now())

    def snapshot(self, task_id: str, /) -> dict[str, Any]:
        """The JSON object a query for ``task_id`` would answer now."""
        return self._wire(self.tasks[task_id])

    def complete(self, task_id: str, /, *, video_url: str | _Unset | None = _Unset.UNSET) -> None:
        """Make a task ``completed`` now; ``video_url=None`` completes it without a URL."""
        task = self.tasks[task_id]
        task.pinned_status, task.pinned_error = "completed", None
        if not isinstance(video_url, _Unset):
            task.overrides["video_url"] = video_url

    def fail(self, task_id: str, /, error: str = "generation failed") -> None:
        """Make a task ``failed`` now, with ``error`` as the wire error text."""
        task = self.tasks[task_id]
        task.pinned_status, task.pinned_error = "failed", error

    def set_status(self, task_id: str, /, status: str | None) -> None:
        """Pin any wire status (``"cancelled"``, unknown, backwards); ``None`` unpins."""
        task = self.tasks[task_id]
        task.pinned_status, task.pinned_error = status, None

    def set_fields(self, task_id: str, /, **wire_fields: Any) -> None:
        """Force wire fields (known, changed or unknown) into every query answer.

        Applied last: ``set_fields(id, video_url=None)`` beats the computed URL.
        """
        self.tasks[task_id].overrides.update(wire_fields)

    def omit_fields(self, task_id: str, /, *names: str) -> None:
        """Leave wire fields out of every query answer (``"video_url"``, say)."""
        task = self.tasks[task_id]
        task.omitted = (*task.omitted, *names)

    def hold(self, task_id: str, /) -> None:
        """Keep a task from finishing on its own: it stays ``processing``."""
        self.tasks[task_id].held = True

    def release(self, task_id: str, /) -> None:
        """Undo :meth:`hold`: the task follows its timeline again."""
        self.tasks[task_id].held = False

    def remove(self, task_id: str, /) -> FakeTask:
        """Forget a task (queries and downloads answer 404 from now on); returns it."""
        return self.tasks.pop(task_id)

    def expire(self, task_id: str, /, status: int = 410) -> None:
        """Make the file host answer ``status`` (403, 404, 410...) for the task's video."""
        if not 400 <= status < 600:
            msg = "status must be an HTTP error status"
            raise ValueError(msg)
        self.tasks[task_id].expired_status = status

    # -- internals ---------------------------------------------------------------------------

    def _new_task(self, body: dict[str, Any], checked: _Checked) -> FakeTask:
        number = self.created
        task_id = f"video_starvideos_{self._id_base + number}"
        sampler = self.duration_sampler
        timeline = (self.queued_seconds, self.processing_seconds) if sampler is None else sampler
        task = _draw_task(
            task_id,
            number,
            body,
            checked,
            seed=self.seed,
            created_at=self.sim_now(),
            fail_below=self._fail_below,
            timeline=timeline,
        )
        self.tasks[task_id] = task
        self.created = number + 1
        return task

    def _wire(self, task: FakeTask) -> dict[str, Any]:
        """The JSON object a query for ``task`` answers now."""
        status = task.status_at(self.sim_now())
        data: dict[str, Any] = {
            "id": task.id,
            "object": "video",
            "created": task.created,
            "model": task.model,
            "status": status,
            "video_url": None,
        }
        if status == "completed":
            if not self._file_prefix:
                raise RuntimeError(NOT_STARTED)
            data["video_url"] = f"{self._file_prefix}{task.id}.mp4?token={task.token}"
            data["actualDuration"] = task.actual_duration
        data["error"] = (task.pinned_error or task.error_message) if status == "failed" else None
        if task.overrides:
            data.update(task.overrides)
        for name in task.omitted:
            data.pop(name, None)
        return data
