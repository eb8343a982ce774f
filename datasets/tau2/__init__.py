"""tau2-bench's retail and airline domains: databases, policies, tasks and task splits (MIT, see NOTICE.md)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DOMAINS = ("retail", "airline")


def domain_dir(name: str) -> Path:
    """The folder of one domain's files: ``db.json``, ``policy.md``, ``tasks.json``, ``split_tasks.json``."""
    if name not in DOMAINS:
        raise ValueError(f"unknown tau2 domain '{name}' (known: {', '.join(DOMAINS)})")
    return DATA_DIR / name
