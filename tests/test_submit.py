"""The submit form (page and rules): queueing, messages, quota display, duplicates, params and the API key."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from leaderboard.submissions import config_hash
from leaderboard.forms import SubmissionForm
from leaderboard.models import ModelEntry, Submission

KEY = "sk-form-secret-0000"


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch):
    monkeypatch.setattr("leaderboard.submissions.dispatch_on_commit", lambda *a: None)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


def form_data(base_url: str, **overrides) -> dict:
    return {"benchmark": "toy", "name": "Adder", "base_url": base_url, "model_id": "adder", "scenarios": "plain",
            "concurrency": 2, "max_instances": 2, "temperature": "0", "max_tokens": 64, "is_public": "on", **overrides}


@pytest.mark.django_db
def test_submit_page_shows_quota_and_queues(client, alice, toy_benchmark, adder_endpoint, settings):
    settings.ACTBOARD_SUBMISSIONS_PER_DAY = 3
    client.force_login(alice)
    page = client.get(reverse("submit")).content.decode()
    assert "Submissions left today: <strong>3</strong>" in page
    response = client.post(reverse("submit"), form_data(adder_endpoint.base_url, api_key=KEY))
    submission = Submission.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("submission", args=[submission.id])
    assert submission.status == "queued" and submission.scenarios == ["plain"] and submission.concurrency == 2
    assert "Submissions left today: <strong>2</strong>" in client.get(reverse("submit")).content.decode()
    assert KEY not in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_errors_are_shown_on_the_page_and_the_key_is_not_echoed(client, alice, toy_benchmark, adder_endpoint):
    client.force_login(alice)
    page = client.post(reverse("submit"), form_data(adder_endpoint.base_url, model_id="gpt-x", api_key=KEY)).content.decode()
    assert "the endpoint does not list model &#x27;gpt-x&#x27;" in page
    assert KEY not in page and not Submission.objects.exists()


@pytest.mark.django_db
def test_quota_reached_message_on_the_page(client, alice, toy_benchmark, adder_endpoint, settings):
    settings.ACTBOARD_SUBMISSIONS_PER_DAY = 0
    client.force_login(alice)
    page = client.post(reverse("submit"), form_data(adder_endpoint.base_url)).content.decode()
    assert "Daily quota reached: 0 submissions per day." in page


@pytest.mark.django_db
def test_form_duplicate_check_uses_the_same_hash_as_the_submission(alice, toy_benchmark, adder_endpoint):
    form = SubmissionForm(form_data(adder_endpoint.base_url), user=alice)
    assert form.is_valid(), form.errors
    submission = form.save()
    assert config_hash(form.config, adder_endpoint.base_url) == submission.config_hash
    Submission.objects.filter(id=submission.id).update(status="finished")
    again = SubmissionForm(form_data(adder_endpoint.base_url, name="Renamed"), user=alice)
    assert not again.is_valid() and again.errors.as_data()["__all__"][0].code == "duplicate"


@pytest.mark.django_db
def test_generation_params_are_kept_per_submission(alice, toy_benchmark, adder_endpoint):
    first = SubmissionForm(form_data(adder_endpoint.base_url, temperature="0.2", seed="11"), user=alice)
    assert first.is_valid(), first.errors
    a = first.save()
    second = SubmissionForm(form_data(adder_endpoint.base_url, temperature="0.7"), user=alice)
    assert second.is_valid(), second.errors
    b = second.save()
    # A later submission with other params must not change what an earlier one re-runs with.
    assert a.model_id != b.model_id
    assert ModelEntry.objects.get(id=a.model_id).generation_params == {"temperature": 0.2, "max_tokens": 64, "seed": 11}
    assert b.config["generation_params"] == {"temperature": 0.7, "max_tokens": 64}
    third = SubmissionForm(form_data(adder_endpoint.base_url, temperature="0.2", seed="11", max_instances=3), user=alice)
    assert third.is_valid(), third.errors
    assert third.save().model_id == a.model_id  # same configuration: the same model entry


class _KeyEchoingEndpoint(BaseHTTPRequestHandler):
    """Fails every request with ``server.status`` and, like some real servers, quotes the key back in the body."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = f'{{"error": "bad key {self.headers.get("Authorization", "")}"}}'.encode()
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.django_db
@pytest.mark.parametrize("status, code, field, text", [(401, "auth", "api_key", "refused the API key"), (400, "bad_request", "base_url", "Bearer [redacted]")])
def test_endpoint_errors_never_echo_the_key(alice, toy_benchmark, status, code, field, text):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeyEchoingEndpoint)
    server.status = status
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        form = SubmissionForm(form_data(url, api_key=KEY), user=alice)
        assert not form.is_valid()
    finally:
        server.shutdown()
        server.server_close()
    error = form.errors.as_data()[field][0]
    assert error.code == code and text in error.message
    assert KEY not in str(form.errors)
