"""Every error this package raises on purpose.

Foreign errors (aiohttp, sqlite3, psycopg, pydantic) are translated once, at the boundary
that meets them, into one of these::

    LineoaExportError
    ├── InvalidInput            bad user input; carries FieldProblem items naming each field
    ├── NotFound                an authentication, activation or event that does not exist
    ├── AlreadyExists           a name already taken
    ├── CredentialsRejected     LINE refused the channel credentials (its reason attached)
    ├── StorageFull             the database's disk is full (nothing was stored)
    ├── DatabaseUnavailable     the database cannot be reached now (connection refused or lost)
    └── ConfigurationError      a setting or environment variable that cannot be used
        └── ApiUrlNotAllowed    a stored api_url the current LINEOA_EXPORT_ALLOWED_API_HOSTS refuses
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with one field, e.g. ``messages[0].text: longer than 5000``."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class LineoaExportError(Exception):
    """Base of every error raised on purpose by lineoa-export."""


class InvalidInput(LineoaExportError, ValueError):
    """The input breaks one or more rules; ``problems`` names each field and why."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid input")

    @classmethod
    def single(cls, path: str, reason: str) -> InvalidInput:
        return cls([FieldProblem(path, reason)])


class NotFound(LineoaExportError, LookupError):
    """Something named does not exist."""


class AlreadyExists(LineoaExportError):
    """A name is already taken."""


class CredentialsRejected(LineoaExportError):
    """LINE refused the credentials; the message is LINE's reason."""


class StorageFull(LineoaExportError):
    """The database has no room left: the write was not made; retry once space is freed."""


class ConfigurationError(LineoaExportError):
    """A setting cannot be used as given."""


class ApiUrlNotAllowed(ConfigurationError):
    """A stored authentication's ``api_url`` is not allowed by the settings in force now."""


class DatabaseUnavailable(LineoaExportError):
    """The database cannot be reached now: connecting failed, or the connection was lost.

    The store replaces the lost connection on the next call, so trying again later works
    once the database is back. (The message never holds the URL's password.)
    """

    #: What an API client is told (the message itself names the database host).
    public_message = "the database is not reachable now; try again shortly"
