"""tau2-bench's retail domain as the Trajectory2Task generator sees it: its policy as code and how a
customer asks for each write (see ``datasets.tool_use.intents``)."""

from __future__ import annotations

import random
from typing import Any

from datasets.tool_use.intents import Domain, Fact, Walker, Write
from datasets.tool_use.policy import DB, Policy, Rule
from datasets.tool_use.text import money
from evaluation.tau2.environment import load_environment

CANCEL_REASONS = ("no longer needed", "ordered by mistake")
OTHER_CANCEL_REASONS = ("I found a better price elsewhere", "it will arrive too late", "I changed my mind about the colour",
                        "my friend already bought me one")

# -- the policy as code ---------------------------------------------------------------------------------

_NOT_PENDING = (r"\b(not|no longer|isn t|is not) (in )?(a )?pending\b", r"\bonly (a )?pending\b",
                r"\balready (been )?(processed|shipped|delivered|cancell?ed|modified)\b",
                r"\b(has|have|was|were) (been )?(processed|shipped|delivered|cancell?ed)\b",
                r"\bstatus is (processed|delivered|cancell?ed|exchange requested|return requested)\b")
_NOT_DELIVERED = (r"\b(not|hasn t|has not|isn t|is not|wasn t|was not) (yet )?(been )?delivered\b", r"\bonly (a )?delivered\b",
                  r"\b(still|is) (pending|processing|being processed|in transit)\b", r"\b(not|hasn t|has not) (yet )?arrived\b",
                  r"\bstatus is (pending|processed|cancell?ed)\b")
_SAME_PRODUCT = (r"\bsame product\b", r"\b(different|another|other) (product|type of product|kind of product|product type)\b",
                 r"\bproduct type\b", r"\bsame (kind|type) of (item|product)\b")


def _order(db: DB, args: dict[str, Any]) -> dict[str, Any]:
    return db["orders"][args["order_id"]]


def _method(db: DB, order: dict[str, Any], method_id: str) -> dict[str, Any]:
    return db["users"][order["user_id"]]["payment_methods"][method_id]


def _other_product(db: DB, args: dict[str, Any]) -> bool:
    order = _order(db, args)
    products = {item["item_id"]: item["product_id"] for item in order["items"]}
    return any(new not in db["products"][products[old]]["variants"] for old, new in zip(args["item_ids"], args["new_item_ids"]))


def _short_gift_card(db: DB, args: dict[str, Any]) -> bool:
    order = _order(db, args)
    method = _method(db, order, args["payment_method_id"])
    return method["source"] == "gift_card" and method["balance"] < order["payment_history"][0]["amount"]


def _wrong_refund_method(db: DB, args: dict[str, Any]) -> bool:
    order = _order(db, args)
    method = _method(db, order, args["payment_method_id"])
    return method["source"] != "gift_card" and args["payment_method_id"] != order["payment_history"][0]["payment_method_id"]


def _status(db: DB, args: dict[str, Any]) -> tuple[str, ...]:
    return (_order(db, args)["status"],)


def _balance(db: DB, args: dict[str, Any]) -> tuple[str, ...]:
    return (money(_method(db, _order(db, args), args["payment_method_id"])["balance"]),)


def _product(db: DB, args: dict[str, Any]) -> tuple[str, ...]:
    names = {item["item_id"]: item["name"] for item in _order(db, args)["items"]}
    return tuple(dict.fromkeys(names[i] for i in args["item_ids"]))


def _original_method(db: DB, args: dict[str, Any]) -> tuple[str, ...]:
    return (_order(db, args)["payment_history"][0]["payment_method_id"],)


STATUS_PHRASE = "Its status is {}."

