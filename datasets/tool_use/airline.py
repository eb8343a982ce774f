"""tau2-bench's airline domain as the Trajectory2Task generator sees it: its policy as code and how a
customer asks for each write (see ``datasets.tool_use.intents``).

Most of the airline policy is not checked by its tools ("the API does not check these"), which is what
makes refusing the right requests a test of reading the policy.
"""

from __future__ import annotations

import random
from typing import Any

from datasets.tool_use.intents import Domain, Fact, Walker, Write
from datasets.tool_use.policy import DB, Policy, Rule
from evaluation.tau2.environment import load_environment

BOOKED_SINCE = "2024-05-14T15:00:00"  # 24 hours before the policy's "current time"
FREE_BAGS = {"regular": {"basic_economy": 0, "economy": 1, "business": 2},
             "silver": {"basic_economy": 1, "economy": 2, "business": 3},
             "gold": {"basic_economy": 2, "economy": 3, "business": 4}}
CABINS = ("basic_economy", "economy", "business")
FLOWN = ("landed", "flying")

# -- the policy as code ---------------------------------------------------------------------------------


def _reservation(db: DB, args: dict[str, Any]) -> dict[str, Any]:
    return db["reservations"][args["reservation_id"]]


def _flight_statuses(db: DB, reservation: dict[str, Any]) -> list[str]:
    return [db["flights"][f["flight_number"]]["dates"].get(f["date"], {}).get("status", "") for f in reservation["flights"]]


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")


def _count(n: int) -> tuple[str, ...]:
    return (str(n), NUMBER_WORDS[n]) if n < len(NUMBER_WORDS) else (str(n),)


def _booking_date(db: DB, args: dict[str, Any]) -> tuple[str, ...]:
    """2024-05-02, May 2, 2 May: the day the reservation was made."""
    date = _reservation(db, args)["created_at"][:10]
    month, day = MONTHS[int(date[5:7]) - 1], int(date[8:10])
    return (date, f"{month} {day}", f"{day} {month}", f"{month} {day:02d}")


def _flown_flights(db: DB, args: dict[str, Any]) -> tuple[str, ...]:
    reservation = _reservation(db, args)
    return tuple(f["flight_number"] for f, status in zip(reservation["flights"], _flight_statuses(db, reservation)) if status in FLOWN)


def cancellable(db: DB, reservation: dict[str, Any]) -> bool:
    """Booked within 24 hours, a business booking, or a flight the airline cancelled (insurance aside)."""
    return (reservation["created_at"] >= BOOKED_SINCE or reservation["cabin"] == "business"
            or "cancelled" in _flight_statuses(db, reservation))


def _not_cancellable(db: DB, args: dict[str, Any]) -> bool:
    reservation = _reservation(db, args)
    # With insurance it depends on the reason the customer gives, which no tool argument carries.
    return reservation["insurance"] == "no" and not cancellable(db, reservation)


