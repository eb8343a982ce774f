"""Numbers in URLs and query strings past the database's integer range answer 404 or 400, never 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

HUGE = 10**30

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", [
    f"/s/{HUGE}/",
    f"/s/{HUGE}/status.json",
    f"/api/submissions/{HUGE}/",
    f"/compare/?ids={HUGE},{HUGE + 1}",
    f"/api/submissions/?limit={HUGE}&offset={HUGE}",
])
def test_out_of_range_ids_and_pages_are_not_server_errors(client, url):
    assert client.get(url).status_code in (200, 400, 404)


def test_api_pages_are_capped(client, toy_benchmark):
    body = client.get(reverse("api-leaderboard", args=[toy_benchmark.slug]), {"limit": 100000}).json()
    assert body["limit"] == 1000


@pytest.mark.parametrize("field, value", [("max_instances", 10**12), ("seed", 10**30), ("seed", -1), ("trials", 10**6),
                                          ("concurrency", 10**9), ("max_tokens", 10**12)])
def test_submission_numbers_out_of_bounds_are_refused_with_the_field(client, django_user_model, toy_benchmark, field, value):
    user = django_user_model.objects.create_user("bob", password="pw-bob-123")
    client.force_login(user)
    body = {"benchmark": toy_benchmark.slug, "name": "m", "base_url": "http://127.0.0.1:9/v1", "model_id": "m", field: value}
    response = client.post(reverse("api-submissions"), body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(f"{field}: Ensure this value is")
