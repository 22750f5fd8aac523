"""SQLite behind the store: opening a file, write transactions, schema changes, its errors.

Only :mod:`.database` calls this module; nothing else knows there is a sqlite3 underneath.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, StorageFull

FULL = "the database's disk is full: nothing was stored; free some space and try again"


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the database file at ``path`` (created 0600 if new), in WAL mode."""
    try:
        return _connect(path)
    except (OSError, sqlite3.DatabaseError) as exc:  # a directory, no permission, not SQLite
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(
            f"LINEOA_EXPORT_DATABASE_URL: cannot use {str(path)!r} as a SQLite database: {reason}"
        ) from None


def _connect(path: Path) -> sqlite3.Connection:
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    _create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = _dict_row
    try:
        # WAL lets the API read while the worker writes; NORMAL sync is durable across
        # process crashes (what we promise) and only risks the last commit on power loss.
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch a SQLite file to WAL, which it then keeps for good.

    Only a new file needs the switch, and it takes the file's exclusive lock: when several
    commands open a new database at once, SQLite answers the losers "database is locked" at
    once, without its busy handler. They wait for the winner here (briefly: the switch is one
    header write), then find the file in WAL already.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()["journal_mode"] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _dict_row(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


def _create_private(path: Path) -> None:
    """A new database file readable by its owner only (0600, like the key file): it holds the
    activation table's personal data. SQLite gives the -wal and -shm files the database's mode."""
    if str(path) == ":memory:":
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # an existing database keeps the mode its operator gave it
    os.close(fd)


@contextmanager
def write_transaction(conn: sqlite3.Connection, writers: threading.Lock) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, behind this process's writers' lock.

    Writers of this process queue on a Python lock: SQLite's own busy handler backs off by
    sleeping (up to 100 ms a try), which starved the worker's small writes behind a stream of
    large trigger batches in `serve`. IMMEDIATE then takes the file lock up front, so writers of
    other processes queue instead of deadlocking on a read-to-write upgrade.
    """
    with writers:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            _commit(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


@contextmanager
def schema_transaction(conn: sqlite3.Connection, writers: threading.Lock) -> Iterator[None]:
    """One transaction holding the write lock, with foreign keys off as SQLite's table-rebuild
    recipe asks (a rebuilt table is dropped while others point at it); ``foreign_key_check``
    then proves nothing was left dangling before the commit."""
    with writers:
        conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set it first
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    raise RuntimeError(f"schema change left rows without their parent: {dangling[:3]}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.execute("PRAGMA foreign_keys=ON")


def run_script(conn: sqlite3.Connection, sql: str) -> None:
    """A migration's statements, one by one: executescript() would COMMIT first and so end the
    migration's transaction."""
    for statement in _statements(sql):
        conn.execute(statement)


def _statements(sql: str) -> Iterator[str]:
    """Complete statements of a script, as SQLite's own tokenizer ends them (strings, triggers)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    leftover = [line for line in pending.splitlines() if line.strip() and not line.strip().startswith("--")]
    if leftover:
        raise ValueError(f"a script ends inside a statement: {leftover[0][:80]!r}")


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "database or disk is full" in str(exc)  # SQLITE_FULL


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if is_disk_full(exc):
            raise StorageFull(FULL) from None
        raise
