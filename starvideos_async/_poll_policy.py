"""When to ask for a task's status next: the policy interface and the two policies.

* :meth:`PollPolicy.fixed` polls at a constant interval (the service's docs suggest
  30-60 s; tests use tiny values).
* :meth:`PollPolicy.default` (an :class:`AdaptivePollPolicy`) learns, per client and per
  requested duration, when tasks finish, and polls where completions are likely. What
  it learns and how the next poll follows from it is in ``_adaptive``.

A policy of your own subclasses :class:`PollPolicy` and overrides
:meth:`~PollPolicy.next_delay`; a learning one also :meth:`~PollPolicy.observe`,
:meth:`~PollPolicy.running` and :meth:`~PollPolicy.ended`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Hashable
from typing import Any

import attrs

from ._adaptive import DECAY, LEAN, History, Trade
from ._config import check_count, check_positive
from ._errors import ConfigurationError
from ._models import Estimate

__all__ = ["AdaptivePollPolicy", "FixedPollPolicy", "PollPolicy"]

logger = logging.getLogger("starvideos_async")


class PollPolicy:
    """Decides the delay before each status call of ``wait()``/``watch()``.

    Subclass and override :meth:`next_delay` (and optionally :meth:`observe`,
    :meth:`running` and :meth:`ended`) for a policy of your own; the scheduler calls them
    from the event loop, so they must be quick and must not block. An exception they
    raise ends the waits that use them.
    """

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """Seconds from now until the next status call.

        Args:
            age: Seconds since the task was created.
            polls: Status calls already made for this wait.
            duration: The requested video duration, when known (a learning bucket).
        """
        raise NotImplementedError

    def observe(self, *, running_at: float, finished_by: float, duration: int | None) -> None:
        """Learn from one completed task: it finished between two ages (seconds).

        Args:
            running_at: The task's age when it was last seen running (0: only at
                creation).
            finished_by: Its age when it was first seen completed.
            duration: The requested video duration, when known.
        """

    def running(self, *, key: Hashable, age: float, duration: int | None) -> None:
        """Learn that a wait saw its task still running.

        Called after every answer that is not final, once per policy, right before
        :meth:`next_delay` for that task. Does nothing by default.

        Args:
            key: Identifies the wait (an opaque hashable, the same until :meth:`ended`).
            age: The task's age at that answer, seconds.
            duration: The requested video duration, when known.
        """

    def ended(self, *, key: Hashable) -> None:
        """Forget a wait: its polling stopped, for any reason.

        Called once per wait: after :meth:`observe` when the task completed, or when it
        failed, was cancelled, or the client closed. Must be cheap and must accept a
        ``key`` it never saw. Does nothing by default.

        Args:
            key: The key given to :meth:`running`.
        """

    def estimate(self, *, age: float, duration: int | None) -> Estimate | None:
        """When a task of this ``age`` will likely be done, from what the policy learnt.

        ``None`` by default: only a learning policy can tell (see
        :meth:`AdaptivePollPolicy.estimate`). :meth:`VideoTask.estimate` asks the
        client's policy.

        Args:
            age: Seconds since the task was created.
            duration: The requested video duration, when known (a learning bucket).
        """
        return None

    @staticmethod
    def fixed(seconds: float) -> FixedPollPolicy:
        """Poll every ``seconds``, the first time ``seconds`` after the wait starts."""
        return FixedPollPolicy(seconds)

    @staticmethod
    def adaptive(
        *,
        interval: float = 30.0,
        calls_per_task: float | None = None,
        call_cost: float | None = None,
        first_poll: float | None = None,
        min_interval: float = 5.0,
        max_interval: float = 300.0,
        jitter: float = 0.05,
        seed: int | None = None,
    ) -> AdaptivePollPolicy:
        """A learning policy; see :class:`AdaptivePollPolicy` for the arguments."""
        return AdaptivePollPolicy(
            interval=interval,
            calls_per_task=calls_per_task,
            call_cost=call_cost,
            first_poll=first_poll,
            min_interval=min_interval,
            max_interval=max_interval,
            jitter=jitter,
            seed=seed,
        )

    @staticmethod
    def default() -> AdaptivePollPolicy:
        """A fresh adaptive policy with the defaults (each client learns on its own)."""
        return PollPolicy.adaptive()


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_positive(attribute.name, value)


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

    See the module docstring for the rule. Learning is online, from this client's own
    completions and waits in flight (the scheduler reports them through
    :meth:`running` and :meth:`ended`), per requested duration (with all durations
    together as a fallback), over the last ``memory`` completions, so it follows the
    service when it speeds up or slows down.

    How many status calls a task is worth, one of three ways:

    * by default, as many as polling every ``interval`` seconds would make on the same
      tasks (the service's docs advise 30 s), spent where completions are likely: the
      same calls as :meth:`PollPolicy.fixed` for a shorter wait;
    * ``calls_per_task``: a budget, the mean status calls per task;
    * ``call_cost``: the seconds of waiting one status call is worth to you (a task
      detected ``call_cost`` seconds later is as bad as one more call).

    Before it has learnt anything it polls as ``fixed(interval)`` does (at ages
    ``first_poll``, ``first_poll + interval``, ...).

    The settings are read-only attributes of the same names (``AttributeError`` on
    assignment): make a new policy to change one.

    Args:
        interval: The fixed interval whose calls the default trade spends, and the
            interval of the polls before anything is learnt, seconds (clamped to
            ``[min_interval, max_interval]``, as ``first_poll``).
        calls_per_task: Mean status calls per task to spend, instead (>= 1). A budget
            that ``max_interval`` puts out of reach (polling every ``max_interval``
            already costs more on the tasks learnt) is overspent so, with a WARNING
            logged on the ``starvideos_async`` logger (once per policy; not a Python
            warning, which a test suite's ``-W error`` would turn into the end of the
            waits).
        call_cost: Seconds of detection delay one status call is worth, instead: higher
            means fewer calls and later detection.
        first_poll: Age of the first poll before anything is learnt (default:
            ``interval``).
        min_interval: The shortest delay between two polls of one task.
        max_interval: The longest delay between two polls of one task.
        jitter: Relative spread applied to every learnt delay (0.1 = ±10 %).
        seed: Seed of the random generator (jitter, learning), for simulations.
        memory: Completions remembered per duration bucket (more when many waits
            overlap: twice the most in flight at once).
        min_samples: Completions needed before a bucket's history is trusted.
    """

    def __init__(
        self,
        *,
        interval: float = 30.0,
        calls_per_task: float | None = None,
        call_cost: float | None = None,
        first_poll: float | None = None,
        min_interval: float = 5.0,
        max_interval: float = 300.0,
        jitter: float = 0.05,
        seed: int | None = None,
        memory: int = 512,
        min_samples: int = 8,
    ) -> None:
        interval = check_positive("interval", interval)
        first_poll = interval if first_poll is None else check_positive("first_poll", first_poll)
        min_interval = check_positive("min_interval", min_interval)
        max_interval = check_positive("max_interval", max_interval)
        if call_cost is not None:
            call_cost = check_positive("call_cost", call_cost)
        if calls_per_task is not None:
            calls_per_task = check_positive("calls_per_task", calls_per_task, "a number >= 1")
            if calls_per_task < 1:
                raise ConfigurationError("calls_per_task", calls_per_task, "a number >= 1")
        if call_cost is not None and calls_per_task is not None:
            raise ConfigurationError("call_cost", call_cost, "None when calls_per_task is set")
        if not min_interval <= max_interval:
            raise ConfigurationError("max_interval", max_interval, ">= min_interval")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise ConfigurationError("jitter", jitter, "a share in [0, 1)")
        # Both clamped like every delay, so that the polls before learning and the
        # budget after it are those of the same fixed(interval).
        # The settings are read-only (properties): the trade is built from them once.
        self._interval = float(min(max(interval, min_interval), max_interval))
        self._calls_per_task = None if calls_per_task is None else float(calls_per_task)
        self._call_cost = None if call_cost is None else float(call_cost)
        self._first_poll = float(min(max(first_poll, min_interval), max_interval))
        self._min_interval = float(min_interval)
        self._max_interval = float(max_interval)
        self._jitter = float(jitter)
        self._seed = seed
        self._memory = check_count("memory", memory, 1)
        self._min_samples = check_count("min_samples", min_samples, 1)
        self._trade = Trade(
            call_cost=self._call_cost,
            calls_per_task=self._calls_per_task,
            interval=self._interval,
            low=self._min_interval,
            high=self._max_interval,
        )
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography
        self._warned_budget = False  # calls_per_task found too low: warned once
        self._buckets: dict[int | None, History] = {}
        # Waits in flight: key -> (duration, age last seen running, call number then).
        self._waits: dict[Hashable, tuple[int | None, float, int]] = {}
        # The policy's own clock (see the module docstring): it ticks at every call of
        # running() and observe() by the seconds a call takes lately, measured by the
        # waits themselves (age gained between two sightings / calls in between).
        self._calls = 0
        self._clock = -math.inf  # until a wait was seen running twice
        self._seconds = 0.0  # decaying sums: seconds and calls between two sightings
        self._ticks = 0.0

    def _tick(self) -> float:
        self._calls += 1
        if self._ticks > 0:
            self._clock += self._seconds / self._ticks
        return self._clock

    def __repr__(self) -> str:
        overall = self._buckets.get(None)
        return (
            f"<AdaptivePollPolicy {self._trade} min={self._min_interval:g} "
            f"max={self._max_interval:g} "
            f"learned={len(overall.recent) if overall else 0} in_flight={len(self._waits)}>"
        )

    # The settings, fixed at construction: make a new policy to change one.

    @property
    def interval(self) -> float:
        """The fixed interval whose calls the default trade spends (clamped), seconds."""
        return self._interval

    @property
    def calls_per_task(self) -> float | None:
        """The budget of status calls per task, when the trade is said that way."""
        return self._calls_per_task

    @property
    def call_cost(self) -> float | None:
        """The seconds of detection delay one call is worth, when said that way."""
        return self._call_cost

    @property
    def first_poll(self) -> float:
        """The age of the first poll before anything is learnt (clamped), seconds."""
        return self._first_poll

    @property
    def min_interval(self) -> float:
        """The shortest delay between two polls of one task, seconds."""
        return self._min_interval

    @property
    def max_interval(self) -> float:
        """The longest delay between two polls of one task, seconds."""
        return self._max_interval

    @property
    def jitter(self) -> float:
        """The relative spread applied to every learnt delay."""
        return self._jitter

    @property
    def seed(self) -> int | None:
        """The seed of the random generator."""
        return self._seed

    @property
    def memory(self) -> int:
        """Completions remembered per duration bucket (at least)."""
        return self._memory

    @property
    def min_samples(self) -> int:
        """Completions needed before a bucket's history is trusted."""
        return self._min_samples

    @property
    def learned(self) -> int:
        """Completions remembered (all durations together)."""
        overall = self._buckets.get(None)
        return len(overall.recent) if overall is not None else 0

    @property
    def in_flight(self) -> int:
        """Waits seen running and not ended yet (all durations together)."""
        return len(self._waits)

    def _bucket(self, duration: int | None) -> History:
        history = self._buckets.get(duration)
        if history is None:
            history = self._buckets[duration] = History()
        return history

    def observe(self, *, running_at: float, finished_by: float, duration: int | None) -> None:
        """Remember one completion, in its duration bucket and overall.

        The exact age is unknown, only that it lies between the two polls: a point is
        drawn in between: uniformly, except in the first interval (from creation to the
        first poll), where it leans late, with a density growing as a power of the age
        that joins the density learnt just after the first poll (the square of the age
        before anything is learnt: durations that are mostly minutes thin out towards
        zero).
        """
        if not 0 <= running_at <= finished_by < math.inf:
            return
        u = self._rng.random()
        if running_at == 0:
            history = self._history(duration)
            u **= 1 / (LEAN if history is None else history.lean(finished_by))
        age = running_at + (finished_by - running_at) * u
        now = self._tick()
        for bucket in {duration, None}:
            self._bucket(bucket).add(age, self._memory, now - finished_by, now)

    def running(self, *, key: Hashable, age: float, duration: int | None) -> None:
        """Count the wait ``key`` as censored at ``age`` until it ends (see the module)."""
        if not 0 <= age < math.inf:
            return
        now = self._tick()
        wait = self._waits.get(key)
        if wait is not None:
            if wait[0] != duration:  # cannot happen with the SDK's scheduler
                self.ended(key=key)
            elif age > wait[1]:  # the seconds this many calls took
                self._seconds = self._seconds * DECAY + (age - wait[1])
                self._ticks = self._ticks * DECAY + (self._calls - wait[2])
                if now == -math.inf:
                    now = self._clock = 0.0  # the clock starts
        self._waits[key] = (duration, age, self._calls)
        seen = (age, now - age)  # the age, and the task's creation on the clock
        for bucket in {duration, None}:
            history = self._bucket(bucket)
            history.inflight[key] = seen
            history.changed()

    def ended(self, *, key: Hashable) -> None:
        """Stop counting the wait ``key`` (nothing happens for a key never seen)."""
        wait = self._waits.pop(key, None)
        if wait is None:
            return
        for bucket in {wait[0], None}:
            history = self._buckets.get(bucket)
            if history is not None and history.inflight.pop(key, None) is not None:
                history.changed()

    def _history(self, duration: int | None) -> History | None:
        for bucket in (duration, None):
            history = self._buckets.get(bucket)
            if history is not None and len(history.recent) >= self._min_samples:
                return history
        return None

    def estimate(self, *, age: float, duration: int | None) -> Estimate | None:
        """The median and 90th percentile of when a task still running at ``age`` ends.

        Learnt from the completions of this client's tasks of the same requested
        ``duration`` (``None``: of all durations together), the same estimate the
        polls follow; conditional on the age: a task older than the usual median gets
        the median of the time left to tasks that ran that long. ``None`` before
        ``min_samples`` completions of that duration were seen, and for a task older
        than (nearly) every completion remembered: nothing then says when it ends.
        """
        if not 0 <= age < math.inf:
            return None
        history = self._buckets.get(duration)
        if history is None or len(history.recent) < self._min_samples:
            return None
        median = history.quantile(age, 0.5)
        p90 = history.quantile(age, 0.9)
        if median is None or p90 is None:
            return None
        return Estimate(
            median=median - age, p90=max(p90, median) - age, age=age, samples=len(history.recent)
        )

    def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
        """See the class docstring."""
        age = max(age, 0.0) if age == age else 0.0  # NaN (a broken clock) counts as 0
        if age == math.inf:  # a broken clock too: as old as a task can be
            return self._max_interval
        history = self._history(duration)
        if history is None:  # nothing learnt: fixed(interval)'s polls, from the creation
            done = math.floor((age - self._first_poll) / self._interval + 1e-9) + 1
            delay = self._first_poll + max(done, 0) * self._interval - age
        else:
            call_cost, fewest = history.call_cost(self._trade)
            if fewest is not None and not self._warned_budget:
                self._warned_budget = True
                logger.warning("%s", self._trade.budget_warning(fewest))
            target = history.next_poll(age, call_cost)
            # Past every completion remembered nothing says when it ends: a quarter of
            # the age (a task of an unusual length is polled less and less often), but
            # no less often than every two intervals.
            tail = min(age * 0.25, 2 * self._interval)
            delay = tail if target is None else target - age
            delay *= 1.0 + self._jitter * (2.0 * self._rng.random() - 1.0)
        return min(max(delay, self._min_interval), self._max_interval)
