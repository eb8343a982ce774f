"""A person watches a real run: the browser submits through the form, a `celery worker` process picks the
submission up over Redis, and the page's progress bar climbs to 100% while the worker writes to
PostgreSQL."""

from __future__ import annotations

import re

import pytest

from datasets.registry import load_bundled
from leaderboard.importing import import_benchmark
from leaderboard.models import Submission
from tests.test_browser import CHROMIUM_ARGS, PASSWORD, browser, log_in  # noqa: F401 - `browser` is a fixture

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def test_progress_bar_climbs_to_100_while_a_worker_runs(browser, live_server, celery_worker_factory, baseline_endpoint,  # noqa: F811
                                                         django_user_model):
    from playwright.sync_api import expect

    import_benchmark(load_bundled("opera"))
    celery_worker_factory("web")
    baseline_endpoint.latency = 0.1  # 45 calls one at a time: a few seconds to watch
    user = django_user_model.objects.create_user("watcher", password=PASSWORD)
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    try:
        log_in(page, user)
        page.goto("/submit/?benchmark=opera")
        page.get_by_label("Name").fill("Majority, watched")
        page.get_by_label("Endpoint base URL").fill(baseline_endpoint.base_url)
        page.get_by_label("Model id").fill("opera-majority")
        page.get_by_label("Concurrency").fill("1")
        page.get_by_label("Max instances per scenario").fill("15")
        page.get_by_role("button", name="Validate and queue").click()
        page.wait_for_url(re.compile(r".*/s/\d+/$"), timeout=60_000)

        seen: set[int] = set()
        for _ in range(400):  # the page polls; sample what it shows until it is done
            seen.add(int(page.locator("#progress-percent").inner_text()))
            if 100 in seen:
                break
            page.wait_for_timeout(100)
        assert any(0 < p < 100 for p in seen), f"the bar never showed a run in progress: {sorted(seen)}"
        expect(page.locator("#status-text")).to_have_text("finished", timeout=60_000)
        expect(page.locator("#progress-percent")).to_have_text("100")
    finally:
        baseline_endpoint.latency = 0.0
        context.close()
    submission = Submission.objects.get()
    assert submission.status == Submission.Status.FINISHED and submission.progress_done == 45
    assert submission.worker  # claimed by the worker process, not run in the web request
