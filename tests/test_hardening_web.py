"""Web hardening: no existence leaks, no hidden reference in a tool-use verdict, log-in throttling, and
the security headers (Content-Security-Policy and friends) on pages that carry no inline script."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time

import pytest

from tests.prerequisites import missing
from django.core.cache import cache
from django.urls import reverse
from plotly.offline import get_plotlyjs

from datasets.tool_use.bundle import load_bundled
from datasets.tool_use.generator import SCRIPT_KEY
from evaluation.tau2.evaluator import public_verdict, verdict
from evaluation.tau2.grading import Grader
from evaluation.tau2.replay import prepared_environment
from evaluation.tool_use.evaluator import ToolUseEvaluator
from leaderboard.access import public_prediction
from leaderboard.models import ApiToken, Submission
from tests.board_data import ToolUseLike, add_submission, make_benchmark, register_families

PASSWORD = "a-long-test-password-1"


def body(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def same_page(a, a_id: int, b, b_id: int) -> bool:
    """Whether two responses read the same but for the submission id in them (and the per-response CSRF mask)."""
    def normal(response, pk: int) -> str:
        return re.sub(rf"(?<=[/#,\"]){pk}(?=[/,\"])", "N", CSRF_VALUE.sub("", body(response)))  # in a path, "#N" or a list
    return a.status_code == b.status_code and normal(a, a_id) == normal(b, b_id)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Users are made after this fixture; a real hasher would spend most of this module's time hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def families(monkeypatch):
    register_families(monkeypatch)


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password=PASSWORD)


@pytest.fixture
def mallory(django_user_model):
    return django_user_model.objects.create_user("mallory", password=PASSWORD)


# --- existence leaks -------------------------------------------------------------------------------


@pytest.fixture
def private_and_public(db, families, owner):
    benchmark = make_benchmark(ToolUseLike.kind, "tools-like")
    private = add_submission(benchmark, "Secret", 0.9, is_public=False, owner=owner)
    public = add_submission(benchmark, "Open", 0.5, owner=owner)
    return private, public


@pytest.mark.parametrize("action", ["cancel", "rerun"])
def test_actions_on_a_private_submission_answer_like_a_missing_one(client, private_and_public, mallory, action):
    private, public = private_and_public
    missing = Submission.objects.order_by("-id").first().id + 100
    client.force_login(mallory)
    on_private = client.post(f"/s/{private.id}/{action}/")
    on_missing = client.post(f"/s/{missing}/{action}/")
    assert on_private.status_code == 404 and same_page(on_private, private.id, on_missing, missing)
    # A visible submission of someone else: its existence is public, managing it is not allowed.
    assert client.post(f"/s/{public.id}/{action}/").status_code == 403
    Submission.objects.filter(id=private.id).update(status=Submission.Status.RUNNING)
    client.post(f"/s/{private.id}/cancel/")
    assert Submission.objects.get(id=private.id).status == Submission.Status.RUNNING


def test_unknown_action_is_not_found(client, private_and_public, owner):
    client.force_login(owner)
    assert client.post(f"/s/{private_and_public[0].id}/delete/").status_code == 404


@pytest.mark.parametrize("suffix", ["", "status.json", "?format=csv", "?format=json&table=scores"])
def test_private_pages_and_exports_answer_like_missing_ones(client, private_and_public, mallory, suffix):
    private, _ = private_and_public
    missing = Submission.objects.order_by("-id").first().id + 100
    for who in (None, mallory):
        if who:
            client.force_login(who)
        on_private, on_missing = client.get(f"/s/{private.id}/{suffix}"), client.get(f"/s/{missing}/{suffix}")
        assert on_private.status_code == 404 and same_page(on_private, private.id, on_missing, missing)


def test_compare_treats_private_ids_as_missing_ones(client, private_and_public):
    private, public = private_and_public
    missing = Submission.objects.order_by("-id").first().id + 100
    with_private = client.get("/compare/", {"ids": f"{public.id},{private.id}"})
    with_missing = client.get("/compare/", {"ids": f"{public.id},{missing}"})
    assert with_private.status_code == 400 and "Secret" not in body(with_private)
    # The page echoes the ids asked for; everything else reads the same.
    echoed = (body(r).replace(f'value="{public.id},{other}"', "") for r, other in ((with_private, private.id), (with_missing, missing)))
    assert next(echoed) == next(echoed)


# --- hidden references in tool-use verdicts --------------------------------------------------------


@pytest.fixture(scope="module")
def forbidden_run():
    """A real failed verdict: a generated infeasible airline task (its rule is the policy's, not the tool's)
    where the agent made the forbidden write and never said why it could not be done (a database diff, a
    forbidden call, no refusal)."""
    records = [r for split in load_bundled().splits for r in split.instances]
    record = next(r for r in records if r.scenario == "infeasible" and r.input["domain"] == "airline"
                  and r.reference[SCRIPT_KEY]["refusal_rule"] == "airline.baggage.remove")
    forbidden = record.reference["instructions"]["actions_should_not_taken"][0]
    task = ToolUseEvaluator().task(record)
    env = prepared_environment("airline", task)
    assert env.call(forbidden["tool_name"], forbidden["arguments"]).ok
    transcript = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": forbidden["tool_name"], "arguments": json.dumps(forbidden["arguments"])}}]},
        {"role": "assistant", "content": "Done."}]
    grade = Grader("airline").grade(task, transcript, env.db)
    assert grade.reward == 0 and all(grade.components[c].value == 0 for c in ("DB", "PROHIBITED_ACTION", "REFUSAL"))
    return record, verdict(grade, "user_stop")


def reference_values(record) -> list[str]:
    """Strings only the reference holds, as they appear in a full explanation."""
    forbidden = record.reference["instructions"]["actions_should_not_taken"][0]
    return ["(expected ", "forbidden call made", json.dumps(forbidden["arguments"], sort_keys=True)]


def test_public_verdict_keeps_the_agents_side_and_counts_the_rest(forbidden_run):
    record, prediction = forbidden_run
    public = public_verdict(prediction)
    assert public["success"] is False and public["stop_reason"] == "user_stop" and public["reward"] == 0
    assert public["components"]["PROHIBITED_ACTION"] == {"value": 0.0, "hidden_details": 1}
    assert public["components"]["REFUSAL"]["value"] == 0.0 and public["components"]["DB"]["hidden_details"] >= 1
    text = json.dumps(public)
    assert not [value for value in reference_values(record) if value in text]
    assert public_prediction("next_action", prediction) is prediction  # other families store no reference in a prediction


@pytest.fixture
def hidden_tool_use_run(families, owner, forbidden_run):
    """A public and a private submission on a real tool-use benchmark's hidden test split, every result
    holding the failed verdict above."""
    record, prediction = forbidden_run
    benchmark = make_benchmark(ToolUseLike.kind, "t2t-hidden", instances=3)
    public = add_submission(benchmark, "Agent", 0.4, owner=owner, correct=[False, False, False])
    private = add_submission(benchmark, "Agent", 0.4, owner=owner, correct=[False, False, False], is_public=False)
    benchmark.kind = "tool_use"
    benchmark.save(update_fields=["kind"])
    benchmark.splits.get(name="test").instances.update(reference=record.reference)
    for submission in (public, private):
        submission.results.update(prediction=prediction)
    return record, public, private


def test_hidden_references_reach_staff_only(client, admin_client, owner, hidden_tool_use_run):
    record, public, private = hidden_tool_use_run
    hidden = reference_values(record)
    for who, submission in ((None, public), (owner, public), (owner, private)):
        client.logout()
        if who:
            client.force_login(who)
        for query in ("", "?failures=1", "?format=csv", "?format=json"):
            text = body(client.get(f"/s/{submission.id}/{query}"))
            assert "PROHIBITED_ACTION" in text, f"{who} /s/{submission.id}/{query}"
            assert not [value for value in hidden if value in text], f"{who} /s/{submission.id}/{query}"
    staff = body(admin_client.get(f"/s/{public.id}/", {"failures": "1"}))
    assert all(value.replace('"', "&quot;") in staff for value in hidden)
    staff_export = json.loads(body(admin_client.get(f"/s/{private.id}/", {"format": "json"})))
    assert staff_export[0]["prediction"]["components"]["PROHIBITED_ACTION"]["details"]


def test_references_of_a_published_split_are_shown_to_everyone(client, hidden_tool_use_run):
    record, public, _ = hidden_tool_use_run
    public.split.__class__.objects.filter(id=public.split_id).update(labels_hidden=False)
    text = body(client.get(f"/s/{public.id}/", {"failures": "1"}))
    assert "forbidden call made" in text and "(expected " in text


# --- log-in throttling -----------------------------------------------------------------------------


def log_in(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture(params=["local-memory", "redis"])
def throttle_cache(request, settings):
    if request.param == "redis":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/9"}}
        try:
            cache.clear()
        except Exception as exc:  # noqa: BLE001 - any connection error means no Redis here
            missing(f"no Redis at 127.0.0.1:6379 ({exc})")
    yield
    cache.clear()


@pytest.mark.django_db
def test_five_failures_lock_the_account_with_a_clear_message(client, owner, throttle_cache):
    for _ in range(4):
        response = log_in(client, "owner", "wrong")
        assert response.status_code == 200 and "didn't match" in body(response)
    locked = log_in(client, "owner", "wrong")
    assert locked.status_code == 429 and 0 < int(locked["Retry-After"]) <= 900
    assert "Too many failed log-in attempts. Try again in 15 minutes." in body(locked)
    # The right password is not even checked while the lock holds, on the page or anywhere else.
    assert log_in(client, "owner", PASSWORD, address="198.51.100.1").status_code == 429
    assert not client.login(username="owner", password=PASSWORD)
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_unknown_accounts_are_locked_alike(client, owner, throttle_cache):
    responses = {}
    for name in ("owner", "nobody-here"):
        for _ in range(5):
            responses[name] = log_in(client, name, "wrong", address=f"192.0.2.{len(responses) + 1}")
    known, unknown = (CSRF_VALUE.sub("", body(responses[n])).replace(n, "NAME") for n in ("owner", "nobody-here"))
    assert responses["owner"].status_code == responses["nobody-here"].status_code == 429
    assert responses["owner"]["Retry-After"] == responses["nobody-here"]["Retry-After"] and known == unknown


@pytest.mark.django_db
def test_a_successful_log_in_clears_the_accounts_failures(client, owner, throttle_cache):
    for _ in range(4):
        log_in(client, "owner", "wrong")
    assert log_in(client, "owner", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert log_in(client, "owner", "wrong").status_code == 200
    assert log_in(client, "owner", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_an_address_spraying_many_accounts_is_locked(client, owner, settings, throttle_cache):
    for i in range(settings.ACTBOARD_LOGIN_FAILURES_PER_ADDRESS):
        log_in(client, f"guess-{i}", "wrong")
    assert log_in(client, "owner", PASSWORD).status_code == 429
    assert log_in(client, "owner", PASSWORD, address="198.51.100.9").status_code == 302  # another address


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_address_counts(client, owner, settings):
    settings.ACTBOARD_TRUSTED_PROXIES = 1
    for i in range(settings.ACTBOARD_LOGIN_FAILURES_PER_ADDRESS):
        # A client may prepend anything to X-Forwarded-For; the proxy appends the address it saw.
        client.post(reverse("login"), {"username": f"guess-{i}", "password": "x"}, REMOTE_ADDR="10.0.0.2",
                    HTTP_X_FORWARDED_FOR=f"203.0.113.{i}, 192.0.2.50")
    assert client.post(reverse("login"), {"username": "owner", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2",
                       HTTP_X_FORWARDED_FOR="192.0.2.50").status_code == 429
    assert client.post(reverse("login"), {"username": "owner", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2",
                       HTTP_X_FORWARDED_FOR="192.0.2.51").status_code == 302


@pytest.mark.django_db
def test_the_lock_lifts_after_the_lockout(client, owner, settings):
    settings.ACTBOARD_LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(5):
        log_in(client, "owner", "wrong")
    locked = log_in(client, "owner", PASSWORD)
    assert locked.status_code == 429 and "Try again in 1 minute." in body(locked)
    time.sleep(1.1)
    assert log_in(client, "owner", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_admin_log_in_is_throttled_too(client, admin_user):
    for _ in range(5):
        client.post("/admin/login/", {"username": admin_user.username, "password": "wrong"}, REMOTE_ADDR="203.0.113.8")
    response = client.post("/admin/login/?next=/admin/", {"username": admin_user.username, "password": "password"}, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200 and "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_signup_logs_in_through_the_throttled_backend(client):
    client.post(reverse("signup"), {"username": "dora", "password1": PASSWORD, "password2": PASSWORD})
    assert client.session["_auth_user_backend"] == "leaderboard.auth.ThrottledModelBackend"
    assert client.get(reverse("account")).status_code == 200


# --- security headers and inline code --------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style|<[^>]+\sstyle\s*=", re.I)


def test_security_headers(client, db):
    response = client.get("/")
    csp = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'"
    assert csp["style-src"].split()[0] == "'self'" and all(s.startswith("'sha256-") for s in csp["style-src"].split()[1:])
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'self'" and csp["form-action"] == "'self'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff" and response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin" and response["X-Frame-Options"] == "DENY"
    assert client.get("/api/benchmarks/")["Content-Security-Policy"] == response["Content-Security-Policy"]


def test_the_style_hashes_are_those_of_the_style_elements_plotly_adds(settings):
    bundle = get_plotlyjs()
    # An empty <style> it then fills through the CSSOM (addRelatedStyleRule), and maplibre's stylesheet.
    assert 'document.createElement("style"),n.setAttribute("id",i),n.appendChild(document.createTextNode(""))' in bundle
    maplibre = re.search(r"e\.textContent='([^'\\]*)',document\.head\.appendChild\(e\)", bundle).group(1)
    allowed = settings.ACTBOARD_CSP["style-src"].split()[1:]
    assert sorted(allowed) == sorted(f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'" for text in ("", maplibre))


@pytest.mark.django_db
def test_no_page_carries_inline_script_handler_or_style(client, families, owner):
    benchmark = make_benchmark(ToolUseLike.kind, "tools-like")
    subs = [add_submission(benchmark, name, score, owner=owner) for name, score in (("A", 0.6), ("B", 0.4))]
    Submission.objects.filter(id=subs[1].id).update(status=Submission.Status.RUNNING)  # the live progress bar
    client.force_login(owner)
    token = client.post(reverse("token-create"), {"name": "ci", "days": "30"})
    assert ApiToken.objects.filter(user=owner).exists(), body(token)
    pages = {"token created": token}
    for url in ("/", "/b/tools-like/", f"/s/{subs[0].id}/", f"/s/{subs[1].id}/", f"/compare/?ids={subs[0].id},{subs[1].id}",
                "/submit/", "/accounts/", "/b/tools-like/splits/", "/api/docs/", "/s/999999/"):
        pages[url] = client.get(url)
    client.logout()
    for url in ("/accounts/login/", "/accounts/signup/"):
        pages[url] = client.get(url)
    for name, response in pages.items():
        html = body(response)
        assert response["Content-Security-Policy"], name
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE):
            assert not pattern.search(html), f"{name}: {pattern.search(html).group(0)}"
    assert 'class="plotly-chart"' in body(pages["/b/tools-like/"])
    docs = body(pages["/api/docs/"])
    script = re.search(r'<script src="([^"]+script=[^"]*)"', docs).group(1).replace("&amp;", "&")
    init = client.get(script)
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript") and "SwaggerUIBundle" in body(init)
