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
