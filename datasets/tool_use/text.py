"""How the Trajectory2Task tools compare what people say: normalised text, and values as they are spoken."""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"\d+\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NOISE = re.compile(r"[^\w.#@+-]+")


def normalise(text: str) -> str:
    """Casefold, drop punctuation and thousands separators, and write numbers without trailing zeros,
    so that "$1,234.50" matches "1234.5" and "30 Days" matches "30 days"."""
    text = _THOUSANDS.sub("", text.casefold().replace("’", "'"))
    text = _NUMBER.sub(lambda m: m.group(0).rstrip("0").rstrip("."), text)
    return " ".join(_NOISE.sub(" ", text).split())


def contains(haystack: str, needle: str) -> bool:
    """Normalised substring; numbers must match whole, so that "54.20" is not found in "54.25" while
    "gift card" is found in "gift cards"."""
    wanted = normalise(needle)
    pattern = re.escape(wanted)
    if wanted[:1].isdigit():
        pattern = r"(?<![\d.])" + pattern
    if wanted[-1:].isdigit():
        pattern += r"(?!\d|\.\d)"
    return re.search(pattern, normalise(haystack)) is not None


def money(value: float) -> str:
    """How amounts are spoken and expected: two decimals (comparison normalises trailing zeros)."""
    return f"{value:.2f}"


def render_value(value: Any) -> str:
    """A value as a person says it: lists joined with commas, floats as money."""
    if isinstance(value, list):
        return ", ".join(render_value(v) for v in value)
    if isinstance(value, float):
        return money(value)
    return str(value)
