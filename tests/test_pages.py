"""Browse pages: home, leaderboards of both families, submission drill-down, compare, exports, escaping,
and a query count that does not grow with the number of submissions."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leaderboard import boards
from leaderboard.models import ModelEntry, Submission
from tests.board_data import NextActionLike, ToolUseLike, add_submission, make_benchmark, register_families

XSS = "</script><script>alert(1)</script>"


@pytest.fixture
def families(monkeypatch):
    register_families(monkeypatch)


@pytest.fixture
def next_action(db, families):
    return make_benchmark(NextActionLike.kind, "opera-like")


@pytest.fixture
def tool_use(db, families):
    return make_benchmark(ToolUseLike.kind, "tools-like")


@pytest.fixture
def boards_with_rows(next_action, tool_use):
    subs = {}
    for b in (next_action, tool_use):
        subs[b.slug] = [
            add_submission(b, "Leader-7B", 0.60, organisation="Lab A", is_verified=True),
            add_submission(b, "Close-3B", 0.57, organisation="Lab B", error_every=3),
            add_submission(b, "Far-1B", 0.20, organisation="Lab C", half_width=0.02),
            add_submission(b, "Majority", 0.10, organisation="Actboard", is_baseline=True),
        ]
    return subs


def text(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


def test_home_lists_benchmarks_with_scenarios_sizes_and_split_links(client, boards_with_rows):
    html = text(client.get("/"))
    for slug in ("opera-like", "tools-like"):
        assert f'href="/b/{slug}/"' in html and f'href="/b/{slug}/splits/"' in html
    assert "No Persona" in html and "Ambiguous" in html
    assert "test (6 instances, references hidden)" in html and "CC-BY-4.0" in html and "Ranked models" in html


@pytest.mark.parametrize("slug", ["opera-like", "tools-like"])
def test_every_tab_renders_ranked_rows(client, boards_with_rows, slug):
    benchmark = boards_with_rows[slug][0].benchmark
    for tab, _ in boards.tabs(benchmark):
        response = client.get(f"/b/{slug}/", {"scenario": tab})
        assert response.status_code == 200
        html = text(response)
        assert f'href="?scenario={tab}" aria-current="page"' in html
        assert html.index("Leader-7B") < html.index("Close-3B") < html.index("Far-1B") < html.index("Majority")
        assert "[55.0, 65.0]" in html  # the leader's CI
        for badge in ("badge baseline", "badge verified"):
            assert badge in html
        assert 'src="/plotly.min.js"' in html and 'src="/static/js/charts.js"' in html and 'class="plotly-chart"' in html


def test_tool_use_board_has_pass_k_curves_and_next_action_does_not(client, boards_with_rows):
    assert "pass^k: all k trials succeed" in text(client.get("/b/tools-like/"))
    assert "pass^k" not in text(client.get("/b/opera-like/"))
    assert "by scenario" in text(client.get("/b/opera-like/"))


def test_rows_within_the_leaders_ci_are_marked(boards_with_rows, tool_use):
    rows = {r.model.name: r for r in boards.board(tool_use, "overall")}
    assert rows["Close-3B"].near_leader and not rows["Far-1B"].near_leader and not rows["Leader-7B"].near_leader


def test_best_submission_per_model_unless_all(client, tool_use, families):
    first = add_submission(tool_use, "Twice", 0.30)
    add_submission(tool_use, "Twice", 0.50, model=first.model)
    add_submission(tool_use, "Other", 0.40)
    rows = boards.board(tool_use, "overall")
    assert [(r.model.name, r.scores["pass_1"].value) for r in rows] == [("Twice", 0.50), ("Other", 0.40)]
    assert len(boards.board(tool_use, "overall", all_submissions=True)) == 3
    assert text(client.get("/b/tools-like/", {"all": "1"})).count(">Twice</a>") == 2


def test_search_baseline_filter_and_sort(client, boards_with_rows):
    html = text(client.get("/b/opera-like/", {"q": "lab b"}))
    assert "Close-3B" in html and "Leader-7B" not in html
    html = text(client.get("/b/opera-like/", {"baselines": "0"}))
    assert "Majority" not in html and "Far-1B" in html
    html = text(client.get("/b/opera-like/", {"sort": "exact_match", "dir": "asc"}))
    assert html.index("Majority") < html.index("Far-1B") < html.index("Leader-7B")
    assert 'aria-sort="ascending"' in html
    html = text(client.get("/b/opera-like/", {"sort": "parse_error_rate"}))  # lower is better: best first
    assert html.index("Majority") < html.index("Leader-7B")


def test_user_text_is_escaped_in_table_and_chart(client, tool_use):
    add_submission(tool_use, XSS, 0.5, organisation="<img src=x onerror=alert(2)>")
    for url in ("/b/tools-like/", "/compare/?ids=1,1"):
        html = text(client.get(url))
        assert "<script>alert(1)" not in html and "<img src=x" not in html
    html = text(client.get("/b/tools-like/"))
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the table
    # The chart: HTML-escaped for plotly.js's label markup, and "</" escaped by plotly's JSON encoder.
    assert '"&lt;\\u002fscript&gt;&lt;script&gt;alert(1)&lt;\\u002fscript&gt; #' in html
    submission = Submission.objects.get(model__name=XSS)
    html = text(client.get(f"/s/{submission.id}/"))
    assert "<script>alert(1)" not in html and "&lt;/script&gt;" in html


def test_leaderboard_exports_parse(client, boards_with_rows):
    ModelEntry.objects.filter(name="Far-1B").update(name="=HYPERLINK(\"http://evil\")")
    rows = list(csv.DictReader(io.StringIO(text(client.get("/b/tools-like/", {"format": "csv", "scenario": "ambiguous"})))))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["model"] == "Leader-7B" and float(rows[0]["pass_1"]) == 0.6 and float(rows[0]["pass_1_ci_low"]) == pytest.approx(0.55)
    assert rows[2]["model"].startswith("'=")  # not a formula in a spreadsheet
    assert rows[1]["near_leader"] == "True"
    data = json.loads(text(client.get("/b/tools-like/", {"format": "json"})))
    assert data[0]["model"] == "Leader-7B" and data[0]["estimated_cost_usd"] == pytest.approx(0.152)
    response = client.get("/b/tools-like/", {"format": "json"})
    assert response["Content-Disposition"] == 'attachment; filename="tools-like-overall-leaderboard.json"'


def test_submission_page_config_scores_errors_and_chat(client, boards_with_rows):
    submission = boards_with_rows["tools-like"][1]
    html = text(client.get(f"/s/{submission.id}/"))
    for expected in ("api.example.com", "page-test-1", "b" * 64, "Dataset sha256", "Scores", "pass^4", "timeout",
                     "Endpoint timed out after 120 s", "→ cancel_order", "tool result", "msg role-assistant",
                     'id="progress"', "references of this test split are hidden"):
        assert expected in html, expected
    assert "&quot;order_id&quot;: &quot;#W0&quot;" in html  # tool arguments pretty-printed
    assert "gold_actions" not in html  # hidden test references


def test_drilldown_filters_and_pages(client, boards_with_rows):
    submission = boards_with_rows["opera-like"][0]
    assert text(client.get(f"/s/{submission.id}/")).count('class="result ') == 18
    failures = text(client.get(f"/s/{submission.id}/", {"failures": "1", "scenario": "full"}))
    assert failures.count('class="result ') == 3 and "✓ correct" not in failures
    assert "3 results" in failures
    many = add_submission(make_benchmark(NextActionLike.kind, "bigger", instances=30), "Many", 0.3)
    page2 = text(client.get(f"/s/{many.id}/", {"page": "2", "failures": "1"}))
    assert "page 2 of 3" in page2 and page2.count('class="result bad"') == 20 and "failures=1&amp;page=3" in page2
    errors = text(client.get(f"/s/{boards_with_rows['opera-like'][1].id}/", {"error": "timeout"}))
    assert errors.count('class="result ') == 6 and "error: timeout" in errors


def test_next_action_drilldown_shows_predicted_against_reference_to_staff_only(client, admin_client, boards_with_rows):
    submission = boards_with_rows["opera-like"][0]
    staff = text(admin_client.get(f"/s/{submission.id}/", {"failures": "1"}))
    assert "nav_bar.search_input" in staff and "product.link_1" in staff and 'class="differs"' in staff
    assert "The user wants to look at this item." in staff
    anonymous = text(client.get(f"/s/{submission.id}/", {"failures": "1"}))
    assert "nav_bar.search_input" in anonymous and "product.link_1</code>" not in anonymous
    export = list(csv.DictReader(io.StringIO(text(client.get(f"/s/{submission.id}/", {"format": "csv"})))))
    assert len(export) == 18 and "reference" not in export[0]
    staff_export = json.loads(text(admin_client.get(f"/s/{submission.id}/", {"format": "json"})))
    assert staff_export[0]["reference"]["type"] == "click"


def test_submission_scores_export(client, boards_with_rows):
    submission = boards_with_rows["tools-like"][0]
    rows = list(csv.DictReader(io.StringIO(text(client.get(f"/s/{submission.id}/", {"format": "csv", "table": "scores"})))))
    assert len(rows) == 5 * 6 and {r["scenario"] for r in rows} == {"standard", "ambiguous", "changing", "infeasible", "overall"}


def test_private_submission_is_not_found_for_others(client, tool_use, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="pw-12345-long")
    private = add_submission(tool_use, "Secret", 0.9, is_public=False, owner=owner)
    assert client.get(f"/s/{private.id}/").status_code == 404
    assert client.get(f"/s/{private.id}/status.json").status_code == 404
    assert "Secret" not in text(client.get("/b/tools-like/"))
    client.force_login(owner)
    assert client.get(f"/s/{private.id}/").status_code == 200


def test_compare_counts_wins_losses_ties(client, tool_use):
    # 6 instances x 4 scenarios; a right on 0-3, b right on 2-5: per scenario a wins 2, b wins 2, ties 2.
    a = add_submission(tool_use, "A", 0.6, correct=[True, True, True, True, False, False])
    b = add_submission(tool_use, "B", 0.4, correct=[False, False, True, True, True, True])
    c = add_submission(tool_use, "C", 0.5, scenarios=["standard"], correct=[True] * 6)
    record = boards.head_to_head(a, b)
    assert record.by_scenario == {s: (2, 2, 2) for s in ToolUseLike.scenarios} and record.total == (8, 8, 8)
    assert boards.head_to_head(a, c).by_scenario == {"standard": (0, 2, 4)}
    html = text(client.get("/compare/", {"ids": f"{a.id},{b.id},{c.id}"}))
    assert "A wins" in html and html.count('class="num best"') > 0
    rows = list(csv.DictReader(io.StringIO(text(client.get("/compare/", {"ids": f"{a.id},{b.id}", "format": "csv", "table": "instances"})))))
    assert len(rows) == 4 and rows[0]["a_wins"] == "2" and rows[0]["ties"] == "2"
    scores = json.loads(text(client.get("/compare/", {"ids": f"{a.id},{b.id}", "format": "json"})))
    assert {r["submission"] for r in scores} == {a.id, b.id}


def test_compare_needs_two_submissions_of_one_benchmark(client, next_action, tool_use):
    a = add_submission(next_action, "A", 0.6, results=False)
    b = add_submission(tool_use, "B", 0.4, results=False)
    assert client.get("/compare/").status_code == 200
    assert "different benchmarks" in text(client.get("/compare/", {"ids": f"{a.id},{b.id}"}))
    assert client.get("/compare/", {"ids": str(a.id)}).status_code == 400


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_submissions(client, tool_use):
    def counts() -> tuple[int, ...]:
        return tuple(_queries(client, url) for url in (
            "/b/tools-like/", "/b/tools-like/?scenario=ambiguous&all=1&sort=pass_3", "/b/tools-like/?format=json",
            "/api/benchmarks/tools-like/leaderboard/", "/",
        ))

    for i in range(3):
        add_submission(tool_use, f"m{i}", 0.1 * i, results=False)
    few = counts()
    for i in range(3, 30):
        model = ModelEntry.objects.filter(name=f"m{i % 3}").first() if i % 4 == 0 else None
        add_submission(tool_use, f"m{i}", 0.01 * i, results=False, model=model)
    assert counts() == few
    assert few[0] <= 6, few


def test_submission_page_query_count_does_not_grow_with_results(client, next_action):
    small = add_submission(next_action, "Small", 0.5)
    make_benchmark(NextActionLike.kind, "bigger", instances=60)
    from leaderboard.models import Benchmark

    big = add_submission(Benchmark.objects.get(slug="bigger"), "Big", 0.5, error_every=4)
    assert _queries(client, f"/s/{small.id}/") == _queries(client, f"/s/{big.id}/")


@pytest.mark.django_db
def test_a_real_run_shows_up_on_every_page(client, toy_benchmark, adder_endpoint):
    from tests.test_lifecycle import make_submission, run_all

    first = run_all(make_submission(toy_benchmark, adder_endpoint.base_url))
    second = run_all(make_submission(toy_benchmark, adder_endpoint.base_url, model_id="adder"))
    html = text(client.get("/b/toy/"))
    assert "model adder" in html and "Accuracy" in html
    html = text(client.get(f"/s/{first.id}/", {"scenario": "shouted"}))
    assert "WHAT IS 3 + 6?" in html and "The answer is 9." in html and "msg role-user" in html
    html = text(client.get("/compare/", {"ids": f"{first.id},{second.id}"}))
    assert html.count("<td class=\"num\">0</td>") >= 2  # no wins either way: both always right
    assert reverse("compare") == "/compare/"


def test_api_leaderboard_pages_its_rows(client, tool_use):
    for i in range(5):
        add_submission(tool_use, f"model {i}", 0.1 * i, results=False)
    url = "/api/benchmarks/tools-like/leaderboard/"
    first = client.get(url, {"limit": 2}).json()
    assert (first["count"], first["limit"], first["offset"]) == (5, 2, 0)
    assert [r["rank"] for r in first["rows"]] == [1, 2] and first["rows"][0]["model"] == "model 4"
    assert set(first["rows"][0]["scores"]) >= {"pass_1", "pass_2", "avg_turns"}
    rest = client.get(url, {"limit": 2, "offset": 4}).json()
    assert [r["rank"] for r in rest["rows"]] == [5]
    bad = client.get(url, {"limit": 0})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_page"


def test_cached_board_follows_runs_moderation_and_renames(client, tool_use):
    add_submission(tool_use, "Steady model", 0.4, results=False)
    assert "Steady model" in text(client.get("/b/tools-like/"))  # now cached
    newcomer = add_submission(tool_use, "Newcomer", 0.9, results=False)
    assert "Newcomer" in text(client.get("/b/tools-like/"))
    Submission.objects.filter(id=newcomer.id).moderate(is_hidden=True)
    assert "Newcomer" not in text(client.get("/b/tools-like/"))
    model = ModelEntry.objects.get(name="Steady model")
    model.name = "Renamed model"
    model.save()
    page = text(client.get("/b/tools-like/"))
    assert "Renamed model" in page and "Steady model" not in page


def test_tool_use_board_orders_by_a_chosen_pass_k(client, boards_with_rows):
    page = text(client.get("/b/tools-like/"))
    assert 'aria-label="Order by pass^k"' in page and "sort=pass_3" in page
    ordered = text(client.get("/b/tools-like/", {"sort": "pass_3", "dir": "desc"}))
    assert 'aria-current="true">pass^3' in ordered
    next_action = client.get("/b/opera-like/")
    assert next_action.status_code == 200 and 'aria-label="Order by pass^k"' not in text(next_action)


@pytest.mark.django_db
def test_the_board_states_what_the_benchmark_is_and_its_robustness_check(client):
    from datasets.registry import load_bundled
    from leaderboard.importing import import_benchmark

    benchmark = import_benchmark(load_bundled("trajectory2task"))
    page = client.get(reverse("leaderboard", args=[benchmark.slug])).content.decode()
    assert "About this benchmark" in page and "Robustness check: the scripted user answers a refusal" in page


@pytest.mark.django_db
def test_the_board_marks_rows_evaluated_with_structured_outputs(client, toy_benchmark, adder_endpoint):
    from leaderboard.models import Submission
    from tests.test_lifecycle import make_submission, run_all

    submission = run_all(make_submission(toy_benchmark, adder_endpoint.base_url, scenarios=["plain"]))
    config = submission.config
    config["evaluator"]["structured_output"] = True
    Submission.objects.filter(id=submission.id).update(config=config)
    page = client.get(reverse("leaderboard", args=[toy_benchmark.slug])).content.decode()
    assert 'class="badge schema"' in page
    rows = client.get(reverse("api-leaderboard", args=[toy_benchmark.slug])).json()["rows"]
    assert rows[0]["structured_output"] is True
