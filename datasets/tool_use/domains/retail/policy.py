"""Retail policy: the markdown the agent reads and the same rules as code."""

from __future__ import annotations

from datetime import date
from typing import Any

from datasets.tool_use.domain import DB, Policy, Rule
from datasets.tool_use.domains.retail.data import TODAY

RETURN_WINDOW_DAYS = 30

TEXT = f"""# Retail customer service policy

You are a customer service agent for an online shop. Today is {TODAY.isoformat()}.
You can help a customer cancel orders, change an order's shipping address, return or exchange delivered
items, update their default address and change their default payment method.

- The customer gives their user id; you can only act on that customer's own orders and profile.
- Look records up with the tools; never guess an order, item or payment method. If the request does not
  say which one, ask the customer.
- Before any action that changes data, describe it and ask the customer to confirm (yes/no); act only
  after an explicit yes. Make one tool call at a time.
- After acting, tell the customer the outcome, including any refund amount or price difference.
- If a request is not allowed by this policy, do not perform it: tell the customer which rule prevents it.

## Cancelling an order
- Only orders that are still pending can be cancelled. The total is refunded to the original payment
  method; gift card refunds are immediate.

## Changing an order's shipping address
- Only pending orders can have their address changed.

## Returns
- Only delivered orders can be returned, within {RETURN_WINDOW_DAYS} days of delivery.
- The refund goes to the original payment method or to one of the customer's gift cards.

## Exchanges
- Only items of delivered orders can be exchanged, within {RETURN_WINDOW_DAYS} days of delivery.
- An item can only be exchanged for another variant of the same product, and only if that variant is in
  stock (an out of stock variant cannot be chosen). Tell the customer the price difference.

## Profile
- Any address can become the default address.
- Gift cards cannot be the default payment method.
"""


def _order(db: DB, args: dict[str, Any]) -> dict[str, Any]:
    return db["orders"][args["order_id"]]


def _days_since_delivery(order: dict[str, Any]) -> int | None:
    if not order.get("delivered_date"):
        return None
    return (TODAY - date.fromisoformat(order["delivered_date"])).days


def _outside_window(db: DB, args: dict[str, Any]) -> bool:
    days = _days_since_delivery(_order(db, args))
    return days is not None and days > RETURN_WINDOW_DAYS


ORDER = (("orders", "order_id"),)
_NOT = r"(is not|isn t|was not|wasn t|has not|hasn t|have not|haven t|not) (been |yet )?"
# Reasons in other words (regular expressions over normalised text; see ``Rule.reasons``).
NOT_PENDING = (r"\bpending\b", _NOT + r"pending", r"already (been )?(shipped|delivered|cancelled|processed|sent)",
               r"(has|have|had) (already )?(been )?(shipped|delivered|cancelled)", r"only pending orders")
NOT_DELIVERED = (_NOT + r"(delivered|arrived|received)", r"only (items (of|from) )?delivered (orders|items)", r"(is|it s) still (pending|processing|in transit|on its way)",
                 r"(has|have) not arrived", r"hasn t arrived", r"was cancelled", r"(is|has been) cancelled")
WINDOW = (r"(?<![\w.])30[- ]days?", r"thirty[- ]days?", r"(return|exchange) (window|period)", r"more than (a|one) month", r"too long ago",
          r"(window|deadline) (has )?(passed|expired|closed)")

RULES = (
    Rule("cancel_order", "pending", "Only orders that are still pending can be cancelled.", ORDER,
         lambda db, a: _order(db, a)["status"] != "pending", NOT_PENDING),
    Rule("update_order_address", "pending", "Only pending orders can have their shipping address changed.", ORDER,
         lambda db, a: _order(db, a)["status"] != "pending", NOT_PENDING),
    Rule("return_items", "delivered", "Only delivered orders can be returned.", ORDER,
         lambda db, a: _order(db, a)["status"] != "delivered", NOT_DELIVERED),
    Rule("return_items", "30 days", f"Returns are only accepted within {RETURN_WINDOW_DAYS} days of delivery.", ORDER, _outside_window,
         WINDOW),
    Rule("return_items", "original payment method",
         "Refunds can only go to the original payment method or to a gift card.", ORDER,
         lambda db, a: a["refund_method_id"] != _order(db, a)["payment_method_id"] and not a["refund_method_id"].startswith("gift_card_"),
         (r"original payment method", r"original (payment|card)", r"(paid|pay) with", r"only (go|be refunded|be sent) (back )?to",
          r"same (card|payment method) (you|it was) (paid|used)")),
    Rule("exchange_item", "delivered", "Only items of delivered orders can be exchanged.", ORDER,
         lambda db, a: _order(db, a)["status"] != "delivered", NOT_DELIVERED),
    Rule("exchange_item", "30 days", f"Exchanges are only accepted within {RETURN_WINDOW_DAYS} days of delivery.", ORDER, _outside_window,
         WINDOW),
    Rule("exchange_item", "same product", "An item can only be exchanged for a variant of the same product.",
         (("items", "item_id"), ("items", "new_item_id")),
         lambda db, a: db["items"][a["item_id"]]["product_id"] != db["items"][a["new_item_id"]]["product_id"],
         (r"same product", r"different product", r"another product", r"same (kind of )?(item|article|model)", r"not a variant of")),
    Rule("exchange_item", "out of stock", "The requested variant is out of stock, so it cannot be exchanged for.",
         (("items", "new_item_id"),),
         lambda db, a: not db["items"][a["new_item_id"]]["available"],
         (r"out of stock", r"not (currently )?(in stock|available)", r"isn t (currently )?(in stock|available)", r"unavailable", r"sold out",
          r"no (stock|longer available)")),
    Rule("set_default_payment_method", "gift card", "Gift cards cannot be the default payment method.", (),
         lambda db, a: a["payment_method_id"].startswith("gift_card_"),
         (r"gift cards? (can not|cannot|can t|are not|aren t|is not|isn t|may not) (be )?(used |set |allowed )?(as )?(the |a |your )?default",
          r"default .{0,40}(can not|cannot|can t) be a gift card")),
)

POLICY = Policy(TEXT, RULES)
