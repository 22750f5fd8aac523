"""Encryption at rest for channel credentials, and where they may be sent.

Tokens and channel secrets are stored only as Fernet tokens (AES-128-CBC + HMAC-SHA256).
The key lives outside the database: ``LINEOA_EXPORT_SECRET_KEY`` when set (a Fernet key,
or a passphrase of at least :data:`MIN_PASSPHRASE_LENGTH` characters, hashed with SHA-256),
else a key file created beside the database with mode 0600 on first use. A key file is
created only for a database that holds no sealed credentials yet: when it goes missing
later, the vault refuses to start rather than make a new key that opens nothing. Losing the
key means re-entering credentials; it never means leaking them.

The vault also carries :class:`~lineoa_export.api_hosts.ApiHosts`, the hosts a released
secret may travel to, so every path that opens credentials checks the destination with them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .api_hosts import ApiHosts
from .errors import ConfigurationError

LINE_ONLY = ApiHosts()
# SHA-256 does not slow down a guesser, so a passphrase must carry its strength itself.
MIN_PASSPHRASE_LENGTH = 32
MAKE_A_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class Vault:
    def __init__(self, key: bytes, api_hosts: ApiHosts = LINE_ONLY) -> None:
        self._fernet = Fernet(key)
        self._key = key
        self.api_hosts = api_hosts

    @classmethod
    def from_secret(cls, secret: str, api_hosts: ApiHosts = LINE_ONLY) -> Vault:
        try:
            return cls(secret.encode(), api_hosts)
        except ValueError:
            pass
        if len(secret) < MIN_PASSPHRASE_LENGTH:
            raise ConfigurationError(
                f"LINEOA_EXPORT_SECRET_KEY is too short to protect stored credentials: give a Fernet key "
                f"(make one with: {MAKE_A_KEY}) or a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters"
            )
        # Not a Fernet key: derive one, so operators may use a long passphrase.
        digest = hashlib.sha256(secret.encode()).digest()
        return cls(base64.urlsafe_b64encode(digest), api_hosts)

    @classmethod
    def from_key_file(cls, path: Path, api_hosts: ApiHosts = LINE_ONLY, *, create: bool = True) -> Vault:
        """The key in ``path``, created first when missing and ``create`` (a database with nothing sealed yet)."""
        if not path.exists():
            if not create:
                raise ConfigurationError(
                    f"the key file {path} is missing, and the database holds credentials sealed with it: restore "
                    f"the file from a backup (or set LINEOA_EXPORT_SECRET_KEY to the key it held). If the key is "
                    f"lost for good, write a new one ({MAKE_A_KEY} > {path}; chmod 600 {path}) and enter each "
                    f"authentication's credentials again (delete and create it)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL + 0600 in one call: no moment where the key is world-readable.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first; read theirs
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
        try:
            return cls(path.read_bytes().strip(), api_hosts)
        except ValueError:
            raise ConfigurationError(f"{path}: not a valid key file") from None

    def derived_key(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (HMAC-SHA256 under this vault's key): the same on every
        host that has this key, and no help to anyone guessing the key itself."""
        return hmac.new(self._key, b"lineoa-export derived key|" + purpose.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(sealed)).decode()
        except InvalidToken:
            raise ConfigurationError(
                "stored credentials cannot be decrypted with this key "
                "(LINEOA_EXPORT_SECRET_KEY or the key file changed)"
            ) from None
