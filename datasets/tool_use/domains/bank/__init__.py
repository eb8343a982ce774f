"""Bank domain: accounts, transfers, cards and disputes — a ledger, unlike the retail order book."""

from __future__ import annotations

from datasets.tool_use.domain import DB, Domain
from datasets.tool_use.domains.bank.data import make_db
from datasets.tool_use.domains.bank.policy import POLICY
from datasets.tool_use.domains.bank.tools import CUSTOMER_SLOT, TOOLS


def _people(db: DB) -> list[tuple[str, str]]:
    return [(c["customer_id"], c["name"]) for c in db["customers"].values()]


DOMAIN = Domain(
    name="bank",
    title="# Bank customer support policy",
    make_db=make_db,
    people=_people,
    identity=CUSTOMER_SLOT,
    identity_param="customer_id",
    tools=TOOLS,
    policy=POLICY,
    personas=(
        "a careful customer who double-checks numbers",
        "a customer in a hurry",
        "a retired customer who prefers short, clear answers",
    ),
)
