"""Canonical JSON: one text per value (sorted keys, compact, UTF-8), so equal values hash equally."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(value: Any) -> str:
    """SHA-256 hex digest of the value's canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
