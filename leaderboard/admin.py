from django import forms
from django.contrib import admin, messages

from leaderboard.submissions import rerun
from leaderboard.models import ApiToken, Benchmark, InstanceResult, ModelEntry, Scenario, Score, Split, Submission, llm_role


class ScenarioInline(admin.TabularInline):
    model = Scenario
    extra = 0


class BenchmarkForm(forms.ModelForm):
    """The user simulator and judge of families that need them; API keys are write-only (empty keeps the stored one)."""

    homepage = forms.URLField(required=False, assume_scheme="https")
    user_base_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="User simulator base URL")
    user_model = forms.CharField(required=False, max_length=200, label="User simulator model")
    user_api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False), label="User simulator API key")
    user_params = forms.JSONField(required=False, label="User simulator generation params")
    judge_base_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Judge base URL")
    judge_model = forms.CharField(required=False, max_length=200, label="Judge model")
    judge_api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False), label="Judge API key")
    judge_params = forms.JSONField(required=False, label="Judge generation params")

    class Meta:
        model = Benchmark
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for role, config in (self.instance.simulator_shown if self.instance.pk else {}).items():
            self.initial.update({f"{role}_base_url": config.get("base_url"), f"{role}_model": config.get("model"),
                                 f"{role}_params": config.get("params")})

    def clean(self):
        data = super().clean()
        for role in ("user", "judge"):
            if bool(data.get(f"{role}_base_url")) != bool(data.get(f"{role}_model")):
                self.add_error(f"{role}_model", f"Give the {role}'s base URL and model together, or neither.")
            if data.get(f"{role}_params") is not None and not isinstance(data[f"{role}_params"], dict):
                self.add_error(f"{role}_params", "A JSON object of generation parameters.")
        if data.get("judge_base_url") and not data.get("user_base_url"):
            self.add_error("user_base_url", "A judge needs a user simulator.")
        return data

    def simulator_roles(self) -> dict:
        stored = self.instance.simulator_config() if self.instance.pk else {}
        roles = {}
        for role in ("user", "judge"):
            d = self.cleaned_data
            if d.get(f"{role}_base_url"):
                key = d.get(f"{role}_api_key") or (stored.get(role) or {}).get("api_key", "")
                roles[role] = llm_role(role, d[f"{role}_base_url"], d[f"{role}_model"], params=d.get(f"{role}_params"), api_key=key)
        return roles


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    form = BenchmarkForm
    list_display = ("name", "slug", "kind", "version", "main_metric", "simulator_model")
    readonly_fields = ("simulator_epoch",)
    inlines = [ScenarioInline]

    @admin.display(description="User simulator")
    def simulator_model(self, obj):
        return (obj.simulator_shown.get("user") or {}).get("model", "")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        roles = form.simulator_roles()
        if (roles or obj.has_simulator) and obj.configure_simulator(roles.get("user"), roles.get("judge")):
            messages.info(request, "The simulator setting changed: a new board starts for this benchmark.")


@admin.register(Split)
class SplitAdmin(admin.ModelAdmin):
    list_display = ("benchmark", "name", "version", "instance_count", "labels_hidden", "sha256")
    list_filter = ("benchmark",)


class ModelEntryForm(forms.ModelForm):
    """The API key is write-only: it is encrypted on save and never rendered back."""

    base_url = forms.URLField(max_length=500, assume_scheme="https")
    new_api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False), label="API key",
                                  help_text="Leave empty to keep the stored key.")
    clear_api_key = forms.BooleanField(required=False)

    class Meta:
        model = ModelEntry
        exclude = ("api_key_encrypted",)

    def save(self, commit=True):
        entry = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            entry.api_key = ""
        elif self.cleaned_data.get("new_api_key"):
            entry.api_key = self.cleaned_data["new_api_key"]
        if commit:
            entry.save()
        return entry


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    form = ModelEntryForm
    list_display = ("name", "organisation", "model_id", "base_url", "is_baseline", "has_api_key")
    list_filter = ("is_baseline",)
    search_fields = ("name", "organisation", "model_id")

    @admin.display(boolean=True)
    def has_api_key(self, obj):
        return obj.has_api_key


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "model", "benchmark", "status", "progress_done", "progress_total", "created_at", "is_public", "is_verified", "is_flagged", "is_hidden")
    list_filter = ("status", "benchmark", "is_baseline", "is_flagged", "is_verified", "is_hidden")
    list_select_related = ("model", "benchmark")
    readonly_fields = ("config", "config_hash", "progress_done", "progress_total", "started_at", "heartbeat_at", "finished_at", "worker")
    actions = ["rerun", "cancel", "flag", "verify", "hide"]

    @admin.action(description="Re-run (resume) the selected submissions")
    def rerun(self, request, queryset):
        n = sum(rerun(s) for s in queryset)
        messages.info(request, f"{n} submission(s) queued again.")

    @admin.action(description="Cancel the selected submissions")
    def cancel(self, request, queryset):
        n = sum(s.cancel() for s in queryset)
        messages.info(request, f"{n} submission(s) cancelled.")

    @admin.action(description="Flag")
    def flag(self, request, queryset):
        queryset.moderate(is_flagged=True)

    @admin.action(description="Mark verified")
    def verify(self, request, queryset):
        queryset.moderate(is_verified=True)

    @admin.action(description="Hide from leaderboards")
    def hide(self, request, queryset):
        queryset.moderate(is_hidden=True)


@admin.register(InstanceResult)
class InstanceResultAdmin(admin.ModelAdmin):
    list_display = ("submission", "instance", "scenario", "trial", "correct", "error_code", "latency_ms")
    list_filter = ("scenario", "correct", "error_code")
    raw_id_fields = ("submission", "instance")


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("submission", "scenario", "metric", "value", "ci_low", "ci_high", "n")
    list_filter = ("scenario", "metric")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "hint", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = ("hint", "token_hash")
