"""Forms of the submit and account pages.

``SubmissionForm`` is the one validator of a new submission: the submit page renders it and the API
(``api.SubmissionListCreate``) validates its JSON body with it; the API's request schema is derived from
its fields (``api.SubmissionCreateSerializer``), so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db import transaction
from django.contrib.auth.forms import UserCreationForm
from django.urls import reverse
from django.utils import timezone

from leaderboard.access import visible_submissions
from leaderboard.endpoints import EndpointRejected, check_url, probe
from evaluation.errors import CodedError
from leaderboard.models import ApiToken, Benchmark, ModelEntry, Submission
from leaderboard.submissions import config_hash, config_snapshot, create_submission

# Failures caused by the service, not by the submitter: they do not use up the daily quota.
SERVICE_ERRORS = ("scoring_failed", "heartbeat_lost", "internal")
GENERATION_PARAMS = ("temperature", "top_p", "max_tokens", "seed", "presence_penalty", "frequency_penalty")
# Bounds that keep every number inside the database's columns and the endpoints' accepted ranges.
MAX_INSTANCES = 1_000_000
MAX_SEED = 2**31 - 1


def submissions_left_today(user) -> int:
    """Per-user daily quota (UTC day); submissions that failed because of the service do not count."""
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    used = Submission.objects.filter(owner=user, created_at__gte=start).exclude(error_code__in=SERVICE_ERRORS).count()
    return max(0, settings.ACTBOARD_SUBMISSIONS_PER_DAY - used)


class ScenarioListField(forms.Field):
    """Scenario slugs: a comma-separated string (the page) or a list of strings (the API)."""

    def to_python(self, value: Any) -> list[str]:
        if value in (None, ""):
            return []
        items = value if isinstance(value, list) else str(value).split(",") if isinstance(value, str) else None
        if items is None or not all(isinstance(item, str) for item in items):
            raise forms.ValidationError("Give scenario slugs as a list of strings or a comma-separated string.", code="invalid")
        return [item.strip() for item in items if item.strip()]


class SubmissionForm(forms.Form):
    benchmark = forms.ModelChoiceField(queryset=Benchmark.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(max_length=200, help_text="Shown on the leaderboard.")
    organisation = forms.CharField(max_length=200, required=False)
    base_url = forms.URLField(label="Endpoint base URL", max_length=500, assume_scheme="https",
                              help_text="OpenAI-compatible, e.g. https://api.example.com/v1")
    model_id = forms.CharField(label="Model id", max_length=200, help_text="As the endpoint's /models lists it.")
    api_key = forms.CharField(label="API key", required=False, widget=forms.PasswordInput(render_value=False),
                              help_text="Optional. Encrypted at rest and never shown again.")
    scenarios = ScenarioListField(required=False, help_text="Comma-separated scenario slugs; empty for all.")
    trials = forms.IntegerField(min_value=1, max_value=8, required=False, help_text="Default: the benchmark's.")
    concurrency = forms.IntegerField(min_value=1, max_value=32, initial=4, required=False, help_text="Requests in flight (default 4).")
    max_instances = forms.IntegerField(min_value=1, max_value=MAX_INSTANCES, required=False, label="Max instances per scenario",
                                       help_text="Optional: a partial run on the first N instances.")
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.0, required=False)
    top_p = forms.FloatField(min_value=0, max_value=1, required=False)
    max_tokens = forms.IntegerField(min_value=16, max_value=32768, initial=512, required=False)
    seed = forms.IntegerField(min_value=0, max_value=MAX_SEED, required=False, help_text="Sent to endpoints that support sampling seeds.")
    presence_penalty = forms.FloatField(min_value=-2, max_value=2, required=False)
    frequency_penalty = forms.FloatField(min_value=-2, max_value=2, required=False)
    is_public = forms.BooleanField(required=False, initial=True, label="Show on the public leaderboard")

    def __init__(self, *args: Any, user=None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user
        self.config: dict[str, Any] = {}

    @property
    def quota_left(self) -> int | None:
        return submissions_left_today(self.user) if self.user is not None else None

    def clean_concurrency(self) -> int:
        return self.cleaned_data.get("concurrency") or 4

    def generation_params(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {k: d[k] for k in GENERATION_PARAMS if d.get(k) is not None}

    def clean(self) -> dict[str, Any]:
        # Cheapest checks first: the endpoint probe is a network call and runs last.
        data = super().clean()
        if self.errors:
            return data
        if self.quota_left == 0:
            raise forms.ValidationError(
                f"Daily quota reached: {settings.ACTBOARD_SUBMISSIONS_PER_DAY} submissions per day. "
                "Submissions that failed because of the service do not count; the quota resets at 00:00 UTC.",
                code="quota",
            )
        benchmark: Benchmark = data["benchmark"]
        if missing := benchmark.missing_simulator_message:
            self.add_error("benchmark", forms.ValidationError(missing, code="no_simulator"))
            return data
        split = benchmark.splits.filter(name="test").first()
        if split is None:
            self.add_error("benchmark", forms.ValidationError(f"{benchmark.slug} has no test split to evaluate.", code="no_split"))
            return data
        try:
            check_url(data["base_url"])
        except EndpointRejected as err:
            self.add_error("base_url", forms.ValidationError(err.message, code=err.code))
            return data
        candidate = ModelEntry(base_url=data["base_url"], model_id=data["model_id"], generation_params=self.generation_params())
        try:
            self.config = config_snapshot(
                candidate, benchmark, split, scenarios=data["scenarios"], trials=data.get("trials"), max_instances=data.get("max_instances")
            )
        except CodedError as err:
            self.add_error("scenarios", forms.ValidationError(err.message, code=err.code))
            return data
        self._refuse_duplicate(config_hash(self.config, data["base_url"]))
        try:
            probe(data["base_url"], data["model_id"], data.get("api_key") or "")
        except EndpointRejected as err:
            field = {"model_not_listed": "model_id", "auth": "api_key"}.get(err.code, "base_url")
            self.add_error(field, forms.ValidationError(self._redact(err.message), code=err.code))
        return data

    def _refuse_duplicate(self, config_hash: str) -> None:
        """Same endpoint, model, params and dataset version as a run the user can see: point to it instead."""
        if self.user is None:
            return
        earlier = (
            visible_submissions(self.user)
            .filter(config_hash=config_hash, status__in=[Submission.Status.FINISHED, *Submission.ACTIVE])
            .order_by("-created_at")
            .values_list("id", "status")
            .first()
        )
        if earlier:
            pk, state = earlier
            verb = "is already queued or running" if state in Submission.ACTIVE else "was already evaluated"
            raise forms.ValidationError(
                f"Duplicate: this endpoint, model, generation parameters and dataset version {verb} as submission "
                f"#{pk} ({reverse('submission', args=[pk])}). Change a parameter or re-run that submission instead.",
                code="duplicate",
            )

    def _redact(self, message: str) -> str:
        # An endpoint may echo the key in its error body; it must not come back in our response.
        key = self.cleaned_data.get("api_key")
        return message.replace(key, "***") if key else message

    @transaction.atomic
    def save(self) -> Submission:
        d = self.cleaned_data
        params = self.generation_params()
        # One entry per distinct configuration: a later submission must not change the params of an earlier
        # one, which would then re-run with settings other than its snapshot.
        model = next(
            (m for m in ModelEntry.objects.filter(owner=self.user, name=d["name"], base_url=d["base_url"], model_id=d["model_id"])
             if m.generation_params == params),
            None,
        ) or ModelEntry(owner=self.user, name=d["name"], base_url=d["base_url"], model_id=d["model_id"], generation_params=params)
        if d.get("api_key"):
            model.api_key = d["api_key"]
        model.organisation = d["organisation"]
        model.save()
        return create_submission(
            model=model, benchmark=d["benchmark"], scenarios=d["scenarios"], trials=d.get("trials"),
            concurrency=d["concurrency"], max_instances=d.get("max_instances"), owner=self.user, is_public=d["is_public"],
        )


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Optional, for notices about your submissions.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class TokenForm(forms.Form):
    EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]

    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI'.")
    days = forms.TypedChoiceField(label="Expires after", choices=EXPIRY_CHOICES, coerce=int, initial=90)

    def save(self, user) -> tuple[ApiToken, str]:
        return ApiToken.issue(user, self.cleaned_data["name"], days=self.cleaned_data["days"])
