"""End to end in a real browser (Debian's Chromium driven by Playwright) against a live server.

A user logs in, submits a real in-process endpoint through the form, watches the run finish, finds the
row on the leaderboard, switches tabs, sorts, exports, drills down into a transcript, downloads a split
and compares two submissions. Screenshots of the main pages at laptop and phone width land in
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from tests.prerequisites import missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
VIEWPORTS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 375, "height": 812}}
PASSWORD = "a-long-test-password-1"

if not os.path.exists(CHROMIUM):
    missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", module_level=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test's thread, which makes Django refuse ORM calls
    # there (the test's own, and the database teardown). They are still plain synchronous calls.
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server, settings):
    # The submission runs in the request that creates it, so the whole lifecycle happens in-process.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    context = browser.new_context(viewport=VIEWPORTS["laptop"], accept_downloads=True, base_url=live_server.url)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()
    assert not dialogs, f"a page opened a dialog (script injection?): {dialogs}"


@pytest.fixture
def wrong_sometimes_endpoint():
    from evaluation.baselines.server import PolicyServer
    from tests.toy_family import AddingPolicy

    server = PolicyServer(AddingPolicy(wrong_every=3)).start_background()
    yield server
    server.stop()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = page.url
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.evaluate("document.querySelector('details.transcript')?.setAttribute('open', '')")
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        # At phone width wide tables scroll inside their own box; the page itself never scrolls sideways.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} at {label} overflows horizontally by {overflow}px"
    page.set_viewport_size(VIEWPORTS["laptop"])


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))


def submit(page, name: str, base_url: str) -> int:
    page.goto("/submit/?benchmark=toy")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Organisation").fill("Browser Lab")
    page.get_by_label("Endpoint base URL").fill(base_url)
    page.get_by_label("Model id").fill("adder")
    page.get_by_role("button", name="Validate and queue").click()
    page.wait_for_url(re.compile(r".*/s/\d+/$"), timeout=60_000)
    return int(re.search(r"/s/(\d+)/", page.url).group(1))


@pytest.mark.django_db(transaction=True)
def test_submit_watch_browse_drill_down_export_compare(page, toy_benchmark, adder_endpoint, wrong_sometimes_endpoint, django_user_model):
    from playwright.sync_api import expect

    user = django_user_model.objects.create_user("researcher", password=PASSWORD)
    log_in(page, user)

    first = submit(page, "Adder <b>v1</b>", adder_endpoint.base_url)
    expect(page.locator("#status-text")).to_have_text("finished", timeout=60_000)
    expect(page.locator("#progress-percent")).to_have_text("100")
    expect(page.locator(".timeline li.done")).to_have_count(4)
    second = submit(page, "Sloppy adder", wrong_sometimes_endpoint.base_url)
    expect(page.locator("#status-text")).to_have_text("finished", timeout=60_000)

    # The leaderboard: both rows, the exact one first; the model name shows as text, not markup.
    page.goto("/b/toy/")
    rows = page.locator("table.board tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td.model a")).to_have_text("Adder <b>v1</b>")
    expect(page.locator(".chart .plotly-chart .main-svg").first).to_be_visible()  # plotly.js drew it
    shoot(page, "leaderboard")

    # Tabs: aria-current follows the selected scenario.
    page.get_by_role("navigation", name="Scenarios").get_by_role("link", name="Shouted").click()
    expect(page.get_by_role("link", name="Shouted")).to_have_attribute("aria-current", "page")
    expect(rows).to_have_count(2)

    # Sorting from the keyboard: focus the Accuracy header link and press Enter (ascending after best-first).
    header = page.locator("thead a.sort", has_text="Accuracy")
    header.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*sort=accuracy.*"))
    header = page.locator("thead a.sort", has_text="Accuracy")
    header.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*dir=asc.*"))
    expect(rows.first.locator("td.model a")).to_have_text("Sloppy adder")

    # Export the table as CSV.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["model"] for r in table] == ["Sloppy adder", "Adder <b>v1</b>"] and table[1]["accuracy"] == "1.0"

    # Drill down: failures only, a transcript rendered as a chat.
    page.goto(f"/s/{second}/")
    page.get_by_label("Failures only").check()
    page.get_by_role("button", name="Apply").click()
    failures = page.locator("li.result")
    expect(failures.first).to_be_visible()
    assert failures.count() == page.locator("li.result.bad").count() > 0
    failures.first.locator("summary").click()
    expect(failures.first.locator(".msg.role-user")).to_contain_text("WHAT IS" if "shouted" in failures.first.inner_text() else "What is")
    expect(failures.first.locator(".msg.role-assistant")).to_contain_text("The answer is")
    shoot(page, "submission")

    # Compare from the leaderboard: tick both rows.
    page.goto("/b/toy/")
    for sid in (first, second):
        page.locator(f"#pick-{sid}").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r".*/compare/\?ids=.*"))
    expect(page.locator("h2#instances")).to_be_visible()
    pair = page.locator("table").nth(1).locator("tbody tr").first
    cells = pair.locator("td.num").all_inner_texts()
    assert int(cells[0]) > 0 and int(cells[1]) == 0  # the exact adder wins where the sloppy one slipped
    shoot(page, "compare")

    # Splits: the home page links to the download page, which serves JSONL without test references.
    page.goto("/")
    shoot(page, "home")
    page.locator("section.bench", has_text="Toy addition").get_by_role("link", name="Download splits").click()
    page.wait_for_url(re.compile(r".*/b/toy/splits/$"))
    with page.expect_download() as download:
        page.locator("a[href$='/test.jsonl']").click()
    lines = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines() if line.strip()]
    assert len(lines) == 10 and all("sum" not in json.dumps(line.get("reference") or {}) for line in lines)


@pytest.mark.django_db(transaction=True)
def test_keyboard_and_escaping_on_both_families(page, monkeypatch):
    from playwright.sync_api import expect

    from leaderboard.models import Submission
    from tests.board_data import NextActionLike, ToolUseLike, add_submission, make_benchmark, register_families

    register_families(monkeypatch)
    subs = []
    for kind, slug in ((NextActionLike.kind, "opera-like"), (ToolUseLike.kind, "tools-like")):
        benchmark = make_benchmark(kind, slug)
        subs += [
            add_submission(benchmark, "</script><script>alert(1)</script>", 0.61, organisation="<img src=x onerror=alert(2)>", is_verified=True),
            add_submission(benchmark, "Runner-up 8B", 0.58, error_every=4),
            add_submission(benchmark, "Small 1B", 0.31, half_width=0.02, max_instances=3),
            add_submission(benchmark, "Majority baseline", 0.12, organisation="Actboard", is_baseline=True),
        ]
        for i in range(8):
            add_submission(benchmark, f"Model {i}", 0.2 + 0.03 * i, organisation=f"Lab {i}", results=False)

    page.goto("/b/tools-like/")
    expect(page.locator("table.board tbody tr").first.locator("td.model a")).to_have_text("</script><script>alert(1)</script>")
    expect(page.get_by_text("pass^k: all k trials succeed")).to_be_visible()
    shoot(page, "tool-use-leaderboard")

    # The first Tab stop is the skip link, visible when focused; it moves focus to the main content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # Search and filter controls are labelled; the filter narrows the table.
    page.get_by_label("Search model or organisation").fill("lab 3")
    page.get_by_label("Search model or organisation").press("Enter")
    expect(page.locator("table.board tbody tr")).to_have_count(1)

    page.goto("/b/opera-like/?scenario=no_persona")
    expect(page.get_by_role("link", name="No Persona")).to_have_attribute("aria-current", "page")
    shoot(page, "next-action-leaderboard")
    tool_sub = Submission.objects.get(benchmark__slug="tools-like", model__name="Runner-up 8B")
    page.goto(f"/s/{tool_sub.id}/")
    page.locator("li.result summary").first.click()
    expect(page.locator(".msg .call-name").first).to_have_text("→ cancel_order")
    shoot(page, "tool-use-submission")


# Every violation of the Content-Security-Policy, as the page itself sees it (console lines can be
# rate-limited or worded differently across Chromium versions; the event is the standard signal).
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));
"""


