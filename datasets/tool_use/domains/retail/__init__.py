"""Retail domain: orders, returns, exchanges, addresses and payment methods of an online shop."""

from __future__ import annotations

from datasets.tool_use.domain import DB, Domain
from datasets.tool_use.domains.retail.data import make_db
from datasets.tool_use.domains.retail.policy import POLICY
from datasets.tool_use.domains.retail.tools import TOOLS, USER_SLOT


def _people(db: DB) -> list[tuple[str, str]]:
    return [(u["user_id"], u["name"]) for u in db["users"].values()]


DOMAIN = Domain(
    name="retail",
    title="# Retail customer service policy",
    make_db=make_db,
    people=_people,
    identity=USER_SLOT,
    identity_param="user_id",
    tools=TOOLS,
    policy=POLICY,
    personas=(
        "a busy customer who answers briefly",
        "a polite first-time customer",
        "a frequent shopper who knows their order numbers",
    ),
)
