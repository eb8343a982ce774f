"""The JSON API: schema, submission rules and their messages, quotas, duplicates, cancel/re-run, visibility, moderation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, get_resolver, reverse

from leaderboard.api_urls import urlpatterns as api_patterns
from leaderboard.models import ApiToken, ModelEntry, Submission

SECRET_KEY = "sk-live-DO-NOT-SHOW-4242"


@pytest.fixture(autouse=True)
def enqueued(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("leaderboard.submissions.dispatch_on_commit", calls.append)
    return calls


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("mod", password="pw-mod-123", is_staff=True)


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {ApiToken.issue(user, 'test')[1]}"}


def payload(endpoint, **overrides) -> dict:
    return {"benchmark": "toy", "name": "Adder 1", "organisation": "Acme", "base_url": endpoint.base_url, "model_id": "adder",
            "scenarios": ["plain"], "max_instances": 3, "temperature": 0.0, "max_tokens": 64, **overrides}


def post(client, user, data, url=None):
    return client.post(url or reverse("api-submissions"), data, content_type="application/json", headers=bearer(user) if user else {})


# --- schema ------------------------------------------------------------------------------------------


def test_schema_validates_without_warnings_and_lists_every_route(tmp_path: Path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    documented = set(schema["paths"])
    routes = {"/api/" + str(p.pattern).replace("<int:pk>", "{id}").replace("<slug:slug>", "{slug}").replace("<str:split>", "{split}")
              for p in api_patterns if isinstance(p, URLPattern) and p.name not in ("api-schema", "api-docs")}
    assert routes == documented
    assert set(schema["paths"]["/api/submissions/{id}/"]) >= {"get", "patch"}
    assert set(schema["paths"]["/api/submissions/"]["post"]["responses"]) == {"201", "400", "409", "429"}
    assert "X-Quota-Remaining" in schema["paths"]["/api/submissions/"]["post"]["responses"]["201"]["headers"]
    assert schema["components"]["securitySchemes"]["ApiToken"] == {"type": "http", "scheme": "bearer"}


@pytest.mark.django_db
def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get(reverse("api-docs")).content.decode()
    assert "swagger-ui" in page and "drf_spectacular_sidecar" in page
    assert "cdn." not in page and "unpkg" not in page
    assert client.get(reverse("api-schema")).status_code == 200
    assert get_resolver().resolve("/api/docs/").url_name == "api-docs"


# --- creating ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_with_token_queues_and_reports_quota(client, alice, toy_benchmark, adder_endpoint, enqueued, settings):
    settings.ACTBOARD_SUBMISSIONS_PER_DAY = 5
    response = post(client, alice, payload(adder_endpoint, api_key=SECRET_KEY, top_p=0.9, seed=7))
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["X-Quota-Remaining"] == "4"
    assert body["status"] == "queued" and body["scenarios"] == ["plain"] and body["progress_total"] == 3
    assert body["config"]["generation_params"] == {"temperature": 0.0, "top_p": 0.9, "max_tokens": 64, "seed": 7}
    assert enqueued == [body["id"]]
    submission = Submission.objects.get(id=body["id"])
    assert submission.owner == alice and submission.model.api_key == SECRET_KEY


@pytest.mark.django_db
def test_api_key_appears_in_no_response_page_or_log(client, alice, toy_benchmark, adder_endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    created = post(client, alice, payload(adder_endpoint, api_key=SECRET_KEY))
    sid = created.json()["id"]
    client.force_login(alice)
    bodies = [created.content]
    for url in (reverse("api-submissions"), reverse("api-submission", args=[sid]), f"{reverse('api-submissions')}?mine=1",
                reverse("submission", args=[sid]), reverse("account"), reverse("api-me")):
        bodies.append(client.get(url).content)
    bodies.append(post(client, alice, payload(adder_endpoint, api_key=SECRET_KEY)).content)  # the duplicate's 409
    for body in bodies:
        assert SECRET_KEY.encode() not in body
    assert SECRET_KEY not in caplog.text
    stored = ModelEntry.objects.values_list("api_key_encrypted", flat=True).get()
    assert SECRET_KEY not in stored


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, status, code, field, message",
    [
        ({"base_url": None}, 400, "required", "base_url", "base_url: This field is required."),
        ({"benchmark": "nope"}, 400, "invalid_choice", "benchmark", "benchmark: Select a valid choice."),
        ({"scenarios": ["loud"]}, 400, "bad_scenario", "scenarios", "scenarios: unknown scenario(s) loud for toy (known: plain, shouted)"),
        ({"base_url": "http://127.0.0.1:9/v1"}, 400, "endpoint_unreachable", "base_url", "base_url: cannot connect to http://127.0.0.1:9/v1"),
        ({"model_id": "gpt-x"}, 400, "model_not_listed", "model_id", "model_id: the endpoint does not list model 'gpt-x'"),
        ({"temperature": 5}, 400, "max_value", "temperature", "temperature: Ensure this value is less than or equal to 2."),
    ],
)
def test_specific_validation_messages(client, alice, toy_benchmark, adder_endpoint, change, status, code, field, message):
    data = {k: v for k, v in {**payload(adder_endpoint), **change}.items() if v is not None}
    response = post(client, alice, data)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["detail"].startswith(message) and field in body["errors"]
    assert response["X-Quota-Remaining"] == "10" and not Submission.objects.exists()


@pytest.mark.django_db
def test_url_not_allowed_by_ssrf_rules(client, alice, toy_benchmark, adder_endpoint, settings):
    settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = False
    body = post(client, alice, payload(adder_endpoint)).json()
    assert body["code"] == "url_not_allowed"
    assert "resolves to a private, loopback or link-local address (127.0.0.1)" in body["errors"]["base_url"][0]


@pytest.mark.django_db
def test_duplicate_of_a_finished_submission_is_refused(client, alice, bob, toy_benchmark, adder_endpoint):
    first = post(client, alice, payload(adder_endpoint)).json()
    active = post(client, alice, payload(adder_endpoint))
    assert active.status_code == 409 and "already queued or running as submission #%d" % first["id"] in active.json()["detail"]
    Submission.objects.filter(id=first["id"]).update(status=Submission.Status.FINISHED)
    again = post(client, bob, payload(adder_endpoint, name="Someone else's name"))
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "duplicate" and f"was already evaluated as submission #{first['id']} (/s/{first['id']}/)" in body["detail"]
    # Another dataset slice, another parameter: not a duplicate.
    assert post(client, bob, payload(adder_endpoint, temperature=0.5)).status_code == 201
    assert post(client, bob, payload(adder_endpoint, max_instances=4)).status_code == 201


@pytest.mark.django_db
def test_private_finished_run_of_someone_else_is_not_revealed_as_duplicate(client, alice, bob, toy_benchmark, adder_endpoint):
    first = post(client, alice, payload(adder_endpoint, is_public=False)).json()
    Submission.objects.filter(id=first["id"]).update(status=Submission.Status.FINISHED)
    assert post(client, bob, payload(adder_endpoint)).status_code == 201


@pytest.mark.django_db
def test_quota_per_user_per_day_and_service_failures_do_not_count(client, alice, bob, toy_benchmark, adder_endpoint, settings):
    settings.ACTBOARD_SUBMISSIONS_PER_DAY = 2
    ids = [post(client, alice, payload(adder_endpoint, max_instances=n)).json()["id"] for n in (1, 2)]
    refused = post(client, alice, payload(adder_endpoint, max_instances=3))
    assert refused.status_code == 429 and refused["X-Quota-Remaining"] == "0"
    assert refused.json()["code"] == "quota" and refused.json()["detail"].startswith("Daily quota reached: 2 submissions per day.")
    assert post(client, bob, payload(adder_endpoint, max_instances=3)).status_code == 201  # per user
    Submission.objects.filter(id=ids[0]).update(status=Submission.Status.FAILED, error_code="heartbeat_lost")
    accepted = post(client, alice, payload(adder_endpoint, max_instances=4))
    assert accepted.status_code == 201 and accepted["X-Quota-Remaining"] == "0"


@pytest.mark.django_db
def test_me_reports_quota_and_anonymous_gets_a_clear_401(client, alice, settings):
    settings.ACTBOARD_SUBMISSIONS_PER_DAY = 3
    response = client.get(reverse("api-me"), headers=bearer(alice))
    assert response.json() == {"username": "alice", "is_staff": False, "submissions_per_day": 3, "quota_remaining": 3}
    assert response["X-Quota-Remaining"] == "3"
    anonymous = client.get(reverse("api-me"))
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    assert anonymous.json()["detail"] == "Authentication credentials were not provided."
    assert post(client, None, {}).status_code == 401


@pytest.mark.django_db
def test_session_auth_works_for_the_browser(client, alice, toy_benchmark, adder_endpoint):
    client.force_login(alice)
    response = client.post(reverse("api-submissions"), payload(adder_endpoint), content_type="application/json")
    assert response.status_code == 201


# --- cancel, re-run, visibility, moderation --------------------------------------------------------


@pytest.fixture
def alices(client, alice, toy_benchmark, adder_endpoint):
    """Alice's public submission and her private one (created directly; the rules are tested above)."""
    return (post(client, alice, payload(adder_endpoint)).json()["id"],
            post(client, alice, payload(adder_endpoint, is_public=False, max_instances=2)).json()["id"])


