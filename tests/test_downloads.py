"""Split downloads (page, JSONL, parquet, manifest) and the rule that hidden test references never leave."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pyarrow.parquet as pq
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from datasets.base import BenchmarkData, Instance, ScenarioInfo, SplitData
from leaderboard.submissions import create_submission
from worker import lifecycle
from leaderboard.importing import import_benchmark
from leaderboard.models import ModelEntry, Split

HIDDEN = "HIDDEN-REF-7f3a"  # in every hidden reference; must appear in no response


def canary_data(n: int = 6) -> BenchmarkData:
    """The toy benchmark with markers in the references: 'VISIBLE-REF-i' on train, 'HIDDEN-REF-…-i' on test."""

    def records(prefix: str, marker: str) -> list[Instance]:
        return [
            Instance(key=f"{prefix}{i}", input={"a": i, "b": 2 * i}, reference={"sum": 3 * i, "note": f"{marker}-{i}"},
                           scenario="shouted" if i == n - 1 else "")
            for i in range(n)
        ]

    return BenchmarkData(
        slug="toy", name="Toy addition", kind="toy", version="2", license="CC0", description="Adds numbers.",
        citation="@misc{toy, title={Toy addition}}", homepage="https://example.org/toy",
        scenarios=[ScenarioInfo("plain", "Plain"), ScenarioInfo("shouted", "Shouted")],
        splits=[SplitData("train", records("t", "VISIBLE-REF")), SplitData("test", records("q", HIDDEN), labels_hidden=True)],
    )


@pytest.fixture
def canary_benchmark(db, toy_kind):
    return import_benchmark(canary_data())


def streamed(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.django_db
def test_visible_split_jsonl_is_canonical_and_hashes_to_the_split_sha(client, canary_benchmark):
    split = canary_benchmark.splits.get(name="train")
    response = client.get(reverse("split-jsonl", args=["toy", "train"]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="toy-train.jsonl"'
    body = streamed(response)
    assert hashlib.sha256(body).hexdigest() == split.sha256  # the file is the split the submissions were scored on
    rows = [json.loads(line) for line in body.splitlines()]
    assert rows[0] == {"key": "t0", "scenario": "", "input": {"a": 0, "b": 0}, "reference": {"sum": 0, "note": "VISIBLE-REF-0"}}


@pytest.mark.django_db
def test_hidden_split_serves_inputs_only(client, canary_benchmark):
    body = streamed(client.get(reverse("split-jsonl", args=["toy", "test"])))
    rows = [json.loads(line) for line in body.splitlines()]
    assert len(rows) == 6 and all(set(r) == {"key", "scenario", "input"} for r in rows)
    assert HIDDEN.encode() not in body

    parquet = client.get(reverse("split-parquet", args=["toy", "test"]))
    table = pq.read_table(io.BytesIO(streamed(parquet)))
    assert table.column("reference").null_count == 6
    assert json.loads(table.column("input")[1].as_py()) == {"a": 1, "b": 2}


@pytest.mark.django_db
def test_parquet_of_a_visible_split_round_trips(client, canary_benchmark):
    table = pq.read_table(io.BytesIO(streamed(client.get(reverse("split-parquet", args=["toy", "train"])))))
    assert table.column_names == ["key", "scenario", "input", "reference"]
    assert [json.loads(v) for v in table.column("reference").to_pylist()][2] == {"sum": 6, "note": "VISIBLE-REF-2"}


@pytest.mark.django_db
def test_manifest_lists_counts_hashes_licence_and_citation(client, canary_benchmark):
    manifest = client.get(reverse("splits-manifest", args=["toy"])).json()
    assert manifest["format"] == "actboard-splits/1"
    assert manifest["benchmark"]["version"] == "2" and manifest["benchmark"]["license"] == "CC0"
    assert manifest["benchmark"]["citation"].startswith("@misc{toy")
    splits = {s["name"]: s for s in manifest["splits"]}
    # Five instances under every scenario plus one for "shouted" only.
    assert splits["test"]["counts"] == {"plain": 5, "shouted": 6} and splits["test"]["instances"] == 6
    assert splits["test"]["labels_hidden"] is True and splits["test"]["references_included"] is False
    assert splits["train"]["sha256"] == Split.objects.get(name="train").sha256
    test_file = splits["test"]["files"]["jsonl"]
    body = streamed(client.get(test_file["path"]))
    assert hashlib.sha256(body).hexdigest() == test_file["sha256"]
    assert splits["train"]["files"]["parquet"]["path"].endswith("/b/toy/splits/train.parquet")


@pytest.mark.django_db
def test_splits_page_links_every_download(client, canary_benchmark):
    page = client.get(reverse("splits", args=["toy"])).content.decode()
    for name in ("train", "test"):
        assert reverse("split-jsonl", args=["toy", name]) in page and reverse("split-parquet", args=["toy", name]) in page
    assert reverse("splits-manifest", args=["toy"]) in page and "inputs only" in page
    assert client.get(reverse("split-jsonl", args=["toy", "nope"])).status_code == 404
    assert client.get(reverse("splits", args=["nope"])).status_code == 404


@pytest.mark.django_db
def test_split_instances_api_pages_and_hides_references(client, canary_benchmark):
    visible = client.get(reverse("api-split-instances", args=["toy", "train"]), {"limit": 2}).json()
    assert visible["count"] == 6 and len(visible["results"]) == 2 and visible["next"]
    assert visible["results"][1]["reference"] == {"sum": 3, "note": "VISIBLE-REF-1"}
    hidden = client.get(reverse("api-split-instances", args=["toy", "test"])).json()
    assert hidden["count"] == 6 and all("reference" not in r for r in hidden["results"])


def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry, prefix + str(entry.pattern)


@pytest.mark.django_db
def test_no_hidden_reference_leaves_the_server(client, django_user_model, canary_benchmark, adder_endpoint):
    """Crawl every download, API and page route with every argument it can take, anonymously and as the
    owner of a finished submission on the hidden split; no response may contain a hidden reference."""
    owner = django_user_model.objects.create_user("owner", password="pw-owner-123")
    model = ModelEntry.objects.create(name="adder", base_url=adder_endpoint.base_url, model_id="adder", owner=owner)
    public = create_submission(model=model, benchmark=canary_benchmark, enqueue=False, owner=owner)
    private = create_submission(model=model, benchmark=canary_benchmark, enqueue=False, owner=owner, is_public=False, trials=2)
    for submission in (public, private):
        lifecycle.run_submission(submission.id, lifecycle.run_inline())
    assert all(s.status == "finished" for s in type(public).objects.filter(id__in=[public.id, private.id]))
    values = {"slug": ["toy"], "split": ["train", "test"], "pk": [public.id, private.id], "action": ["cancel"]}

    def expand(route: str) -> list[str]:
        urls = [route]
        for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
            urls = [re.sub(rf"<(?:\w+:)?{name}>", str(v), u, count=1) for u in urls for v in values[name]]
        return ["/" + u.lstrip("^").rstrip("$") for u in urls]

    crawled: set[str] = set()
    skipped: list[str] = []
    for pattern, route in _patterns(get_resolver()):
        if route.startswith(("admin/", "accounts/password", "accounts/reset", "accounts/logout")):
            continue
        params = set(re.findall(r"<(?:\w+:)?(\w+)>", route))
        if not params <= set(values) or "(?P" in route:
            skipped.append(route)
            continue
        for url in expand(route):
            for query in ("", "?failures=1", "?scenario=plain", "?limit=1000", "?format=json"):
                for who in (None, owner):
                    if who:
                        client.force_login(who)
                    else:
                        client.logout()
                    body = streamed(client.get(url + query))
                    assert HIDDEN.encode() not in body, f"{url}{query} leaks a hidden reference"
                    crawled.add(route)
    # Every route of the API and the downloads was crawled (a new one must be crawlable here too).
    own = {route for _, route in _patterns(get_resolver()) if route.startswith(("api/", "b/<slug:slug>/splits"))}
    assert own <= crawled, (own - crawled, skipped)
    assert "s/<int:pk>/" in crawled and "b/<slug:slug>/" in crawled
