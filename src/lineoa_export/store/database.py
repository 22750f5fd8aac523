"""One door to the database: SQLite (default) or PostgreSQL, same named queries.

SQL lives in ``queries.sql`` (``-- name: x`` blocks, ``:param`` placeholders) and in the
numbered migrations of ``migrations/`` (the schema), never in strings scattered through
modules. This module loads the queries, adapts them to the dialect, and translates driver errors at
the boundary; each store's own ways (connecting, transactions, the schema lock, its errors)
live in its driver module, ``sqlite.py`` and ``postgres.py``.

The store is synchronous on purpose: sqlite3 and psycopg are synchronous, async callers
(worker, API) run it on a thread, so there is one copy of each query path, not a sync
and an async twin.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from importlib import resources
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigurationError, InvalidInput, StorageFull
from ..naming import is_valid_unicode
from . import postgres, sqlite
from .migrations import Dialect, ensure_current
from .postgres import ConnectionLost, redacted

Row = dict[str, Any]
Params = Mapping[str, Any]

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_]+)\s*$", re.MULTILINE)
_NAMED_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
#: ``/*INDEXED BY x*/``: an index SQLite must use where its planner, without statistics, would pick
#: a worse one (PostgreSQL keeps it as a comment and plans from its own statistics).
_INDEXED_BY = re.compile(r"/\*(INDEXED BY [a-z_]+)\*/")


@cache
def _query_texts() -> dict[str, str]:
    text = resources.files(__package__).joinpath("queries.sql").read_text()
    parts = _NAME_LINE.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@cache
def query(name: str, dialect: Dialect) -> str:
    """The SQL of a named query, adapted to the dialect."""
    sql = _query_texts()[name]
    if dialect == "sqlite":
        sql = _INDEXED_BY.sub(r"\1", sql)
    if dialect == "postgres":
        sql = _NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        sql = sql.replace("/*FOR_UPDATE*/", "FOR UPDATE OF e SKIP LOCKED")
    return sql


@cache
def sqlite_positional(name: str) -> tuple[str, Callable[[Params], tuple[Any, ...]]]:
    """A named query for SQLite with numbered placeholders (``?1``), and what makes its values.

    sqlite3 looks a named parameter up by building a str of its name for every parameter of
    every row; a tuple is read by position. For the 15 parameters of an outcome that is ≈3 µs
    a row, more than the tuple costs to make (an ``itemgetter``, in C).
    """
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"?{names.setdefault(match.group(1), len(names) + 1)}"

    sql = _NAMED_PARAM.sub(number, query(name, "sqlite"))
    if len(names) > 1:
        return sql, itemgetter(*names)
    if names:
        only = next(iter(names))
        return sql, lambda params: (params[only],)
    return sql, lambda params: ()


class Tx(Protocol):
    def run(self, name: str, params: Params | None = None) -> list[Row]: ...
    def run_many(self, name: str, rows: Iterable[Params]) -> None: ...
    def run_changed(self, name: str, params: Params | None = None) -> int: ...


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
        cur = self._execute(name, params)
        return list(cur.fetchall()) if cur.description else []

    def run_changed(self, name: str, params: Params | None = None) -> int:
        """Run a write and say how many rows it changed (the driver's count: no row is fetched)."""
        return int(self._execute(name, params).rowcount)

    def _execute(self, name: str, params: Params | None) -> Any:
        try:
            if self._dialect == "sqlite":
                sql, values = sqlite_positional(name)
                return self._conn.execute(sql, values(params or {}))
            return self._conn.execute(query(name, self._dialect), params or {})
        except Exception as exc:
            _raise_translated(exc, [params or {}])
            raise

    def run_many(self, name: str, rows: Iterable[Params]) -> None:
        rows = list(rows)
        try:
            if self._dialect == "sqlite":
                sql, values = sqlite_positional(name)
                self._conn.executemany(sql, map(values, rows))
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(query(name, self._dialect), rows)
        except Exception as exc:
            _raise_translated(exc, rows)
            raise


UNSTORABLE_TEXT = "text that cannot be stored (a NUL character or a lone surrogate)"
FULL = sqlite.FULL


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
    return sqlite.is_disk_full(exc) or postgres.is_disk_full(exc)


class _SchemaTx(_Tx):
    __slots__ = ()

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def script(self, sql: str) -> None:
        (postgres if self._dialect == "postgres" else sqlite).run_script(self._conn, sql)


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
        if self.path is not None:
            return sqlite.connect(self.path)
        return postgres.connect(self.url)

    def _conn(self) -> Any:
        """This thread's connection; a new one if the last was lost (PostgreSQL restart, failover)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and (self._local.generation != self._generation or postgres.is_broken(conn)):
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
        """A lost PostgreSQL connection: :class:`DatabaseUnavailable`, and every thread's connection retired.

        One lost connection means the server went away (restart, failover, a cut network): the
        other threads' connections are as dead but do not know it yet, so each would fail once
        more. A new generation makes every thread connect afresh on its next call instead.
        """
        if self.dialect == "sqlite":
            yield
            return
        with postgres.replacing_lost(conn, self._retire_connections):
            yield

    def _retire_connections(self) -> None:
        with self._lock:
            self._generation += 1

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

        PostgreSQL: an advisory lock keyed by the schema; SQLite: BEGIN IMMEDIATE, foreign keys
        checked before the commit (see the two driver modules).
        """
        conn = self._conn()
        if self.dialect == "postgres":
            with self._replacing_lost(conn), postgres.schema_transaction(conn, query("lock_schema", "postgres")):
                yield _SchemaTx(conn, "postgres")
            return
        with sqlite.schema_transaction(conn, self._writers):
            yield _SchemaTx(conn, "sqlite")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; commits on success, rolls back on any exception."""
        conn = self._conn()
        if self.dialect == "sqlite":
            with self._noting_full_disk(), sqlite.write_transaction(conn, self._writers):
                yield _Tx(conn, "sqlite")
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
