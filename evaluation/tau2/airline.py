"""tau2-bench's airline domain: flights with per-date status, users with payment methods, and reservations.

Every tool mirrors tau2's ``AirlineTools``: the order of its checks and their messages, its fixed clock
(``2024-05-15T15:00:00``) and its deterministic new ids (reservations ``HATHAT``, ``HATHAU``, ``HATHAV``;
certificates ``certificate_3221322`` to ``certificate_3221324``), and its quirks: cancelling does not
release seats, changing flights does not take seats, and the one-stop search computes the next day as
``2024-05-<day + 1>``.
"""

from __future__ import annotations

from typing import Any

from evaluation.tau2.environment import Domain, Toolkit, ToolType, tool
from evaluation.tau2.records import FLOAT, INT, STR, Field, ListOf, MapOf, Model, Nullable, OneOf, Tagged

Record = dict[str, Any]

CABINS = ("business", "economy", "basic_economy")
NOW = "2024-05-15T15:00:00"
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
NEW_CERTIFICATE_IDS = tuple(f"certificate_{number}" for number in (3221322, 3221323, 3221324))
AIRPORTS = (("SFO", "San Francisco"), ("JFK", "New York"), ("LAX", "Los Angeles"), ("ORD", "Chicago"),
            ("DFW", "Dallas"), ("DEN", "Denver"), ("SEA", "Seattle"), ("ATL", "Atlanta"), ("MIA", "Miami"),
            ("BOS", "Boston"), ("PHX", "Phoenix"), ("IAH", "Houston"), ("LAS", "Las Vegas"), ("MCO", "Orlando"),
            ("EWR", "Newark"), ("CLT", "Charlotte"), ("MSP", "Minneapolis"), ("DTW", "Detroit"),
            ("PHL", "Philadelphia"), ("LGA", "LaGuardia"))

FLIGHT_INFO = Model("FlightInfo", Field("flight_number", STR), Field("date", STR))
PASSENGER = Model("Passenger", Field("first_name", STR), Field("last_name", STR), Field("dob", STR))
PAYMENT = Model("Payment", Field("payment_id", STR), Field("amount", INT))
PER_CABIN = MapOf(INT, key=OneOf(*CABINS))


def _times(*names: str) -> tuple[Field, ...]:
    return tuple(Field(name, STR) for name in names)


FLIGHT_DATE = Tagged("status", {
    "available": Model("FlightDateStatusAvailable", Field("status", OneOf("available")),
                       Field("available_seats", PER_CABIN), Field("prices", PER_CABIN)),
    "landed": Model("FlightDateStatusLanded", Field("status", OneOf("landed")),
                    *_times("actual_departure_time_est", "actual_arrival_time_est")),
    "cancelled": Model("FlightDateStatusCancelled", Field("status", OneOf("cancelled"))),
    "delayed": Model("FlightDateStatusDelayed", Field("status", OneOf("delayed")),
                     *_times("estimated_departure_time_est", "estimated_arrival_time_est")),
    "flying": Model("FlightDataStatusFlying", Field("status", OneOf("flying")),
                    *_times("actual_departure_time_est", "estimated_arrival_time_est")),
    "on time": Model("FlightDataStatusOnTime", Field("status", OneOf("on time")),
                     *_times("estimated_departure_time_est", "estimated_arrival_time_est")),
})
FLIGHT = Model("Flight", *_times("flight_number", "origin", "destination", "scheduled_departure_time_est",
                                 "scheduled_arrival_time_est"), Field("dates", MapOf(FLIGHT_DATE)))
