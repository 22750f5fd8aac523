"""Settings from LINEOA_EXPORT_* variables: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineoa_export.errors import ConfigurationError
from lineoa_export.settings import Settings


def test_defaults() -> None:
    s = Settings.from_env({})

    assert s.database_url == "sqlite:///lineoa-export.db"
    assert s.secret_key is None
    assert s.rate_limit == 2000
    assert s.rate_burst == 20
    assert s.connect_timeout == 3
    assert s.timeout == 10
    assert s.concurrency == 1024
    assert s.channel_connections == 1000
    assert s.batch_size == 200
    assert s.poll_interval == 0.05
    assert s.quota_check_interval == 300


@pytest.mark.parametrize(
    ("variable", "raw", "field", "value"),
    [
        ("LINEOA_EXPORT_DATABASE_URL", "postgresql://u@h/db", "database_url", "postgresql://u@h/db"),
        ("LINEOA_EXPORT_SECRET_KEY", "my passphrase", "secret_key", "my passphrase"),
        ("LINEOA_EXPORT_RATE_LIMIT", "150.5", "rate_limit", 150.5),
        ("LINEOA_EXPORT_RATE_BURST", "7", "rate_burst", 7),
        ("LINEOA_EXPORT_CONNECT_TIMEOUT", "1.5", "connect_timeout", 1.5),
        ("LINEOA_EXPORT_TIMEOUT", "30", "timeout", 30.0),
        ("LINEOA_EXPORT_CONCURRENCY", "16", "concurrency", 16),
        ("LINEOA_EXPORT_BATCH_SIZE", "1000", "batch_size", 1000),
        ("LINEOA_EXPORT_POLL_INTERVAL", "0.5", "poll_interval", 0.5),
        ("LINEOA_EXPORT_QUOTA_CHECK_INTERVAL", "60", "quota_check_interval", 60.0),
    ],
)
def test_each_variable_is_read(variable: str, raw: str, field: str, value: object) -> None:
    s = Settings.from_env({variable: raw})

    assert getattr(s, field) == value


def test_an_empty_variable_means_the_default() -> None:
    assert Settings.from_env({"LINEOA_EXPORT_RATE_LIMIT": ""}).rate_limit == 2000


def test_variables_without_the_prefix_are_ignored() -> None:
    assert Settings.from_env({"RATE_LIMIT": "5", "LINEOA_RATE_LIMIT": "5"}).rate_limit == 2000


def test_overrides_win_over_the_environment_and_none_overrides_nothing() -> None:
    env = {"LINEOA_EXPORT_RATE_LIMIT": "100", "LINEOA_EXPORT_TIMEOUT": "20"}

    s = Settings.from_env(env, rate_limit=50, timeout=None)

    assert s.rate_limit == 50
    assert s.timeout == 20


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("LINEOA_EXPORT_RATE_LIMIT", "fast"),
        ("LINEOA_EXPORT_RATE_LIMIT", "0"),
        ("LINEOA_EXPORT_RATE_LIMIT", "-5"),
        ("LINEOA_EXPORT_RATE_BURST", "0"),
        ("LINEOA_EXPORT_RATE_BURST", "2.5"),
        ("LINEOA_EXPORT_CONNECT_TIMEOUT", "0"),
        ("LINEOA_EXPORT_TIMEOUT", "ten"),
        ("LINEOA_EXPORT_CONCURRENCY", "0"),
        ("LINEOA_EXPORT_CONCURRENCY", "10001"),
        ("LINEOA_EXPORT_BATCH_SIZE", "many"),
        ("LINEOA_EXPORT_POLL_INTERVAL", "-1"),
        ("LINEOA_EXPORT_QUOTA_CHECK_INTERVAL", "0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        Settings.from_env({variable: raw})

    assert str(exc.value).startswith(f"{variable}: ")


def test_a_bad_value_error_does_not_echo_the_secret_key() -> None:
    env = {"LINEOA_EXPORT_SECRET_KEY": "super-secret-passphrase", "LINEOA_EXPORT_BATCH_SIZE": "0"}

    with pytest.raises(ConfigurationError) as exc:
        Settings.from_env(env)

    assert "super-secret-passphrase" not in str(exc.value)


def test_a_bad_override_is_refused_naming_its_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^LINEOA_EXPORT_CONCURRENCY: "):
        Settings.from_env({}, concurrency=0)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})

    with pytest.raises(ValueError):
        s.rate_limit = 1  # type: ignore[misc]


@pytest.mark.parametrize("timeout", ["0.1", "1", "10", "120"])
def test_the_lease_outlasts_any_request(timeout: str) -> None:
    s = Settings.from_env({"LINEOA_EXPORT_TIMEOUT": timeout})

    assert s.lease_seconds > s.timeout
    assert s.lease_seconds > s.timeout + s.connect_timeout


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///lineoa-export.db", Path("lineoa-export.db")),
        ("sqlite:////var/lib/x/state.db", Path("/var/lib/x/state.db")),
        ("postgresql://user@host/db", None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert Settings.from_env({"LINEOA_EXPORT_DATABASE_URL": url}).sqlite_path() == path
