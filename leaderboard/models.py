"""Data model of DESIGN §2: benchmarks and their splits, model endpoints, submissions and their results."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import models
from django.utils import timezone

from evaluation.canonical import canonical_hash
from leaderboard import crypto


class Benchmark(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=40, help_text="Benchmark family: an evaluation.registry key.")
    version = models.CharField(max_length=40)
    license = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    citation = models.TextField(blank=True)
    homepage = models.URLField(blank=True)
    main_metric = models.CharField(max_length=60)
    created_at = models.DateTimeField(default=timezone.now)
    # Bumped whenever one of this benchmark's leaderboards may change; part of the boards' cache key.
    board_version = models.PositiveIntegerField(default=0, editable=False)
    # The LLM user simulator and judge of families that need them, set by maintainers (``configure_simulator``):
    # {"user": {...}, "judge": {...}}, each an ``LLMConfig`` snapshot with its API key sealed.
    simulator = models.JSONField(default=dict, blank=True, editable=False)
    # Hash of the simulator setting (without secrets): a new setting starts a new board; empty for none.
    simulator_epoch = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def needs_simulator(self) -> bool:
        from evaluation.registry import get_evaluator_class

        return get_evaluator_class(self.kind).needs_simulator

    @property
    def has_simulator(self) -> bool:
        return bool((self.simulator or {}).get("user"))

    @property
    def simulator_shown(self) -> dict:
        """The simulator setting as pages and snapshots show it: without secrets."""
        return {role: {k: v for k, v in config.items() if k not in ("api_key", "api_key_encrypted")}
                for role, config in (self.simulator or {}).items()}

    def simulator_config(self) -> dict:
        """The simulator setting with its keys decrypted, for an evaluator's config (never shown)."""
        return crypto.unseal(self.simulator or {})

    @cached_property  # one look at the test references per request, however often a page asks
    def needs_judge(self) -> bool:
        """Whether a task of its test split is graded on natural-language assertions (an LLM judge's call)."""
        if not self.needs_simulator:
            return False
        references = TaskInstance.objects.filter(split__benchmark=self, split__name="test").values_list("reference", flat=True)
        for reference in references.iterator(chunk_size=500):
            criteria = (reference or {}).get("evaluation_criteria") or {}
            if "NL_ASSERTION" in (criteria.get("reward_basis") or []) and criteria.get("nl_assertions"):
                return True
        return False

    @property
    def missing_simulator_message(self) -> str:
        """Why the benchmark cannot evaluate submissions yet, or "" when it can."""
        if self.needs_simulator and not self.has_simulator:
            return (f"{self.name} has no user simulator configured yet, so it cannot evaluate submissions; its maintainers "
                    "set one with `manage.py set_benchmark_simulator`.")
        if self.needs_simulator and not (self.simulator or {}).get("judge") and self.needs_judge:
            return (f"{self.name} grades some tasks on natural-language assertions and has no judge configured yet, so it "
                    "cannot evaluate submissions; its maintainers set one with `manage.py set_benchmark_simulator --judge-base-url ...`.")
        return ""

    def configure_simulator(self, user: dict | None, judge: dict | None = None) -> bool:
        """Store the user simulator and judge (``LLMConfig`` snapshots, each with an optional ``api_key``) and
        start a new board epoch when the setting changed; True if it did. ``user=None`` clears the setting."""
        setting = {role: config for role, config in (("user", user), ("judge", judge)) if config} if user else {}
        shown = {role: {k: v for k, v in config.items() if k != "api_key"} for role, config in setting.items()}
        epoch = canonical_hash(shown) if shown else ""
        changed = epoch != self.simulator_epoch
        self.simulator = crypto.seal(setting)
        self.simulator_epoch = epoch
        if changed:
            self.board_version += 1
        self.save(update_fields=["simulator", "simulator_epoch", "board_version"])
        return changed

    @staticmethod
    def touch_boards(benchmark_ids) -> None:
        Benchmark.objects.filter(id__in=set(benchmark_ids)).update(board_version=models.F("board_version") + 1)


