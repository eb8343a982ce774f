from django import forms
from django.conf import settings
from django.utils import timezone

from leaderboard import jobs
from leaderboard.endpoints import EndpointRejected, probe
from leaderboard.models import Benchmark, ModelEntry, Submission


def submissions_left_today(user) -> int:
    """Per-user daily quota; submissions that failed because of the service do not count."""
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    used = (
        Submission.objects.filter(owner=user, created_at__gte=start)
        .exclude(error_code__in=["scoring_failed", "heartbeat_lost", "internal"])
        .count()
    )
    return max(0, settings.ACTBOARD_SUBMISSIONS_PER_DAY - used)


class SubmissionForm(forms.Form):
    benchmark = forms.ModelChoiceField(queryset=Benchmark.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(max_length=200, help_text="Shown on the leaderboard.")
    organisation = forms.CharField(max_length=200, required=False)
    base_url = forms.URLField(label="Endpoint base URL", max_length=500, assume_scheme="https",
                              help_text="OpenAI-compatible, e.g. https://api.example.com/v1")
    model_id = forms.CharField(label="Model id", max_length=200, help_text="As the endpoint's /models lists it.")
    api_key = forms.CharField(label="API key", required=False, widget=forms.PasswordInput(render_value=False),
                              help_text="Optional. Encrypted at rest and never shown again.")
    scenarios = forms.CharField(required=False, help_text="Comma-separated scenario slugs; empty for all.")
    trials = forms.IntegerField(min_value=1, max_value=8, required=False, help_text="Default: the benchmark's.")
    concurrency = forms.IntegerField(min_value=1, max_value=32, initial=4)
    max_instances = forms.IntegerField(min_value=1, required=False, label="Max instances per scenario",
                                       help_text="Optional: a partial run on the first N instances.")
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.0, required=False)
    max_tokens = forms.IntegerField(min_value=16, max_value=32768, initial=512, required=False)
    is_public = forms.BooleanField(required=False, initial=True, label="Show on the public leaderboard")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_scenarios(self) -> list[str]:
        return [s.strip() for s in self.cleaned_data["scenarios"].split(",") if s.strip()]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if self.user is not None and submissions_left_today(self.user) <= 0:
            raise forms.ValidationError(f"Daily quota reached ({settings.ACTBOARD_SUBMISSIONS_PER_DAY} submissions per day).", code="quota")
        try:
            jobs.scenario_slugs(data["benchmark"], data["scenarios"])
        except jobs.SubmissionError as err:
            self.add_error("scenarios", err.message)
            return data
        try:
            probe(data["base_url"], data["model_id"], data.get("api_key") or "")
        except EndpointRejected as err:
            field = "model_id" if err.code == "model_not_listed" else "base_url"
            self.add_error(field, err.message)
        return data

    def generation_params(self) -> dict:
        d = self.cleaned_data
        return {k: d[k] for k in ("temperature", "max_tokens") if d.get(k) is not None}

    def save(self) -> Submission:
        d = self.cleaned_data
        model, _ = ModelEntry.objects.get_or_create(
            owner=self.user, name=d["name"], base_url=d["base_url"], model_id=d["model_id"],
            defaults={"organisation": d["organisation"]},
        )
        if d.get("api_key"):
            model.api_key = d["api_key"]
        model.generation_params = self.generation_params()
        model.organisation = d["organisation"]
        model.save()
        return jobs.create_submission(
            model=model, benchmark=d["benchmark"], scenarios=d["scenarios"], trials=d.get("trials"),
            concurrency=d["concurrency"], max_instances=d.get("max_instances"), owner=self.user, is_public=d["is_public"],
        )