RULES = (
    Rule("retail.cancel.status", "cancel_pending_order", "Only pending orders can be cancelled, and this order is no longer pending.",
         _NOT_PENDING, lambda db, a: _order(db, a)["status"] != "pending", _status, STATUS_PHRASE),
    Rule("retail.cancel.reason", "cancel_pending_order",
         "An order can only be cancelled because it is no longer needed or was ordered by mistake; that reason is not accepted.",
         (r"\bno longer needed\b", r"\bordered by mistake\b", r"\breason (is|isn t|is not) (not )?(accepted|acceptable|valid|allowed|one of)\b",
          r"\bnot an? (accepted|acceptable|valid|allowed) reason\b", r"\bonly (cancel\w*|accept\w*) .{0,40}\breasons?\b"),
         lambda db, a: a["reason"] not in CANCEL_REASONS),
    Rule("retail.address.status", "modify_pending_order_address", "Only pending orders can be modified, and this order is no longer pending.",
         _NOT_PENDING, lambda db, a: "pending" not in _order(db, a)["status"], _status, STATUS_PHRASE),
    Rule("retail.payment.status", "modify_pending_order_payment", "Only pending orders can be modified, and this order is no longer pending.",
         _NOT_PENDING, lambda db, a: "pending" not in _order(db, a)["status"], _status, STATUS_PHRASE),
    Rule("retail.payment.balance", "modify_pending_order_payment",
         "That gift card does not have enough balance to cover the order total.",
         (r"\b(not enough|insufficient|too low|too small|too little|doesn t have enough|does not have enough)\b.{0,30}\b(balance|funds|money)\b",
          r"\bbalance\b.{0,30}\b(not enough|insufficient|too low|too small|only|short|doesn t cover|does not cover|can t cover|cannot cover)\b",
          r"\b(doesn t|does not|can t|cannot|won t) cover\b"),
         _short_gift_card, _balance, "Its balance is {}."),
    Rule("retail.items.status", "modify_pending_order_items", "Only pending orders can be modified, and this order is no longer pending.",
         _NOT_PENDING, lambda db, a: _order(db, a)["status"] != "pending", _status, STATUS_PHRASE),
    Rule("retail.items.same_product", "modify_pending_order_items",
         "An item can only be changed to another option of the same product, not to a different product.",
         _SAME_PRODUCT, _other_product, _product, "The item you have is a {}."),
    Rule("retail.exchange.status", "exchange_delivered_order_items", "Only delivered orders can be exchanged, and this order has not been delivered.",
         _NOT_DELIVERED, lambda db, a: _order(db, a)["status"] != "delivered", _status, STATUS_PHRASE),
    Rule("retail.exchange.same_product", "exchange_delivered_order_items",
         "An item can only be exchanged for another option of the same product, not for a different product.",
         _SAME_PRODUCT, _other_product, _product, "The item you have is a {}."),
    Rule("retail.return.status", "return_delivered_order_items", "Only delivered orders can be returned, and this order has not been delivered.",
         _NOT_DELIVERED, lambda db, a: _order(db, a)["status"] != "delivered", _status, STATUS_PHRASE),
    Rule("retail.return.refund_method", "return_delivered_order_items",
         "A refund can only go to the original payment method or to an existing gift card.",
         (r"\boriginal (payment|card|method|form of payment)\b", r"\b(same|original) (card|account|method) (you|that was) (paid|used)\b",
          r"\brefunds? (can|must|may) only\b", r"\bonly (be )?refund\w* to\b"),
         _wrong_refund_method, _original_method, "The order was paid with {}."),
)

# -- how a customer asks --------------------------------------------------------------------------------

ORDER = Fact(("order_id",), ("It's order {}.", "The order number is {}.", "The order is {}.", "My order id is {}.",
                             "I'm talking about order {}.", "This is about order {}."),
             ("order", "order number", "order id"), deciding=True)
ADDRESS_PARAMS = ("address1", "address2", "city", "state", "country", "zip")


def _speak_address(args: dict[str, Any]) -> str:
    return f"{args['address1']}, {args['address2']}, {args['city']}, {args['state']} {args['zip']}, {args['country']}"


ADDRESS = Fact(ADDRESS_PARAMS, ("The new address is {}.", "Please ship it to {}.", "It should go to {}.",
                                "Send it to {} instead.", "The address should be {}."),
               ("address", "where", "ship", "deliver"), speak=_speak_address)
ITEMS = Fact(("item_ids",), ("The items are {}.", "It's about the items {}.", "I mean the items {}.", "The item ids are {}."),
             ("item", "product", "which one", "which ones"), deciding=True)
NEW_ITEMS = Fact(("new_item_ids",), ("I'd like {} instead.", "Change them to {}.", "The new item ids are {}.",
                                     "Swap them for {}."),
                 ("new item", "replacement", "variant", "option", "instead", "change to", "swap"))
DIFFERENCE = Fact(("payment_method_id",), ("Use {} for any price difference.", "Settle the difference with {}.",
                                           "Any difference goes on {}.", "Please use {} for the difference."),
                  ("payment method", "price difference", "difference", "card", "pay", "payment"), deciding=True)
