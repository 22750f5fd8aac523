"""Settings read from ``LINEOA_EXPORT_*`` environment variables.

A small strict reader, in the spirit of starlette's ``Config``: every variable is
declared once here with its type and default, an unknown value is refused with the
variable's name, and nothing else in the package reads ``os.environ``.

=====================================  ==========================  =====================================
variable                               default                     meaning
=====================================  ==========================  =====================================
LINEOA_EXPORT_DATABASE_URL             sqlite:///lineoa-export.db  where state lives (sqlite:///PATH or
                                                                   postgresql://...)
LINEOA_EXPORT_SECRET_KEY               (key file beside the db)    key that encrypts stored credentials
LINEOA_EXPORT_RATE_LIMIT               2000                        pushes per second per LINE channel
LINEOA_EXPORT_RATE_BURST               20                          pushes a channel may send back to back
LINEOA_EXPORT_CONNECT_TIMEOUT          3                           seconds to open a connection to LINE
LINEOA_EXPORT_TIMEOUT                  10                          seconds for one whole LINE request
LINEOA_EXPORT_CONCURRENCY              1024                        upper bound of pushes in flight per
                                                                   worker process (all channels)
LINEOA_EXPORT_CHANNEL_CONNECTIONS      1000                        upper bound of pushes in flight per
                                                                   LINE channel (its lane)
LINEOA_EXPORT_BATCH_SIZE               200                         events claimed per database round trip
LINEOA_EXPORT_POLL_INTERVAL            0.05                        seconds between polls when idle
LINEOA_EXPORT_REDIS_URL                (none)                      share each channel's rate limit among
                                                                   worker processes (redis://host:6379/0)
LINEOA_EXPORT_QUOTA_CHECK_INTERVAL     300                         seconds between quota checks of a
                                                                   channel paused by its monthly limit
LINEOA_EXPORT_ALLOWED_API_HOSTS        (none: LINE's hosts only)   other hosts an authentication's api_url
                                                                   may name (comma-separated host names
                                                                   or IPs, any port): a simulator, a proxy
LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS    (none: no forwarding)       hosts ``auth update --forward-webhook``
                                                                   may re-send LINE's webhooks to (the
                                                                   customer's own bot; same syntax)
=====================================  ==========================  =====================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .api_hosts import ApiHosts, parse_allowed_hosts
from .errors import ConfigurationError

PREFIX = "LINEOA_EXPORT_"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///lineoa-export.db"
    secret_key: str | None = None
    rate_limit: float = Field(default=2000.0, gt=0)
    rate_burst: int = Field(default=20, ge=1)
    connect_timeout: float = Field(default=3.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=1024, ge=1, le=10_000)
    channel_connections: int = Field(default=1000, ge=1, le=10_000)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    poll_interval: float = Field(default=0.05, gt=0)
    quota_check_interval: float = Field(default=300.0, gt=0)
    redis_url: str | None = None
    allowed_api_hosts: tuple[str, ...] = ()
    allowed_forward_hosts: tuple[str, ...] = ()

    @field_validator("allowed_api_hosts", "allowed_forward_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        entries = value.split(",") if isinstance(value, str) else value
        if isinstance(entries, list | tuple | set | frozenset):
            return tuple(sorted(parse_allowed_hosts(str(e) for e in entries)))
        return value

    @property
    def api_hosts(self) -> ApiHosts:
        """Where an authentication's ``api_url`` may point: LINE's hosts and the allowed ones."""
        return ApiHosts(frozenset(self.allowed_api_hosts))

    @property
    def forward_hosts(self) -> frozenset[str]:
        """Where verified webhook requests may be re-sent: only hosts the operator named."""
        return frozenset(self.allowed_forward_hosts)

    @property
    def lease_seconds(self) -> float:
        """How long a claimed event stays reserved for the worker sending it.

        Longer than any request can take, so two attempts with one retry key can
        never be in flight at once (LINE leaves that case undefined).
        """
        return self.timeout * 3 + 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "?"
            raise ConfigurationError(f"{PREFIX}{field.upper()}: {first['msg']}") from None

    def sqlite_path(self) -> Path | None:
        """The database file, when the database is SQLite."""
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None