USER = Model(
    "User",
    Field("user_id", STR),
    Field("name", Model("Name", Field("first_name", STR), Field("last_name", STR))),
    Field("address", Model("Address", Field("address1", STR), Field("address2", Nullable(STR), None),
                           *_times("city", "country", "state", "zip"))),
    Field("email", STR), Field("dob", STR),
    Field("payment_methods", MapOf(Tagged("source", {
        "credit_card": Model("CreditCard", Field("source", OneOf("credit_card")), Field("id", STR),
                             Field("brand", STR), Field("last_four", STR)),
        "gift_card": Model("GiftCard", Field("source", OneOf("gift_card")), Field("id", STR), Field("amount", FLOAT)),
        "certificate": Model("Certificate", Field("source", OneOf("certificate")), Field("id", STR),
                             Field("amount", FLOAT)),
    }))),
    Field("saved_passengers", ListOf(PASSENGER)),
    Field("membership", OneOf("gold", "silver", "regular")),
    Field("reservations", ListOf(STR)),
)
RESERVATION = Model(
    "Reservation",
    *_times("reservation_id", "user_id", "origin", "destination"),
    Field("flight_type", OneOf("round_trip", "one_way")),
    Field("cabin", OneOf(*CABINS)),
    Field("flights", ListOf(Model("ReservationFlight", *_times("flight_number", "origin", "destination", "date"),
                                  Field("price", INT)))),
    Field("passengers", ListOf(PASSENGER)),
    Field("payment_history", ListOf(PAYMENT)),
    Field("created_at", STR),
    Field("total_baggages", INT), Field("nonfree_baggages", INT),
    Field("insurance", OneOf("yes", "no")),
    Field("status", Nullable(OneOf("cancelled")), None),
)


def _reservation_flight(flight: Record, date: str, price: int) -> Record:
    return {"flight_number": flight["flight_number"], "origin": flight["origin"],
            "destination": flight["destination"], "date": date, "price": price}


