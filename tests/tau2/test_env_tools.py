"""Tool schemas, argument checks, generic tools, initial state and database loading of the tau2 environments."""

from __future__ import annotations

import inspect
import json

import pytest

from datasets.base import DatasetError
from datasets.tau2 import domain_dir
from evaluation.canonical import canonical_hash
from evaluation.tau2.environment import calculate_expression, get_domain, load_environment

# tau2-bench's tools: name -> required parameters, in schema order.
RETAIL_TOOLS = {
    "calculate": ["expression"],
    "cancel_pending_order": ["order_id", "reason"],
    "exchange_delivered_order_items": ["order_id", "item_ids", "new_item_ids", "payment_method_id"],
    "find_user_id_by_name_zip": ["first_name", "last_name", "zip"],
    "find_user_id_by_email": ["email"],
    "get_order_details": ["order_id"],
    "get_product_details": ["product_id"],
    "get_item_details": ["item_id"],
    "get_user_details": ["user_id"],
    "list_all_product_types": [],
    "modify_pending_order_address": ["order_id", "address1", "address2", "city", "state", "country", "zip"],
    "modify_pending_order_items": ["order_id", "item_ids", "new_item_ids", "payment_method_id"],
    "modify_pending_order_payment": ["order_id", "payment_method_id"],
    "modify_user_address": ["user_id", "address1", "address2", "city", "state", "country", "zip"],
    "return_delivered_order_items": ["order_id", "item_ids", "payment_method_id"],
    "transfer_to_human_agents": ["summary"],
}
AIRLINE_TOOLS = {
    "book_reservation": ["user_id", "origin", "destination", "flight_type", "cabin", "flights", "passengers",
                         "payment_methods", "total_baggages", "nonfree_baggages", "insurance"],
    "calculate": ["expression"],
    "cancel_reservation": ["reservation_id"],
    "get_reservation_details": ["reservation_id"],
    "get_user_details": ["user_id"],
    "list_all_airports": [],
    "search_direct_flight": ["origin", "destination", "date"],
    "search_onestop_flight": ["origin", "destination", "date"],
    "send_certificate": ["user_id", "amount"],
    "transfer_to_human_agents": ["summary"],
    "update_reservation_baggages": ["reservation_id", "total_baggages", "nonfree_baggages", "payment_id"],
    "update_reservation_flights": ["reservation_id", "cabin", "flights", "payment_id"],
    "update_reservation_passengers": ["reservation_id", "passengers"],
    "get_flight_status": ["flight_number", "date"],
}
WRITE_TOOLS = {
    "retail": {"cancel_pending_order", "exchange_delivered_order_items", "modify_pending_order_address",
               "modify_pending_order_items", "modify_pending_order_payment", "modify_user_address",
               "return_delivered_order_items"},
    "airline": {"book_reservation", "cancel_reservation", "send_certificate", "update_reservation_baggages",
                "update_reservation_flights", "update_reservation_passengers"},
}
JSON_TYPES = {str: "string", int: "integer"}


@pytest.mark.parametrize("domain, tools", [("retail", RETAIL_TOOLS), ("airline", AIRLINE_TOOLS)])
def test_tool_names_and_required_parameters_are_taus(domain, tools):
    env = load_environment(domain)
    assert env.tool_names() == list(tools)
    for schema in env.tool_schemas():
        function = schema["function"]
        assert schema["type"] == "function" and function["description"]
        assert function["parameters"]["type"] == "object"
        assert function["parameters"].get("required", []) == tools[function["name"]]
    assert {name for name in tools if env.is_write(name)} == WRITE_TOOLS[domain]
    assert not env.is_write("no_such_tool")


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_each_tool_function_takes_exactly_its_schemas_parameters(domain):
    env = load_environment(domain)
    toolkit = get_domain(domain).toolkit
    for schema in env.tool_schemas():
        properties = schema["function"]["parameters"]["properties"]
        signature = inspect.signature(getattr(toolkit, schema["function"]["name"]))
        parameters = [p for p in signature.parameters.values() if p.name != "self"]
        assert [p.name for p in parameters] == list(properties)
        for parameter in parameters:
            expected = JSON_TYPES.get(parameter.annotation if not isinstance(parameter.annotation, str)
                                      else {"str": str, "int": int}.get(parameter.annotation), "array")
            assert properties[parameter.name]["type"] == expected, (schema["function"]["name"], parameter.name)


