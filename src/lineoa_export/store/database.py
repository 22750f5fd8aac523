"""One door to the database: SQLite (default) or PostgreSQL, same named queries.

SQL lives in ``schema.sql`` and ``queries.sql`` (``-- name: x`` blocks, ``:param``
placeholders), never in strings scattered through modules. This module is the only one
that knows a driver: it loads the queries, adapts them to the dialect, and translates
driver errors at the boundary.

The store is synchronous on purpose: sqlite3 and psycopg are synchronous, async callers
(worker, API) run it on a thread, so there is one copy of each query path, not a sync
and an async twin.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from ..errors import ConfigurationError

Row = dict[str, Any]
Params = Mapping[str, Any]
Dialect = Literal["sqlite", "postgres"]

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


def _schema(dialect: Dialect) -> str:
    sql = resources.files(__package__).joinpath("schema.sql").read_text()
    if dialect == "sqlite":
        return sql.replace("BIGSERIAL_OR_ROWID", "INTEGER PRIMARY KEY").replace("/*WITHOUT_ROWID*/", "WITHOUT ROWID")
    return sql.replace("BIGSERIAL_OR_ROWID", "BIGSERIAL PRIMARY KEY")


class Tx(Protocol):
    def run(self, name: str, params: Params | None = None) -> list[Row]: ...
    def run_many(self, name: str, rows: Iterable[Params]) -> None: ...


class _Tx:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def run(self, name: str, params: Params | None = None) -> list[Row]:
        cur = self._conn.execute(query(name, self._dialect), params or {})
        return list(cur.fetchall()) if cur.description else []

    def run_many(self, name: str, rows: Iterable[Params]) -> None:
        sql = query(name, self._dialect)
        if self._dialect == "sqlite":
            self._conn.executemany(sql, rows)
        else:
            with self._conn.cursor() as cur:
                cur.executemany(sql, list(rows))


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
                f"LINEOA_EXPORT_DATABASE_URL: unsupported URL {url!r} (use sqlite:///PATH or postgresql://...)"
            )
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._writers = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            assert self.path is not None
            if self.path.parent != Path(""):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.row_factory = _dict_row
            # WAL lets the API read while the worker writes; NORMAL sync is durable across
            # process crashes (what we promise) and only risks the last commit on power loss.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        import psycopg
        from psycopg.rows import dict_row

        try:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise ConfigurationError(f"cannot connect to {self.url}: {exc}") from None

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- use ---------------------------------------------------------------------------------

    def migrate(self) -> None:
        conn = self._conn()
        if self.dialect == "sqlite":
            conn.executescript(_schema("sqlite"))
        else:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(8675309)")  # one migrator at a time
                conn.execute(_schema("postgres"))

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
            with self._writers:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Tx(conn, "sqlite")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        else:
            with conn.transaction():
                yield _Tx(conn, "postgres")

    def run(self, name: str, params: Params | None = None) -> list[Row]:
        """One statement in its own transaction (reads, single writes)."""
        return _Tx(self._conn(), self.dialect).run(name, params)

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1")
        except Exception:
            return False
        return True


def open_database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db
