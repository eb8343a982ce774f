from django import forms
from django.contrib import admin, messages

from leaderboard.submissions import rerun
from leaderboard.models import ApiToken, Benchmark, InstanceResult, ModelEntry, Scenario, Score, Split, Submission


class ScenarioInline(admin.TabularInline):
    model = Scenario
    extra = 0


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "version", "main_metric")
    inlines = [ScenarioInline]


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
