"""Credentials at rest: sealed with Fernet, the key outside the database, no secret in any error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from lineoa_export import apikeys, authentications
from lineoa_export.authentications import Credentials
from lineoa_export.context import key_file_for, open_context
from lineoa_export.errors import ConfigurationError
from lineoa_export.settings import Settings
from lineoa_export.vault import MIN_PASSPHRASE_LENGTH, Vault

SECRET = "channel-secret-0123456789abcdef"


@pytest.mark.parametrize(
    "plaintext",
    [SECRET, "", "สวัสดี 🎉", '{"access_token": "a/b+c=="}', "x" * 10_000],
    ids=["ascii", "empty", "unicode", "json", "long"],
)
def test_seal_then_open_round_trips(plaintext: str) -> None:
    vault = Vault(Fernet.generate_key())

    sealed = vault.seal(plaintext)

    assert isinstance(sealed, bytes)
    assert vault.open(sealed) == plaintext


def test_ciphertext_contains_no_plaintext() -> None:
    vault = Vault(Fernet.generate_key())

    sealed = vault.seal(SECRET)

    assert SECRET.encode() not in sealed
    assert b"channel-secret" not in sealed
    assert vault.seal(SECRET) != sealed  # a fresh IV each time: equal secrets do not look equal


def test_open_accepts_memoryview_and_bytearray_from_drivers() -> None:
    vault = Vault(Fernet.generate_key())
    sealed = vault.seal(SECRET)

    assert vault.open(memoryview(sealed)) == SECRET  # type: ignore[arg-type]
    assert vault.open(bytearray(sealed)) == SECRET  # type: ignore[arg-type]


def test_a_fernet_key_secret_is_used_as_is() -> None:
    key = Fernet.generate_key()

    sealed = Vault.from_secret(key.decode()).seal(SECRET)

    assert Vault(key).open(sealed) == SECRET


PASSPHRASE = "correct horse battery staple, twice over"


def test_a_passphrase_derives_a_stable_key() -> None:
    sealed = Vault.from_secret(PASSPHRASE).seal(SECRET)

    assert Vault.from_secret(PASSPHRASE).open(sealed) == SECRET
    with pytest.raises(ConfigurationError):
        Vault.from_secret(PASSPHRASE + "!").open(sealed)


@pytest.mark.parametrize("short", ["Q", "x" * (MIN_PASSPHRASE_LENGTH - 1), "correct horse battery staple"])
def test_a_short_secret_key_is_refused_saying_how_to_make_a_real_one(short: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Vault.from_secret(short)

    message = str(caught.value)
    assert "LINEOA_EXPORT_SECRET_KEY" in message and "Fernet.generate_key()" in message
    assert short not in message


def test_a_lost_key_file_is_not_silently_replaced_when_credentials_were_sealed_with_it(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    ctx = open_context(settings)
    authentications.create(
        ctx.db,
        ctx.vault,
        name="line",
        credentials=Credentials.from_options("token", None, None),
        api_url="https://api.line.me",
        now=0.0,
    )
    ctx.close()
    key_file = key_file_for(settings)
    key_file.unlink()

    with pytest.raises(ConfigurationError) as caught:
        open_context(settings)

    assert str(key_file) in str(caught.value) and "restore" in str(caught.value)
    assert not key_file.exists()  # nothing made up in its place


def test_a_key_file_is_created_for_a_database_with_nothing_sealed(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    open_context(settings).close()
    key_file_for(settings).unlink()

    open_context(settings).close()

    assert key_file_for(settings).exists()


def test_key_file_is_created_with_mode_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "lineoa-export.key"

    first = Vault.from_key_file(path)

    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes()
    sealed = first.seal(SECRET)

    second = Vault.from_key_file(path)

    assert path.read_bytes() == key  # not regenerated
    assert second.open(sealed) == SECRET


def test_an_existing_key_file_is_read_with_surrounding_whitespace(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "k"
    path.write_bytes(key + b"\n")

    assert Vault.from_key_file(path).open(Vault(key).seal(SECRET)) == SECRET


def test_a_broken_key_file_is_a_configuration_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"not a key")

    with pytest.raises(ConfigurationError) as exc:
        Vault.from_key_file(path)

    assert str(path) in str(exc.value)
    assert "not a key" not in str(exc.value)


def test_wrong_key_is_a_configuration_error_that_names_no_secret() -> None:
    right_key, wrong_key = Fernet.generate_key(), Fernet.generate_key()
    sealed = Vault(right_key).seal(SECRET)

    with pytest.raises(ConfigurationError) as exc:
        Vault(wrong_key).open(sealed)

    message = str(exc.value)
    assert "cannot be decrypted" in message
    assert "LINEOA_EXPORT_SECRET_KEY" in message  # says what to check
    for leak in (SECRET, right_key.decode(), wrong_key.decode(), sealed.decode()):
        assert leak not in message
    assert exc.value.__cause__ is None
    assert exc.value.__suppress_context__


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"gAAAAA" + b"A" * 100])
def test_garbage_instead_of_a_sealed_secret_is_a_configuration_error(garbage: bytes) -> None:
    with pytest.raises(ConfigurationError):
        Vault(Fernet.generate_key()).open(garbage)


def test_a_new_database_and_its_wal_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    ctx = open_context(settings)
    try:
        apikeys.create(ctx.db, "k", now=0.0)  # a write: the WAL exists
        files = sorted(tmp_path.iterdir())
        assert {f.name for f in files} >= {"app.db", "app.db-wal", "app.db-shm", "app.db.key"}
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
    finally:
        ctx.close()


def test_a_derived_key_is_the_same_for_every_host_with_the_key_and_only_for_them() -> None:
    """What the console signs its login form with: every node of one database must accept the others'."""
    key = Fernet.generate_key()
    one, other = Vault(key), Vault(key)
    assert one.derived_key("console signer") == other.derived_key("console signer")
    assert len(one.derived_key("console signer")) == 32
    assert one.derived_key("console signer") != one.derived_key("something else")
    assert Vault(Fernet.generate_key()).derived_key("console signer") != one.derived_key("console signer")