def test_airline_nested_arguments_reference_taus_models():
    book = next(s for s in load_environment("airline").tool_schemas() if s["function"]["name"] == "book_reservation")
    parameters = book["function"]["parameters"]
    assert set(parameters["$defs"]) == {"FlightInfo", "Passenger", "Payment"}
    assert parameters["$defs"]["Payment"]["properties"]["amount"]["type"] == "integer"
    assert parameters["properties"]["cabin"]["enum"] == ["business", "economy", "basic_economy"]


def test_unknown_tool_and_malformed_arguments_are_invalid():
    env = load_environment("retail")
    assert env.call("refund_everything", {}).output == "Error: Tool 'refund_everything' not found."
    assert env.call("refund_everything", {}).status == "invalid"
    broken = env.call("get_order_details", '{"order_id": "#W2378156"')
    assert broken.status == "invalid" and broken.output.startswith("Error: arguments of 'get_order_details' are not valid JSON")
    assert env.call("get_order_details", "[1]").status == "invalid"
    # An empty argument string is no arguments, answered as Python answers a call without them.
    assert env.call("get_order_details", "").output == (
        "Error: RetailTools.get_order_details() missing 1 required positional argument: 'order_id'")
    assert env.call("list_all_product_types", "").ok


def test_missing_and_unexpected_arguments_get_pythons_binding_errors():
    env = load_environment("retail")

    def cpython_error(**kwargs: object) -> str:
        def cancel_pending_order(order_id: str, reason: str) -> None:
            """Same parameters as the tool."""

        cancel_pending_order.__qualname__ = "RetailTools.cancel_pending_order"
        with pytest.raises(TypeError) as raised:
            cancel_pending_order(**kwargs)  # type: ignore[call-arg]
        return f"Error: {raised.value}"

    for arguments in ({}, {"order_id": "#W1"}, {"order_id": "#W1", "reason": "x", "note": 1}, {"note": 1}):
        result = env.call("cancel_pending_order", arguments)
        assert result.status == "invalid"
        assert result.output == cpython_error(**arguments)
    assert env.call("modify_user_address", {"user_id": "x"}).output.endswith(
        "missing 6 required positional arguments: 'address1', 'address2', 'city', 'state', 'country', and 'zip'")


def test_wrong_types_get_pydantics_error_for_the_parameter_model():
    env = load_environment("retail")
    result = env.call("return_delivered_order_items", {"order_id": 5, "item_ids": ["1", 2], "payment_method_id": "p"})
    assert result.status == "invalid"
    assert result.output == (
        "Error: 2 validation errors for parameters\n"
        "order_id\n  Input should be a valid string [type=string_type, input_value=5, input_type=int]\n"
        "    For further information visit https://errors.pydantic.dev/2.14/v/string_type\n"
        "item_ids.1\n  Input should be a valid string [type=string_type, input_value=2, input_type=int]\n"
        "    For further information visit https://errors.pydantic.dev/2.14/v/string_type")
    baggage = load_environment("airline").call(
        "update_reservation_baggages", {"reservation_id": "4WQ150", "total_baggages": "2", "nonfree_baggages": 1.5,
                                        "payment_id": "credit_card_1"})
    assert baggage.status == "invalid"
    assert "total_baggages\n  Input should be a valid integer [type=int_type, input_value='2', input_type=str]" in baggage.output
    assert "nonfree_baggages\n  Input should be a valid integer, got a number with a fractional part" in baggage.output