def llm_role(role: str, base_url: str, model: str, *, params: dict | None = None, api_key: str = "") -> dict:
    """One role of a benchmark's simulator setting ("user" or "judge"): its ``LLMConfig`` snapshot, with the
    prompt version of that role, and its API key (sealed when stored)."""
    from evaluation.tau2.grading import JUDGE_PROMPT_VERSION
    from evaluation.tau2.user import PROMPT_VERSION, LLMConfig

    prompt_version = JUDGE_PROMPT_VERSION if role == "judge" else PROMPT_VERSION
    config = LLMConfig(base_url=base_url, model=model, params=dict(params or {}), prompt_version=prompt_version)
    return {**config.snapshot(), **({"api_key": api_key} if api_key else {})}


class Scenario(models.Model):
    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="scenarios")
    slug = models.SlugField()
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["benchmark", "position"]
        constraints = [models.UniqueConstraint(fields=["benchmark", "slug"], name="unique_scenario_slug")]

    def __str__(self) -> str:
        return f"{self.benchmark.slug}/{self.slug}"


class Split(models.Model):
    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="splits")
    name = models.CharField(max_length=20)  # train, dev, test
    version = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64, help_text="Hash of the split's canonical JSONL (inputs and references).")
    labels_hidden = models.BooleanField(default=False, help_text="References never leave the server.")
    instance_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["benchmark", "name"]
        constraints = [models.UniqueConstraint(fields=["benchmark", "name"], name="unique_split_name")]

    def __str__(self) -> str:
        return f"{self.benchmark.slug}:{self.name}@{self.version}"


class TaskInstance(models.Model):
    split = models.ForeignKey(Split, on_delete=models.CASCADE, related_name="instances")
    key = models.CharField(max_length=300)
    # Empty: evaluated under every scenario of the benchmark; set: belongs to that scenario only.
    scenario = models.CharField(max_length=50, blank=True, db_index=True)
    input = models.JSONField()
    reference = models.JSONField()
    # What the benchmark's evaluator derives from ``input`` for its prompts (``Evaluator.prepare``), stored at
    # import so that runs do not derive it per item; never exported.
    prepared = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["split", "id"]
        constraints = [models.UniqueConstraint(fields=["split", "key"], name="unique_instance_key")]

    def __str__(self) -> str:
        return self.key


class ModelEntry(models.Model):
    name = models.CharField(max_length=200)
    organisation = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    base_url = models.URLField(max_length=500)
    model_id = models.CharField(max_length=200)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    generation_params = models.JSONField(default=dict, blank=True)
    # USD per million tokens, for the cost estimate on the leaderboard.
    price_prompt_per_mtok = models.FloatField(null=True, blank=True)
    price_completion_per_mtok = models.FloatField(null=True, blank=True)
    is_baseline = models.BooleanField(default=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="models")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = crypto.encrypt(value or "")

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