RULES = (
    Rule("airline.cancel.eligibility", "cancel_reservation",
         "This reservation cannot be cancelled: it was booked more than 24 hours ago, it is not business class, "
         "no flight was cancelled by the airline, and it has no travel insurance.",
         (r"\b(more|longer) than 24 hours\b", r"\bwithin (the )?(last )?24 hours\b", r"\b24 hours? (of|after) (booking|it was booked)\b",
          r"\b(not|isn t|is not) eligible (for|to be) (a )?cancel\w*\b", r"\bcancel\w* (window|eligibility)\b",
          r"\b(no|without|doesn t have|does not have) (travel )?insurance\b"),
         _not_cancellable, _booking_date, "It was booked on {}."),
    Rule("airline.baggage.remove", "update_reservation_baggages",
         "Checked bags can be added to a reservation but not removed.",
         (r"\b(cannot|can t|can not|unable to|not able to|not allowed to|not possible to) (remove|reduce|take off|drop|lower)\b",
          r"\bbut not (be )?(removed|reduced|taken off)\b", r"\b(can t|cannot|can not) be (removed|reduced|taken off)\b",
          r"\bonly (be )?add\w*\b",
          r"\bno (removal|reduction)s?\b"),
         lambda db, a: a["total_baggages"] < _reservation(db, a)["total_baggages"],
         lambda db, a: _count(_reservation(db, a)["total_baggages"]), "The reservation already has {} checked bags."),
    Rule("airline.cabin.flown", "update_reservation_flights",
         "The cabin cannot be changed because a flight of this reservation has already been flown.",
         (r"\balready (been )?(flown|departed|taken off|landed|in the air)\b", r"\b(has|have|was) (been )?flown\b",
          r"\b(flight|segment|leg)s? (has|have) (already )?(departed|landed|taken off)\b"),
         lambda db, a: any(status in FLOWN for status in _flight_statuses(db, _reservation(db, a))),
         _flown_flights, "Flight {} has already flown."),
    Rule("airline.passengers.count", "update_reservation_passengers",
         "The passengers of a reservation can be changed, but not their number.",
         (r"\bnumber of passengers\b", r"\bbut not (their|the) number\b", r"\b(same|change the) number\b", r"\b(cannot|can t|can not|unable to|not able to|not possible to) (add|remove) (a |another |any )?passengers?\b",
          r"\bpassenger count\b", r"\bhow many passengers\b"),
         lambda db, a: len(a["passengers"]) != len(_reservation(db, a)["passengers"]),
         lambda db, a: _count(len(_reservation(db, a)["passengers"])), "The reservation has {} passengers."),
)

# -- how a customer asks --------------------------------------------------------------------------------

RESERVATION = Fact(("reservation_id",), ("The reservation is {}.", "It's reservation {}.", "My booking code is {}.",
                                         "The confirmation number is {}.", "This is about reservation {}."),
                   ("reservation", "booking", "confirmation", "trip"), deciding=True)
PAYMENT = Fact(("payment_id",), ("Please charge {}.", "Use {} for any cost.", "Put any charge on {}.", "Bill {} for it."),
               ("payment method", "card", "pay", "payment", "charge", "gift card"), deciding=True)
BAGS = Fact(("total_baggages",), ("I'd like {} checked bags in total.", "Make it {} checked bags altogether.",
                                  "I need {} checked bags in all."),
            ("bags", "baggage", "how many", "luggage"))
CABIN = Fact(("cabin",), ("I'd like to fly {} instead.", "Please move us to {}.", "Switch the cabin to {}."),
             ("cabin", "class", "seat"), speak=lambda a: a["cabin"].replace("_", " "))


def _speak_passengers(args: dict[str, Any]) -> str:
    return "; ".join(f"{p['first_name']} {p['last_name']}, born {p['dob']}" for p in args["passengers"])


PASSENGERS = Fact(("passengers",), ("The passengers should be {}.", "The travellers are {}.", "Please list the passengers as {}."),
                  ("passenger", "traveller", "traveler", "who"), speak=_speak_passengers)
NEW_PEOPLE = (("Priya", "Shah", "1988-02-14"), ("Lucas", "Moreau", "1979-11-03"), ("Hana", "Kim", "1995-06-21"),
              ("Diego", "Alvarez", "1984-09-09"), ("Amara", "Okafor", "1992-12-30"), ("Tom", "Becker", "1969-04-17"))

# -- walks ---------------------------------------------------------------------------------------------


def _reservations(walk: Walker) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    user = walk.call("get_user_details", user_id=walk.user_id)
    return user, [walk.call("get_reservation_details", reservation_id=r) for r in user["reservations"]]


def _statuses(walk: Walker, reservation: dict[str, Any]) -> list[str]:
    return [walk.call("get_flight_status", flight_number=f["flight_number"], date=f["date"]) for f in reservation["flights"]]


def _payable(user: dict[str, Any], amount: int) -> list[str]:
    """Saved methods that may pay for a change: credit cards, and gift cards with enough balance."""
    return sorted(m for m, v in user["payment_methods"].items()
                  if v["source"] == "credit_card" or v["source"] == "gift_card" and v["amount"] >= amount)