def test_nested_items_are_checked_as_taus_models_and_coerced():
    env = load_environment("airline")
    result = env.call("update_reservation_passengers", {"reservation_id": "4WQ150", "passengers": [
        {"first_name": "A", "last_name": "B", "dob": "1990-01-01"}, {"first_name": "A"}]})
    assert result.status == "invalid"
    assert result.output.startswith("Error: 2 validation errors for Passenger\nlast_name\n  Field required [type=missing, "
                                    "input_value={'first_name': 'A'}, input_type=dict]")
    # Payment amounts are integers in tau2's model: 250.0 is stored as 250; unknown keys are dropped.
    user = env.db["users"]["mia_li_3668"]
    booked = env.call("book_reservation", {
        "user_id": "mia_li_3668", "origin": "JFK", "destination": "SEA", "flight_type": "one_way", "cabin": "economy",
        "flights": [{"flight_number": "HAT136", "date": "2024-05-20"}, {"flight_number": "HAT039", "date": "2024-05-20"}],
        "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05", "seat": "12A"}],
        "payment_methods": [{"payment_id": "certificate_7504069", "amount": 250.0},
                            {"payment_id": "credit_card_4421486", "amount": "5"}],
        "total_baggages": 3, "nonfree_baggages": 0, "insurance": "no"})
    assert booked.ok, booked.output
    reservation = json.loads(booked.output)
    assert reservation["payment_history"] == [{"payment_id": "certificate_7504069", "amount": 250},
                                              {"payment_id": "credit_card_4421486", "amount": 5}]
    assert reservation["passengers"] == [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}]
    assert user["reservations"][-1] == "HATHAT"


def test_enum_values_are_left_to_the_tools_as_in_tau2():
    env = load_environment("airline")
    result = env.call("book_reservation", {
        "user_id": "mia_li_3668", "origin": "JFK", "destination": "SEA", "flight_type": "one_way", "cabin": "first",
        "flights": [], "passengers": [], "payment_methods": [], "total_baggages": 0, "nonfree_baggages": 0,
        "insurance": "no"})
    assert result.status == "tool_error"
    assert result.output.startswith("Error: 1 validation error for Reservation\ncabin\n  Input should be 'business', "
                                    "'economy' or 'basic_economy' [type=literal_error, input_value='first'")
    retail = load_environment("retail")
    assert retail.call("cancel_pending_order", {"order_id": "#W3361211", "reason": "changed my mind"}).output == (
        "Error: Invalid reason")


@pytest.mark.parametrize("expression, answer", [
    ("2 + 2", "4.0"), ("2+3*4/7", "3.71"), ("10", "10.0"), ("(100 - 16.63) * 2", "166.74"), ("7 // 2", "3.0"),
    ("-(3)", "-3.0"), ("2 ** 10", "1024.0"), ("0.1 + 0.2", "0.3"),
])
def test_calculate_rounds_like_taus_eval(expression, answer):
    assert calculate_expression(expression) == answer
    assert load_environment("airline").call("calculate", {"expression": expression}).output == answer


@pytest.mark.parametrize("expression, error", [
    ("abc", "Invalid characters in expression"), ("__import__('os')", "Invalid characters in expression"),
    ("1/0", "division by zero"), ("(2", "'(' was never closed (<string>, line 1)"),
    ("9 ** 9 ** 9", "Exponent too large"),
])
def test_calculate_refuses_what_it_cannot_evaluate(expression, error):
    result = load_environment("retail").call("calculate", {"expression": expression})
    assert (result.status, result.output) == ("tool_error", f"Error: {error}")


def test_transfer_to_human_agents():
    result = load_environment("retail").call("transfer_to_human_agents", {"summary": "wants a human"})
    assert (result.status, result.output) == ("ok", "Transfer successful")


def test_initialization_data_deep_merges_into_the_database():
    env = load_environment("retail")
    card = {"source": "gift_card", "id": "gift_card_1", "balance": 20}
    env.run_initialization({"agent_data": {
        "orders": {"#W3361211": {"status": "delivered"}},
        "users": {"yusuf_rossi_9620": {"payment_methods": {"gift_card_1": card}}},
    }}, None)
    assert env.db["orders"]["#W3361211"]["status"] == "delivered"
    assert env.db["orders"]["#W3361211"]["cancel_reason"] is None  # the rest of the record is kept
    methods = env.db["users"]["yusuf_rossi_9620"]["payment_methods"]
    assert methods["gift_card_1"] == {"source": "gift_card", "id": "gift_card_1", "balance": 20.0}
    assert len(methods) > 1
    assert load_environment("retail").db["orders"]["#W3361211"]["status"] == "pending"


