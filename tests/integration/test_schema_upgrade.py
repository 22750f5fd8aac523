"""`lineoa-export db upgrade` on databases that 0.1.0 really made, on SQLite and PostgreSQL.

The fixtures (tests/fixtures/v010.*.sql) are dumps of databases filled by 0.1.0's own CLI
against its simulator; ``make_v010_databases.sh`` beside them rebuilds them and says what they
hold. Each test loads one into a fresh database, upgrades it and checks what a user relies on:
nothing stored is lost or changed, and the events still waiting are delivered exactly once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import psycopg
import pytest

from lineoa_export import activation_table, apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.context import open_context
from lineoa_export.delivery.worker import Worker
from lineoa_export.settings import Settings
from lineoa_export.simulator import running_simulator
from lineoa_export.store import migrations
from lineoa_export.store.database import Database, open_database
from lineoa_export.store.migrations import SHIPPED, Catalog, SchemaVersionError
from lineoa_export.testing import SIMULATOR_HOST

START_OF_TEST = 1_800_000_000.0

FIXTURES = Path(__file__).parent.parent / "fixtures"
FIXTURE_SECRET = "v010-fixture-secret-not-for-production"  # the key 0.1.0 encrypted the fixture's credentials with
FIXTURE_PG_SCHEMA = "lineoa_v010_fixture"

# What 0.1.0 stored, table by table, in a stable order (its columns only: later versions add some).
V010_TABLES = {
    "authentications": "name, kind, api_url, channel_id, channel_key, credentials, bot_user_id, bot_name, created_at",
    "channel_pauses": "channel_key, reason, kind, since",
    "activations": "name, description, authentication, recipient, messages, max_retries, initial_retry_delay, "
    "retry_delay_multiple, notification_disabled, paused_reason, created_at, updated_at",
    "events": "id, activation, event_id, channel_key, recipient, body, retry_key, state, attempts, retries, "
    "accepted_at, first_attempt_at, next_attempt_at, finished_at, leased_until, leased_by, status_code, error, "
    "line_request_id, accepted_request_id, sent_message_ids",
    "attempts": "event, number, started_at, duration_ms, status_code, error, line_request_id",
    "api_keys": "name, key_hash, created_at, revoked_at",
}


# -- helpers -------------------------------------------------------------------------------------


def settings_for(db_url: str, **more: Any) -> Settings:
    """The fixture's secret key; its simulators (and ours) listen on 127.0.0.1."""
    return Settings(database_url=db_url, secret_key=FIXTURE_SECRET, allowed_api_hosts=SIMULATOR_HOST, **more)


def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows read with the bare driver, so nothing of ours stands between the test and the data."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql).fetchall()
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def execute(db_url: str, sql: str) -> None:
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.executescript(sql)
        return
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql)


def load_v010(db_url: str) -> None:
    """Fill the (empty) database with what 0.1.0 wrote."""
    if db_url.startswith("sqlite:///"):
        execute(db_url, (FIXTURES / "v010.sqlite.sql").read_text())
        return
    schema = unquote(db_url).rsplit("search_path=", 1)[1]
    dump = (FIXTURES / "v010.postgres.sql").read_text()
    dump = dump.replace(f"CREATE SCHEMA {FIXTURE_PG_SCHEMA};", "")  # the test's schema exists already
    execute(db_url, dump.replace(FIXTURE_PG_SCHEMA, schema))


def snapshot(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: rows(db_url, f"SELECT {cols} FROM {table} ORDER BY 1, 2") for table, cols in V010_TABLES.items()}


def events_by_state(db_url: str) -> dict[tuple[str, str], int]:
    return {(a, s): n for a, s, n in rows(db_url, "SELECT activation, state, COUNT(*) FROM events GROUP BY 1, 2")}


def recorded_versions(db_url: str) -> list[int]:
    return [v for (v,) in rows(db_url, "SELECT version FROM schema_migrations ORDER BY version")]


