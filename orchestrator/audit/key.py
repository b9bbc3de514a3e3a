"""The audit chain's key: a secret that is not in the database, so someone who can rewrite the
`audit_log` table cannot recompute a valid chain.

`AUDIT_KEY` (at least 32 characters) when set; otherwise the key file (`AUDIT_KEY_FILE`,
default `<ORCHESTRATOR_DATA_DIR>/audit.key`), generated on first start with mode 0600. The
HMAC key is derived from the secret with a label of its own (domain separation), so the same
secret used for anything else never yields the same MACs; `key_id` names the key on each
entry without revealing it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ..config import AUDIT_KEY_MIN_CHARS, ConfigError, Settings

log = logging.getLogger("orchestrator.audit")

DOMAIN = b"orchestrator/audit-chain/v1"


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = b""   # the derived HMAC key; never logged
    key_id: str = ""
    source: str = ""

    def __repr__(self) -> str:  # never show the secret
        return f"AuditKey(key_id={self.key_id!r}, source={self.source!r})"

    def mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()


def derive(raw: str, source: str) -> AuditKey:
    secret = hmac.new(raw.encode("utf-8"), DOMAIN, hashlib.sha256).digest()
    key_id = hmac.new(secret, b"key-id", hashlib.sha256).hexdigest()[:16]
    return AuditKey(secret, key_id, source)


def load(settings: Settings, *, create: bool = True) -> AuditKey:
    """The configured key, or the key file (created when missing, unless `create` is false:
    `audit verify` writes nothing). ConfigError, one line naming the variable or file and the
    fix, when it cannot be used."""
    if settings.audit_key:
        return derive(settings.audit_key, "AUDIT_KEY")
    path = Path(settings.audit_key_file)
    if not path.exists():
        if not create:
            raise ConfigError(f"AUDIT_KEY_FILE {path} does not exist: give the key the service uses (AUDIT_KEY, "
                              f"or AUDIT_KEY_FILE pointing at its file); a log cannot be verified without it")
        _generate(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"AUDIT_KEY_FILE {path} cannot be read ({type(exc).__name__}): fix its permissions "
                          f"or set AUDIT_KEY") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"AUDIT_KEY_FILE {path} is accessible to other users (mode {stat.S_IMODE(mode):o}): "
                          f"run `chmod 600 {path}`")
    if len(raw) < AUDIT_KEY_MIN_CHARS:
        raise ConfigError(f"AUDIT_KEY_FILE {path} holds {len(raw)} characters, fewer than {AUDIT_KEY_MIN_CHARS}: "
                          f"restore the key it held, or (on a new installation) delete it to generate one")
    return derive(raw, str(path))


def _generate(path: Path) -> None:
    """Writes a new key to a private temporary file, then links it into place: several
    processes starting together never read a half-written key, and exactly one key wins."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"AUDIT_KEY_FILE {path} cannot be created ({exc.strerror}): set AUDIT_KEY_FILE to a "
                          f"writable path or set AUDIT_KEY") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another process made it first: use that one
        except OSError as exc:
            raise ConfigError(f"AUDIT_KEY_FILE {path} cannot be created ({exc.strerror}): set AUDIT_KEY_FILE to a "
                              f"writable path or set AUDIT_KEY") from None
    finally:
        tmp.unlink(missing_ok=True)
    log.warning("generated the audit key at %s; back it up: without it the audit log cannot be verified", path)
