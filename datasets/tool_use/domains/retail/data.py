"""Seeded database of the retail domain: customers, payment methods, a catalogue and orders."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

TODAY = date(2024, 6, 1)

FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam", "Maya", "Noah", "Olga", "Pedro"]
LAST = ["Silva", "Okafor", "Nguyen", "Patel", "Berg", "Haddad", "Kim", "Moreau", "Rossi", "Tanaka", "Walsh", "Yilmaz"]
STREETS = ["Oak Street", "Maple Avenue", "Harbor Road", "Elm Court", "Hill Lane", "River Drive", "Station Road", "Park Way"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Fairview", "Millbrook", "Ashford"]
CATALOGUE: list[tuple[str, dict[str, list[str]], float]] = [
    ("T-Shirt", {"color": ["black", "white", "blue"], "size": ["S", "M", "L"]}, 19.0),
    ("Running Shoes", {"color": ["grey", "red"], "size": ["8", "9", "10"]}, 89.0),
    ("Water Bottle", {"capacity": ["500ml", "1L"], "color": ["green", "steel"]}, 24.0),
    ("Desk Lamp", {"finish": ["black", "brass"], "bulb": ["LED", "halogen"]}, 45.0),
    ("Backpack", {"color": ["navy", "olive", "black"], "size": ["20L", "30L"]}, 64.0),
    ("Headphones", {"type": ["wired", "wireless"], "color": ["black", "white"]}, 120.0),
    ("Coffee Grinder", {"burr": ["steel", "ceramic"]}, 75.0),
    ("Yoga Mat", {"thickness": ["4mm", "6mm"], "color": ["purple", "teal"]}, 32.0),
    ("Jacket", {"color": ["black", "khaki"], "size": ["M", "L", "XL"]}, 150.0),
    ("Kettle", {"material": ["glass", "steel"], "capacity": ["1L", "1.7L"]}, 39.0),
]


def address(rng: random.Random) -> str:
    return f"{rng.randint(1, 199)} {rng.choice(STREETS)} {rng.choice(CITIES)}"


def make_db(seed: int, n_users: int = 36) -> dict[str, Any]:
    rng = random.Random(seed)
    products: dict[str, Any] = {}
    items: dict[str, Any] = {}
    for p, (name, options, base) in enumerate(CATALOGUE):
        product_id = f"prd_{p + 1:02d}"
        keys = list(options)
        combos: list[dict[str, str]] = [{}]
        for key in keys:
            combos = [{**c, key: v} for c in combos for v in options[key]]
        chosen = rng.sample(combos, k=min(len(combos), rng.randint(3, 5)))
        ids = []
        for combo in chosen:
            item_id = f"itm_{rng.randint(10000, 99999)}"
            while item_id in items:
                item_id = f"itm_{rng.randint(10000, 99999)}"
            price = round(base * rng.uniform(0.85, 1.2), 2)
            items[item_id] = {"item_id": item_id, "product_id": product_id, "name": name, "options": combo, "price": price, "available": rng.random() < 0.75}
            ids.append(item_id)
        products[product_id] = {"product_id": product_id, "name": name, "item_ids": ids}

    users: dict[str, Any] = {}
    orders: dict[str, Any] = {}
    next_order = 1001
    for u in range(n_users):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        user_id = f"{first.lower()}_{last.lower()}_{rng.randint(100, 999)}"
        while user_id in users:
            user_id = f"{first.lower()}_{last.lower()}_{rng.randint(100, 999)}"
        methods = [{"payment_method_id": f"credit_card_{rng.randint(1000, 9999)}", "type": "credit_card"}]
        if rng.random() < 0.6:
            methods.append({"payment_method_id": f"gift_card_{rng.randint(1000, 9999)}", "type": "gift_card", "balance": float(rng.choice([0, 25, 50, 100]))})
        if rng.random() < 0.5:
            methods.append({"payment_method_id": f"paypal_{rng.randint(1000, 9999)}", "type": "paypal"})
        home = address(rng)
        order_ids = []
        for _ in range(rng.randint(1, 4)):
            order_id = f"#W{next_order}"
            next_order += rng.randint(1, 7)
            status = rng.choices(["pending", "processed", "delivered", "cancelled"], weights=[35, 15, 40, 10])[0]
            chosen_items = rng.sample(sorted(items), k=rng.randint(1, 3))
            placed = TODAY - timedelta(days=rng.randint(2, 70))
            delivered = min(TODAY, placed + timedelta(days=rng.randint(2, 10))) if status == "delivered" else None
            lines = [{k: items[i][k] for k in ("item_id", "product_id", "name", "options", "price")} for i in chosen_items]
            orders[order_id] = {
                "order_id": order_id,
                "user_id": user_id,
                "status": status,
                "items": lines,
                "total": round(sum(line["price"] for line in lines), 2),
                "payment_method_id": rng.choice(methods)["payment_method_id"],
                "address": home,
                "placed_date": placed.isoformat(),
                "delivered_date": delivered.isoformat() if delivered else None,
            }
            order_ids.append(order_id)
        users[user_id] = {
            "user_id": user_id,
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{u}@example.com",
            "address": home,
            "payment_methods": methods,
            "default_payment_method_id": methods[0]["payment_method_id"],
            "orders": order_ids,
        }
    return {"meta": {"domain": "retail", "seed": seed, "today": TODAY.isoformat()}, "users": users, "orders": orders, "products": products, "items": items}
