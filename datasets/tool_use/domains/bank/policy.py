"""Bank policy: the markdown the agent reads and the same rules as code."""

from __future__ import annotations

from datetime import date
from typing import Any

from datasets.tool_use.domain import DB, Policy, Rule
from datasets.tool_use.domains.bank.data import TODAY

TRANSFER_LIMIT = 2000.0
CARD_LIMIT_MAX = 5000.0
DISPUTE_WINDOW_DAYS = 60

TEXT = f"""# Bank customer support policy

You are a support agent of a retail bank. Today is {TODAY.isoformat()}.
You can help a customer move money between their own accounts, block a card, change a card's spending
limit, dispute a card transaction and close an account.

- The customer gives their customer id; act only on that customer's accounts and cards.
- Look records up with the tools; never guess an account, card or transaction. If the request does not
  say which one, ask the customer.
- Before any action that changes data, describe it and ask the customer to confirm (yes/no); act only
  after an explicit yes. Make one tool call at a time.
- After acting, tell the customer the outcome: the new balance, the replacement card id, the new limit or
  the dispute case id.
- If a request is not allowed by this policy, do not perform it: tell the customer which rule prevents it.

## Transfers
- Only between two accounts of the same customer (their own accounts).
- Neither account may be frozen.
- The amount cannot exceed the source account's balance (insufficient funds).
- A single transfer cannot exceed {TRANSFER_LIMIT:.2f} (the per-transfer limit).

## Cards
- Blocking a card issues a replacement card; tell the customer its id.
- A card's spending limit can be at most {CARD_LIMIT_MAX:.2f}, and only active cards (not blocked ones)
  can have their limit changed.

## Disputes
- Only charges (negative amounts), not deposits, can be disputed.
- A charge can be disputed within {DISPUTE_WINDOW_DAYS} days of its date.

## Closing an account
- Only accounts with a zero balance can be closed; frozen accounts cannot be closed.
"""


def _acc(db: DB, a: dict[str, Any], key: str) -> dict[str, Any]:
    return db["accounts"][a[key]]


TRANSFER = (("accounts", "from_account_id"), ("accounts", "to_account_id"))
CARD = (("cards", "card_id"),)
TX = (("transactions", "transaction_id"),)
ACCOUNT = (("accounts", "account_id"),)
# Reasons in other words (regular expressions over normalised text; see ``Rule.reasons``).
FROZEN = (r"\bfroze", r"\bfreeze", r"\bon hold\b", r"\blocked\b", r"\bsuspended\b")

RULES = (
    Rule("transfer_funds", "own accounts", "Transfers are only possible between your own accounts.", TRANSFER,
         lambda db, a: _acc(db, a, "from_account_id")["customer_id"] != _acc(db, a, "to_account_id")["customer_id"],
         (r"own accounts?", r"(does not|doesn t|do not|don t) belong to you", r"(not|isn t) (one of )?your (own )?accounts?",
          r"(someone else|another (customer|person))", r"between (your|the same customer s) own")),
    Rule("transfer_funds", "frozen", "Money cannot be moved from or to a frozen account.", TRANSFER,
         lambda db, a: "frozen" in (_acc(db, a, "from_account_id")["status"], _acc(db, a, "to_account_id")["status"]), FROZEN),
    Rule("transfer_funds", "insufficient funds", "The source account has insufficient funds for this transfer.", TRANSFER,
         lambda db, a: a["amount"] > _acc(db, a, "from_account_id")["balance"],
         (r"insufficient funds", r"not enough (money|funds|balance)", r"(balance|funds) (is |are )?(too low|insufficient|not sufficient)",
          r"exceeds? (the |your )?(available |account )?balance", r"overdraw", r"more than (the|your) (available )?balance")),
    Rule("transfer_funds", "2000", f"A single transfer cannot exceed {TRANSFER_LIMIT:.2f}.", (),
         lambda db, a: a["amount"] > TRANSFER_LIMIT,
         (r"(?<![\w.])2000(?![\w])", r"2k\b", r"two thousand", r"(per|single)[- ]transfer limit", r"transfer limit")),
    Rule("set_card_limit", "5000", f"A card's spending limit can be at most {CARD_LIMIT_MAX:.2f}.", (),
         lambda db, a: a["limit"] > CARD_LIMIT_MAX,
         (r"(?<![\w.])5000(?![\w])", r"5k\b", r"five thousand", r"(maximum|highest|max) (spending |card )?limit",
          r"limit (can|may) be at most", r"limit (can t|cannot|can not) (be|go|exceed) (higher|above|over|more)")),
    Rule("set_card_limit", "blocked", "The limit of a blocked card cannot be changed.", CARD,
         lambda db, a: db["cards"][a["card_id"]]["status"] == "blocked",
         (r"\bblocked\b", r"(not|no longer|isn t) active", r"inactive", r"deactivated", r"(has been|was|is) (cancelled|canceled|disabled)")),
    Rule("dispute_transaction", "charges", "Only charges can be disputed, not deposits.", TX,
         lambda db, a: db["transactions"][a["transaction_id"]]["amount"] >= 0,
         (r"only charges", r"\bdeposits?\b", r"not a (charge|purchase|payment)", r"incoming (payment|transfer|money)", r"credit(ed)? to (your|the) account",
          r"money (you|that) received")),
    Rule("dispute_transaction", "60 days", f"Charges can only be disputed within {DISPUTE_WINDOW_DAYS} days.", TX,
         lambda db, a: (TODAY - date.fromisoformat(db["transactions"][a["transaction_id"]]["date"])).days > DISPUTE_WINDOW_DAYS,
         (r"60[- ]days?", r"sixty[- ]days?", r"two months", r"dispute (window|period|deadline)", r"too (old|long ago)",
          r"(window|deadline) (has )?(passed|expired|closed)")),
    Rule("close_account", "zero balance", "Only accounts with a zero balance can be closed.", ACCOUNT,
         lambda db, a: db["accounts"][a["account_id"]]["balance"] != 0,
         (r"zero balance", r"balance (of |is |must be |needs to be |has to be )?(zero|0)(?![\w.])", r"(non-zero|nonzero|remaining|positive|outstanding) balance",
          r"still (has|holds|contains) (money|funds|a balance)", r"(empty|withdraw|move) (the|all|your) (account|money|funds)", r"not empty")),
    Rule("close_account", "frozen", "A frozen account cannot be closed.", ACCOUNT,
         lambda db, a: db["accounts"][a["account_id"]]["status"] == "frozen", FROZEN),
)

POLICY = Policy(TEXT, RULES)
