"""``lineoa-export db``: the database's schema version, and upgrading it in place.

Every other command refuses a database whose schema is older or newer than the code; these
two open it without that check (``store.migrations`` owns the rule and the SQL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..store.database import Database

db_app = typer.Typer(help="The database's schema version; upgrading it in place.", no_args_is_help=True)


def _open_unchecked() -> Database:
    from ..settings import Settings
    from ..store.database import Database

    return Database(Settings.from_env().database_url)


@db_app.command("version")
def db_version() -> None:
    """Show the database's schema version next to the one this lineoa-export needs."""
    from ..store import migrations
    from .main import guarded, out

    def show() -> None:
        db = _open_unchecked()
        try:
            state = migrations.schema_state(db)
        finally:
            db.close()
        out.print(f"database schema:    {state.description}")
        out.print(f"this lineoa-export: version {migrations.SHIPPED.version}")
        advice = {
            "current": "up to date",
            "empty": "the first command creates it at the current version",
            "older": "run `lineoa-export db upgrade`",
            "newer": "run a newer lineoa-export",
        }
        out.print(advice[migrations.stage(state)])

    guarded(show)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database's schema to this version in place (safe to repeat, one process at a time)."""
    from ..store import migrations
    from .main import guarded, out

    def run() -> None:
        db = _open_unchecked()
        try:
            result = migrations.upgrade(db)
        finally:
            db.close()
        if result.applied:
            out.print(
                f"upgraded the database from {result.before.description} to version {result.after}"
                f" (applied {', '.join(result.applied)})"
            )
        elif not result.before.recorded and result.before.version:
            out.print(f"recorded the database's schema as version {result.after}; nothing else to do")
        else:
            out.print(f"the database is at version {result.after} already; nothing to do")

    guarded(run)