def test_initialization_actions_run_in_order_and_name_the_one_that_fails():
    env = load_environment("retail")
    env.run_initialization(None, [{"env_type": "assistant", "func_name": "cancel_pending_order",
                                   "arguments": {"order_id": "#W3361211", "reason": "no longer needed"}}])
    assert env.db["orders"]["#W3361211"]["status"] == "cancelled"
    with pytest.raises(ValueError, match=r"initialization action 0 \(cancel_pending_order\) failed: "
                                         r"Error: Non-pending order cannot be cancelled"):
        env.run_initialization(None, [{"env_type": "assistant", "func_name": "cancel_pending_order",
                                       "arguments": {"order_id": "#W3361211", "reason": "no longer needed"}}])
    with pytest.raises(ValueError, match="unknown table 'shops'"):
        env.run_initialization({"agent_data": {"shops": {}}}, None)
    with pytest.raises(ValueError, match="key '#W3361211'.*1 validation error for Order\nstatus"):
        env.run_initialization({"agent_data": {"orders": {"#W3361211": {"status": "lost"}}}}, None)
    with pytest.raises(ValueError, match="no user database"):
        env.run_initialization({"user_data": {"x": 1}}, None)


def test_each_load_is_an_independent_copy():
    first, second = load_environment("airline"), load_environment("airline")
    assert first.db == second.db and first.db is not second.db
    before = first.db_hash()
    assert before == canonical_hash(first.db)
    assert first.call("cancel_reservation", {"reservation_id": "Z7GOZK"}).ok
    assert first.db_hash() != before == second.db_hash()
    assert load_environment("airline").db["reservations"]["Z7GOZK"].get("status") is None


def test_the_hash_follows_writes_and_initialization():
    env = load_environment("retail")
    initial = env.db_hash()
    assert env.call("get_order_details", {"order_id": "#W3361211"}).ok
    assert env.db_hash() == initial
    assert env.call("cancel_pending_order", {"order_id": "#W3361211", "reason": "no longer needed"}).ok
    after_cancel = env.db_hash()
    assert after_cancel == canonical_hash(env.db) != initial
    env.run_initialization({"agent_data": {"orders": {"#W2378156": {"status": "processed"}}}}, None)
    assert env.db_hash() == canonical_hash(env.db) != after_cancel


def test_policy_is_the_domains_markdown():
    assert load_environment("retail").policy == (domain_dir("retail") / "policy.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("mutate, message, field", [
    (lambda db: db.pop("orders"), "missing table 'orders'", None),
    (lambda db: db.update(shops={}), "unexpected table 'shops'", None),
    (lambda db: db["orders"]["#W2378156"]["items"][1].update(price="cheap"),
     "table 'orders', key '#W2378156': Input should be a valid number", "items[1].price"),
    (lambda db: db["users"]["yusuf_rossi_9620"].pop("email"),
     "table 'users', key 'yusuf_rossi_9620': Field required", "email"),
    (lambda db: db["orders"]["#W2378156"].update(status="lost"),
     "table 'orders', key '#W2378156': Input should be 'processed', 'pending'", "status"),
])
def test_a_bad_database_names_table_key_and_field(tmp_path, mutate, message, field):
    db = json.loads((domain_dir("retail") / "db.json").read_text(encoding="utf-8"))
    mutate(db)
    path = tmp_path / "db.json"
    path.write_text(json.dumps(db), encoding="utf-8")
    with pytest.raises(DatasetError) as raised:
        load_environment("retail", db_path=path)
    assert message in str(raised.value)
    assert raised.value.field_name == field
    assert raised.value.path == str(path)


def test_unknown_domain_is_refused():
    with pytest.raises(ValueError, match="unknown tau2 domain 'bank'"):
        load_environment("bank")
