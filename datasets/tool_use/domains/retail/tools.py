"""Retail tools: six reads, six writes. Tools check that a call makes sense (ids exist, items belong
to the order); the policy (``policy.py``) is the agent's to follow and the verifier's to check."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from datasets.tool_use.domain import DB, Intent, Slot, Tool, ToolError, money, params
from datasets.tool_use.domains.retail.data import address

if TYPE_CHECKING:
    from datasets.tool_use.pipeline import Walker

ORDER_ID = {"type": "string", "description": "Order id, such as '#W1001' (with the leading '#')."}
USER_ID = {"type": "string", "description": "The customer's user id, such as 'ana_silva_123'."}
REASONS = ["no longer needed", "ordered by mistake"]

USER_SLOT = Slot("My user id is {}.", ("user id",), source_key="user_id")
ORDER_SLOT = Slot("The order id is {}.", ("which order", "order id", "order number"), deciding=True, source_key="orders")


def _user(db: DB, user_id: str) -> dict[str, Any]:
    if user_id not in db["users"]:
        raise ToolError(f"user '{user_id}' not found")
    return db["users"][user_id]


def _order(db: DB, order_id: str) -> dict[str, Any]:
    if order_id not in db["orders"]:
        raise ToolError(f"order '{order_id}' not found")
    return db["orders"][order_id]


def _item(db: DB, item_id: str) -> dict[str, Any]:
    if item_id not in db["items"]:
        raise ToolError(f"item '{item_id}' not found")
    return db["items"][item_id]


def _method(db: DB, user_id: str, method_id: str) -> dict[str, Any]:
    for method in _user(db, user_id)["payment_methods"]:
        if method["payment_method_id"] == method_id:
            return method
    raise ToolError(f"payment method '{method_id}' does not belong to user '{user_id}'")


def _user_orders(db: DB, order: dict[str, Any], status: str | None = None) -> list[dict[str, Any]]:
    mine = [db["orders"][o] for o in db["users"][order["user_id"]]["orders"]]
    return [o for o in mine if status is None or o["status"] == status]


# -- reads --------------------------------------------------------------------------------------------


class FindUserByEmail(Tool):
    name, kind = "find_user_by_email", "read"
    description = "Find a customer's user id from their email address."
    parameters = params({"email": {"type": "string"}})

    def invoke(self, db: DB, email: str) -> Any:
        for user in db["users"].values():
            if user["email"].lower() == email.strip().lower():
                return {"user_id": user["user_id"]}
        raise ToolError(f"no user with email '{email}'")


class GetUser(Tool):
    name, kind, record = "get_user", "read", ("users", "user_id")
    description = "Get a customer's profile: name, email, default address, payment methods and order ids."
    parameters = params({"user_id": USER_ID})

    def invoke(self, db: DB, user_id: str) -> Any:
        return _user(db, user_id)


class GetOrder(Tool):
    name, kind, record = "get_order", "read", ("orders", "order_id")
    description = "Get an order: status, items (item id, product id, options, price), total, payment method and dates."
    parameters = params({"order_id": ORDER_ID})

    def invoke(self, db: DB, order_id: str) -> Any:
        return _order(db, order_id)


class GetProduct(Tool):
    name, kind, record = "get_product", "read", ("products", "product_id")
    description = "Get a product and the item ids of all its variants."
    parameters = params({"product_id": {"type": "string"}})

    def invoke(self, db: DB, product_id: str) -> Any:
        if product_id not in db["products"]:
            raise ToolError(f"product '{product_id}' not found")
        return db["products"][product_id]


class GetItem(Tool):
    name, kind, record = "get_item", "read", ("items", "item_id")
    description = "Get one item (a product variant): its options, price and whether it is in stock."
    parameters = params({"item_id": {"type": "string"}})

    def invoke(self, db: DB, item_id: str) -> Any:
        return _item(db, item_id)


class ListProducts(Tool):
    name, kind = "list_products", "read"
    description = "List all products in the catalogue (product id and name)."
    parameters = params({})

    def invoke(self, db: DB) -> Any:
        return [{"product_id": p["product_id"], "name": p["name"]} for p in db["products"].values()]


# -- writes -------------------------------------------------------------------------------------------


class CancelOrder(Tool):
    name, kind = "cancel_order", "write"
    description = "Cancel an order and refund its total to the original payment method. Returns the refund."
    parameters = params({"order_id": ORDER_ID, "reason": {"type": "string", "enum": REASONS}})
    intent = Intent("I'd like to cancel an order.", {
        "order_id": ORDER_SLOT,
        "reason": Slot("Reason for cancelling: {}.", ("which reason", "reason")),
    })

    def invoke(self, db: DB, order_id: str, reason: str) -> Any:
        order = _order(db, order_id)
        if order["status"] == "cancelled":
            raise ToolError(f"order {order_id} is already cancelled")
        method = _method(db, order["user_id"], order["payment_method_id"])
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        order["refund"] = {"amount": order["total"], "payment_method_id": method["payment_method_id"]}
        if method["type"] == "gift_card":
            method["balance"] = round(method["balance"] + order["total"], 2)
        return {"order_id": order_id, "status": "cancelled", "refund_amount": order["total"], "refund_to": method["payment_method_id"]}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        user = walk.call("get_user", user_id=walk.user_id)
        order_id = walk.choice(user["orders"])
        walk.call("get_order", order_id=order_id)
        return {"order_id": order_id, "reason": walk.choice(REASONS)}

    def outputs(self, result: Any) -> list[str]:
        return [money(result["refund_amount"])]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        order = db["orders"][args["order_id"]]
        others = [o for o in _user_orders(db, order) if o["status"] in ("processed", "delivered")]
        return {**args, "order_id": rng.choice(others)["order_id"]} if others else None


class UpdateOrderAddress(Tool):
    name, kind = "update_order_address", "write"
    description = "Change the shipping address of an order."
    parameters = params({"order_id": ORDER_ID, "address": {"type": "string", "description": "Full address on one line."}})
    intent = Intent("I'd like to change the shipping address of an order.", {
        "order_id": ORDER_SLOT,
        "address": Slot("The new address is {}.", ("which address", "address")),
    })

    def invoke(self, db: DB, order_id: str, address: str) -> Any:
        order = _order(db, order_id)
        if order["address"] == address:
            raise ToolError("the new address is the same as the current one")
        order["address"] = address
        return {"order_id": order_id, "address": address}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        user = walk.call("get_user", user_id=walk.user_id)
        order_id = walk.choice(user["orders"])
        walk.call("get_order", order_id=order_id)
        return {"order_id": order_id, "address": address(walk.rng)}

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        order = db["orders"][args["order_id"]]
        others = [o for o in _user_orders(db, order) if o["status"] in ("processed", "delivered")]
        return {**args, "order_id": rng.choice(others)["order_id"]} if others else None


class ReturnItems(Tool):
    name, kind = "return_items", "write"
    description = "Request the return of items of an order; the refund goes to the given payment method."
    parameters = params({
        "order_id": ORDER_ID,
        "item_ids": {"type": "array", "items": {"type": "string"}, "description": "Item ids to return."},
        "refund_method_id": {"type": "string", "description": "Payment method id for the refund."},
    })
    intent = Intent("I'd like to return some items from an order.", {
        "order_id": ORDER_SLOT,
        "item_ids": Slot("The items to return are {}.", ("which item", "item id", "items to return"), deciding=True, source_key="item_id"),
        "refund_method_id": Slot("Please refund it to {}.", ("which payment method", "refund to", "refund method"), deciding=True, source_key="payment_method_id"),
    })

    def invoke(self, db: DB, order_id: str, item_ids: list[str], refund_method_id: str) -> Any:
        order = _order(db, order_id)
        if order["status"] in ("cancelled", "return requested", "exchange requested"):
            raise ToolError(f"order {order_id} is {order['status']}")
        lines = {line["item_id"]: line for line in order["items"]}
        if not item_ids or len(set(item_ids)) != len(item_ids):
            raise ToolError("item_ids must list each item to return once")
        for item_id in item_ids:
            if item_id not in lines:
                raise ToolError(f"item '{item_id}' is not in order {order_id}")
        _method(db, order["user_id"], refund_method_id)
        amount = round(sum(lines[i]["price"] for i in item_ids), 2)
        order["status"] = "return requested"
        order["return"] = {"item_ids": sorted(item_ids), "refund_amount": amount, "refund_method_id": refund_method_id}
        return {"order_id": order_id, "status": order["status"], "refund_amount": amount, "refund_to": refund_method_id}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        user = walk.call("get_user", user_id=walk.user_id)
        order_id = walk.choice(user["orders"])
        order = walk.call("get_order", order_id=order_id)
        items = walk.sample([line["item_id"] for line in order["items"]])
        method = walk.choice([m["payment_method_id"] for m in user["payment_methods"]])
        return {"order_id": order_id, "item_ids": items, "refund_method_id": method}

    def outputs(self, result: Any) -> list[str]:
        return [money(result["refund_amount"])]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        order = db["orders"][args["order_id"]]
        user = db["users"][order["user_id"]]
        # Refund to a card or PayPal account other than the one that paid.
        foreign = [m["payment_method_id"] for m in user["payment_methods"]
                   if m["type"] != "gift_card" and m["payment_method_id"] != order["payment_method_id"]]
        if foreign and rng.random() < 0.5:
            return {**args, "refund_method_id": rng.choice(foreign)}
        others = [o for o in _user_orders(db, order) if o["order_id"] != order["order_id"] and o["status"] in ("pending", "processed", "delivered")]
        if not others:
            return None
        other = rng.choice(others)
        return {"order_id": other["order_id"], "item_ids": [other["items"][0]["item_id"]], "refund_method_id": other["payment_method_id"]}


class ExchangeItem(Tool):
    name, kind = "exchange_item", "write"
    description = "Request the exchange of one delivered item for another item id. Returns the price difference (new minus old)."
    parameters = params({
        "order_id": ORDER_ID,
        "item_id": {"type": "string", "description": "Item id in the order to exchange."},
        "new_item_id": {"type": "string", "description": "Item id to receive instead."},
    })
    intent = Intent("I'd like to exchange an item from an order.", {
        "order_id": ORDER_SLOT,
        "item_id": Slot("The item to exchange is {}.", ("which item", "item id"), deciding=True, source_key="item_id"),
        "new_item_id": Slot("I'd like to get item {} instead.", ("which new item", "new item", "replacement")),
    })

    def invoke(self, db: DB, order_id: str, item_id: str, new_item_id: str) -> Any:
        order = _order(db, order_id)
        if order["status"] in ("cancelled", "return requested", "exchange requested"):
            raise ToolError(f"order {order_id} is {order['status']}")
        line = next((line for line in order["items"] if line["item_id"] == item_id), None)
        if line is None:
            raise ToolError(f"item '{item_id}' is not in order {order_id}")
        new = _item(db, new_item_id)
        if new_item_id == item_id:
            raise ToolError("the new item is the same as the old one")
        difference = round(new["price"] - line["price"], 2)
        order["status"] = "exchange requested"
        order["exchange"] = {"item_id": item_id, "new_item_id": new_item_id, "price_difference": difference}
        return {"order_id": order_id, "status": order["status"], "price_difference": difference}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        user = walk.call("get_user", user_id=walk.user_id)
        order_id = walk.choice(user["orders"])
        order = walk.call("get_order", order_id=order_id)
        line = walk.choice(order["items"])
        product = walk.call("get_product", product_id=line["product_id"])
        new_item_id = walk.choice([i for i in product["item_ids"] if i != line["item_id"]])
        walk.call("get_item", item_id=new_item_id)
        return {"order_id": order_id, "item_id": line["item_id"], "new_item_id": new_item_id}

    def outputs(self, result: Any) -> list[str]:
        return [money(abs(result["price_difference"]))]

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        old = db["items"][args["item_id"]]
        if rng.random() < 0.5:
            sold_out = [i for i in db["products"][old["product_id"]]["item_ids"] if i != old["item_id"] and not db["items"][i]["available"]]
            if sold_out:
                return {**args, "new_item_id": rng.choice(sold_out)}
        other = [i for i, item in db["items"].items() if item["product_id"] != old["product_id"] and item["available"]]
        return {**args, "new_item_id": rng.choice(sorted(other))} if other else None


class UpdateDefaultAddress(Tool):
    name, kind = "update_default_address", "write"
    description = "Change a customer's default address."
    parameters = params({"user_id": USER_ID, "address": {"type": "string", "description": "Full address on one line."}})
    intent = Intent("I'd like to update my default address.", {
        "user_id": USER_SLOT,
        "address": Slot("My new address is {}.", ("which address", "address")),
    })

    def invoke(self, db: DB, user_id: str, address: str) -> Any:
        user = _user(db, user_id)
        if user["address"] == address:
            raise ToolError("the new address is the same as the current one")
        user["address"] = address
        return {"user_id": user_id, "address": address}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        walk.call("get_user", user_id=walk.user_id)
        return {"user_id": walk.user_id, "address": address(walk.rng)}


class SetDefaultPaymentMethod(Tool):
    name, kind = "set_default_payment_method", "write"
    description = "Make one of the customer's payment methods their default."
    parameters = params({"user_id": USER_ID, "payment_method_id": {"type": "string"}})
    intent = Intent("I'd like to change my default payment method.", {
        "user_id": USER_SLOT,
        "payment_method_id": Slot("Please make {} my default.", ("which payment method", "payment method"), deciding=True, source_key="payment_method_id"),
    })

    def invoke(self, db: DB, user_id: str, payment_method_id: str) -> Any:
        user = _user(db, user_id)
        _method(db, user_id, payment_method_id)
        if user["default_payment_method_id"] == payment_method_id:
            raise ToolError(f"{payment_method_id} is already the default payment method")
        user["default_payment_method_id"] = payment_method_id
        return {"user_id": user_id, "default_payment_method_id": payment_method_id}

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        user = walk.call("get_user", user_id=walk.user_id)
        choices = [m["payment_method_id"] for m in user["payment_methods"] if m["payment_method_id"] != user["default_payment_method_id"]]
        return {"user_id": walk.user_id, "payment_method_id": walk.choice(choices)}


TOOLS: tuple[Tool, ...] = (
    FindUserByEmail(), GetUser(), GetOrder(), GetProduct(), GetItem(), ListProducts(),
    CancelOrder(), UpdateOrderAddress(), ReturnItems(), ExchangeItem(), UpdateDefaultAddress(), SetDefaultPaymentMethod(),
)
