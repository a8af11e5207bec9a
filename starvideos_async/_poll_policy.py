"""When to ask for a task's status next: the policy interface and the fixed interval.

Two policies:

* :meth:`PollPolicy.fixed` polls at a constant interval (the service's docs suggest
  30-60 s; tests use tiny values).
* :meth:`PollPolicy.default` (an :class:`~._adaptive.AdaptivePollPolicy`, in
  ``_adaptive``) learns, per client and per requested duration, when tasks finish, and
  polls where completions are likely.

A policy of your own subclasses :class:`PollPolicy` and overrides
:meth:`~PollPolicy.next_delay`; a learning one also :meth:`~PollPolicy.observe`,
:meth:`~PollPolicy.running` and :meth:`~PollPolicy.ended`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._adaptive import AdaptivePollPolicy

__all__ = ["FixedPollPolicy", "PollPolicy"]


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
        call_cost: float = 2.95,
        jitter: float = 0.1,
        seed: int | None = None,
    ) -> AdaptivePollPolicy:
        """A learning policy; see :class:`AdaptivePollPolicy` for the arguments."""
        from ._adaptive import AdaptivePollPolicy  # (it builds on this module)

        return AdaptivePollPolicy(
            first_poll=first_poll,
            min_interval=min_interval,
            max_interval=max_interval,
            call_cost=call_cost,
            jitter=jitter,
            seed=seed,
        )

    @staticmethod
    def default() -> AdaptivePollPolicy:
        """A fresh adaptive policy with the defaults (each client learns on its own)."""
        return PollPolicy.adaptive()


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _is_positive(value):
        raise ConfigurationError(attribute.name, value, "a positive number of seconds")


def _is_positive(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and 0 < value < math.inf  # also refuses NaN
    )


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