def explore_cancel(walk: Walker) -> dict[str, Any] | None:
    _, reservations = _reservations(walk)
    options = []
    for reservation in reservations:
        if reservation.get("status") == "cancelled":
            continue
        statuses = _statuses(walk, reservation)
        if any(s in FLOWN for s in statuses):
            continue
        if reservation["created_at"] >= BOOKED_SINCE or reservation["cabin"] == "business" or "cancelled" in statuses:
            options.append(reservation)
    return {"reservation_id": walk.choice(options)["reservation_id"]}


def explore_bags(walk: Walker) -> dict[str, Any] | None:
    user, reservations = _reservations(walk)
    reservation = walk.choice([r for r in reservations if r.get("status") != "cancelled"])
    total = reservation["total_baggages"] + walk.rng.randint(1, 2)
    free = FREE_BAGS[user["membership"]][reservation["cabin"]] * len(reservation["passengers"])
    nonfree = max(0, total - free)
    fee = 50 * max(0, nonfree - reservation["nonfree_baggages"])
    return {"reservation_id": reservation["reservation_id"], "total_baggages": total, "nonfree_baggages": nonfree,
            "payment_id": walk.choice(_payable(user, fee))}


def _cabin_price(walk: Walker, reservation: dict[str, Any], cabin: str) -> int | None:
    """What the new cabin costs for every passenger, or None when a flight has no seats or is not bookable."""
    total = 0
    for flight in reservation["flights"]:
        found = walk.call("search_direct_flight", origin=flight["origin"], destination=flight["destination"], date=flight["date"])
        match = next((f for f in found if f["flight_number"] == flight["flight_number"]), None)
        if match is None or match["available_seats"][cabin] < len(reservation["passengers"]):
            return None
        total += match["prices"][cabin]
    return total * len(reservation["passengers"])


def explore_cabin(walk: Walker) -> dict[str, Any] | None:
    user, reservations = _reservations(walk)
    reservation = walk.choice([r for r in reservations if r.get("status") != "cancelled"])
    if any(s != "available" for s in _statuses(walk, reservation)):
        return None
    cabin = walk.choice([c for c in CABINS if c != reservation["cabin"]])
    price = _cabin_price(walk, reservation, cabin)
    if price is None:
        return None
    difference = price - sum(f["price"] for f in reservation["flights"]) * len(reservation["passengers"])
    return {"reservation_id": reservation["reservation_id"], "cabin": cabin,
            "flights": [{"flight_number": f["flight_number"], "date": f["date"]} for f in reservation["flights"]],
            "payment_id": walk.choice(_payable(user, max(0, difference)))}


def explore_passengers(walk: Walker) -> dict[str, Any] | None:
    user, reservations = _reservations(walk)
    reservation = walk.choice([r for r in reservations if r.get("status") != "cancelled"])
    passengers = [dict(p) for p in reservation["passengers"]]
    known = [(p["first_name"], p["last_name"], p["dob"]) for p in user.get("saved_passengers", [])] + list(NEW_PEOPLE)
    current = {(p["first_name"], p["last_name"], p["dob"]) for p in passengers}
    first, last, dob = walk.choice([k for k in known if k not in current])
    passengers[walk.rng.randrange(len(passengers))] = {"first_name": first, "last_name": last, "dob": dob}
    return {"reservation_id": reservation["reservation_id"], "passengers": passengers}


# -- what the agent must say afterwards ----------------------------------------------------------------


def _last_payment(db: DB, result: Any) -> list[str]:
    history = result["payment_history"]
    return [str(abs(history[-1]["amount"]))] if len(history) > 1 and history[-1]["amount"] else []


def _refund(db: DB, result: Any) -> list[str]:
    return [str(sum(-p["amount"] for p in result["payment_history"] if p["amount"] < 0))]


# -- variants that break one rule ----------------------------------------------------------------------


