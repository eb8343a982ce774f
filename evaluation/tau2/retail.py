"""tau2-bench's retail domain: products with variants, users with payment methods, and orders.

Every tool mirrors tau2's ``RetailTools`` statement for statement where it matters to the result: the
order of its checks (so the same call fails with the same message), its float arithmetic (so refunds and
balances have the same rounding), and its quirks — ``modify_pending_order_items`` prices every modified
item at the last new item's price, as tau2 does.
"""

from __future__ import annotations

import json
from typing import Any

from evaluation.tau2.environment import Domain, Toolkit, ToolType, tool
from evaluation.tau2.records import BOOL, FLOAT, STR, Field, ListOf, MapOf, Model, Nullable, OneOf, Tagged

Record = dict[str, Any]

ADDRESS = Model("UserAddress", Field("address1", STR), Field("address2", STR), Field("city", STR),
                Field("country", STR), Field("state", STR), Field("zip", STR))
VARIANT = Model("Variant", Field("item_id", STR), Field("options", MapOf(STR)), Field("available", BOOL),
                Field("price", FLOAT))
PRODUCT = Model("Product", Field("name", STR), Field("product_id", STR), Field("variants", MapOf(VARIANT)))
PAYMENT_METHOD = Tagged("source", {
    "credit_card": Model("CreditCard", Field("source", OneOf("credit_card")), Field("id", STR), Field("brand", STR),
                         Field("last_four", STR)),
    "gift_card": Model("GiftCard", Field("source", OneOf("gift_card")), Field("id", STR), Field("balance", FLOAT)),
    "paypal": Model("Paypal", Field("source", OneOf("paypal")), Field("id", STR)),
})
USER = Model("User", Field("user_id", STR),
             Field("name", Model("UserName", Field("first_name", STR), Field("last_name", STR))),
             Field("address", ADDRESS), Field("email", STR), Field("payment_methods", MapOf(PAYMENT_METHOD)),
             Field("orders", ListOf(STR)))
ORDER_STATUSES = ("processed", "pending", "pending (item modified)", "delivered", "cancelled",
                  "exchange requested", "return requested")
CANCEL_REASONS = ("no longer needed", "ordered by mistake")
ORDER = Model(
    "Order",
    Field("order_id", STR), Field("user_id", STR), Field("address", ADDRESS),
    Field("items", ListOf(Model("OrderItem", Field("name", STR), Field("product_id", STR), Field("item_id", STR),
                                Field("price", FLOAT), Field("options", MapOf(STR))))),
    Field("status", OneOf(*ORDER_STATUSES)),
    Field("fulfillments", ListOf(Model("OrderFullfilment", Field("tracking_id", ListOf(STR)),
                                       Field("item_ids", ListOf(STR))))),
    Field("payment_history", ListOf(Model("OrderPayment", Field("transaction_type", OneOf("payment", "refund")),
                                          Field("amount", FLOAT), Field("payment_method_id", STR)))),
    Field("cancel_reason", Nullable(OneOf(*CANCEL_REASONS)), None),
    Field("exchange_items", Nullable(ListOf(STR)), None),
    Field("exchange_new_items", Nullable(ListOf(STR)), None),
    Field("exchange_payment_method_id", Nullable(STR), None),
    Field("exchange_price_difference", Nullable(FLOAT), None),
    Field("return_items", Nullable(ListOf(STR)), None),
    Field("return_payment_method_id", Nullable(STR), None),
)


def _payment(transaction_type: str, amount: float, payment_method_id: str) -> Record:
    # OrderPayment's amount is a float field: pydantic stores an integer difference as a float.
    return {"transaction_type": transaction_type, "amount": float(amount), "payment_method_id": payment_method_id}


def _address(address1: str, address2: str, city: str, state: str, country: str, zip: str) -> Record:
    return {"address1": address1, "address2": address2, "city": city, "country": country, "state": state, "zip": zip}


def _is_gift_card(payment_method: Record) -> bool:
    return payment_method["source"] == "gift_card"


def _find_item(order: Record, item_id: str) -> Record | None:
    return next((item for item in order["items"] if item["item_id"] == item_id), None)


