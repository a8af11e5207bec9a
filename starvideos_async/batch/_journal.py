"""The batch journal: one SQLite row per request, so that a batch survives any crash.

A row moves through these states (``run_batch`` does the moving)::

    pending ──► sending ──► submitted ──► finished ──► downloaded
                  │         (task id)   (final status)  (path, size)
                  ├──► pending   nothing was created (never sent, or 401/403/429...)
                  ├──► finished  refused for good (400/422): status "error"
                  └──► unknown   it left and no answer came: the task may exist;
                                 attach() ──► submitted, or retry_unknown ──► pending

A change is committed before the call that makes it returns, on a WAL database with
``synchronous=FULL``. ``NORMAL`` would already survive ``SIGKILL`` (a commit is in the
operating system's hands once ``write()`` returns), but after a power cut or a kernel
crash its last commits can be gone, and a ``sending`` row that rolls back to
``pending`` is a create sent twice: a laptop whose battery dies is the case this
journal exists for. The fsync costs a few milliseconds, and changes that arrive
together share one transaction (group commit), so a batch is not slowed by it.

The connection holds SQLite's exclusive lock while open (``locking_mode=EXCLUSIVE``),
so two processes can never run the same journal at once (the second would submit
everything again); the operating system drops the lock when a process dies, even by
``SIGKILL``. All I/O runs in aiosqlite's worker thread, never on the event loop, and
every write is shielded from cancellation, so a Ctrl-C never leaves a half-written row.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

import anyio
import attrs

from starvideos_async._errors import (
    InvalidRequestError,
    JournalLockedError,
    StarVideosError,
)
from starvideos_async._http import result_path

try:
    import aiosqlite
except ImportError as exc:  # pragma: no cover - aiosqlite is in the cli and test extras
    raise ImportError(
        "the batch journal needs aiosqlite: pip install 'starvideos-async[cli]'"
    ) from exc

__all__ = ["Journal", "JournalEntry", "JournalLockedError", "State", "canonical_json"]

#: Where a request stands; see the module docstring.
State = Literal["pending", "sending", "submitted", "unknown", "finished", "downloaded"]
_STATES: Final = ("pending", "sending", "submitted", "unknown", "finished", "downloaded")
_SCHEMA_VERSION: Final = 1
_Params = tuple[object, ...] | list[tuple[object, ...]]  # one statement, or executemany
_Write = tuple[str, _Params, "asyncio.Future[None]"]
_COLUMNS: Final = (
    "key, position, request, state, task_id, status, error, path, size, attempts, "
    "created_at, updated_at"
)
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS entries (
    key        TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    request    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN {_STATES!r}),
    task_id    TEXT UNIQUE,
    status     TEXT,
    error      TEXT,
    path       TEXT,
    size       INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
PRAGMA user_version = {_SCHEMA_VERSION};
"""


@attrs.frozen
class JournalEntry:
    """One request of a batch, as the journal holds it.

    Attributes:
        key: The request's key in the batch.
        position: Its index in the batch's input.
        request: The JSON body that is (or was) sent to create it.
        state: Where it stands: ``pending``, ``sending``, ``submitted``, ``unknown``,
            ``finished`` or ``downloaded``.
        task_id: The task's id, once the service returned it (or it was attached).
        status: The final outcome once ``finished``: ``completed``, ``failed``,
            ``cancelled`` or ``error`` (the service rejected the request).
        error: Why it failed, or the last error met (kept for ``unknown`` rows).
        path: The downloaded file, once ``downloaded``.
        size: The downloaded file's size in bytes.
        attempts: How many creates were sent for it (more than 1 only after a
            create that surely created nothing, or a retried unknown outcome).
        created_at: Unix time the row was added.
        updated_at: Unix time of its last change.
    """

    key: str
    position: int
    request: Mapping[str, Any]
    state: State
    task_id: str | None
    status: str | None
    error: str | None
    path: str | None
    size: int | None
    attempts: int
    created_at: float
    updated_at: float


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> JournalEntry:
    values = list(row)
    values[2] = json.loads(values[2])
    return JournalEntry(*values)