@pytest.mark.django_db
def test_cancel_and_rerun_by_owner(client, alice, alices, enqueued):
    public, _ = alices
    url = reverse("api-submission-cancel", args=[public])
    response = client.post(url, headers=bearer(alice))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(url, headers=bearer(alice))
    assert again.status_code == 409 and again.json()["detail"] == f"Submission #{public} is cancelled; only queued or running submissions can be cancelled."
    rerun = client.post(reverse("api-submission-rerun", args=[public]), headers=bearer(alice))
    assert rerun.status_code == 200 and rerun.json()["status"] == "queued" and enqueued[-1] == public
    busy = client.post(reverse("api-submission-rerun", args=[public]), headers=bearer(alice))
    assert busy.status_code == 409 and busy.json()["code"] == "active"


@pytest.mark.django_db
def test_cancel_and_rerun_permissions(client, bob, staff, alices):
    public, private = alices
    denied = client.post(reverse("api-submission-cancel", args=[public]), headers=bearer(bob))
    assert denied.status_code == 403 and denied.json()["detail"] == f"Only the owner of submission #{public} or staff can cancel it."
    assert client.post(reverse("api-submission-rerun", args=[public]), headers=bearer(bob)).status_code == 403
    hidden = client.post(reverse("api-submission-cancel", args=[private]), headers=bearer(bob))
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"No submission #{private}, or it is private."
    assert client.post(reverse("api-submission-cancel", args=[public])).status_code == 401
    assert client.post(reverse("api-submission-cancel", args=[private]), headers=bearer(staff)).status_code == 200


