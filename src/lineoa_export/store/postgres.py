"""PostgreSQL behind the store: bounded connects, lost connections, the schema lock, its errors.

Only :mod:`.database` calls this module; nothing else knows there is a psycopg underneath.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError, DatabaseUnavailable

CONNECT_TIMEOUT = 5  # seconds (unless the URL sets connect_timeout)

# The password of postgresql://user:PASSWORD@host/db (up to the last @ before the query), and a
# password=... parameter: never in a message or a log line.
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^?#]*@", re.IGNORECASE)
_PARAM_PASSWORD = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", url))


class ConnectionLost(DatabaseUnavailable):
    """A PostgreSQL connection broke under a call (the next call connects afresh)."""


def connect(url: str) -> Any:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg.rows import dict_row

    try:
        # A bounded connect: a database host that drops packets must not hang a request or
        # a claim for the OS's two-minute TCP timeout. A connect_timeout in the URL wins.
        options = {"connect_timeout": CONNECT_TIMEOUT, **conninfo_to_dict(url)}
        return psycopg.connect(make_conninfo("", **options), autocommit=True, row_factory=dict_row)
    except psycopg.ProgrammingError as exc:  # libpq could not parse the URL
        raise ConfigurationError(f"LINEOA_EXPORT_DATABASE_URL {redacted(url)!r}: {exc}") from None
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())  # libpq's message spans lines
        raise DatabaseUnavailable(f"cannot connect to {redacted(url)}: {reason}") from None


def is_broken(conn: Any) -> bool:
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False))


@contextmanager
def replacing_lost(conn: Any, on_lost: Callable[[], None]) -> Iterator[None]:
    """Turn a lost connection into :class:`ConnectionLost` after calling ``on_lost`` (which retires
    the other threads' connections: one lost connection means the server went away)."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        if not is_broken(conn):
            raise
        on_lost()
        raise ConnectionLost(f"lost the connection to the database: {' '.join(str(exc).split())}") from None


@contextmanager
def schema_transaction(conn: Any, lock_sql: str) -> Iterator[None]:
    """One transaction holding a transaction-scoped advisory lock keyed by the schema (tests give
    each database a schema of its own; they need not wait for each other)."""
    with conn.transaction():
        conn.execute(lock_sql)
        yield


def run_script(conn: Any, sql: str) -> None:
    conn.execute(sql)  # no parameters: psycopg sends the whole script at once


def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == "53100"  # disk_full
