"""Crash-safe batches: submit many requests once, wait, download, and resume after a crash.

Example::

    from starvideos_async import AsyncStarVideos, VideoRequest
    from starvideos_async.batch import run_batch

    requests = [VideoRequest(prompt) for prompt in prompts]
    async with AsyncStarVideos() as client:
        async with run_batch(
            client, requests, journal="batch.sqlite", download_dir="videos"
        ) as run:
            async for result in run:
                print(result.key, result.status, result.path or result.error)
        print(run.summary)

Run the same code again after a crash, a ``kill -9`` or a Ctrl-C and it picks up where
the last run stopped. What it guarantees:

* **Keys.** Each request has a key: its own :attr:`VideoRequest.key`, else its position
  plus a hash of its content (``"7-3fa2b1c9d0"``), the same in every run. Duplicate keys
  are refused before anything is sent. See :func:`request_keys`.
* **Nothing is paid twice.** The journal (a SQLite file, see :class:`Journal`) records
  the intent to create (``sending``) before the create leaves, and the returned task id
  the moment the answer arrives, before the request counts as submitted. A run submits
  only requests the journal has never seen sent.
* **Unknown outcomes are said, not guessed.** When a create left but no answer came
  (read timeout, connection reset, 5xx, or the process died meanwhile), the task may
  exist. That request is reported ``unknown`` and not sent again, unless you ask
  (``retry_unknown=True``, or the set of keys to retry). If you find the task on the
  provider's side, :meth:`Journal.attach` ties it to the key and the next run tracks it.
  A create that surely created nothing (never sent, or a 4xx) is simply sent again next
  run, except a 400/422 rejection, which is final.
* **Resume.** A new run waits again on every task submitted but not finished (by id),
  downloads what finished but was not downloaded (and what was, if the file is gone or
  changed), and removes temporary files that killed downloads left in ``download_dir``
  (so give each batch a folder of its own).
* **Quota.** At most ``max_in_flight`` tasks are submitted but not finished at once,
  whatever the client's HTTP ``max_concurrency``; all waiting goes through the
  client's one status scheduler.
* **Errors stay per request.** A failed task, an unknown outcome, a failed download,
  even an unexpected exception while handling one request, is that request's
  :class:`BatchResult`; the batch goes on. Journal errors end it (without the journal
  nothing is safe), and so does a closed client.
* **Cancellation.** Cancelling the iteration (Ctrl-C under ``asyncio.run``) stops
  submitting and waiting, lets the creates already started get their answer recorded
  (at most the client's ``max_concurrency`` of them, each bounded by the client's
  timeout and retry policy), closes the journal and re-raises. Leaving
  ``async with run_batch(...)`` early does the same; without ``async with``, call
  :meth:`BatchRun.aclose` if you stop iterating early.
* **Time limit.** With ``timeout=S`` the run stops waiting after ``S`` seconds, as on
  cancellation (creates on the wire still get their answer recorded), and the iteration
  ends without raising: :attr:`BatchRun.timed_out` is then true and the requests without
  a result stay in the journal, where the next run picks them up.
"""

from typing import Final

from . import _results, _runner
from ._journal import Journal, JournalEntry, JournalLockedError
from ._keys import request_keys
from ._results import BatchResult, BatchSummary
from ._runner import BatchRun, run_batch

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "BatchResult",
    "BatchRun",
    "BatchStatus",
    "BatchSummary",
    "Journal",
    "JournalEntry",
    "JournalLockedError",
    "StatusHook",
    "request_keys",
    "run_batch",
]

# Bound here rather than imported: the API reference takes a constant's documentation
# from the ``#:`` comment above it in the module it documents, and that is this one.

#: The outcome of one request of a batch.
BatchStatus = _results.BatchStatus
#: ``run_batch``'s default bound on tasks submitted but not finished.
DEFAULT_MAX_IN_FLIGHT: Final = _runner.DEFAULT_MAX_IN_FLIGHT
#: ``(key, video)`` hook of :func:`run_batch` for each status change of a task.
StatusHook = _results.StatusHook
