"""Encryption at rest for channel credentials.

Tokens and channel secrets are stored only as Fernet tokens (AES-128-CBC + HMAC-SHA256).
The key lives outside the database: ``LINEOA_EXPORT_SECRET_KEY`` when set (a Fernet key,
or any passphrase, which is stretched with SHA-256), else a key file created beside the
database with mode 0600 on first use. Losing the key means re-entering credentials; it
never means leaking them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import ConfigurationError


class Vault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_secret(cls, secret: str) -> Vault:
        try:
            return cls(secret.encode())
        except ValueError:
            # Not a Fernet key: derive one, so operators may use any long passphrase.
            digest = hashlib.sha256(secret.encode()).digest()
            return cls(base64.urlsafe_b64encode(digest))

    @classmethod
    def from_key_file(cls, path: Path) -> Vault:
        if not path.exists():
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
            return cls(path.read_bytes().strip())
        except ValueError:
            raise ConfigurationError(f"{path}: not a valid key file") from None

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