@pytest.mark.django_db(transaction=True)
def test_every_kind_of_page_works_under_the_content_security_policy(page, monkeypatch, django_user_model):
    from playwright.sync_api import expect

    from leaderboard.models import Submission
    from tests.board_data import NextActionLike, ToolUseLike, add_submission, make_benchmark, register_families

    register_families(monkeypatch)
    user = django_user_model.objects.create_user("csp", password=PASSWORD)
    boards = {kind: make_benchmark(kind, slug) for kind, slug in ((NextActionLike.kind, "opera-like"), (ToolUseLike.kind, "tools-like"))}
    subs = [add_submission(b, name, score, owner=user) for b in boards.values() for name, score in (("Leader", 0.6), ("Runner-up", 0.4))]
    running = add_submission(boards[ToolUseLike.kind], "Live", 0.5, owner=user, results=False)
    Submission.objects.filter(id=running.id).update(status=Submission.Status.RUNNING, progress_done=3, finished_at=None)

    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    visited: dict[str, list[str]] = {}

    def visit(url: str) -> None:
        response = page.goto(url)
        assert "default-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_load_state("networkidle")
        visited[url] = page.evaluate("window.__cspViolations")

    log_in(page, user)
    for url in ("/", "/b/tools-like/", "/b/opera-like/?scenario=no_persona", f"/s/{subs[0].id}/", f"/s/{subs[2].id}/",
                f"/compare/?ids={subs[2].id},{subs[3].id}", "/submit/", "/b/tools-like/splits/", "/accounts/", "/s/999999/"):
        visit(url)
        if url.startswith("/b/") and not url.endswith("splits/"):
            charts = page.locator(".plotly-chart")
            assert charts.count() >= 2, url
            for i in range(charts.count()):  # plotly.js drew every chart
                expect(charts.nth(i).locator(".main-svg").first).to_be_visible()

    # The API docs: Swagger UI from the sidecar's files, its init script from its own URL.
    visit("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Actboard API", timeout=15_000)
    expect(page.locator(".opblock").first).to_be_visible()
    visited["/api/docs/"] = page.evaluate("window.__cspViolations")

    # A new token's page: the field selects itself on focus (a static script, not an onfocus attribute).
    page.goto("/accounts/")
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_load_state("networkidle")
    page.locator("#raw-token").focus()
    assert page.evaluate("document.getSelection().toString() || (document.activeElement.selectionEnd - document.activeElement.selectionStart)")
    visited["token created"] = page.evaluate("window.__cspViolations")

    # The live progress bar polls the status JSON and reloads the page once the run has ended.
    visit(f"/s/{running.id}/")
    expect(page.locator("#progress-text")).to_have_text(f"3 / {running.progress_total}")
    Submission.objects.filter(id=running.id).update(progress_done=running.progress_total)
    expect(page.locator("#progress-percent")).to_have_text("100", timeout=10_000)
    Submission.objects.filter(id=running.id).update(status=Submission.Status.FINISHED)
    expect(page.locator("#status-text")).to_have_text("finished", timeout=10_000)
    page.wait_for_load_state("networkidle")
    visited["progress"] = page.evaluate("window.__cspViolations")

    page.context.clear_cookies()
    for url in ("/accounts/login/", "/accounts/signup/"):
        visit(url)

    violations = {url: found for url, found in visited.items() if found}
    assert not violations, violations
    assert not [line for line in console if "Content Security Policy" in line], console