@pytest.mark.django_db
def test_private_results_visible_to_owner_and_staff_only(client, alice, bob, staff, alices):
    public, private = alices

    def ids(user, query="") -> set[int]:
        return {s["id"] for s in client.get(reverse("api-submissions") + query, headers=bearer(user) if user else {}).json()["results"]}

    assert ids(None) == ids(bob) == {public}
    assert ids(alice) == ids(staff) == {public, private}
    assert ids(bob, "?mine=1") == set() and ids(alice, "?mine=1&status=queued&benchmark=toy") == {public, private}
    assert client.get(reverse("api-submission", args=[private])).status_code == 404
    assert client.get(reverse("api-submission", args=[private]), headers=bearer(bob)).status_code == 404
    assert client.get(reverse("api-submission", args=[private]), headers=bearer(alice)).json()["is_public"] is False
    client.force_login(bob)
    assert client.get(reverse("submission", args=[private])).status_code == 404  # the page follows the same rule
    client.force_login(alice)
    assert client.get(reverse("submission", args=[private])).status_code == 200


@pytest.mark.django_db
def test_staff_moderation_and_owner_visibility_by_patch(client, alice, bob, staff, alices):
    public, _ = alices
    url = reverse("api-submission", args=[public])

    def patch(user, data):
        return client.patch(url, data, content_type="application/json", headers=bearer(user))

    moderated = patch(staff, {"is_flagged": True, "is_verified": True, "is_hidden": True})
    assert moderated.status_code == 200
    assert (moderated.json()["is_flagged"], moderated.json()["is_verified"], moderated.json()["is_hidden"]) == (True, True, True)
    assert public not in {s["id"] for s in client.get(reverse("api-submissions")).json()["results"]}  # hidden from the public
    refused = patch(alice, {"is_verified": True, "is_public": False})
    assert refused.status_code == 403 and refused.json()["detail"] == "Only staff can change is_verified."
    assert patch(alice, {"is_public": False}).json()["is_public"] is False
    assert patch(bob, {"is_public": True}).status_code == 404  # private and hidden: bob cannot see it at all
    assert patch(staff, {"is_flagged": "maybe"}).json()["code"] == "invalid"


@pytest.mark.django_db
def test_leaderboard_api_rejects_unknown_scenario(client, toy_benchmark):
    response = client.get(reverse("api-leaderboard", args=["toy"]), {"scenario": "loud"})
    assert response.status_code == 400 and response.json() == {"detail": "unknown scenario 'loud' (known: overall, plain, shouted)", "code": "bad_scenario"}
    assert client.get(reverse("api-leaderboard", args=["toy"])).json()["rows"] == []


@pytest.mark.django_db
def test_the_leaderboard_row_fast_path_matches_the_declared_fields(client, alice, toy_benchmark, adder_endpoint):
    from rest_framework import serializers as drf

    from leaderboard import boards
    from leaderboard.serializers import LeaderboardRowSerializer
    from tests.test_lifecycle import make_submission, run_all

    run_all(make_submission(toy_benchmark, adder_endpoint.base_url, scenarios=["plain"]))
    rows = boards.ranked(toy_benchmark, "overall")
    boards.fill_scores(rows, "overall")
    fast = LeaderboardRowSerializer(rows, many=True).data
    generic = [drf.Serializer.to_representation(LeaderboardRowSerializer(), row) for row in rows]
    assert fast == generic and set(fast[0]) == set(LeaderboardRowSerializer().fields)
