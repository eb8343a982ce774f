"""Sign-up, log in and out, the account page, and the API token lifecycle (create once, list, use, revoke, expire)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leaderboard.models import ApiToken, Benchmark, ModelEntry, Split, Submission


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.mark.django_db
def test_signup_logs_in_and_lands_on_the_account_page(client, django_user_model):
    response = client.post(reverse("signup"), {"username": "carol", "email": "c@example.org",
                                               "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"})
    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert django_user_model.objects.get(username="carol").email == "c@example.org"
    assert "Submissions left today" in client.get(reverse("account")).content.decode()


@pytest.mark.django_db
def test_signup_errors_are_shown(client, alice):
    page = client.post(reverse("signup"), {"username": "alice", "password1": "x", "password2": "y"}).content.decode()
    assert "A user with that username already exists." in page and "password fields didn" in page


@pytest.mark.django_db
def test_login_and_post_logout(client, alice):
    assert "Sign up" in client.get(reverse("login")).content.decode()
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302
    assert client.get(reverse("account")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # Django 5: logging out is a POST
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("account"))["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_account_lists_own_submissions_and_quota(client, alice, django_user_model, settings, toy_kind):
    settings.ACTBOARD_SUBMISSIONS_PER_DAY = 4
    benchmark = Benchmark.objects.create(slug="toy", name="Toy", kind="toy", version="1", main_metric="accuracy")
    split = Split.objects.create(benchmark=benchmark, name="test", version="1", sha256="0" * 64)
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    for owner, name, public in ((alice, "Alice <model>", False), (bob, "Bobs model", True)):
        model = ModelEntry.objects.create(name=name, base_url="https://api.example.com/v1", model_id="m", owner=owner)
        Submission.objects.create(model=model, benchmark=benchmark, split=split, owner=owner, is_public=public)
    client.force_login(alice)
    page = client.get(reverse("account")).content.decode()
    assert "Alice &lt;model&gt;" in page and "Bobs model" not in page and "private" in page
    assert re.search(r'id="quota-left">3<', page)


@pytest.mark.django_db
def test_token_is_shown_once_listed_used_and_revoked(client, alice):
    client.force_login(alice)
    created = client.post(reverse("token-create"), {"name": "ci", "days": "30"})
    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    raw = re.search(r'value="(acb_[^"]+)"', created.content.decode()).group(1)
    token = ApiToken.objects.get(user=alice)
    assert token.hint == raw[:10] and raw not in token.token_hash
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)

    page = client.get(reverse("account")).content.decode()
    assert raw not in page and f"{token.hint}…" in page and "ci" in page

    client.logout()
    me = client.get(reverse("api-me"), headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"
    token.refresh_from_db()
    assert token.last_used_at is not None

    client.force_login(alice)
    assert client.post(reverse("token-revoke", args=[token.id])).status_code == 302
    client.logout()
    revoked = client.get(reverse("api-me"), headers={"Authorization": f"Bearer {raw}"})
    assert revoked.status_code == 401 and revoked.json()["detail"] == f"API token 'ci' was revoked on {timezone.now():%Y-%m-%d}."


@pytest.mark.django_db
def test_token_messages_for_expired_unknown_and_empty(client, alice):
    token, raw = ApiToken.issue(alice, "old", days=1)
    ApiToken.objects.filter(id=token.id).update(expires_at=timezone.now() - timedelta(days=2))
    expired = client.get(reverse("api-me"), headers={"Authorization": f"Bearer {raw}"})
    assert expired.status_code == 401 and "API token 'old' expired on" in expired.json()["detail"] and "Create a new one" in expired.json()["detail"]
    unknown = client.get(reverse("api-me"), headers={"Authorization": "Bearer acb_nope"})
    assert unknown.json()["detail"] == "Unknown API token. Create one on your account page."
    empty = client.get(reverse("api-me"), headers={"Authorization": "Bearer "})
    assert empty.json()["detail"] == "The Authorization header has no token after 'Bearer'."
    alice.is_active = False
    alice.save()
    _, fresh = ApiToken.issue(alice, "new")
    assert client.get(reverse("api-me"), headers={"Authorization": f"Bearer {fresh}"}).json()["detail"] == "The account of this API token is disabled."


@pytest.mark.django_db
def test_cannot_revoke_someone_elses_token(client, alice, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    token, _ = ApiToken.issue(bob, "bobs")
    client.force_login(alice)
    assert client.post(reverse("token-revoke", args=[token.id])).status_code == 404
    assert client.get(reverse("token-create")).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None