class SubmissionQuerySet(models.QuerySet):
    """State transitions of a submission, each one conditional UPDATE: of two racing callers only one wins.

    ``queued → running → finished | failed``, ``queued | running → cancelled``; a stopped submission is
    queued again by ``Submission.requeue``; a running one whose workers died by ``resume_stale``.
    """

    def moderate(self, **changes) -> int:
        """Update flags (public, verified, flagged, hidden) and refresh the leaderboards they show on."""
        benchmark_ids = list(self.values_list("benchmark_id", flat=True).distinct())
        updated = self.update(**changes)
        Benchmark.touch_boards(benchmark_ids)
        return updated

    def claim(self, pk: int, worker: str) -> bool:
        """queued → running. Only one caller can win; False means someone else has it (or it was stopped)."""
        now = timezone.now()
        return bool(self.filter(pk=pk, status=Submission.Status.QUEUED).update(
            status=Submission.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200],
            error_code="", error_message="", scoring_started_at=None, finished_at=None,
        ))

    def heartbeat(self, pk: int) -> bool:
        """Record that a worker is alive on a running submission; False once it is no longer running."""
        return bool(self.filter(pk=pk, status=Submission.Status.RUNNING).update(heartbeat_at=timezone.now()))

    def fail(self, pk: int, code: str, message: str, *, only_if_running: bool = True) -> bool:
        qs = self.filter(pk=pk)
        if only_if_running:
            qs = qs.filter(status=Submission.Status.RUNNING)
        return bool(qs.update(status=Submission.Status.FAILED, error_code=code[:40], error_message=message[:2000],
                              finished_at=timezone.now()))

    def claim_scoring(self, pk: int) -> bool:
        """The one caller that may score a running submission whose work is all done."""
        return bool(self.filter(pk=pk, status=Submission.Status.RUNNING, scoring_started_at__isnull=True).update(
            scoring_started_at=timezone.now()))

    def finish(self, pk: int, code: str = "", note: str = "") -> bool:
        return bool(self.filter(pk=pk, status=Submission.Status.RUNNING).update(
            status=Submission.Status.FINISHED, finished_at=timezone.now(), error_code=code[:40], error_message=note[:2000]))

    def mark_dispatched(self, pk: int) -> None:
        self.filter(pk=pk, status=Submission.Status.QUEUED).update(dispatched_at=timezone.now(), error_code="", error_message="")

    def mark_dispatch_failed(self, pk: int, reason: str) -> None:
        self.filter(pk=pk, status=Submission.Status.QUEUED).update(
            dispatched_at=None, error_code="queue_unreachable",
            error_message=f"Waiting for the job queue ({reason[:300]}); the submission will be dispatched automatically.")

    def undispatched(self, older_than: timedelta) -> "SubmissionQuerySet":
        """Queued submissions that never reached the broker, or whose message was lost with it."""
        cutoff = timezone.now() - older_than
        return self.filter(status=Submission.Status.QUEUED, created_at__lt=cutoff).filter(
            models.Q(dispatched_at__isnull=True) | models.Q(dispatched_at__lt=cutoff))

    def resume_stale(self, pk: int, cutoff) -> bool:
        """running → queued for a submission no worker has touched since ``cutoff`` (its workers died)."""
        return bool(self.filter(pk=pk, status=Submission.Status.RUNNING, heartbeat_at__lt=cutoff).update(
            status=Submission.Status.QUEUED, dispatched_at=None, auto_resumes=models.F("auto_resumes") + 1,
            scoring_started_at=None, error_code="resumed",
            error_message="The worker running it stopped; resumed automatically, finished results kept."))


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="submissions")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="submissions")
    split = models.ForeignKey(Split, on_delete=models.PROTECT, related_name="submissions")
    scenarios = models.JSONField(default=list, help_text="Scenario slugs to evaluate; empty means all.")
    trials = models.PositiveSmallIntegerField(default=1)
    concurrency = models.PositiveSmallIntegerField(default=4)
    max_instances = models.PositiveIntegerField(null=True, blank=True, help_text="Evaluate only the first N instances (a partial run).")
    # Everything that determines the result: endpoint host, model id, generation params, prompt
    # version, dataset version and hash, evaluator settings.
    config = models.JSONField(default=dict, blank=True)
    config_hash = models.CharField(max_length=64, db_index=True, blank=True)
    # The benchmark's simulator epoch when it was created: only the current epoch's submissions are ranked.
    simulator_epoch = models.CharField(max_length=64, blank=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the start task last reached the broker; empty while a failed enqueue waits to be retried.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    auto_resumes = models.PositiveSmallIntegerField(default=0, help_text="Times the reaper resumed it after its workers died.")
    scoring_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Usage summary, filled in when scored (the leaderboard reads these, never the results).
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    latency_mean_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")
    is_public = models.BooleanField(default=True)
    is_baseline = models.BooleanField(default=False)
    is_verified = models.BooleanField(default=False)
    is_flagged = models.BooleanField(default=False)
    is_hidden = models.BooleanField(default=False)

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["benchmark", "status"], name="submission_board_idx"),
            # The leaderboard's best-per-model window reads these columns of every visible submission:
            # an index-only scan instead of a scan of the wide table on PostgreSQL.
            models.Index(fields=["benchmark", "id"], include=["model", "finished_at"], name="submission_visible_idx",
                         condition=models.Q(status="finished", is_public=True, is_hidden=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model} on {self.benchmark.slug}"

    @property
    def progress_percent(self) -> int:
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def from_earlier_simulator(self) -> bool:
        return self.simulator_epoch != self.benchmark.simulator_epoch

    # -- planning: the work of a submission is (instance, scenario, trial) keys --------------------------

    def instance_ids(self, scenario: str) -> list[int]:
        ids = TaskInstance.objects.filter(split_id=self.split_id, scenario__in=("", scenario)).order_by("id").values_list("id", flat=True)
        return list(ids[: self.max_instances] if self.max_instances else ids)

    def work_keys(self) -> list[tuple[int, str, int]]:
        """Instance by instance, each with its scenarios and trials side by side: a batch then holds every
        use of an instance (its page is prepared once), and a partial run advances all scenarios evenly."""
        members = {scenario: set(self.instance_ids(scenario)) for scenario in self.scenarios}
        return [(i, scenario, trial) for i in sorted(set().union(*members.values())) for scenario in self.scenarios
                if i in members[scenario] for trial in range(self.trials)]

    def count_work(self) -> int:
        return sum(len(self.instance_ids(s)) for s in self.scenarios) * self.trials

    def pending_work(self) -> list[tuple[int, str, int]]:
        done = set(self.results.values_list("instance_id", "scenario", "trial"))
        return [key for key in self.work_keys() if key not in done]

    # -- user actions -------------------------------------------------------------------------------------

    def cancel(self) -> bool:
        return bool(Submission.objects.filter(pk=self.pk, status__in=self.ACTIVE).update(
            status=self.Status.CANCELLED, finished_at=timezone.now(), error_code="cancelled", error_message="Cancelled by the user."))

    def requeue(self) -> bool:
        """failed | cancelled | finished → queued, keeping finished results (the caller dispatches it).

        Instances that ended in an endpoint error run again (an outage is not a verdict on the model).
        Never an active submission: its batches are still out, a second dispatch would race them.
        """
        updated = Submission.objects.filter(pk=self.pk).exclude(status__in=self.ACTIVE).update(
            status=self.Status.QUEUED, error_code="", error_message="", finished_at=None, scoring_started_at=None,
            dispatched_at=None, auto_resumes=0)
        if not updated:
            return False
        self.results.exclude(error_code="").delete()
        Submission.objects.filter(pk=self.pk).update(progress_done=self.results.count(), error_count=0)
        Benchmark.touch_boards([self.benchmark_id])  # a finished run leaves the board until it finishes again
        self.refresh_from_db()
        return True

    @property
    def estimated_cost_usd(self) -> float | None:
        m = self.model
        if m.price_prompt_per_mtok is None and m.price_completion_per_mtok is None:
            return None
        return (self.prompt_tokens * (m.price_prompt_per_mtok or 0) + self.completion_tokens * (m.price_completion_per_mtok or 0)) / 1e6


class InstanceResult(models.Model):
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="results")
    instance = models.ForeignKey(TaskInstance, on_delete=models.CASCADE, related_name="results")
    scenario = models.CharField(max_length=50)
    trial = models.PositiveSmallIntegerField(default=0)
    prediction = models.JSONField(default=dict)
    transcript = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    # The headline per-instance value (exact match, success), so drill-downs can filter failures in SQL.
    correct = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["submission", "id"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "instance", "scenario", "trial"], name="unique_result"),
        ]
        indexes = [models.Index(fields=["submission", "scenario", "correct"], name="result_drilldown_idx")]


