"""APNs provider-token (JWT) signing and caching.

Apple's rules: the token is ES256, header `kid` = the .p8 key's id, claims `iss` = team id
and `iat` = issue time. APNs rejects a token older than 60 minutes (ExpiredProviderToken)
and one refreshed more often than every 20 minutes (TooManyProviderTokenUpdates), so one
token is reused for a fixed ttl in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

ALGORITHM = "ES256"
MIN_TTL_SECONDS = 20 * 60
MAX_TTL_SECONDS = 50 * 60   # leaves ten minutes of margin under Apple's hour for clock skew


class ProviderTokenCache:
    """One signed JWT, reused until `ttl_seconds` old; safe to share between threads."""

    def __init__(
        self,
        key_pem: str,
        key_id: str,
        team_id: str,
        *,
        ttl_seconds: float = 40 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(
                f"APNs JWT ttl must be {MIN_TTL_SECONDS}-{MAX_TTL_SECONDS} s, got {ttl_seconds}"
            )
        key = load_pem_private_key(key_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("APNs key must be the P-256 (ES256) .p8 key from Apple")
        self._key = key
        self.key_id = key_id
        self.team_id = team_id
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at = 0.0
        self.signed_count = 0   # how many tokens this cache has signed (observability, tests)

    def get(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._issued_at >= self.ttl_seconds:
                self._sign(now)
            assert self._token is not None
            return self._token

    def renew(self, rejected: str) -> str:
        """A fresh token after APNs called `rejected` expired. Compare-and-swap: when several
        threads hit the same expiry, only the first one signs."""
        with self._lock:
            if self._token == rejected or self._token is None:
                self._sign(self._clock())
            assert self._token is not None
            return self._token

    def _sign(self, now: float) -> None:
        self._token = jwt.encode(
            {"iss": self.team_id, "iat": int(now)},
            self._key,
            algorithm=ALGORITHM,
            headers={"kid": self.key_id},
        )
        self._issued_at = now
        self.signed_count += 1
