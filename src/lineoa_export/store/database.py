"""One door to the database: SQLite (default) or PostgreSQL, same named queries.

SQL lives in ``queries.sql`` (``-- name: x`` blocks, ``:param`` placeholders) and in the
numbered migrations of ``migrations/`` (the schema), never in strings scattered through
modules. This module is the only one that knows a driver: it loads the queries, adapts them
to the dialect, and translates driver errors at the boundary.

The store is synchronous on purpose: sqlite3 and psycopg are synchronous, async callers
(worker, API) run it on a thread, so there is one copy of each query path, not a sync
and an async twin.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigurationError, DatabaseUnavailable, InvalidInput, StorageFull
from ..naming import is_valid_unicode
from .migrations import Dialect, ensure_current

Row = dict[str, Any]
Params = Mapping[str, Any]

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_]+)\s*$", re.MULTILINE)
_NAMED_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


@cache
def _query_texts() -> dict[str, str]:
    text = resources.files(__package__).joinpath("queries.sql").read_text()
    parts = _NAME_LINE.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@cache
def query(name: str, dialect: Dialect) -> str:
    """The SQL of a named query, adapted to the dialect."""
    sql = _query_texts()[name]
    if dialect == "postgres":
        sql = _NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        sql = sql.replace("/*FOR_UPDATE*/", "FOR UPDATE OF e SKIP LOCKED")
    return sql


CONNECT_TIMEOUT = 5  # seconds, for PostgreSQL (unless the URL sets connect_timeout)

# The password of postgresql://user:PASSWORD@host/db (up to the last @ before the query), and a
# password=... parameter: never in a message or a log line.
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^?#]*@", re.IGNORECASE)
_PARAM_PASSWORD = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", url))


class ConnectionLost(DatabaseUnavailable):
    """A PostgreSQL connection broke under a call (the next call connects afresh)."""


def _is_broken(conn: Any) -> bool:
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False))


class Tx(Protocol):
    def run(self, name: str, params: Params | None = None) -> list[Row]: ...
    def run_many(self, name: str, rows: Iterable[Params]) -> None: ...


class SchemaTx(Tx, Protocol):
    """A transaction that holds the schema lock (see :meth:`Database.schema_change`)."""

    @property
    def dialect(self) -> Dialect: ...

    def script(self, sql: str) -> None:
        """Run a script of several statements (a migration) inside this transaction."""
        ...


class _Tx:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def run(self, name: str, params: Params | None = None) -> list[Row]:
        try:
            cur = self._conn.execute(query(name, self._dialect), params or {})
        except Exception as exc:
            _raise_translated(exc, [params or {}])
            raise
        return list(cur.fetchall()) if cur.description else []

    def run_many(self, name: str, rows: Iterable[Params]) -> None:
        sql = query(name, self._dialect)
        rows = list(rows)
        try:
            if self._dialect == "sqlite":
                self._conn.executemany(sql, rows)
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(sql, rows)
        except Exception as exc:
            _raise_translated(exc, rows)
            raise


UNSTORABLE_TEXT = "text that cannot be stored (a NUL character or a lone surrogate)"
FULL = "the database's disk is full: nothing was stored; free some space and try again"


def _raise_translated(exc: Exception, rows: Sequence[Params]) -> None:
    """The driver refused input (NUL in PostgreSQL TEXT, a lone surrogate in UTF-8) or ran out of
    space: raise our error for it, naming the parameter. Looked into only after a failure."""
    for row in rows:
        for key, value in row.items():
            if isinstance(value, str) and not is_valid_unicode(value):
                raise InvalidInput.single(key, UNSTORABLE_TEXT) from None
    if _is_disk_full(exc):
        raise StorageFull(FULL) from None


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return "database or disk is full" in str(exc)  # SQLITE_FULL
    return getattr(exc, "sqlstate", None) == "53100"  # PostgreSQL disk_full


class _SchemaTx(_Tx):
    __slots__ = ()

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def script(self, sql: str) -> None:
        if self._dialect == "postgres":
            self._conn.execute(sql)  # no parameters: psycopg sends the whole script at once
            return
        # sqlite3's executescript() would COMMIT first and so end the migration's
        # transaction: run the statements one by one instead.
        for statement in _sqlite_statements(sql):
            self._conn.execute(statement)


def _sqlite_statements(sql: str) -> Iterator[str]:
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


def _connect_sqlite(path: Path) -> sqlite3.Connection:
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


def _dict_row(cursor: sqlite3.Cursor, row: Sequence[Any]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


class Database:
    """Connections per thread, transactions, named queries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect: Dialect
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self.path: Path | None = Path(url.removeprefix("sqlite:///"))
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgres"
            self.path = None
        else:
            raise ConfigurationError(
                f"LINEOA_EXPORT_DATABASE_URL: unsupported URL {redacted(url)!r} "
                "(use sqlite:///PATH or postgresql://...)"
            )
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._writers = threading.Lock()
        self.storage_full = False  # the last write found the disk full (``/readyz`` says so)
        self._generation = 0  # connections of an older generation are replaced on their next use

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            assert self.path is not None
            try:
                return _connect_sqlite(self.path)
            except (OSError, sqlite3.DatabaseError) as exc:  # a directory, no permission, not SQLite
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise ConfigurationError(
                    f"LINEOA_EXPORT_DATABASE_URL: cannot use {str(self.path)!r} as a SQLite database: {reason}"
                ) from None
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo
        from psycopg.rows import dict_row

        try:
            # A bounded connect: a database host that drops packets must not hang a request or
            # a claim for the OS's two-minute TCP timeout. A connect_timeout in the URL wins.
            options = {"connect_timeout": CONNECT_TIMEOUT, **conninfo_to_dict(self.url)}
            return psycopg.connect(make_conninfo("", **options), autocommit=True, row_factory=dict_row)
        except psycopg.ProgrammingError as exc:  # libpq could not parse the URL
            raise ConfigurationError(f"LINEOA_EXPORT_DATABASE_URL {redacted(self.url)!r}: {exc}") from None
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())  # libpq's message spans lines
            raise DatabaseUnavailable(f"cannot connect to {redacted(self.url)}: {reason}") from None

    def _conn(self) -> Any:
        """This thread's connection; a new one if the last was lost (PostgreSQL restart, failover)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and (self._local.generation != self._generation or _is_broken(conn)):
            self._discard(conn)
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn, self._local.generation = conn, self._generation
            with self._lock:
                self._all.append(conn)
        return conn

    def _discard(self, conn: Any) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with suppress(Exception):
            conn.close()

    @contextmanager
    def _replacing_lost(self, conn: Any) -> Iterator[None]:
        """Turn a lost PostgreSQL connection into :class:`DatabaseUnavailable`, and retire them all.

        One lost connection means the server went away (restart, failover, a cut network): the
        other threads' connections are as dead but do not know it yet, so each would fail once
        more. A new generation makes every thread connect afresh on its next call instead.
        """
        if self.dialect == "sqlite":
            yield
            return
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            if not _is_broken(conn):
                raise
            with self._lock:
                self._generation += 1
            raise ConnectionLost(f"lost the connection to the database: {' '.join(str(exc).split())}") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- use ---------------------------------------------------------------------------------

    @contextmanager
    def schema_change(self) -> Iterator[SchemaTx]:
        """One transaction holding the schema lock: one migrator at a time, across processes.

        PostgreSQL: a transaction-scoped advisory lock keyed by the schema (tests give each
        database a schema of its own; they need not wait for each other). SQLite: BEGIN
        IMMEDIATE takes the database's write lock up front. Foreign keys are off meanwhile, as
        SQLite's table-rebuild recipe asks (a rebuilt table is dropped while others point at
        it); ``foreign_key_check`` then proves nothing was left dangling before the commit.
        """
        conn = self._conn()
        if self.dialect == "postgres":
            with self._replacing_lost(conn), conn.transaction():
                conn.execute(query("lock_schema", "postgres"))
                yield _SchemaTx(conn, "postgres")
            return
        with self._writers:
            conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set it first
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _SchemaTx(conn, "sqlite")
                    dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
                    if dangling:
                        raise RuntimeError(f"schema change left rows without their parent: {dangling[:3]}")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; commits on success, rolls back on any exception."""
        conn = self._conn()
        if self.dialect == "sqlite":
            # Writers of this process queue on a Python lock: SQLite's own busy handler
            # backs off by sleeping (up to 100 ms a try), which starved the worker's small
            # writes behind a stream of large trigger batches in `serve`. IMMEDIATE then
            # takes the file lock up front, so writers of other processes queue instead of
            # deadlocking on a read-to-write upgrade.
            with self._writers, self._noting_full_disk():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Tx(conn, "sqlite")
                    _commit(conn)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        else:
            with self._replacing_lost(conn), self._noting_full_disk(), conn.transaction():
                yield _Tx(conn, "postgres")
        self.storage_full = False  # a write went through: there is room again

    def run(self, name: str, params: Params | None = None) -> list[Row]:
        """One statement in its own transaction (reads, single writes)."""
        conn = self._conn()
        with self._replacing_lost(conn), self._noting_full_disk():
            return _Tx(conn, self.dialect).run(name, params)

    @contextmanager
    def _noting_full_disk(self) -> Iterator[None]:
        """Remember a full disk for ``/readyz`` until the next transaction commits."""
        try:
            yield
        except StorageFull:
            self.storage_full = True
            raise

    def ping(self) -> bool:
        """Whether the database answers now; a connection lost while idle is replaced, not reported."""
        for _ in range(2):
            try:
                conn = self._conn()
                with self._replacing_lost(conn):
                    conn.execute("SELECT 1")
                return True
            except ConnectionLost:
                continue  # once more, on a new connection
            except Exception:
                return False
        return False


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


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if _is_disk_full(exc):
            raise StorageFull(FULL) from None
        raise


def open_database(url: str) -> Database:
    """A database at the schema version of this code: created there if it is new and empty.

    An older or newer database is refused (:class:`~.migrations.SchemaVersionError`): only
    ``lineoa-export db upgrade`` changes the schema of a database that holds data.
    """
    db = Database(url)
    try:
        ensure_current(db)
    except BaseException:
        db.close()
        raise
    return db
