"""Encryption at rest for endpoint API keys (Fernet; key rotation through ``MultiFernet``)."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = list(settings.ACTBOARD_ENCRYPTION_KEYS)
    if not keys:
        # Derived from SECRET_KEY so a local run needs no extra setup; production sets its own keys.
        keys = [base64.urlsafe_b64encode(hashlib.sha256(("actboard-keys:" + settings.SECRET_KEY).encode()).digest()).decode()]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("the stored API key cannot be decrypted with the configured keys") from None


SECRET_KEYS = frozenset({"api_key"})


def seal(value: Any) -> Any:
    """Encrypt every ``api_key`` in a config (e.g. an LLM user simulator's endpoint) before it is stored."""
    if isinstance(value, dict):
        return {(f"{k}_encrypted" if k in SECRET_KEYS else k): (encrypt(v) if k in SECRET_KEYS else seal(v)) for k, v in value.items()}
    return value


def unseal(value: Any) -> Any:
    """Inverse of ``seal``: the config with its secrets decrypted, for the worker only."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = k.removesuffix("_encrypted")
            out[name if name in SECRET_KEYS else k] = decrypt(v) if name in SECRET_KEYS else unseal(v)
        return out
    return value