NEW_PAYMENT = Fact(("payment_method_id",), ("I want to pay with {} instead.", "Please switch the payment to {}.",
                                            "Charge {} instead.", "Use {} for it from now on."),
                   ("payment method", "card", "pay", "payment", "charge"), deciding=True)
REFUND_TO = Fact(("payment_method_id",), ("Refund it to {}.", "The refund should go to {}.", "Please put the refund on {}.",
                                          "Send the money back to {}."),
                 ("refund", "payment method", "money back", "card"), deciding=True)
REASON = Fact(("reason",), ("The reason: {}.", "My reason is {}.", "Put the reason down as {}.", "Reason for cancelling: {}."),
              ("reason", "why"))

STREETS = ("Maple Avenue", "Cedar Street", "Lakeview Drive", "Hillcrest Road", "Elm Street", "Park Lane", "River Road",
           "Sunset Boulevard", "Oak Street", "Willow Way", "Chestnut Street", "Highland Avenue")
PLACES = (("Austin", "TX", "787"), ("Denver", "CO", "802"), ("Seattle", "WA", "981"), ("Columbus", "OH", "432"),
          ("Phoenix", "AZ", "850"), ("Chicago", "IL", "606"), ("Boston", "MA", "021"), ("Portland", "OR", "972"))


def _new_address(rng: random.Random) -> dict[str, str]:
    city, state, zip_prefix = rng.choice(PLACES)
    return {"address1": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}", "address2": f"{rng.choice(('Apt', 'Suite', 'Unit'))} {rng.randint(1, 999)}",
            "city": city, "state": state, "country": "USA", "zip": f"{zip_prefix}{rng.randint(0, 99):02d}"}


# -- walks ---------------------------------------------------------------------------------------------


def _orders(walk: Walker, *statuses: str) -> list[dict[str, Any]]:
    """The customer's orders with one of ``statuses``, read one by one."""
    user = walk.call("get_user_details", user_id=walk.user_id)
    orders = [walk.call("get_order_details", order_id=order_id) for order_id in user["orders"]]
    return [o for o in orders if o["status"] in statuses]


def _payment_methods(walk: Walker) -> dict[str, Any]:
    return walk.call("get_user_details", user_id=walk.user_id)["payment_methods"]


