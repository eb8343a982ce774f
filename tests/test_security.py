"""SSRF rules, API keys at rest, escaping of user text, API token authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from evaluation.netguard import AddressPolicy
from leaderboard.endpoints import EndpointRejected, address_policy_from_settings, check_url, probe
from leaderboard.models import ApiToken, ModelEntry
from tests.fault_server import completion


@pytest.fixture
def ssrf_on(settings):
    settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = False
    settings.ACTBOARD_ALLOWED_ENDPOINT_HOSTS = []
    return settings


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1", "http://localhost/v1", "http://10.1.2.3/v1", "http://192.168.0.10/v1",
        "http://172.16.5.5/v1", "http://169.254.169.254/latest/meta-data", "http://[::1]:8000/v1", "http://0.0.0.0/v1",
        "http://[fe80::1]/v1", "http://100.64.0.1/v1", "http://100.100.100.200/latest/meta-data", "http://[::ffff:127.0.0.1]/v1",
        "http://[fd00:ec2::254]/v1", "http://198.18.0.1/v1", "http://224.0.0.1/v1",
    ],
)
def test_private_loopback_and_link_local_are_refused(ssrf_on, url):
    with pytest.raises(EndpointRejected) as info:
        check_url(url)
    assert info.value.code == "url_not_allowed"
    assert "private, loopback or link-local" in info.value.message


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "file:///etc/passwd", "http:///v1", "https://user:pw@example.com/v1"])
def test_malformed_urls_are_refused(ssrf_on, url):
    with pytest.raises(EndpointRejected) as info:
        check_url(url)
    assert info.value.code == "url_invalid"


def test_public_address_is_allowed(ssrf_on):
    check_url("http://93.184.216.34/v1")


def test_allow_list_and_setting_open_private_hosts(ssrf_on):
    ssrf_on.ACTBOARD_ALLOWED_ENDPOINT_HOSTS = ["llm.internal", "127.0.0.1"]
    check_url("http://127.0.0.1:8101/v1")
    ssrf_on.ACTBOARD_ALLOWED_ENDPOINT_HOSTS = []
    ssrf_on.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = True
    check_url("http://10.0.0.5/v1")


def test_allowed_hosts_in_cidr_notation_allow_a_network(ssrf_on):
    ssrf_on.ACTBOARD_ALLOWED_ENDPOINT_HOSTS = ["10.8.0.0/16", " LLM.internal "]
    policy = address_policy_from_settings()
    assert policy.allowed_hosts == {"llm.internal"} and not policy.allow_private
    check_url("http://10.8.3.4:8000/v1")
    with pytest.raises(EndpointRejected):
        check_url("http://10.9.0.1/v1")


@pytest.fixture
def loopback_is_public(ssrf_on):
    """Loopback 127.0.0.1 admitted the way an operator admits a network; 127.0.0.2 stays internal."""
    ssrf_on.ACTBOARD_ALLOWED_ENDPOINT_HOSTS = ["127.0.0.1/32"]
    return ssrf_on


def test_probe_does_not_follow_a_redirect_inside(loopback_is_public, fault_server):
    internal = fault_server(lambda n, r: (200, {}, completion()), host="127.0.0.2", models=("internal-only-model",))
    public = fault_server(lambda n, r: (200, {}, completion()), get_reply=(302, {"Location": f"{internal.base_url}/models"}, b"<secret page>"))
    with pytest.raises(EndpointRejected) as info:
        probe(public.base_url, "fault-model")
    assert info.value.code == "redirect" and "internal-only-model" not in info.value.message and "secret page" not in info.value.message
    assert internal.requests == []
    with pytest.raises(EndpointRejected) as info:
        probe(internal.base_url, "fault-model")
    assert info.value.code == "url_not_allowed" and internal.requests == []


def test_probe_refuses_a_name_rebound_inside_after_the_url_check(loopback_is_public, fault_server):
    internal = fault_server(lambda n, r: (200, {}, completion()), host="127.0.0.2")
    answers = iter(["127.0.0.1", "127.0.0.2"])  # the form's URL check, then the probe's own connection
    policy = AddressPolicy(allowed_networks=address_policy_from_settings().allowed_networks, resolver=lambda host, port: [next(answers)])
    with pytest.raises(EndpointRejected) as info:
        probe(f"http://model.example:{internal.port}/v1", "fault-model", policy=policy)
    assert info.value.code == "url_not_allowed" and "127.0.0.2" in info.value.message
    assert internal.requests == []


def test_probe_error_never_shows_the_key_the_endpoint_echoes(loopback_is_public, fault_server):
    key = "sk-proj-0a1b2c3d4e5f6a7b8c9d"
    server = fault_server(lambda n, r: (200, {}, completion()), get_reply=(400, {}, f'{{"error": "bad auth Bearer {key}"}}'.encode()))
    with pytest.raises(EndpointRejected) as info:
        probe(server.base_url, "fault-model", key)
    assert info.value.code == "bad_request" and key not in info.value.message and "Bearer [redacted]" in info.value.message


@pytest.mark.django_db
def test_api_key_is_encrypted_at_rest_and_round_trips():
    entry = ModelEntry(name="m", base_url="https://api.example.com/v1", model_id="m")
    entry.api_key = "sk-very-secret-value"
    entry.save()
    stored = ModelEntry.objects.values_list("api_key_encrypted", flat=True).get(id=entry.id)
    assert "sk-very-secret-value" not in stored and stored
    assert ModelEntry.objects.get(id=entry.id).api_key == "sk-very-secret-value"


@pytest.mark.django_db
def test_api_key_never_rendered_in_admin(admin_client):
    entry = ModelEntry(name="m", base_url="https://api.example.com/v1", model_id="m")
    entry.api_key = "sk-very-secret-value"
    entry.save()
    page = admin_client.get(reverse("admin:leaderboard_modelentry_change", args=[entry.id])).content.decode()
    assert "sk-very-secret-value" not in page and entry.api_key_encrypted not in page


@pytest.mark.django_db
def test_api_token_authentication_messages(client, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    token, raw = ApiToken.issue(user, "ci")
    url = reverse("api-submissions")
    assert client.post(url, {}, headers={"Authorization": "Bearer acb_nope"}).json()["detail"].startswith("Unknown API token")
    response = client.post(url, {}, content_type="application/json", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 400  # authenticated: the payload is what is wrong
    ApiToken.objects.filter(id=token.id).update(expires_at=timezone.now() - timedelta(days=1))
    response = client.post(url, {}, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    ApiToken.objects.filter(id=token.id).update(expires_at=None, revoked_at=timezone.now())
    assert "revoked" in client.post(url, {}, headers={"Authorization": f"Bearer {raw}"}).json()["detail"]
    assert client.post(url, {}).status_code in (401, 403)
    assert raw not in ApiToken.objects.values_list("token_hash", flat=True).get(id=token.id)
