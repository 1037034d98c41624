"""The audit chain's key: LEASH_AUDIT_KEY, or for the sandbox one kept beside its SQLite file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import ConfigError, Settings
from bot.store.audit import KEY_MIN_LENGTH, AuditKey

SUFFIX = ".audit-key"
_MISSING = (
    "LEASH_AUDIT_KEY: required with a real cloud; the audit trail is keyed with it so that "
    f"nobody who can write the database can rewrite it. Set at least {KEY_MIN_LENGTH} random "
    "characters (e.g. `openssl rand -hex 32`) from a secret store, never kept in the database"
)


def sandbox_key_path(database_url: str) -> Path | None:
    """Where the sandbox keeps its generated key: beside the SQLite file (None: not a file)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database)
    return database.with_name(database.stem + SUFFIX)


def for_leash(settings: Settings, *, real_cloud: bool) -> AuditKey:
    """The key `leash serve` chains with; the sandbox generates one (mode 0600) on first use."""
    if settings.audit_key is not None:
        return AuditKey.of(settings.audit_key.get_secret_value())
    if real_cloud:
        raise ConfigError(_MISSING)
    path = sandbox_key_path(settings.database_url)
    if path is None:
        raise ConfigError(
            "LEASH_AUDIT_KEY: required unless the database is a SQLite file (the sandbox keeps "
            f"the key it generates beside that file, as <name>{SUFFIX})"
        )
    return _read(path) if path.exists() else _create(path)


def for_checking(settings: Settings) -> AuditKey:
    """The key `leash audit` checks with: LEASH_AUDIT_KEY, else the sandbox's (never made)."""
    if settings.audit_key is not None:
        return AuditKey.of(settings.audit_key.get_secret_value())
    path = sandbox_key_path(settings.database_url)
    if path is not None and path.exists():
        return _read(path)
    where = f" and there is no sandbox key at {path}" if path is not None else ""
    raise ConfigError(f"LEASH_AUDIT_KEY: not set{where}; the chain cannot be checked without it")


def _read(path: Path) -> AuditKey:
    try:
        return AuditKey.of(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"LEASH_AUDIT_KEY: the sandbox key {path} is unusable: {error}") from None


def _create(path: Path) -> AuditKey:
    value = secrets.token_hex(32)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(value + "\n")
        # A link appears whole or not at all: two processes starting on one file agree on the
        # first one's key, and neither reads a half-written file.
        os.link(draft, path)
    except FileExistsError:
        return _read(path)
    except OSError as error:
        raise ConfigError(f"LEASH_AUDIT_KEY: cannot create {path}: {error.strerror}") from None
    finally:
        draft.unlink(missing_ok=True)
    return AuditKey.of(value)