def _swaps(walk: Walker, order: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """Some items of the order and, for each, another available option of the same product."""
    unique = {item["item_id"]: item for item in order["items"]}  # an item may appear twice; ask about it once
    old, new = [], []
    for item in walk.some(list(unique.values()), 2):
        product = walk.call("get_product_details", product_id=item["product_id"])
        options = [v["item_id"] for v in product["variants"].values() if v["available"] and v["item_id"] != item["item_id"]]
        if options:
            old.append(item["item_id"])
            new.append(walk.choice(options))
    return (old, new) if old else None


def _difference_method(walk: Walker, order: dict[str, Any]) -> str:
    """The original payment method, or a gift card (which the tool checks for balance)."""
    methods = _payment_methods(walk)
    original = order["payment_history"][0]["payment_method_id"]
    choices = [original, *(m for m, v in methods.items() if v["source"] == "gift_card" and m != original)]
    return walk.choice([m for m in choices if m in methods])


def explore_cancel(walk: Walker) -> dict[str, Any] | None:
    order = walk.choice(_orders(walk, "pending"))
    return {"order_id": order["order_id"], "reason": walk.choice(list(CANCEL_REASONS))}


def explore_address(walk: Walker) -> dict[str, Any] | None:
    order = walk.choice(_orders(walk, "pending"))
    return {"order_id": order["order_id"], **_new_address(walk.rng)}


def explore_payment(walk: Walker) -> dict[str, Any] | None:
    order = walk.choice([o for o in _orders(walk, "pending") if len(o["payment_history"]) == 1])
    methods = _payment_methods(walk)
    current = order["payment_history"][0]["payment_method_id"]
    amount = order["payment_history"][0]["amount"]
    options = [m for m, v in methods.items() if m != current and (v["source"] != "gift_card" or v["balance"] >= amount)]
    return {"order_id": order["order_id"], "payment_method_id": walk.choice(options)}


def _explore_swap(walk: Walker, status: str) -> dict[str, Any] | None:
    order = walk.choice(_orders(walk, status))
    swaps = _swaps(walk, order)
    if swaps is None:
        return None
    return {"order_id": order["order_id"], "item_ids": swaps[0], "new_item_ids": swaps[1],
            "payment_method_id": _difference_method(walk, order)}


def explore_modify_items(walk: Walker) -> dict[str, Any] | None:
    return _explore_swap(walk, "pending")


def explore_exchange(walk: Walker) -> dict[str, Any] | None:
    return _explore_swap(walk, "delivered")


def explore_return(walk: Walker) -> dict[str, Any] | None:
    order = walk.choice(_orders(walk, "delivered"))
    items = walk.some(sorted({item["item_id"] for item in order["items"]}), 2)
    return {"order_id": order["order_id"], "item_ids": items, "payment_method_id": _difference_method(walk, order)}


def explore_user_address(walk: Walker) -> dict[str, Any] | None:
    walk.call("get_user_details", user_id=walk.user_id)
    return {"user_id": walk.user_id, **_new_address(walk.rng)}


# -- what the agent must say afterwards ----------------------------------------------------------------


def _refund_total(db: DB, result: Any) -> list[str]:
    refunds = [p["amount"] for p in result["payment_history"] if p["transaction_type"] == "refund"]
    return [money(sum(refunds))] if refunds else []


def _difference(db: DB, result: Any) -> list[str]:
    difference = result.get("exchange_price_difference")
    if difference is None:  # modify items: the payment or refund the change added
        difference = result["payment_history"][-1]["amount"]
    return [money(abs(difference))] if difference else []


def _returned_total(db: DB, result: Any) -> list[str]:
    prices = {item["item_id"]: item["price"] for item in result["items"]}
    return [money(sum(prices[i] for i in result["return_items"]))]


# -- variants that break one rule ----------------------------------------------------------------------


def _other_order(db: DB, args: dict[str, Any], rng: random.Random, statuses: tuple[str, ...]) -> dict[str, Any] | None:
    user = db["users"][_order(db, args)["user_id"]]
    options = [db["orders"][o] for o in user["orders"] if db["orders"][o]["status"] in statuses]
    return rng.choice(options) if options else None


def _break_status(rule: str, statuses: tuple[str, ...]):
    def hook(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
        other = _other_order(db, args, rng, statuses)
        if other is None:
            return None
        changed = {**args, "order_id": other["order_id"]}
        if "item_ids" in args:  # items of the order the request is now about
            items = sorted({item["item_id"] for item in other["items"]})[: len(args["item_ids"])]
            changed["item_ids"] = items
            if "new_item_ids" in args:
                by_id = {item["item_id"]: item for item in other["items"]}
                new = []
                for item_id in items:
                    variants = [v for v in db["products"][by_id[item_id]["product_id"]]["variants"].values()
                                if v["available"] and v["item_id"] != item_id]
                    if not variants:
                        return None
                    new.append(rng.choice(variants)["item_id"])
                changed["new_item_ids"] = new
        return changed, rule
    return hook


def _break_cancel(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    if rng.random() < 0.5:
        return {**args, "reason": rng.choice(OTHER_CANCEL_REASONS)}, "retail.cancel.reason"
    return _break_status("retail.cancel.status", ("processed", "delivered"))(db, args, rng)


def _break_product(rule: str):
    def hook(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
        order = _order(db, args)
        product = {item["item_id"]: item["product_id"] for item in order["items"]}[args["item_ids"][0]]
        others = [v["item_id"] for pid, p in sorted(db["products"].items()) if pid != product
                  for v in p["variants"].values() if v["available"]]
        return {**args, "new_item_ids": [rng.choice(others), *args["new_item_ids"][1:]]}, rule
    return hook


def _break_swap(status_rule: str, product_rule: str, statuses: tuple[str, ...]):
    def hook(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
        if rng.random() < 0.5:
            return _break_product(product_rule)(db, args, rng)
        return _break_status(status_rule, statuses)(db, args, rng)
    return hook


def _break_return(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    order = _order(db, args)
    methods = db["users"][order["user_id"]]["payment_methods"]
    original = order["payment_history"][0]["payment_method_id"]
    wrong = [m for m, v in sorted(methods.items()) if v["source"] != "gift_card" and m != original]
    if wrong and rng.random() < 0.5:
        return {**args, "payment_method_id": rng.choice(wrong)}, "retail.return.refund_method"
    return _break_status("retail.return.status", ("pending", "processed"))(db, args, rng)


def _break_payment(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    order = _order(db, args)
    amount = order["payment_history"][0]["amount"]
    methods = db["users"][order["user_id"]]["payment_methods"]
    short = [m for m, v in sorted(methods.items()) if v["source"] == "gift_card" and v["balance"] < amount
             and m != order["payment_history"][0]["payment_method_id"]]
    if short and rng.random() < 0.5:
        return {**args, "payment_method_id": rng.choice(short)}, "retail.payment.balance"
    return _break_status("retail.payment.status", ("processed", "delivered"))(db, args, rng)


WRITES = (
    Write("cancel_pending_order",
          ("I'd like to cancel an order.", "I need to cancel one of my orders.", "Can you cancel an order for me?",
           "Please cancel my order.", "I want to call off an order I placed."),
          {"order": ORDER, "reason": REASON}, explore_cancel, _refund_total, _break_cancel),
    Write("modify_pending_order_address",
          ("I need to change the shipping address of an order.", "Could you update where an order ships to?",
           "An order of mine should go to a different address.", "I want to redirect an order to another address."),
          {"order": ORDER, "address": ADDRESS}, explore_address,
          break_args=_break_status("retail.address.status", ("processed", "delivered", "cancelled"))),
    Write("modify_pending_order_payment",
          ("I'd like to change how I pay for an order.", "Can I switch the payment method on an order?",
           "I want to pay for an order with a different method.", "Please change the payment of one of my orders."),
          {"order": ORDER, "payment": NEW_PAYMENT}, explore_payment, break_args=_break_payment),
    Write("modify_pending_order_items",
          ("I want to change some items in an order I haven't received yet.", "Could you modify the items of a pending order?",
           "I'd like different options for items in an order that hasn't shipped.", "Please switch items in my open order."),
          {"order": ORDER, "items": ITEMS, "new_items": NEW_ITEMS, "payment": DIFFERENCE}, explore_modify_items, _difference,
          _break_swap("retail.items.status", "retail.items.same_product", ("processed", "delivered"))),
    Write("exchange_delivered_order_items",
          ("I'd like to exchange some items I received.", "Can I exchange items from a delivered order?",
           "Some things I got need to be exchanged.", "I want to swap items from an order that arrived."),
          {"order": ORDER, "items": ITEMS, "new_items": NEW_ITEMS, "payment": DIFFERENCE}, explore_exchange, _difference,
          _break_swap("retail.exchange.status", "retail.exchange.same_product", ("pending", "processed"))),
    Write("return_delivered_order_items",
          ("I want to return some items.", "I'd like to send back items from an order.", "Can I return things I received?",
           "Please start a return for me."),
          {"order": ORDER, "items": ITEMS, "refund": REFUND_TO}, explore_return, _returned_total, _break_return),
    Write("modify_user_address",
          ("I've moved and need to update the address on my account.", "Please change my default address.",
           "My profile address is out of date.", "Could you update the address saved on my account?"),
          {"address": ADDRESS}, explore_user_address, user_param="user_id"),
)


def _identify(db: DB, user_id: str, rng: random.Random) -> str:
    user = db["users"][user_id]
    if rng.random() < 0.5:
        return rng.choice(("My email is {}.", "You can find me under {}.", "My email address is {}.")).format(user["email"])
    name = f"{user['name']['first_name']} {user['name']['last_name']}"
    zip_code = user["address"]["zip"]
    return rng.choice(("I'm {} and my zip code is {}.", "My name is {}, zip {}.", "This is {}, zip code {}.")).format(name, zip_code)


def make_domain() -> Domain:
    env = load_environment("retail")
    return Domain(
        name="retail",
        policy=Policy(env.policy, RULES),
        writes=WRITES,
        identify=_identify,
        identity_nouns=("email", "zip", "zip code", "name"),
        greetings=("Hi there.", "Hello!", "Hi, thanks for picking up.", "Good morning.", "Hey."),
        personas=("a busy parent who wants this sorted quickly", "a polite retiree who likes to double-check",
                  "a student on a tight budget", "a small-business owner ordering supplies", "a frequent online shopper",
                  "someone who is a bit frustrated after a long day", "a careful customer who reads every detail",
                  "a first-time customer of the store"),
    )