def _as_rows(params: _Params) -> list[tuple[object, ...]]:
    return params if isinstance(params, list) else [params]


def canonical_json(body: Mapping[str, Any]) -> str:
    """The one spelling of a request body stored in (and compared against) the journal."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Journal:
    """The SQLite file that lets a batch resume; see :mod:`starvideos_async.batch`.

    Pass it (or just its path) to ``run_batch``. Open it yourself to inspect a batch or
    to :meth:`attach` a task found elsewhere, between runs::

        async with Journal("batch.sqlite") as journal:
            for entry in await journal.entries():
                print(entry.key, entry.state, entry.task_id)

    Args:
        path: The journal file; created (with its folder) when missing.
        timeout: Seconds to wait for another process to let go of the journal before
            :class:`JournalLockedError`.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = Path(os.fspath(path))
        self.timeout = timeout
        self._db: aiosqlite.Connection | None = None
        self._queue: list[_Write] = []  # writes waiting for the next group commit
        self._flushing = False

    def __repr__(self) -> str:
        return f"<Journal {str(self.path)!r}{'' if self.is_open else ' closed'}>"

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` was called and :meth:`close` not since."""
        return self._db is not None

    async def open(self) -> Journal:
        """Open (creating if needed) and lock the journal; returns ``self``.

        Raises:
            JournalLockedError: Another run (or :class:`Journal`) holds the journal.
            StarVideosError: The file is a journal of a newer, unknown layout.
        """
        if self._db is not None:
            return self
        await anyio.Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            with anyio.CancelScope(shield=True):
                await db.execute("PRAGMA locking_mode = EXCLUSIVE")
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = FULL")
                ((version,),) = await db.execute_fetchall("PRAGMA user_version")
                if version > _SCHEMA_VERSION:
                    raise StarVideosError(
                        f"the batch journal {self.path} has layout {version}; this version "
                        f"of starvideos-async knows layouts up to {_SCHEMA_VERSION}"
                    )
                await db.executescript(_SCHEMA)  # a write: takes the exclusive lock now
        except sqlite3.OperationalError as exc:
            await db.close()
            if "locked" in str(exc):
                raise JournalLockedError(
                    f"the batch journal {self.path} is in use by another batch run"
                ) from exc
            raise
        except BaseException:
            await db.close()
            raise
        self._db = db
        return self

    async def close(self) -> None:
        """Close the journal and release its lock. Idempotent."""
        db, self._db = self._db, None
        if db is not None:
            with anyio.CancelScope(shield=True):
                await db.close()

    async def __aenter__(self) -> Journal:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the journal is not open: use 'async with Journal(...)'")
        return self._db

    # -- reading -------------------------------------------------------------------------

    async def entries(self) -> list[JournalEntry]:
        """Every entry, in input order."""
        rows = await self._conn().execute_fetchall(
            f"SELECT {_COLUMNS} FROM entries ORDER BY position, key"  # noqa: S608 - constants
        )
        return [_entry(row) for row in rows]

    async def entry(self, key: str) -> JournalEntry | None:
        """The entry of ``key``, or ``None``."""
        rows = await self._conn().execute_fetchall(
            f"SELECT {_COLUMNS} FROM entries WHERE key = ?",  # noqa: S608 - constants
            (key,),
        )
        return _entry(next(iter(rows))) if rows else None

    # -- the user's one write ------------------------------------------------------------

    async def attach(self, key: str, task_id: str) -> None:
        """Tie ``key`` to a task that exists on the service; the next run tracks it.

        For a create whose outcome was unknown: once you found its task (in the
        provider's dashboard, say), attach it, and the next ``run_batch`` waits for it
        and downloads it like any other instead of reporting it ``unknown``.

        Raises:
            InvalidRequestError: ``key`` is not in the journal, already has another
                task, is finished, or ``task_id`` belongs to another key.
        """
        result_path(task_id)  # an id the client can poll, or InvalidRequestError
        entry = await self.entry(key)
        if entry is None:
            raise InvalidRequestError("key", key, "no such key in the journal")
        if entry.task_id == task_id:
            return
        if entry.state not in ("pending", "sending", "unknown"):
            raise InvalidRequestError(
                "key", key, f"it is {entry.state} with task {entry.task_id}; nothing to attach"
            )
        try:
            await self._set(key, "submitted", task_id=task_id, error=None)
        except sqlite3.IntegrityError:
            raise InvalidRequestError(
                "task_id", task_id, "this task is already tied to another key"
            ) from None

    # -- for run_batch ---------------------------------------------------------------------

    async def _add(self, rows: Iterable[tuple[str, int, str]]) -> dict[str, JournalEntry]:
        """Add ``(key, position, request_json)`` rows not there yet; every given key's entry.

        Raises:
            InvalidRequestError: A key is in the journal with another request (nothing
                is written then).
        """
        rows = list(rows)
        existing = {e.key: e for e in await self.entries()}
        for key, _, body in rows:
            entry = existing.get(key)
            if entry is not None and canonical_json(entry.request) != body:
                raise InvalidRequestError(
                    "key",
                    key,
                    "the journal holds another request under this key "
                    "(changed input? use a new journal or another key)",
                )
        now = time.time()
        new: list[tuple[object, ...]] = [
            (k, p, b, now, now) for k, p, b in rows if k not in existing
        ]
        if new:
            await self._write(
                "INSERT INTO entries (key, position, request, state, created_at, updated_at)"
                " VALUES (?, ?, ?, 'pending', ?, ?)",
                new,
            )
            existing = {e.key: e for e in await self.entries()}
        return {key: existing[key] for key, _, _ in rows}

    async def _set(self, key: str, state: State, **fields: object) -> None:
        """Move ``key`` to ``state`` and set ``fields``; returns once committed."""
        names = ["state = ?", "updated_at = ?"]
        values: list[object] = [state, time.time()]
        for name, value in fields.items():
            names.append(f"{name} = ?")
            values.append(value)
        if state == "sending":
            names.append("attempts = attempts + 1")
        sql = f"UPDATE entries SET {', '.join(names)} WHERE key = ?"  # noqa: S608 - names are ours
        await self._write(sql, (*values, key))

    async def _write(self, sql: str, params: _Params) -> None:
        """Run one statement (``executemany`` for a list) and commit; group commit.

        Writes that arrive while a commit is under way wait and go together in the next
        transaction: one fsync for many state changes, each caller still returning only
        once its change is durable. Shielded: a cancelled caller's write still lands.
        """
        self._conn()
        done = asyncio.get_running_loop().create_future()
        self._queue.append((sql, params, done))
        with anyio.CancelScope(shield=True):
            if not self._flushing:
                self._flushing = True
                try:
                    while self._queue:
                        group, self._queue = self._queue, []
                        await self._commit(group)
                finally:
                    self._flushing = False
            await done

    async def _commit(self, group: list[_Write]) -> None:
        try:
            await self._apply(group, batched=True)
        except sqlite3.IntegrityError:  # redo one by one: only the culprit fails
            await self._apply(group, batched=False)

    async def _apply(self, group: list[_Write], *, batched: bool) -> None:
        """One transaction for ``group``; batched: one ``executemany`` per statement."""
        db = self._conn()
        try:
            await db.execute("BEGIN IMMEDIATE")
            if batched:  # no key appears twice in a group: each writer awaits its write
                rows: dict[str, list[tuple[object, ...]]] = {}
                for sql, params, _ in group:
                    rows.setdefault(sql, []).extend(_as_rows(params))
                for sql, many in rows.items():
                    await db.executemany(sql, many)
            else:
                for sql, params, done in group:
                    try:
                        await db.executemany(sql, _as_rows(params))
                    except sqlite3.IntegrityError as exc:  # only this statement is undone
                        done.set_exception(exc)
            await db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            if batched and isinstance(exc, sqlite3.IntegrityError):
                raise
            for _, _, done in group:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for _, _, done in group:
                if not done.done():
                    done.set_result(None)