class RetailTools(Toolkit):
    """tau2's retail tools over the retail database."""

    # --- lookups, with tau2's messages ---------------------------------------------------------------------

    def _get_order(self, order_id: str) -> Record:
        if order_id not in self.db["orders"]:
            raise ValueError("Order not found")
        return self.db["orders"][order_id]

    def _get_user(self, user_id: str) -> Record:
        if user_id not in self.db["users"]:
            raise ValueError("User not found")
        return self.db["users"][user_id]

    def _get_product(self, product_id: str) -> Record:
        if product_id not in self.db["products"]:
            raise ValueError("Product not found")
        return self.db["products"][product_id]

    def _get_item(self, item_id: str) -> Record:
        for product in self.db["products"].values():
            if item_id in product["variants"]:
                return product["variants"][item_id]
        raise ValueError("Item not found")

    def _get_variant(self, product_id: str, variant_id: str) -> Record:
        product = self._get_product(product_id)
        if variant_id not in product["variants"]:
            raise ValueError("Variant not found")
        return product["variants"][variant_id]

    def _get_payment_method(self, user_id: str, payment_method_id: str) -> Record:
        user = self._get_user(user_id)
        if payment_method_id not in user["payment_methods"]:
            raise ValueError("Payment method not found")
        return user["payment_methods"][payment_method_id]

    @staticmethod
    def _check_items_in_order(order: Record, item_ids: list[str], message: str) -> None:
        """Every listed item (duplicates counted) is in the order; ``message`` may name the item."""
        all_item_ids = [item["item_id"] for item in order["items"]]
        for item_id in item_ids:
            if item_ids.count(item_id) > all_item_ids.count(item_id):
                raise ValueError(message.format(item_id=item_id))

    # --- read tools ----------------------------------------------------------------------------------------

    @tool(ToolType.READ)
    def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip: str) -> str:
        for user_id, user in self.db["users"].items():
            if (user["name"]["first_name"].lower() == first_name.lower()
                    and user["name"]["last_name"].lower() == last_name.lower()
                    and user["address"]["zip"] == zip):
                return user_id
        raise ValueError("User not found")

    @tool(ToolType.READ)
    def find_user_id_by_email(self, email: str) -> str:
        for user_id, user in self.db["users"].items():
            if user["email"].lower() == email.lower():
                return user_id
        raise ValueError("User not found")

    @tool(ToolType.READ)
    def get_order_details(self, order_id: str) -> Record:
        return self._get_order(order_id)

    @tool(ToolType.READ)
    def get_product_details(self, product_id: str) -> Record:
        return self._get_product(product_id)

    @tool(ToolType.READ)
    def get_item_details(self, item_id: str) -> Record:
        return self._get_item(item_id)

    @tool(ToolType.READ)
    def get_user_details(self, user_id: str) -> Record:
        return self._get_user(user_id)

    @tool(ToolType.READ)
    def list_all_product_types(self) -> str:
        names = {product["name"]: product["product_id"] for product in self.db["products"].values()}
        return json.dumps(names, sort_keys=True)

    # --- write tools ---------------------------------------------------------------------------------------

    @tool(ToolType.WRITE)
    def cancel_pending_order(self, order_id: str, reason: str) -> Record:
        order = self._get_order(order_id)
        if order["status"] != "pending":
            raise ValueError("Non-pending order cannot be cancelled")
        if reason not in CANCEL_REASONS:
            raise ValueError("Invalid reason")
        refunds = []
        for payment in order["payment_history"]:
            payment_id = payment["payment_method_id"]
            refunds.append(_payment("refund", payment["amount"], payment_id))
            user = self._get_user(order["user_id"])
            payment_method = self._get_payment_method(user["user_id"], payment_id)
            if _is_gift_card(payment_method):  # a gift card is refunded at once
                payment_method["balance"] = round(payment_method["balance"] + payment["amount"], 2)
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        order["payment_history"].extend(refunds)
        return order

    @tool(ToolType.WRITE)
    def exchange_delivered_order_items(self, order_id: str, item_ids: list[str], new_item_ids: list[str],
                                       payment_method_id: str) -> Record:
        order = self._get_order(order_id)
        if order["status"] != "delivered":
            raise ValueError("Non-delivered order cannot be exchanged")
        self._check_items_in_order(order, item_ids, "Number of {item_id} not found.")
        if len(item_ids) != len(new_item_ids):
            raise ValueError("The number of items to be exchanged should match.")
        diff_price: float = 0  # an int until a price is added, as in tau2 (an empty exchange records 0)
        for item_id, new_item_id in zip(item_ids, new_item_ids):
            item = _find_item(order, item_id)
            if item is None:
                raise ValueError(f"Item {item_id} not found")
            variant = self._get_variant(item["product_id"], new_item_id)
            if not variant["available"]:
                raise ValueError(f"New item {new_item_id} not found or available")
            diff_price += variant["price"] - item["price"]
        diff_price = round(diff_price, 2)
        payment_method = self._get_payment_method(order["user_id"], payment_method_id)
        if _is_gift_card(payment_method) and payment_method["balance"] < diff_price:
            raise ValueError("Insufficient gift card balance to pay for the price difference")
        order["status"] = "exchange requested"
        order["exchange_items"] = sorted(item_ids)
        order["exchange_new_items"] = sorted(new_item_ids)
        order["exchange_payment_method_id"] = payment_method_id
        order["exchange_price_difference"] = diff_price
        return order

    @tool(ToolType.WRITE)
    def modify_pending_order_address(self, order_id: str, address1: str, address2: str, city: str, state: str,
                                     country: str, zip: str) -> Record:
        order = self._get_order(order_id)
        if "pending" not in order["status"]:
            raise ValueError("Non-pending order cannot be modified")
        order["address"] = _address(address1, address2, city, state, country, zip)
        return order

    @tool(ToolType.WRITE)
    def modify_pending_order_items(self, order_id: str, item_ids: list[str], new_item_ids: list[str],
                                   payment_method_id: str) -> Record:
        order = self._get_order(order_id)
        if order["status"] != "pending":
            raise ValueError("Non-pending order cannot be modified")
        self._check_items_in_order(order, item_ids, "{item_id} not found")
        if len(item_ids) != len(new_item_ids):
            raise ValueError("The number of items to be exchanged should match")
        diff_price: float = 0
        variant: Record | None = None
        for item_id, new_item_id in zip(item_ids, new_item_ids):
            if item_id == new_item_id:
                raise ValueError("The new item id should be different from the old item id")
            item = _find_item(order, item_id)
            if item is None:
                raise ValueError(f"Item {item_id} not found")
            variant = self._get_variant(item["product_id"], new_item_id)
            if not variant["available"]:
                raise ValueError(f"New item {new_item_id} not found or available")
            diff_price += variant["price"] - item["price"]
        payment_method = self._get_payment_method(order["user_id"], payment_method_id)
        if _is_gift_card(payment_method) and payment_method["balance"] < diff_price:
            raise ValueError("Insufficient gift card balance to pay for the new item")
        order["payment_history"].append(
            _payment("payment" if diff_price > 0 else "refund", abs(diff_price), payment_method_id))
        if _is_gift_card(payment_method):
            payment_method["balance"] = round(payment_method["balance"] - diff_price, 2)
        for item_id, new_item_id in zip(item_ids, new_item_ids):
            item = _find_item(order, item_id)
            if item is None:
                raise ValueError(f"Item {item_id} not found")
            # tau2 takes price and options from the loop's last variant, for every modified item.
            assert variant is not None
            item["item_id"] = new_item_id
            item["price"] = variant["price"]
            item["options"] = dict(variant["options"])
        order["status"] = "pending (item modified)"
        return order

    @tool(ToolType.WRITE)
    def modify_pending_order_payment(self, order_id: str, payment_method_id: str) -> Record:
        order = self._get_order(order_id)
        if "pending" not in order["status"]:
            raise ValueError("Non-pending order cannot be modified")
        payment_method = self._get_payment_method(order["user_id"], payment_method_id)
        history = order["payment_history"]
        if len(history) != 1 or history[0]["transaction_type"] != "payment":
            raise ValueError("There should be exactly one payment for a pending order")
        if history[0]["payment_method_id"] == payment_method_id:
            raise ValueError("The new payment method should be different from the current one")
        amount = history[0]["amount"]
        if _is_gift_card(payment_method) and payment_method["balance"] < amount:
            raise ValueError("Insufficient gift card balance to pay for the order")
        history.extend([_payment("payment", amount, payment_method_id),
                        _payment("refund", amount, history[0]["payment_method_id"])])
        if _is_gift_card(payment_method):
            payment_method["balance"] = round(payment_method["balance"] - amount, 2)
        old_payment_method = self._get_payment_method(order["user_id"], history[0]["payment_method_id"])
        if _is_gift_card(old_payment_method):
            old_payment_method["balance"] = round(old_payment_method["balance"] + amount, 2)
        return order

    @tool(ToolType.WRITE)
    def modify_user_address(self, user_id: str, address1: str, address2: str, city: str, state: str,
                            country: str, zip: str) -> Record:
        user = self._get_user(user_id)
        user["address"] = _address(address1, address2, city, state, country, zip)
        return user

    @tool(ToolType.WRITE)
    def return_delivered_order_items(self, order_id: str, item_ids: list[str], payment_method_id: str) -> Record:
        order = self._get_order(order_id)
        if order["status"] != "delivered":
            raise ValueError("Non-delivered order cannot be returned")
        user = self._get_user(order["user_id"])
        payment_method = self._get_payment_method(user["user_id"], payment_method_id)
        if not _is_gift_card(payment_method) and payment_method_id != order["payment_history"][0]["payment_method_id"]:
            raise ValueError("Payment method should be the original payment method")
        self._check_items_in_order(order, item_ids, "Some item not found")
        order["status"] = "return requested"
        order["return_items"] = sorted(item_ids)
        order["return_payment_method_id"] = payment_method_id
        return order


DOMAIN = Domain("retail", RetailTools, tables={"products": PRODUCT, "users": USER, "orders": ORDER})