class AirlineTools(Toolkit):
    """tau2's airline tools over the airline database."""

    # --- lookups, with tau2's messages ---------------------------------------------------------------------

    def _get_user(self, user_id: str) -> Record:
        if user_id not in self.db["users"]:
            raise ValueError(f"User {user_id} not found")
        return self.db["users"][user_id]

    def _get_reservation(self, reservation_id: str) -> Record:
        if reservation_id not in self.db["reservations"]:
            raise ValueError(f"Reservation {reservation_id} not found")
        return self.db["reservations"][reservation_id]

    def _get_flight(self, flight_number: str) -> Record:
        if flight_number not in self.db["flights"]:
            raise ValueError(f"Flight {flight_number} not found")
        return self.db["flights"][flight_number]

    def _get_flight_instance(self, flight_number: str, date: str) -> Record:
        flight = self._get_flight(flight_number)
        if date not in flight["dates"]:
            raise ValueError(f"Flight {flight_number} not found on date {date}")
        return flight["dates"][date]

    def _get_new_reservation_id(self) -> str:
        for reservation_id in NEW_RESERVATION_IDS:
            if reservation_id not in self.db["reservations"]:
                return reservation_id
        raise ValueError("Too many reservations")

    def _search_direct_flight(self, date: str, origin: str | None = None, destination: str | None = None,
                              leave_after: str | None = None) -> list[Record]:
        results = []
        for flight in self.db["flights"].values():
            if ((origin is None or flight["origin"] == origin)
                    and (destination is None or flight["destination"] == destination)
                    and date in flight["dates"]
                    and flight["dates"][date]["status"] == "available"
                    and (leave_after is None or flight["scheduled_departure_time_est"] >= leave_after)):
                results.append({
                    "flight_number": flight["flight_number"], "origin": flight["origin"],
                    "destination": flight["destination"], "status": "available",
                    "scheduled_departure_time_est": flight["scheduled_departure_time_est"],
                    "scheduled_arrival_time_est": flight["scheduled_arrival_time_est"],
                    "date": None,
                    "available_seats": dict(flight["dates"][date]["available_seats"]),
                    "prices": dict(flight["dates"][date]["prices"]),
                })
        return results

    @staticmethod
    def _payment_for_update(user: Record, payment_id: str, total_price: Any) -> Record | None:
        """Charge (or refund, when negative) a change to a saved payment method; None when nothing is due."""
        if payment_id not in user["payment_methods"]:
            raise ValueError("Payment method not found")
        payment_method = user["payment_methods"][payment_id]
        if payment_method["source"] == "certificate":
            raise ValueError("Certificate cannot be used to update reservation")
        if payment_method["source"] == "gift_card" and payment_method["amount"] < total_price:
            raise ValueError("Gift card balance is not enough")
        if payment_method["source"] == "gift_card":
            payment_method["amount"] -= total_price
        if total_price == 0:
            return None
        return PAYMENT.validate({"payment_id": payment_id, "amount": total_price}, PAYMENT.name)

    # --- read tools ----------------------------------------------------------------------------------------

    @tool(ToolType.READ)
    def get_reservation_details(self, reservation_id: str) -> Record:
        return self._get_reservation(reservation_id)

    @tool(ToolType.READ)
    def get_user_details(self, user_id: str) -> Record:
        return self._get_user(user_id)

    @tool(ToolType.READ)
    def list_all_airports(self) -> list[Record]:
        return [{"iata": iata, "city": city} for iata, city in AIRPORTS]

    @tool(ToolType.READ)
    def search_direct_flight(self, origin: str, destination: str, date: str) -> list[Record]:
        return self._search_direct_flight(date=date, origin=origin, destination=destination)

    @tool(ToolType.READ)
    def search_onestop_flight(self, origin: str, destination: str, date: str) -> list[list[Record]]:
        results = []
        for first in self._search_direct_flight(date=date, origin=origin):
            first["date"] = date
            # tau2 takes an arrival marked "+1" to the next day of May, unpadded.
            second_date = f"2024-05-{int(date[-2:]) + 1}" if "+1" in first["scheduled_arrival_time_est"] else date
            for second in self._search_direct_flight(date=second_date, origin=first["destination"],
                                                     destination=destination,
                                                     leave_after=first["scheduled_arrival_time_est"]):
                second["date"] = second_date
                results.append([first, second])
        return results

    @tool(ToolType.READ)
    def get_flight_status(self, flight_number: str, date: str) -> str:
        return self._get_flight_instance(flight_number, date)["status"]

    # --- write tools ---------------------------------------------------------------------------------------

    @tool(ToolType.WRITE)
    def book_reservation(self, user_id: str, origin: str, destination: str, flight_type: str, cabin: str,
                         flights: list[Record], passengers: list[Record], payment_methods: list[Record],
                         total_baggages: int, nonfree_baggages: int, insurance: str) -> Record:
        user = self._get_user(user_id)
        reservation_id = self._get_new_reservation_id()
        # tau2 builds its Reservation model here, so an unknown cabin, trip type or insurance fails now.
        reservation = RESERVATION.validate({
            "reservation_id": reservation_id, "user_id": user_id, "origin": origin, "destination": destination,
            "flight_type": flight_type, "cabin": cabin, "flights": [], "passengers": passengers,
            "payment_history": payment_methods, "created_at": NOW, "total_baggages": total_baggages,
            "nonfree_baggages": nonfree_baggages, "insurance": insurance,
        }, RESERVATION.name)

        total_price = 0
        booked_dates: list[Record] = []
        for flight_info in flights:
            flight_number, date = flight_info["flight_number"], flight_info["date"]
            flight = self._get_flight(flight_number)
            flight_date = self._get_flight_instance(flight_number, date)
            if flight_date["status"] != "available":
                raise ValueError(f"Flight {flight_number} not available on date {date}")
            if flight_date["available_seats"][cabin] < len(passengers):
                raise ValueError(f"Not enough seats on flight {flight_number}")
            price = flight_date["prices"][cabin]
            reservation["flights"].append(_reservation_flight(flight, date, price))
            booked_dates.append(flight_date)
            total_price += price * len(passengers)
        if insurance == "yes":
            total_price += 30 * len(passengers)
        total_price += 50 * nonfree_baggages

        for payment in payment_methods:
            payment_id, amount = payment["payment_id"], payment["amount"]
            if payment_id not in user["payment_methods"]:
                raise ValueError(f"Payment method {payment_id} not found")
            method = user["payment_methods"][payment_id]
            if method["source"] in {"gift_card", "certificate"} and method["amount"] < amount:
                raise ValueError(f"Not enough balance in payment method {payment_id}")
        total_payment = sum(payment["amount"] for payment in payment_methods)
        if total_payment != total_price:
            raise ValueError(f"Payment amount does not add up, total price is {total_price}, but paid {total_payment}")

        for payment in payment_methods:
            method = user["payment_methods"][payment["payment_id"]]
            if method["source"] == "gift_card":
                method["amount"] -= payment["amount"]
            elif method["source"] == "certificate":  # a certificate is spent whole
                user["payment_methods"].pop(payment["payment_id"])
        for flight_date in booked_dates:
            flight_date["available_seats"][cabin] -= len(passengers)
        self.db["reservations"][reservation_id] = reservation
        user["reservations"].append(reservation_id)
        return reservation

    @tool(ToolType.WRITE)
    def cancel_reservation(self, reservation_id: str) -> Record:
        reservation = self._get_reservation(reservation_id)
        refunds = [{"payment_id": payment["payment_id"], "amount": -payment["amount"]}
                   for payment in reservation["payment_history"]]
        reservation["payment_history"].extend(refunds)
        reservation["status"] = "cancelled"
        return reservation

    @tool(ToolType.WRITE)
    def send_certificate(self, user_id: str, amount: int) -> str:
        user = self._get_user(user_id)
        for payment_id in NEW_CERTIFICATE_IDS:
            if payment_id not in user["payment_methods"]:
                # Certificate.amount is a float field; the message repeats the amount as it was given.
                user["payment_methods"][payment_id] = {"source": "certificate", "id": payment_id, "amount": float(amount)}
                return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
        raise ValueError("Too many certificates")

    @tool(ToolType.WRITE)
    def update_reservation_baggages(self, reservation_id: str, total_baggages: int, nonfree_baggages: int,
                                    payment_id: str) -> Record:
        reservation = self._get_reservation(reservation_id)
        user = self._get_user(reservation["user_id"])
        total_price = 50 * max(0, nonfree_baggages - reservation["nonfree_baggages"])
        payment = self._payment_for_update(user, payment_id, total_price)
        if payment is not None:
            reservation["payment_history"].append(payment)
        reservation["total_baggages"] = total_baggages
        reservation["nonfree_baggages"] = nonfree_baggages
        return reservation

    @tool(ToolType.WRITE)
    def update_reservation_flights(self, reservation_id: str, cabin: str, flights: list[Record],
                                   payment_id: str) -> Record:
        reservation = self._get_reservation(reservation_id)
        user = self._get_user(reservation["user_id"])
        passengers = len(reservation["passengers"])
        total_price = 0
        new_flights = []
        for flight_info in flights:
            flight_number, date = flight_info["flight_number"], flight_info["date"]
            kept = next((booked for booked in reservation["flights"]
                         if booked["flight_number"] == flight_number and booked["date"] == date
                         and cabin == reservation["cabin"]), None)
            if kept is not None:  # an unchanged segment keeps the price it was bought at
                total_price += kept["price"] * passengers
                new_flights.append(kept)
                continue
            flight = self._get_flight(flight_number)
            flight_date = self._get_flight_instance(flight_number, date)
            if flight_date["status"] != "available":
                raise ValueError(f"Flight {flight_number} not available on date {date}")
            if flight_date["available_seats"][cabin] < passengers:
                raise ValueError(f"Not enough seats on flight {flight_number}")
            new_flight = _reservation_flight(flight, date, flight_date["prices"][cabin])
            total_price += new_flight["price"] * passengers
            new_flights.append(new_flight)
        total_price -= sum(booked["price"] for booked in reservation["flights"]) * passengers
        payment = self._payment_for_update(user, payment_id, total_price)
        if payment is not None:
            reservation["payment_history"].append(payment)
        reservation["flights"] = new_flights
        reservation["cabin"] = cabin
        return reservation

    @tool(ToolType.WRITE)
    def update_reservation_passengers(self, reservation_id: str, passengers: list[Record]) -> Record:
        reservation = self._get_reservation(reservation_id)
        if len(passengers) != len(reservation["passengers"]):
            raise ValueError("Number of passengers does not match")
        reservation["passengers"] = [dict(passenger) for passenger in passengers]
        return reservation


DOMAIN = Domain("airline", AirlineTools, tables={"flights": FLIGHT, "users": USER, "reservations": RESERVATION},
                argument_models={"FlightInfo": FLIGHT_INFO, "Passenger": PASSENGER, "Payment": PAYMENT})