def upgrade(db_url: str, catalog: Catalog = SHIPPED) -> migrations.UpgradeResult:
    db = Database(db_url)
    try:
        return migrations.upgrade(db, catalog)
    finally:
        db.close()


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEOA_EXPORT_")}
    env |= {"LINEOA_EXPORT_DATABASE_URL": db_url, "LINEOA_EXPORT_SECRET_KEY": FIXTURE_SECRET, "COLUMNS": "250"}
    env["LINEOA_EXPORT_ALLOWED_API_HOSTS"] = SIMULATOR_HOST
    return subprocess.run(
        [sys.executable, "-m", "lineoa_export", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def catalog_with(tmp_path: Path, extra: dict[str, str]) -> Catalog:
    """The shipped migrations plus ``extra`` (file name → SQL): a later version of the code."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for migration in SHIPPED.migrations:
        (directory / f"{migration.title}.sqlite.sql").write_text(migration.sql["sqlite"])
        (directory / f"{migration.title}.postgres.sql").write_text(migration.sql["postgres"])
    for name, sql in extra.items():
        (directory / name).write_text(sql)
    return Catalog(directory)


def next_number() -> str:
    return f"{SHIPPED.version + 1:04d}"


# -- what survives -------------------------------------------------------------------------------


def test_the_fixture_is_what_0_1_0_made_and_records_no_version(db_url: str) -> None:
    load_v010(db_url)
    db = Database(db_url)
    try:
        state = migrations.schema_state(db)
    finally:
        db.close()
    assert (state.version, state.recorded) == (1, False)
    # Every kind of event a user may have when upgrading: finished, waiting, retrying, held.
    states = {state for (state,) in rows(db_url, "SELECT DISTINCT state FROM events")}
    assert states == {"delivered", "failed", "retrying", "queued", "paused"}
    assert rows(db_url, "SELECT kind FROM channel_pauses") == [("quota",)]


def test_upgrade_keeps_authentications_activations_events_and_attempts(db_url: str) -> None:
    load_v010(db_url)
    before = snapshot(db_url)
    failed_before = rows(db_url, "SELECT COUNT(*) FROM events WHERE state = 'failed' AND activation = 'strict'")

    result = upgrade(db_url)

    assert result.after == SHIPPED.version
    assert snapshot(db_url) == before
    assert recorded_versions(db_url) == list(range(1, SHIPPED.version + 1))
    # Through the product's own reading: the failed events keep their status code, error and attempts.
    ctx = open_context(settings_for(db_url))
    try:
        failed = [e for e in activation_table.iterate(ctx.db, "strict") if e["state"] == "failed"]
        assert [(len(failed),)] == failed_before and failed
        assert {(e["status_code"], e["attempts"], e["delivered"]) for e in failed} == {(500, 1, False)}
        assert all(e["error"] and len(e["attempt_log"]) == 1 for e in failed)
        main = authentications.get(ctx.db, "main")
        assert authentications.load_credentials(ctx.db, ctx.vault, main).access_token == "demo-access-token"
    finally:
        ctx.close()


def test_api_keys_made_by_0_1_0_are_admins_after_the_upgrade(db_url: str) -> None:
    load_v010(db_url)
    upgrade(db_url)
    ctx = open_context(settings_for(db_url))
    try:
        assert [(k.name, k.role) for k in apikeys.list_all(ctx.db)] == [("ops", "admin")]
        apikeys.create(ctx.db, "journeys", now=START_OF_TEST, role="trigger")
        assert {k.name: k.role for k in apikeys.list_all(ctx.db)} == {"ops": "admin", "journeys": "trigger"}
    finally:
        ctx.close()
    with pytest.raises(Exception, match=r"(?i)check"):  # the store itself refuses a role that does not exist
        execute(db_url, "INSERT INTO api_keys (name, key_hash, created_at, role) VALUES ('x', 'h', 0, 'root')")


def test_waiting_events_are_delivered_exactly_once_after_the_upgrade(tmp_path: Path, run, db_url: str) -> None:
    load_v010(db_url)
    waiting = dict(rows(db_url, "SELECT retry_key, event_id FROM events WHERE state IN ('queued', 'retrying')"))
    # Never tried ("welcome", triggered with no worker running), and due for a retry an hour after a 500 ("later").
    assert {e.split("-")[0] for e in waiting.values()} == {"welcome", "later"}
    (latest,) = rows(db_url, "SELECT MAX(accepted_at) FROM events")[0]
    expected: Counter[tuple[str, str]] = Counter()
    for (activation, state), n in events_by_state(db_url).items():  # what waited is delivered, the rest stays
        expected[activation, "delivered" if state in ("queued", "retrying") else state] += n
    upgrade(db_url)

    async def deliver() -> None:
        clock = FakeClock(start=latest + 3700)  # the retries an hour away are due; their keys are < 24 h old
        settings = settings_for(db_url, timeout=2.0, connect_timeout=1.0)
        ctx = open_context(settings, clock=clock)
        try:
            async with running_simulator(clock=clock.now) as sim:
                # LINE moved (the fixture's simulator is gone): point the channel at this one.
                execute(db_url, f"UPDATE authentications SET api_url = '{sim.url}' WHERE name = 'main'")
                await Worker(ctx.db, ctx.vault, settings, clock=clock).run(until_idle=True)
                keys = [push.retry_key for push in sim.record.accepted]
        finally:
            ctx.close()
        assert sorted(keys) == sorted(waiting)  # each waiting event once, nothing delivered before sent again

    run(deliver())
    assert events_by_state(db_url) == expected  # "capped" stays paused: its monthly quota is still used up
    assert expected["capped", "paused"] > 0


# -- safe to repeat, safe to race ----------------------------------------------------------------


def test_upgrading_twice_changes_nothing_the_second_time(db_url: str) -> None:
    load_v010(db_url)
    upgrade(db_url)
    after_first = snapshot(db_url), rows(db_url, "SELECT * FROM schema_migrations ORDER BY version")

    second = upgrade(db_url)

    assert second.applied == () and second.before.version == SHIPPED.version
    assert (snapshot(db_url), rows(db_url, "SELECT * FROM schema_migrations ORDER BY version")) == after_first


def race(count: int, action: Callable[[], object]) -> list[BaseException]:
    """Run ``action`` on ``count`` threads released at once; the errors they raised."""
    barrier, errors = threading.Barrier(count), []

    def one() -> None:
        barrier.wait()
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_upgrades_end_at_the_right_version_with_each_migration_once(db_url: str) -> None:
    load_v010(db_url)
    before = snapshot(db_url)

    assert race(4, lambda: upgrade(db_url)) == []  # each thread its own Database, so its own connection

    assert recorded_versions(db_url) == list(range(1, SHIPPED.version + 1))
    assert snapshot(db_url) == before


def test_commands_starting_at_once_on_a_new_database_create_it_once(db_url: str) -> None:
    assert race(4, lambda: open_database(db_url).close()) == []
    assert recorded_versions(db_url) == list(range(1, SHIPPED.version + 1))


# -- refusing what does not match ----------------------------------------------------------------


def test_an_older_database_is_refused_until_it_is_upgraded(tmp_path: Path, db_url: str) -> None:
    newer_code = catalog_with(tmp_path, {f"{next_number()}_labels.sql": "CREATE TABLE labels (name TEXT PRIMARY KEY);"})
    load_v010(db_url)
    db = Database(db_url)
    try:
        with pytest.raises(SchemaVersionError, match=r"needs .*: run `lineoa-export db upgrade`"):
            migrations.ensure_current(db, newer_code)
        assert rows(db_url, "SELECT COUNT(*) FROM events") == [(74,)]  # refusing wrote nothing
        migrations.upgrade(db, newer_code)
        migrations.ensure_current(db, newer_code)
    finally:
        db.close()
    assert rows(db_url, "SELECT COUNT(*) FROM labels") == [(0,)]


def test_a_migration_that_fails_halfway_leaves_the_database_as_it_was(tmp_path: Path, db_url: str) -> None:
    broken = "CREATE TABLE labels (name TEXT PRIMARY KEY);\nALTER TABLE events ADD COLUMN attempts INTEGER;\n"
    newer_code = catalog_with(tmp_path, {f"{next_number()}_broken.sql": broken})
    load_v010(db_url)
    before = snapshot(db_url)

    with pytest.raises(Exception, match="attempts"):
        upgrade(db_url, newer_code)

    assert snapshot(db_url) == before
    tables = {
        "sqlite": "SELECT name FROM sqlite_master WHERE name = 'labels'",
        "postgres": "SELECT table_name FROM information_schema.tables WHERE table_name = 'labels'",
    }
    assert rows(db_url, tables["sqlite" if db_url.startswith("sqlite") else "postgres"]) == []
    db = Database(db_url)
    try:
        state = migrations.schema_state(db)  # not even the version it had was recorded
    finally:
        db.close()
    assert (state.version, state.recorded) == (1, False)


def test_a_database_newer_than_the_code_is_refused_by_every_command_with_one_line(db_url: str) -> None:
    open_database(db_url).close()
    future = SHIPPED.version + 1
    execute(db_url, f"INSERT INTO schema_migrations VALUES ({future}, '{future:04d}_future', 0, 'a later release')")

    for args in (["activation", "list"], ["db", "upgrade"], ["worker", "--until-idle"]):
        result = cli(db_url, *args)
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        assert result.stderr.strip() == (
            f"error: database schema is version {future}, newer than this lineoa-export's "
            f"({SHIPPED.version}): use a newer lineoa-export"
        )
    shown = cli(db_url, "db", "version")
    assert shown.returncode == 0 and f"version {future}" in shown.stdout and "newer lineoa-export" in shown.stdout


# -- one schema, however the database got there ---------------------------------------------------


def describe_schema(db_url: str) -> list[tuple[Any, ...]]:
    """Tables, columns, constraints and indexes, in words that do not depend on how they were made."""
    if db_url.startswith("sqlite:///"):
        tables = [name for (name,) in rows(db_url, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        described: list[tuple[Any, ...]] = []
        for table in tables:
            described += [(table, *column) for column in rows(db_url, f"PRAGMA table_xinfo({table})")]
            (create,) = rows(db_url, f"SELECT sql FROM sqlite_master WHERE name = '{table}'")[0]
            # CHECKs live only in the CREATE text; a rebuilt table's text names it in quotes.
            checks = sorted(part.split(")")[0] for part in create.split("CHECK (")[1:])
            described.append((table, "checks", *checks))
        indexes = "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY 1"
        return described + rows(db_url, indexes)
    columns = (
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY 1, 2"
    )
    constraints = (
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2"
    )
    indexes = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2"
    schema = unquote(db_url).rsplit("search_path=", 1)[1]
    described = rows(db_url, columns) + rows(db_url, constraints) + rows(db_url, indexes)
    return [tuple(str(v).replace(schema + ".", "") for v in row) for row in described]


@contextlib.contextmanager
def another_empty_database(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the same store as ``db_url`` (PostgreSQL: a schema of its own)."""
    if db_url.startswith("sqlite:///"):
        yield f"sqlite:///{tmp_path / 'another.db'}"
        return
    schema = "test_" + uuid.uuid4().hex[:12]
    base = db_url.split("?", 1)[0]
    execute(base, f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        execute(base, f"DROP SCHEMA {schema} CASCADE")


def test_an_upgraded_0_1_0_database_has_the_schema_of_a_new_one(tmp_path: Path, db_url: str) -> None:
    load_v010(db_url)
    upgrade(db_url)
    upgraded = describe_schema(db_url)

    with another_empty_database(db_url, tmp_path) as new_url:
        open_database(new_url).close()  # a new database, made by the first command that opens it
        assert describe_schema(new_url) == upgraded
    assert any("events_due_by_channel" in str(row) for row in upgraded)
    assert any("breaker" in str(row) for row in upgraded)


def test_the_cli_refuses_a_0_1_0_database_until_db_upgrade_then_works_on_it(db_url: str) -> None:
    load_v010(db_url)

    for args in (["activation", "list"], ["trigger", "welcome", "--event", "{}"], ["worker", "--until-idle"]):
        refused = cli(db_url, *args)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.strip() == (
            f"error: database schema is version 1, this lineoa-export needs {SHIPPED.version}: "
            "run `lineoa-export db upgrade`"
        )
    assert "run `lineoa-export db upgrade`" in cli(db_url, "db", "version").stdout

    upgraded = cli(db_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"to version {SHIPPED.version}" in upgraded.stdout and "0002_delivery_lanes" in upgraded.stdout
    again = cli(db_url, "db", "upgrade")
    assert again.returncode == 0 and "already; nothing to do" in again.stdout

    listed = cli(db_url, "activation", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ("welcome", "strict", "later", "capped"))
    assert "up to date" in cli(db_url, "db", "version").stdout


def test_db_upgrade_run_by_three_processes_at_once_applies_each_migration_once(db_url: str) -> None:
    load_v010(db_url)
    before = snapshot(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEOA_EXPORT_")}
    env |= {"LINEOA_EXPORT_DATABASE_URL": db_url, "LINEOA_EXPORT_SECRET_KEY": FIXTURE_SECRET, "COLUMNS": "250"}
    command = [sys.executable, "-m", "lineoa_export", "db", "upgrade"]
    holder = Database(db_url)
    try:
        with holder.schema_change():
            # The test holds the schema lock while the three start, so they really meet at it.
            processes = [
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)
            ]
            if db_url.startswith("postgresql"):  # PostgreSQL shows who waits for a lock: wait for all three
                waiting = (  # on this schema's lock only (see lock_schema in queries.sql)
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 8675309"
                    " AND objid::text::bigint = (hashtext(current_schema())::bigint & 4294967295)"
                )
                deadline = time.monotonic() + 60
                while rows(db_url, waiting) != [(3,)] and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert rows(db_url, waiting) == [(3,)]
        outputs = [p.communicate(timeout=60) for p in processes]
    finally:
        holder.close()

    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    said = sorted("upgraded" if "upgraded the database" in out else out.strip() for out, _ in outputs)
    assert said == [f"the database is at version {SHIPPED.version} already; nothing to do"] * 2 + ["upgraded"]
    assert recorded_versions(db_url) == list(range(1, SHIPPED.version + 1))
    assert snapshot(db_url) == before