class Score(models.Model):
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="scores")
    scenario = models.CharField(max_length=50)  # a scenario slug, or "overall"
    metric = models.CharField(max_length=60)
    value = models.FloatField()
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["submission", "scenario", "metric"]
        constraints = [models.UniqueConstraint(fields=["submission", "scenario", "metric"], name="unique_score")]
        indexes = [
            models.Index(fields=["scenario", "metric", "value"], name="score_board_idx"),
            # A leaderboard tab reads one (scenario, metric) for every submission: an index-only scan on
            # PostgreSQL (DESIGN §3's 50 ms at 10,000 submissions). Other databases skip covering indexes.
            models.Index(fields=["scenario", "metric", "submission"], include=["value", "ci_low", "ci_high", "n"], name="score_tab_cover_idx"),
        ]


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> "ApiTokenQuerySet":
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class ApiToken(models.Model):
    """A per-user API token. Only its hash is stored; the raw value is shown once, at creation."""

    PREFIX = "acb_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False, help_text="First characters, to tell tokens apart.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user, name: str, days: int | None = 90) -> tuple["ApiToken", str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            token_hash=_hash_token(raw),
            hint=raw[:10],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
        )
        return token, raw

    @classmethod
    def lookup(cls, raw: str) -> "ApiToken | None":
        return cls.objects.select_related("user").filter(token_hash=_hash_token(raw)).first()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
