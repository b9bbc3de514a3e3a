"""One-click unsubscribe (RFC 8058) for the emails of the categories the policy marks
`unsubscribable`.

Each such email carries::

    List-Unsubscribe: <https://PUBLIC_BASE_URL/u/TOKEN>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

(written by providers/smtp_email.py). A mailbox provider's one-click POST to that URL turns
the category off by email for that user (recipients/preferences.py); opened in a browser, the
URL shows a small page with a button that makes the same POST.

The token names the user and the category, and must not show them: it is a Fernet token
(AES-CBC + HMAC-SHA256, from `cryptography`, already a dependency) under a key derived with
HKDF from SECRET_KEY. Authenticated encryption rather than a signed-only token
(itsdangerous) because a signed token carries its payload in readable base64, and a user
id does not belong in a URL that mail systems log. Tokens do not expire: an unsubscribe
link must keep working for as long as the email may be read. Changing SECRET_KEY
invalidates every link sent before (so does running without one: a per-process key)."""

from __future__ import annotations

import base64
import json
import logging
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("orchestrator.unsubscribe")

PATH_PREFIX = "/u/"
MAX_TOKEN_CHARS = 1000
_INFO = b"orchestrator list-unsubscribe v1"


class UnsubscribeLinks:
    def __init__(self, secret: str, public_base_url: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.public_base_url = public_base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings) -> UnsubscribeLinks:
        secret = settings.secret_key
        if not secret:
            log.warning("SECRET_KEY is not set: unsubscribe links use a random per-process key and stop "
                        "working at restart; set SECRET_KEY")
            secret = secrets.token_urlsafe(32)
        if not settings.public_base_url:
            log.warning("PUBLIC_BASE_URL is not set: emails go out without List-Unsubscribe headers")
        return cls(secret, settings.public_base_url)

    def token(self, user_id: str, category: str) -> str:
        payload = json.dumps([user_id, category], separators=(",", ":")).encode()
        return self._fernet.encrypt(payload).decode("ascii").rstrip("=")

    def url(self, user_id: str, category: str) -> str | None:
        """The one-click URL, or None without PUBLIC_BASE_URL (no absolute URL to give)."""
        if not self.public_base_url:
            return None
        return f"{self.public_base_url}{PATH_PREFIX}{self.token(user_id, category)}"

    def read(self, token: str) -> tuple[str, str] | None:
        """(user_id, category) of a token this service issued; None for anything else."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        try:
            data = json.loads(self._fernet.decrypt(token + "=" * (-len(token) % 4)))
        except (InvalidToken, ValueError, TypeError):
            return None
        if (not isinstance(data, list) or len(data) != 2
                or not all(isinstance(x, str) for x in data)):
            return None
        return data[0], data[1]
