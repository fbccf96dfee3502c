"""Seeds that are the same in every process and on every run."""

from __future__ import annotations

import hashlib


def stable_int(*parts: object) -> int:
    """A deterministic 64-bit integer from `parts` (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")
