"""The schema, as numbered migrations, and the version each database records.

A database's schema version is the highest migration recorded in its ``schema_migrations``
table. The one rule: **a migration that has been released is never edited**; a change to the
schema is a new file.

Adding a migration
------------------
1. Write ``NNNN_what_it_does.sql`` in this directory, numbered one above the highest, in SQL
   both stores accept, or — when they differ (SQLite cannot ALTER a CHECK constraint) — the pair
   ``NNNN_what_it_does.sqlite.sql`` and ``NNNN_what_it_does.postgres.sql``.
2. Write it for the database as the previous migration left it, with plain ``CREATE``/``ALTER``
   (the runner applies each migration exactly once: ``IF NOT EXISTS`` is not needed). Two placeholders
   spell what differs only in name: ``BIGSERIAL_OR_ROWID`` (an auto-numbered primary key) and
   ``/*WITHOUT_ROWID*/`` after a table SQLite should store by its primary key.
3. SQLite changes a column's type or a CHECK by rebuilding the table inside the migration:
   ``CREATE TABLE x_new (...)``, ``INSERT INTO x_new (...) SELECT ... FROM x``, ``DROP TABLE x``,
   ``ALTER TABLE x_new RENAME TO x``, then re-create x's indexes. Foreign keys are off meanwhile
   and checked before the commit (see ``Database.schema_change``).
4. Each migration runs in the one transaction of its upgrade: it applies whole or not at all.
   Nothing else is needed: new databases and ``lineoa-export db upgrade`` both pick it up, and
   the migration tests upgrade the 0.1.0 fixtures through it.
5. Two branches that both add number N collide on purpose: loading the migrations fails
   ("migration N has two names"), so every test fails until one of them is renumbered.

``0001_initial.sql`` is, byte for byte, the ``schema.sql`` of 0.1.0, which created its tables
with ``CREATE ... IF NOT EXISTS`` and recorded no version: a database that has those tables but
no ``schema_migrations`` is at version 1.

Why our own runner and not yoyo-migrations (the well-kept candidate): yoyo opens connections of
its own from a URL (a second connection path beside ``Database``, with its own reading of our
``?options=-csearch_path`` URLs), takes its lock by polling a lock table where PostgreSQL has
advisory locks, and keeps applied migrations as hashed ids rather than a number we can compare
with the code's to refuse an older or newer database. What we need is ~100 lines on top of
``Database``: numbered files, one transaction under one lock, a version row per migration.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, Literal, cast

from ...errors import ConfigurationError

if TYPE_CHECKING:
    from ..database import Database, SchemaTx

Dialect = Literal["sqlite", "postgres"]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")
_OURS = "authentications"  # a table every version has: its presence without a version means 0.1.0
_DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgres")
LEGACY_VERSION = 1  # what 0.1.0 made: 0001_initial.sql, with no schema_migrations table


class SchemaVersionError(ConfigurationError):
    """The database's schema is older or newer than this code's (the message says what to do)."""


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    sql: dict[Dialect, str]

    @property
    def title(self) -> str:
        return f"{self.number:04d}_{self.name}"


class Catalog:
    """The migrations of one directory (this package's, unless a test brings its own)."""

    def __init__(self, directory: Traversable) -> None:
        self._directory = directory

    @cached_property
    def migrations(self) -> tuple[Migration, ...]:
        """In order; numbered 1..N without gaps, each for both dialects."""
        found: dict[int, tuple[str, dict[Dialect, str]]] = {}
        for entry in self._directory.iterdir():
            match = _FILE.match(entry.name)
            if not match:
                continue
            number, name, only = int(match[1]), match[2], match[3]
            known_name, texts = found.setdefault(number, (name, {}))
            if known_name != name:
                raise RuntimeError(f"migration {number:04d} has two names: {known_name}, {name}")
            targets: tuple[Dialect, ...] = _DIALECTS if only is None else (cast(Dialect, only),)
            for dialect in targets:
                if dialect in texts:
                    raise RuntimeError(f"migration {number:04d}_{name} is written twice for {dialect}")
                texts[dialect] = entry.read_text()
        migrations = tuple(Migration(n, name, texts) for n, (name, texts) in sorted(found.items()))
        for expected, migration in enumerate(migrations, start=1):
            if migration.number != expected or set(migration.sql) != set(_DIALECTS):
                raise RuntimeError(f"migrations must be numbered 1..N, each for sqlite and postgres: {migration.title}")
        return migrations

    @property
    def version(self) -> int:
        """The schema version this code needs: its highest migration."""
        return len(self.migrations)


SHIPPED = Catalog(resources.files(__package__))


def _for_dialect(sql: str, dialect: Dialect) -> str:
    if dialect == "sqlite":
        return sql.replace("BIGSERIAL_OR_ROWID", "INTEGER PRIMARY KEY").replace("/*WITHOUT_ROWID*/", "WITHOUT ROWID")
    return sql.replace("BIGSERIAL_OR_ROWID", "BIGSERIAL PRIMARY KEY").replace("/*WITHOUT_ROWID*/", "")


# -- reading the version -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaState:
    """What a database says about its schema. ``version`` 0 is a new, empty database."""

    version: int
    recorded: bool  # False for an empty database and for one that 0.1.0 made
    applied: tuple[dict[str, Any], ...] = ()

    @property
    def description(self) -> str:
        if self.version == 0:
            return "empty (new)"
        if not self.recorded:
            return f"version {self.version} (made by lineoa-export 0.1.0, not yet recorded)"
        return f"version {self.version}"


def _read_state(tx_run: Database | SchemaTx, dialect: Dialect) -> SchemaState:
    tables = {row["name"] for row in tx_run.run(f"tables_{dialect}")}
    if "schema_migrations" in tables:
        applied = tuple(tx_run.run("schema_migrations_all"))
        version = max((int(row["version"]) for row in applied), default=0)
        return SchemaState(version, recorded=True, applied=applied)
    if _OURS in tables:
        return SchemaState(LEGACY_VERSION, recorded=False)
    return SchemaState(0, recorded=False)


def schema_state(db: Database) -> SchemaState:
    return _read_state(db, db.dialect)


def _too_new(state: SchemaState, catalog: Catalog) -> SchemaVersionError:
    return SchemaVersionError(
        f"database schema is version {state.version}, newer than this lineoa-export's "
        f"({catalog.version}): use a newer lineoa-export"
    )


def ensure_current(db: Database, catalog: Catalog = SHIPPED) -> None:
    """Make a new database at the code's version; refuse one that is older or newer."""
    state = schema_state(db)
    if state.version == catalog.version:
        return
    if state.version == 0:
        upgrade(db, catalog)  # under the schema lock; if another process made it first, a no-op
        return
    if state.version > catalog.version:
        raise _too_new(state, catalog)
    raise SchemaVersionError(
        f"database schema is version {state.version}, this lineoa-export needs {catalog.version}: "
        "run `lineoa-export db upgrade`"
    )


# -- upgrading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    before: SchemaState
    after: int
    applied: tuple[str, ...]


def upgrade(db: Database, catalog: Catalog = SHIPPED) -> UpgradeResult:
    """Bring the database to the code's version in one transaction, under the schema lock.

    Safe to run twice and from several processes at once: the version is read again once the
    lock is held, so a second upgrader finds nothing left to do.
    """
    from ... import __version__

    with db.schema_change() as tx:
        before = _read_state(tx, tx.dialect)
        if before.version > catalog.version:
            raise _too_new(before, catalog)
        tx.run("schema_migrations_create")
        if before.version == LEGACY_VERSION and not before.recorded:
            _record(tx, catalog.migrations[0], by="lineoa-export 0.1.0 (recorded on upgrade)")
        pending = catalog.migrations[before.version :]
        for migration in pending:
            tx.script(_for_dialect(migration.sql[tx.dialect], tx.dialect))
            _record(tx, migration, by=f"lineoa-export {__version__}")
    return UpgradeResult(before, catalog.version, tuple(m.title for m in pending))


def _record(tx: SchemaTx, migration: Migration, *, by: str) -> None:
    tx.run(
        "schema_migration_insert",
        {"version": migration.number, "name": migration.title, "applied_at": time.time(), "applied_by": by},
    )


Stage = Literal["current", "empty", "older", "newer"]


def stage(state: SchemaState, catalog: Catalog = SHIPPED) -> Stage:
    """Where a database stands next to this code (for ``db version``)."""
    if state.version == 0:
        return "empty"
    if state.version < catalog.version:
        return "older"
    return "newer" if state.version > catalog.version else "current"
