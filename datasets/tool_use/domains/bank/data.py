"""Seeded database of the bank domain: customers, accounts, cards and a transaction ledger."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

TODAY = date(2024, 6, 1)

FIRST = ["Amira", "Bruno", "Carla", "Dmitri", "Elena", "Felix", "Greta", "Hassan", "Ines", "Jakob", "Leila", "Marco", "Nadia", "Oscar"]
LAST = ["Almeida", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Ivanova", "Jensen", "Kowalski", "Lopez"]
MERCHANTS = ["Corner Grocery", "City Transit", "StreamFlix", "Fuel Stop", "Book Nook", "Cafe Lume", "Hardware Hub", "Pharma Plus", "Air Lines Co", "Gym Central"]


def make_db(seed: int, n_customers: int = 32) -> dict[str, Any]:
    rng = random.Random(seed)
    customers: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    cards: dict[str, Any] = {}
    transactions: dict[str, Any] = {}
    next_tx = 500001
    for c in range(n_customers):
        customer_id = f"cus_{1001 + c * 7}"
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        account_ids, card_ids = [], []
        for kind in ["checking", "savings", "checking", "savings"][: rng.randint(2, 4)]:
            account_id = f"ACC-{rng.randint(100000, 999999)}"
            while account_id in accounts:
                account_id = f"ACC-{rng.randint(100000, 999999)}"
            balance = 0.0 if rng.random() < 0.12 else round(rng.uniform(20, 6000), 2)
            status = "frozen" if rng.random() < 0.1 else "open"
            accounts[account_id] = {"account_id": account_id, "customer_id": customer_id, "type": kind, "balance": balance, "status": status}
            account_ids.append(account_id)
            if kind == "checking":
                for _ in range(rng.randint(1, 2)):
                    card_id = f"card_{rng.randint(1000, 9999)}"
                    while card_id in cards:
                        card_id = f"card_{rng.randint(1000, 9999)}"
                    cards[card_id] = {
                        "card_id": card_id, "account_id": account_id, "customer_id": customer_id,
                        "status": "blocked" if rng.random() < 0.15 else "active",
                        "limit": float(rng.choice([1000, 1500, 2000, 3000])),
                    }
                    card_ids.append(card_id)
            for _ in range(rng.randint(2, 5)):
                tx_id = f"tx_{next_tx}"
                next_tx += 1
                deposit = rng.random() < 0.2
                transactions[tx_id] = {
                    "transaction_id": tx_id, "account_id": account_id,
                    "date": (TODAY - timedelta(days=rng.randint(1, 120))).isoformat(),
                    "merchant": "Salary" if deposit else rng.choice(MERCHANTS),
                    "amount": round(rng.uniform(500, 3000), 2) if deposit else -round(rng.uniform(3, 400), 2),
                    "disputed": False,
                }
        customers[customer_id] = {
            "customer_id": customer_id, "name": name, "phone": f"+1-555-{rng.randint(1000000, 9999999)}",
            "accounts": account_ids, "cards": card_ids,
        }
    return {"meta": {"domain": "bank", "seed": seed, "today": TODAY.isoformat()}, "customers": customers, "accounts": accounts,
            "cards": cards, "transactions": transactions, "disputes": {}}
