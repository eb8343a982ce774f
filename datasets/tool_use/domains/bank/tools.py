"""Bank tools: six reads, five writes. Tools check that a call makes sense (ids exist, states allow
the change); the policy (``policy.py``) is the agent's to follow and the verifier's to check."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from datasets.tool_use.domain import DB, Intent, Slot, Tool, ToolError, money, params
from datasets.tool_use.domains.bank.policy import CARD_LIMIT_MAX, TRANSFER_LIMIT

if TYPE_CHECKING:
    from datasets.tool_use.pipeline import Walker

CUSTOMER_SLOT = Slot("My customer id is {}.", ("customer id",), source_key="customer_id")
CARD_SLOT = Slot("The card is {}.", ("which card", "card id"), deciding=True, source_key="cards")
ACCOUNT_ID = {"type": "string", "description": "Account id, such as 'ACC-123456'."}
BLOCK_REASONS = ["lost", "stolen", "damaged"]
DISPUTE_REASONS = ["not recognised", "duplicate charge", "wrong amount"]


def _get(db: DB, table: str, key: str, label: str) -> dict[str, Any]:
    if key not in db[table]:
        raise ToolError(f"{label} '{key}' not found")
    return db[table][key]


def _customer_accounts(db: DB, customer_id: str) -> list[dict[str, Any]]:
    return [db["accounts"][a] for a in db["customers"][customer_id]["accounts"]]


# -- reads --------------------------------------------------------------------------------------------


class FindCustomerByPhone(Tool):
    name, kind = "find_customer_by_phone", "read"
    description = "Find a customer id from a phone number such as '+1-555-1234567'."
    parameters = params({"phone": {"type": "string"}})

    def invoke(self, db: DB, phone: str) -> Any:
        for customer in db["customers"].values():
            if customer["phone"] == phone.strip():
                return {"customer_id": customer["customer_id"]}
        raise ToolError(f"no customer with phone '{phone}'")


class GetCustomer(Tool):
    name, kind, record = "get_customer", "read", ("customers", "customer_id")
    description = "Get a customer's profile with their account ids and card ids."
    parameters = params({"customer_id": {"type": "string"}})

    def invoke(self, db: DB, customer_id: str) -> Any:
        return _get(db, "customers", customer_id, "customer")


class GetAccount(Tool):
    name, kind, record = "get_account", "read", ("accounts", "account_id")
    description = "Get an account: owner, type, balance and status (open or frozen)."
    parameters = params({"account_id": ACCOUNT_ID})

    def invoke(self, db: DB, account_id: str) -> Any:
        return _get(db, "accounts", account_id, "account")


class GetCard(Tool):
    name, kind, record = "get_card", "read", ("cards", "card_id")
    description = "Get a card: linked account, status (active or blocked) and spending limit."
    parameters = params({"card_id": {"type": "string"}})

    def invoke(self, db: DB, card_id: str) -> Any:
        return _get(db, "cards", card_id, "card")


class ListTransactions(Tool):
    name, kind = "list_transactions", "read"
    description = "List the transactions of an account, newest first."
    parameters = params({"account_id": ACCOUNT_ID})

    def invoke(self, db: DB, account_id: str) -> Any:
        _get(db, "accounts", account_id, "account")
        rows = [t for t in db["transactions"].values() if t["account_id"] == account_id]
        return sorted(rows, key=lambda t: (t["date"], t["transaction_id"]), reverse=True)


class GetTransaction(Tool):
    name, kind, record = "get_transaction", "read", ("transactions", "transaction_id")
    description = "Get one transaction: account, date, merchant, amount (negative for charges) and whether it is disputed."
    parameters = params({"transaction_id": {"type": "string"}})

    def invoke(self, db: DB, transaction_id: str) -> Any:
        return _get(db, "transactions", transaction_id, "transaction")


# -- writes -------------------------------------------------------------------------------------------


class TransferFunds(Tool):
    name, kind = "transfer_funds", "write"
    description = "Move money from one account to another. Returns both new balances."
    parameters = params({"from_account_id": ACCOUNT_ID, "to_account_id": ACCOUNT_ID, "amount": {"type": "number", "description": "Amount, positive."}})
    intent = Intent("I'd like to move money between my accounts.", {
        "from_account_id": Slot("Take it from account {}.", ("which account", "from which account", "source account"), deciding=True, source_key="accounts"),
        "to_account_id": Slot("Put it into account {}.", ("which destination account", "destination account", "to which account", "receiving account"), deciding=True, source_key="accounts"),
        "amount": Slot("The amount is {}.", ("how much", "amount")),
    })

    def invoke(self, db: DB, from_account_id: str, to_account_id: str, amount: float) -> Any:
        source = _get(db, "accounts", from_account_id, "account")
        target = _get(db, "accounts", to_account_id, "account")
        if from_account_id == to_account_id:
            raise ToolError("the two accounts must differ")
        if amount <= 0:
            raise ToolError("the amount must be positive")
        source["balance"] = round(source["balance"] - amount, 2)
        target["balance"] = round(target["balance"] + amount, 2)
        return {"from_account_id": from_account_id, "from_balance": source["balance"], "to_account_id": to_account_id, "to_balance": target["balance"]}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        customer = walk.call("get_customer", customer_id=walk.user_id)
        source = walk.call("get_account", account_id=walk.choice(customer["accounts"]))
        target = walk.choice([a for a in customer["accounts"] if a != source["account_id"]])
        walk.call("get_account", account_id=target)
        amount = float(walk.choice([25, 50, 80, 120, 200, 250, 400, 600, 900, 1500]))
        return {"from_account_id": source["account_id"], "to_account_id": target, "amount": amount}

    def outputs(self, result: Any) -> list[str]:
        return [money(result["from_balance"])]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        source = db["accounts"][args["from_account_id"]]
        options = [{**args, "amount": float(rng.choice([2500, 3000, 4500]))}]
        if source["balance"] + 50 <= TRANSFER_LIMIT:
            options.append({**args, "amount": round(source["balance"] + rng.choice([50, 100, 300]), 2)})
        strangers = sorted(a for a, acc in db["accounts"].items() if acc["customer_id"] != source["customer_id"] and acc["status"] == "open")
        options.append({**args, "to_account_id": rng.choice(strangers)})
        return rng.choice(options)


class BlockCard(Tool):
    name, kind = "block_card", "write"
    description = "Block a card and issue a replacement linked to the same account. Returns the replacement card id."
    parameters = params({"card_id": {"type": "string"}, "reason": {"type": "string", "enum": BLOCK_REASONS}})
    intent = Intent("I need to block a card.", {"card_id": CARD_SLOT, "reason": Slot("The reason is: {}.", ("which reason", "reason"))})

    def invoke(self, db: DB, card_id: str, reason: str) -> Any:
        card = _get(db, "cards", card_id, "card")
        if card["status"] == "blocked":
            raise ToolError(f"card {card_id} is already blocked")
        replacement = f"{card_id}r"
        card.update(status="blocked", block_reason=reason, replaced_by=replacement)
        db["cards"][replacement] = {"card_id": replacement, "account_id": card["account_id"], "customer_id": card["customer_id"], "status": "active", "limit": card["limit"]}
        db["customers"][card["customer_id"]]["cards"].append(replacement)
        return {"card_id": card_id, "status": "blocked", "replacement_card_id": replacement}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        customer = walk.call("get_customer", customer_id=walk.user_id)
        card = walk.call("get_card", card_id=walk.choice(customer["cards"]))
        return {"card_id": card["card_id"], "reason": walk.choice(BLOCK_REASONS)}

    def outputs(self, result: Any) -> list[str]:
        return [result["replacement_card_id"]]


class SetCardLimit(Tool):
    name, kind = "set_card_limit", "write"
    description = "Set a card's spending limit."
    parameters = params({"card_id": {"type": "string"}, "limit": {"type": "number"}})
    intent = Intent("I'd like to change the spending limit on a card.", {"card_id": CARD_SLOT, "limit": Slot("The new limit is {}.", ("what new limit", "new limit"))})

    def invoke(self, db: DB, card_id: str, limit: float) -> Any:
        card = _get(db, "cards", card_id, "card")
        if limit <= 0:
            raise ToolError("the limit must be positive")
        if card["limit"] == limit:
            raise ToolError(f"the limit is already {money(limit)}")
        card["limit"] = float(limit)
        return {"card_id": card_id, "limit": card["limit"]}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        customer = walk.call("get_customer", customer_id=walk.user_id)
        card = walk.call("get_card", card_id=walk.choice(customer["cards"]))
        return {"card_id": card["card_id"], "limit": float(walk.choice([500, 1200, 2500, 3500, 4000, 5000]))}

    def outputs(self, result: Any) -> list[str]:
        return [money(result["limit"])]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        return {**args, "limit": CARD_LIMIT_MAX + float(rng.choice([1000, 2500, 5000]))}


class DisputeTransaction(Tool):
    name, kind = "dispute_transaction", "write"
    description = "Open a dispute for a transaction. Returns the dispute case id."
    parameters = params({"transaction_id": {"type": "string"}, "reason": {"type": "string", "enum": DISPUTE_REASONS}})
    intent = Intent("I want to dispute a transaction.", {
        "transaction_id": Slot("The transaction id is {}.", ("which transaction", "transaction id"), deciding=True, source_key="transaction_id"),
        "reason": Slot("The reason is: {}.", ("which reason", "reason")),
    })

    def invoke(self, db: DB, transaction_id: str, reason: str) -> Any:
        tx = _get(db, "transactions", transaction_id, "transaction")
        if tx["disputed"]:
            raise ToolError(f"transaction {transaction_id} is already disputed")
        case_id = f"case_{transaction_id.removeprefix('tx_')}"
        tx["disputed"] = True
        db["disputes"][case_id] = {"case_id": case_id, "transaction_id": transaction_id, "reason": reason, "amount": tx["amount"]}
        return {"case_id": case_id, "transaction_id": transaction_id}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        customer = walk.call("get_customer", customer_id=walk.user_id)
        rows = walk.call("list_transactions", account_id=walk.choice(customer["accounts"]))
        return {"transaction_id": walk.choice([t["transaction_id"] for t in rows]), "reason": walk.choice(DISPUTE_REASONS)}

    def outputs(self, result: Any) -> list[str]:
        return [result["case_id"]]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        customer = db["accounts"][db["transactions"][args["transaction_id"]]["account_id"]]["customer_id"]
        mine = set(db["customers"][customer]["accounts"])
        # Old charges and deposits of the same customer, which the policy does not allow disputing.
        candidates = sorted(t for t, tx in db["transactions"].items() if tx["account_id"] in mine and t != args["transaction_id"])
        return {**args, "transaction_id": rng.choice(candidates)} if candidates else None


class CloseAccount(Tool):
    name, kind = "close_account", "write"
    description = "Close an account."
    parameters = params({"account_id": ACCOUNT_ID})
    intent = Intent("I'd like to close one of my accounts.", {
        "account_id": Slot("The account to close is {}.", ("which account", "account id"), deciding=True, source_key="accounts"),
    })

    def invoke(self, db: DB, account_id: str) -> Any:
        account = _get(db, "accounts", account_id, "account")
        if account["status"] == "closed":
            raise ToolError(f"account {account_id} is already closed")
        account["status"] = "closed"
        return {"account_id": account_id, "status": "closed"}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        customer = walk.call("get_customer", customer_id=walk.user_id)
        accounts = [walk.call("get_account", account_id=a) for a in customer["accounts"]]
        # Customers mostly ask to close an emptied account; the others become infeasible requests.
        empty = [a["account_id"] for a in accounts if a["balance"] == 0]
        return {"account_id": walk.choice(empty if empty and walk.rng.random() < 0.7 else [a["account_id"] for a in accounts])}

    def outputs(self, result: Any) -> list[str]:
        return ["closed"]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        customer = db["accounts"][args["account_id"]]["customer_id"]
        funded = [a["account_id"] for a in _customer_accounts(db, customer) if a["balance"] > 0 and a["status"] == "open"]
        return {"account_id": rng.choice(funded)} if funded else None


TOOLS: tuple[Tool, ...] = (
    FindCustomerByPhone(), GetCustomer(), GetAccount(), GetCard(), ListTransactions(), GetTransaction(),
    TransferFunds(), BlockCard(), SetCardLimit(), DisputeTransaction(), CloseAccount(),
)
