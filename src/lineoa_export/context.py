"""What every entry point (CLI, API, worker, demo) opens first: settings, database, vault, clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .api_hosts import ApiHosts
from .clock import Clock, SystemClock
from .delivery.line_client import Timeouts
from .settings import Settings
from .store.database import Database, open_database
from .vault import Vault

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    db: Database
    vault: Vault
    clock: Clock = field(default_factory=SystemClock)

    @property
    def api_hosts(self) -> ApiHosts:
        """Where an authentication's ``api_url`` may point (``LINEOA_EXPORT_ALLOWED_API_HOSTS``)."""
        return self.vault.api_hosts

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(self.settings.connect_timeout, self.settings.timeout)

    def close(self) -> None:
        self.db.close()


def key_file_for(settings: Settings) -> Path:
    """The key file beside a SQLite database (``app.db`` → ``app.db.key``), else in the working directory."""
    path = settings.sqlite_path()
    return path.with_name(path.name + ".key") if path else Path("lineoa-export.key")


def open_context(settings: Settings | None = None, *, clock: Clock | None = None) -> Context:
    settings = settings or Settings.from_env()
    db = open_database(settings.database_url)
    try:
        vault = _open_vault(settings, db)
    except BaseException:
        db.close()
        raise
    return Context(settings, db, vault, clock or SystemClock())


def _open_vault(settings: Settings, db: Database) -> Vault:
    if settings.secret_key:
        return Vault.from_secret(settings.secret_key, settings.api_hosts)
    path = key_file_for(settings)
    if settings.sqlite_path() is None:
        log.warning("LINEOA_EXPORT_SECRET_KEY is not set: using the key file %s; share it with every host", path)
    # A new key for a database that already holds sealed credentials would open none of them.
    return Vault.from_key_file(path, settings.api_hosts, create=not db.run("auth_list"))
