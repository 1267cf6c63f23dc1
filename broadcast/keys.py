"""The link-signing key: where it comes from, whether it is good enough, what derives from it.

A key comes from BROADCAST_SECRET_KEY (the environment or .env). Without one, an installation on
an SQLite file (a laptop, `broadcast demo`) generates a random key once and keeps it next to the
database file (mode 0600); anything else has no key, and the processes that sign links refuse to
start. No key is built into the code: a built-in key is a public key.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

from broadcast.errors import ConfigurationError


class Settings(Protocol):
    """What this module reads of `broadcast.settings.Settings` (which imports this module)."""

    @property
    def secret_key(self) -> SecretStr | None: ...
    @property
    def database_url(self) -> str: ...
    @property
    def env(self) -> str: ...


HOW_TO_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
MIN_LENGTH = 43  # secrets.token_urlsafe(32): 32 random bytes
MIN_BITS = 240  # estimated from length and character classes (a 43-character token: 256)
MIN_DISTINCT = 12  # 64 random hex digits miss one of the 16 a quarter of the time
# Words that mark a key somebody typed rather than generated (checked case-insensitively).
_WORDS = (
    "changeme",
    "changethis",
    "password",
    "passw0rd",
    "secret",
    "insecure",
    "development",
    "example",
    "default",
    "broadcast",
    "letmein",
    "qwerty",
    "123456",
    "abcdef",
    "placeholder",
)


def key_problem(value: str) -> str | None:
    """Why `value` (already stripped) is not a real key, or None when it is one."""
    if not value:
        return "is empty"
    lowered = value.lower()
    word = next((w for w in _WORDS if w in lowered), None)
    if word:
        return f"contains the word '{word}' (a placeholder, not a generated key)"
    if len(value) < MIN_LENGTH:
        return f"is {len(value)} characters; a generated key has at least {MIN_LENGTH}"
    if len(set(value)) < MIN_DISTINCT:
        return "repeats too few characters to be random"
    if estimated_bits(value) < MIN_BITS:
        return "has too little entropy (at least 32 random bytes are needed)"
    return None


def estimated_bits(value: str) -> float:
    """Length times the bits per character of the character classes the value uses."""
    alphabet = 0
    alphabet += 26 if any(c.islower() for c in value) else 0
    alphabet += 26 if any(c.isupper() for c in value) else 0
    alphabet += 10 if any(c.isdigit() for c in value) else 0
    alphabet += 32 if any(not c.isalnum() for c in value) else 0
    return len(value) * math.log2(max(alphabet, 2))


def refusal(setting: str, problem: str) -> str:
    """The one line a process prints when it will not start with this key."""
    return f"{setting} {problem}; make one with: {HOW_TO_MAKE_ONE}"


@dataclass(frozen=True)
class KeySource:
    """Which case applies: set in the environment, generated and kept in a file, or missing."""

    kind: Literal["environment", "file", "missing"]
    path: Path | None = None

    def describe(self) -> str:
        if self.kind == "environment":
            return "set from the environment (BROADCAST_SECRET_KEY)"
        where = self.path.resolve() if self.path is not None else None
        if self.kind == "file" and where is not None and where.exists():
            return f"generated and kept in {where}"
        if self.kind == "file":
            return f"not set: generated on first use and kept in {where}"
        return "missing: BROADCAST_SECRET_KEY is not set"


def key_file_for(database_url: str) -> Path | None:
    """Where the generated key of an SQLite file database lives (None for other databases)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url)
    except Exception:  # noqa: BLE001 - a bad URL is reported by the database check
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".key")


def key_source(settings: Settings) -> KeySource:
    if settings.secret_key is not None:
        return KeySource("environment")
    path = key_file_for(settings.database_url)
    if path is not None and settings.env != "production":
        return KeySource("file", path)
    return KeySource("missing")


def secret_key(settings: Settings) -> str:
    """The link-signing key; generates and keeps the SQLite installation's key on first use.

    Raises ConfigurationError (one line naming the setting) when there is none.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    source = key_source(settings)
    if source.kind == "missing" or source.path is None:
        reason = "is not set" + (
            " (production keeps no generated key)" if settings.env == "production" else ""
        )
        raise ConfigurationError(refusal("BROADCAST_SECRET_KEY", reason))
    return _kept_key(source.path)


def _kept_key(path: Path) -> str:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        # O_EXCL: two processes starting at once keep one key, the one written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    problem = key_problem(key)
    if problem:
        raise ConfigurationError(refusal(f"the key file {path}", problem))
    return key


def derive(key: bytes, purpose: str) -> bytes:
    """A key for one purpose from a root key (HKDF-SHA256, RFC 5869, one block, empty salt)."""
    prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()
    return hmac.new(prk, purpose.encode() + b"\x01", hashlib.sha256).digest()
