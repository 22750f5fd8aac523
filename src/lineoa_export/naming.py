"""Names users give to authentications and activations (they appear in URLs and commands), and
the one rule every stored text follows: valid Unicode (JSON may carry lone surrogates; UTF-8 may not)."""

from __future__ import annotations

import re

from .errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput.single(
            field, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def is_valid_unicode(text: str) -> bool:
    """Text every database can store: no lone surrogate (UTF-8 refuses it) and no NUL
    (PostgreSQL refuses it in TEXT)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str) -> str:
    """``text`` with any lone surrogate written as ``\\udxxx``, so it can be stored and shown."""
    if is_valid_unicode(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
