"""When to ask for a task's status next.

Two policies:

* :meth:`PollPolicy.fixed` polls at a constant interval (the service's docs suggest
  30-60 s; tests use tiny values).
* :meth:`PollPolicy.default` (an :class:`AdaptivePollPolicy`) learns, per client, when
  tasks of each requested duration tend to finish, and polls where completions are
  likely: the next poll is placed where a fixed share (``catch``) of the tasks still
  running at this age have finished. Before it has seen enough completions it polls
  first at ``first_poll`` and then every quarter of the task's age. Every delay is
  clamped to ``[min_interval, max_interval]`` and jittered so a batch does not poll in
  lockstep.

The simulation in ``tests/test_poll_policy_simulation.py`` compares the default with
``fixed(30)`` on lognormal task durations on a virtual clock.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from typing import Any

import attrs

from ._errors import InvalidRequestError

__all__ = ["AdaptivePollPolicy", "FixedPollPolicy", "PollPolicy"]


class PollPolicy:
    """Decides the delay before each status call of ``wait()``/``watch()``.

    Subclass and override :meth:`next_delay` (and optionally :meth:`observe`) for a
    policy of your own; the scheduler calls them from the event loop, so they must be
    quick and must not block.
    """

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """Seconds from now until the next status call.

        Args:
            age: Seconds since the task was created.
            polls: Status calls already made for this wait.
            duration: The requested video duration, when known (a learning bucket).
        """
        raise NotImplementedError

    def observe(self, *, finished_after: float, duration: int | None) -> None:
        """Learn that a task finished about ``finished_after`` seconds after creation."""

    @staticmethod
    def fixed(seconds: float) -> FixedPollPolicy:
        """Poll every ``seconds``, the first time ``seconds`` after the wait starts."""
        return FixedPollPolicy(seconds)

    @staticmethod
    def adaptive(
        *,
        first_poll: float = 45.0,
        min_interval: float = 5.0,
        max_interval: float = 60.0,
        catch: float = 0.3,
        jitter: float = 0.1,
        seed: int | None = None,
    ) -> AdaptivePollPolicy:
        """A learning policy; see :class:`AdaptivePollPolicy` for the arguments."""
        return AdaptivePollPolicy(
            first_poll=first_poll,
            min_interval=min_interval,
            max_interval=max_interval,
            catch=catch,
            jitter=jitter,
            seed=seed,
        )

    @staticmethod
    def default() -> AdaptivePollPolicy:
        """A fresh adaptive policy with the defaults (each client learns on its own)."""
        return PollPolicy.adaptive()


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidRequestError(attribute.name, value, "a positive number of seconds")


@attrs.frozen
class FixedPollPolicy(PollPolicy):
    """A constant interval.

    Attributes:
        seconds: The interval.
    """

    seconds: float = attrs.field(validator=_positive)

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """Always :attr:`seconds`."""
        return float(self.seconds)


class AdaptivePollPolicy(PollPolicy):
    """Polls densely where this client has seen tasks finish, sparsely elsewhere.

    Args:
        first_poll: Age of the first poll before anything has been learned, seconds.
        min_interval: The shortest delay between two polls of one task.
        max_interval: The longest delay between two polls of one task.
        catch: The share of still-running tasks each poll should find finished
            (higher: fewer calls, more lag).
        jitter: Relative spread applied to every delay (0.1 = ±10 %).
        seed: Seed of the jitter's random generator (for simulations).
        memory: Completions remembered per duration bucket.
        min_samples: Completions needed before a bucket's history is trusted.
    """

    def __init__(
        self,
        *,
        first_poll: float = 45.0,
        min_interval: float = 5.0,
        max_interval: float = 60.0,
        catch: float = 0.3,
        jitter: float = 0.1,
        seed: int | None = None,
        memory: int = 256,
        min_samples: int = 8,
    ) -> None:
        if not 0 < min_interval <= max_interval:
            raise InvalidRequestError(
                "min_interval", min_interval, "0 < min_interval <= max_interval"
            )
        if not 0 < catch < 1:
            raise InvalidRequestError("catch", catch, "a share between 0 and 1")
        if not 0 <= jitter < 1:
            raise InvalidRequestError("jitter", jitter, "between 0 and 1")
        if not first_poll > 0:
            raise InvalidRequestError("first_poll", first_poll, "a positive number of seconds")
        self.first_poll = first_poll
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.catch = catch
        self.jitter = jitter
        self.memory = memory
        self.min_samples = min_samples
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography
        self._recent: dict[int | None, deque[float]] = {}
        self._sorted: dict[int | None, list[float]] = {}

    def __repr__(self) -> str:
        learned = sum(len(v) for v in self._recent.values())
        return (
            f"<AdaptivePollPolicy first_poll={self.first_poll} min={self.min_interval} "
            f"max={self.max_interval} catch={self.catch} learned={learned}>"
        )

    def observe(self, *, finished_after: float, duration: int | None) -> None:
        """Remember one completion age, in its duration bucket and overall."""
        if not finished_after >= 0:
            return
        for bucket in {duration, None}:
            recent = self._recent.setdefault(bucket, deque())
            ordered = self._sorted.setdefault(bucket, [])
            if len(recent) == self.memory:
                ordered.pop(bisect.bisect_left(ordered, recent.popleft()))
            recent.append(finished_after)
            bisect.insort(ordered, finished_after)

    def _history(self, duration: int | None) -> list[float] | None:
        for bucket in (duration, None):
            ordered = self._sorted.get(bucket)
            if ordered is not None and len(ordered) >= self.min_samples:
                return ordered
        return None

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """See the class docstring."""
        age = max(age, 0.0)
        history = self._history(duration)
        if history is None:
            target = self.first_poll if polls == 0 and age < self.first_poll else age * 1.25
            delay = target - age
        else:
            start = bisect.bisect_right(history, age)
            remaining = len(history) - start
            if remaining == 0:
                delay = age * 0.25
            else:
                index = start + min(remaining - 1, int(self.catch * remaining))
                delay = history[index] - age
        delay *= 1.0 + self.jitter * (2.0 * self._rng.random() - 1.0)
        return min(max(delay, self.min_interval), self.max_interval)
