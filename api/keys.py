"""Who may call the API: one bearer key per client, from ``CLARIFY_API_KEYS``.

Each key has a name (``name:key``; a bare key is named ``key-`` + the first 8 hex digits of its SHA-256). The
name, never the key, is recorded as the user of the client's conversations, so a client continues and rates
only the conversations it made. The presented token is hashed and compared with every configured key's hash by
``hmac.compare_digest`` (no early exit), so the time taken says nothing about which key it nearly matched.

Without keys the API answers only when the server listens on a loopback host: the rule `clarify serve` applies
to the UI without --auth. On any other host, without keys, every API request is refused (the UI may still be
served behind --auth).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .errors import ApiError

MIN_KEY_CHARS = 8
NO_KEYS_OFF_LOOPBACK = ("The API is off: this server listens on a non-loopback host and no API keys are configured. "
                        "Set CLARIFY_API_KEYS (name:key,...) to use it.")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def parse_api_keys(spec: str | None) -> list[tuple[str, str]]:
    """'alice:k1,k2' -> [('alice', 'k1'), ('key-<hash>', 'k2')]; ValueError with a clear message."""
    if spec is None or not spec.strip():
        return []
    pairs = []
    for item in spec.split(","):
        item = item.strip()
        name, sep, key = item.partition(":")
        if not sep:
            name, key = "key-" + hashlib.sha256(item.encode()).hexdigest()[:8], item
        name, key = name.strip(), key.strip()
        if not name or len(key) < MIN_KEY_CHARS or any(ch.isspace() for ch in key):
            raise ValueError(f"CLARIFY_API_KEYS must be comma-separated name:key pairs or keys, each key at least "
                             f"{MIN_KEY_CHARS} characters without spaces, e.g. shop:9f2c1e7a5b,crm:0d3a8c6e4f")
        pairs.append((name, key))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names) or len({k for _, k in pairs}) != len(pairs):
        raise ValueError("CLARIFY_API_KEYS lists a name or a key twice; give each client its own name and key.")
    return pairs


@dataclass(frozen=True)
class Client:
    """The caller of one request: its key's name (None without keys, on loopback)."""

    name: str | None


class ApiKeys:
    def __init__(self, pairs: list[tuple[str, str]], *, loopback: bool):
        self._digests = [(name, _digest(key)) for name, key in pairs]
        self.open = not pairs and loopback     # no keys, loopback host: everyone on this machine may call

    @classmethod
    def from_settings(cls, settings, *, loopback: bool) -> "ApiKeys":
        """`loopback`: whether the server binds a loopback host (decided by `clarify serve`)."""
        return cls(parse_api_keys(settings.api_keys), loopback=loopback)

    @property
    def configured(self) -> int:
        """How many client keys there are."""
        return len(self._digests)

    def authenticate(self, authorization: str | None) -> Client:
        """The client a request's Authorization header names; ApiError 401/403 otherwise."""
        if self.open:
            return Client(None)
        if not self._digests:
            raise ApiError(403, NO_KEYS_OFF_LOOPBACK, "api_keys_not_configured")
        scheme, _, token = (authorization or "").strip().partition(" ")
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Missing API key: send it as 'Authorization: Bearer <key>'.", "missing_api_key",
                           challenge)
        presented = _digest(token.strip())
        found = None
        for name, digest in self._digests:  # every key is compared, whichever matches
            if hmac.compare_digest(presented, digest):
                found = name
        if found is None:
            raise ApiError(401, "Invalid API key.", "invalid_api_key", challenge)
        return Client(found)
