"""Signed, expiring acknowledgement links for notices that require read confirmation.

The link carries only the email attempt's id (a ULID: no address, no user id), signed with
itsdangerous (HMAC-SHA1 by default, keyed with a key derived from SECRET_KEY and a salt of
its own, so a link can never pass as a review-session cookie or the other way round) and
time-stamped; it is refused after ACK_LINK_MAX_AGE_SECONDS (default 60 days).

Without SECRET_KEY, a random key is created once in ORCHESTRATOR_DATA_DIR (ack-link.key),
so links in emails already sent keep working across restarts of the embedded default;
several processes must share SECRET_KEY (or the data directory)."""

from __future__ import annotations

import dataclasses
import html
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from providers.base import Delivery

SALT = "orchestrator.ack-link.v1"
DEFAULT_MAX_AGE_SECONDS = 60 * 86400
PATH = "/ack/"
MAX_TOKEN_CHARS = 200


class LinkInvalid(ValueError):
    """Not a link we signed (or altered)."""


class LinkExpired(ValueError):
    """A link we signed, older than the maximum age."""


def link_secret(secret_key: str | None, data_dir: str) -> str:
    """SECRET_KEY (Settings.secret_key) when set; else the random key kept in `data_dir`."""
    if secret_key:
        return secret_key
    folder = Path(data_dir)
    path = folder / "ack-link.key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_text(encoding="ascii").strip()
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key)
        return key


class AckLinks:
    def __init__(self, secret: str, base_url: str, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
                 clock=None) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.base_url = base_url.rstrip("/")
        self.max_age_seconds = max_age_seconds
        self._clock = clock or (lambda: datetime.now(UTC))

    def token(self, attempt_id: str) -> str:
        # itsdangerous stamps with its own clock; ours is used at verification, so tests that
        # move the clock forward see links expire.
        return self._serializer.dumps({"a": attempt_id, "t": int(self._clock().timestamp())})

    def url(self, attempt_id: str) -> str:
        return f"{self.base_url}{PATH}{self.token(attempt_id)}"

    def expires_at(self) -> datetime:
        return self._clock() + timedelta(seconds=self.max_age_seconds)

    def read(self, token: str) -> str:
        """The attempt id a link was made for; LinkInvalid / LinkExpired otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise LinkInvalid(token)
        try:
            payload = self._serializer.loads(token)
        except SignatureExpired:  # pragma: no cover - no max_age given to itsdangerous
            raise LinkExpired(token) from None
        except BadSignature:
            raise LinkInvalid(token) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("a"), str) \
                or not isinstance(payload.get("t"), int):
            raise LinkInvalid(token)
        if self._clock().timestamp() - payload["t"] > self.max_age_seconds:
            raise LinkExpired(token)
        return payload["a"]

    @classmethod
    def for_state(cls, st) -> AckLinks:
        """The service's links (built once per process, reading the service's clock)."""
        links = getattr(st, "ack_links", None)
        if links is None:
            secret = link_secret(st.settings.secret_key, st.settings.data_dir)
            links = cls(secret, st.settings.public_base_url, clock=lambda: st.clock())
            st.ack_links = links
        return links

    def decorate(self, delivery: Delivery) -> Delivery:
        """The email with its acknowledgement link (text and, when there is one, HTML)."""
        url = self.url(delivery.attempt_id)
        until = self.expires_at().strftime("%Y-%m-%d")
        text = (f"Please confirm that you have read this notice:\n{url}\n"
                f"(The link is valid until {until}.)")
        body = f"{delivery.body}\n\n{text}" if delivery.body else text
        markup = delivery.html
        if markup:
            link = html.escape(url, quote=True)
            markup += (f'<p><a href="{link}">Confirm that you have read this notice</a> '
                       f"(valid until {until}).</p>")
        return dataclasses.replace(delivery, body=body, html=markup)