def _other_reservation(db: DB, args: dict[str, Any], rng: random.Random, wanted) -> dict[str, Any] | None:
    user = db["users"][_reservation(db, args)["user_id"]]
    options = [db["reservations"][r] for r in user["reservations"] if wanted(db["reservations"][r])]
    return rng.choice(options) if options else None


def _break_cancel(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    other = _other_reservation(db, args, rng, lambda r: r.get("status") != "cancelled" and r["insurance"] == "no"
                               and not cancellable(db, r) and not any(s in FLOWN for s in _flight_statuses(db, r)))
    return ({"reservation_id": other["reservation_id"]}, "airline.cancel.eligibility") if other else None


def _break_bags(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    reservation = _reservation(db, args)
    if reservation["total_baggages"] == 0:
        return None
    total = reservation["total_baggages"] - 1
    return {**args, "total_baggages": total, "nonfree_baggages": min(reservation["nonfree_baggages"], total)}, "airline.baggage.remove"


def _break_cabin(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    other = _other_reservation(db, args, rng, lambda r: r.get("status") != "cancelled"
                               and any(s in FLOWN for s in _flight_statuses(db, r)))
    if other is None:
        return None
    cabin = rng.choice([c for c in CABINS if c != other["cabin"]])
    return {"reservation_id": other["reservation_id"], "cabin": cabin, "payment_id": args["payment_id"],
            "flights": [{"flight_number": f["flight_number"], "date": f["date"]} for f in other["flights"]]}, "airline.cabin.flown"


def _break_passengers(db: DB, args: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
    first, last, dob = rng.choice(NEW_PEOPLE)
    extra = {"first_name": first, "last_name": last, "dob": dob}
    if extra in args["passengers"]:
        return None
    return {**args, "passengers": [*args["passengers"], extra]}, "airline.passengers.count"


WRITES = (
    Write("cancel_reservation",
          ("I need to cancel a trip; my plans changed.", "Please cancel one of my reservations, I can't travel anymore.",
           "I'd like to cancel a booking because of a change of plans.", "Could you cancel a flight reservation for me? Plans changed."),
          {"reservation": RESERVATION}, explore_cancel, _refund, _break_cancel),
    Write("update_reservation_baggages",
          ("I want to add checked bags to a booking.", "Can you change the number of checked bags on my reservation?",
           "I need to update the luggage on a reservation.", "I'd like to adjust my checked baggage."),
          {"reservation": RESERVATION, "bags": BAGS, "payment": PAYMENT}, explore_bags, _last_payment, _break_bags),
    Write("update_reservation_flights",
          ("I'd like to change the cabin class of a reservation.", "Can I upgrade or change the cabin on a booking?",
           "Please change the class we fly in on one of my reservations.", "I want a different cabin on a trip."),
          {"reservation": RESERVATION, "cabin": CABIN, "payment": PAYMENT}, explore_cabin, _last_payment, _break_cabin),
    Write("update_reservation_passengers",
          ("I need to change a passenger on a booking.", "Please update the travellers on one of my reservations.",
           "Someone else is flying instead on one of my trips.", "I'd like to correct the passenger details of a reservation."),
          {"reservation": RESERVATION, "passengers": PASSENGERS}, explore_passengers, break_args=_break_passengers),
)


def make_domain() -> Domain:
    env = load_environment("airline")
    return Domain(
        name="airline",
        policy=Policy(env.policy, RULES),
        writes=WRITES,
        identify=lambda db, user_id, rng: rng.choice(("My user id is {}.", "My user ID is {}.", "You'll find me as {}.",
                                                      "I'm under the user id {}.")).format(user_id),
        identity_nouns=("user id", "user ID"),
        greetings=("Hi there.", "Hello!", "Hi, I hope you can help.", "Good afternoon.", "Hey."),
        personas=("a business traveller short on time", "a parent travelling with family", "a retiree visiting relatives",
                  "a student flying home for the holidays", "a nervous flyer who wants every detail confirmed",
                  "a frequent flyer who knows the rules", "someone planning a last-minute trip", "a polite and patient customer"),
    )
