"""The submission lifecycle: claim, preflight, plan, fan out, run batches, persist, score, reap.

``run_submission`` is the one path a submission takes; the Celery tasks (``worker.tasks``) call it with a
dispatcher that sends the submission's lanes out as Celery chains of batches, the ``evaluate`` command with
one that runs them in the calling process. A submission's concurrency is a cap across its lanes: they run
side by side at shares of it that sum to it, so the endpoint never sees more calls at once than its owner
asked for, however many worker processes take a lane. Every step is idempotent: results are unique per (submission, instance, scenario,
trial), so a batch delivered twice, or a submission resumed after its worker died, neither loses nor
duplicates a result. State transitions are conditional UPDATEs on ``Submission.objects``.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from evaluation.base import SIMULATOR_ERROR, Evaluator, Instance, Outcome
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.errors import CodedError
from evaluation.runner import WorkItem, run_items
from leaderboard.endpoints import EndpointRejected, address_policy_from_settings, probe
from leaderboard.models import InstanceResult, ModelEntry, Submission, TaskInstance
from leaderboard.submissions import dispatch
from worker.scoring import evaluator_for, finalize

log = logging.getLogger(__name__)

WorkKey = tuple[int, str, int]  # (instance id, scenario, trial): JSON-friendly for Celery

# After this many endpoint faults in a row a batch stops and the submission fails with the fault's
# message, instead of retrying every remaining instance against a dead endpoint. Timeouts trip sooner:
# each one has already cost the per-item time budget. Faults that every item would meet alike (a refused
# key or address, a redirect, a wrong path) trip at once. A failing user simulator or judge is counted
# apart: it is the benchmark's endpoint, not the model's.
MAX_CONSECUTIVE_ENDPOINT_ERRORS = 20
MAX_CONSECUTIVE_TIMEOUTS = 3
FAULTS_OF_EVERY_ITEM = frozenset({"auth", "not_found", "address_refused", "redirect"})
# Seconds between a batch's heartbeats (which double as its check for cancellation).
HEARTBEAT_INTERVAL = 2.0
# Seconds a completed outcome may wait for others to be stored with it, in one transaction: at 64 items in
# flight they complete milliseconds apart, and a transaction per outcome cost more CPU than the endpoint
# call. A worker killed meanwhile loses those outcomes as it loses the items in flight: they run again.
GATHER_SECONDS = 0.05
# A submission whose workers died is resumed this many times by the reaper, then failed.
MAX_AUTO_RESUMES = 3
# A lane gets at least this many of the submission's calls in flight: below it, another worker process
# costs more than the per-item CPU time it takes off one process.
MIN_LANE_CONCURRENCY = 8


# --- building the parts ------------------------------------------------------------------------------


def client_for(model: ModelEntry) -> EndpointClient:
    return EndpointClient(
        EndpointConfig(
            base_url=model.base_url,
            model=model.model_id,
            api_key=model.api_key,
            timeout=settings.ACTBOARD_ENDPOINT_TIMEOUT,
            params=dict(model.generation_params or {}),
            address_policy=address_policy_from_settings(),  # checked at every connect: no rebinding inside
        )
    )


def batch_time_limits(evaluator: Evaluator, items: int, concurrency: int) -> tuple[int, int]:
    """Soft and hard Celery time limits of a batch: its rounds of items at its lane's concurrency, each
    costing at most the evaluator's calls per item at the endpoint's deadline, plus a margin. The hard
    limit leaves the items in flight at the soft limit time to finish, so that the batch returns normally
    and its lane goes on."""
    per_item = evaluator.calls_per_item() * 2 * settings.ACTBOARD_ENDPOINT_TIMEOUT  # a slow answer plus one retry
    soft = int(math.ceil(items / max(1, concurrency)) * per_item) + 60
    return soft, soft + int(per_item) + 60


# --- claim, preflight, plan, fan out ------------------------------------------------------------------


def preflight(submission: Submission) -> None:
    """Fail fast, with a clear message, when the endpoint cannot serve the submission at all.

    The URL rules are checked again here, not only at submission: a name may resolve elsewhere now.
    """
    model = submission.model
    try:
        probe(model.base_url, model.model_id, model.api_key, timeout=30)
    except EndpointRejected as err:
        raise CodedError(err.code, f"Endpoint check failed: {err.message}") from None


def batches(keys: list[WorkKey], size: int) -> list[list[WorkKey]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


@dataclass(frozen=True)
class Lane:
    """Batches that run one after another, each at ``concurrency`` calls in flight."""

    concurrency: int
    batches: list[list[WorkKey]]


def plan_lanes(keys: list[WorkKey], concurrency: int, *, batch_size: int, max_lanes: int) -> list[Lane]:
    """Split pending work into lanes whose concurrencies sum to ``concurrency``.

    There are at most ``max_lanes`` lanes, no more than batches of ``batch_size``, and each gets at least
    ``MIN_LANE_CONCURRENCY`` calls in flight (or all of them, below that). A lane's share of the keys is
    in proportion to its concurrency, so that the lanes finish together; its batches hold a whole number
    of rounds at its concurrency (``batch_size`` rounded up), since a batch's last round is otherwise
    part empty: at 64 in flight a batch of 50 keeps the endpoint at 50.
    """
    if not keys:
        return []
    concurrency = max(1, concurrency)
    count = max(1, min(max_lanes, math.ceil(len(keys) / batch_size), concurrency // MIN_LANE_CONCURRENCY))
    base, extra = divmod(concurrency, count)
    shares = [base + (i < extra) for i in range(count)]
    lanes, start = [], 0
    for i, share in enumerate(shares):
        end = len(keys) * sum(shares[: i + 1]) // concurrency
        if end > start:
            lanes.append(Lane(share, batches(keys[start:end], math.ceil(batch_size / share) * share)))
        start = end
    return lanes


# Sends (or runs) the lanes of a submission's pending work, and returns them.
Dispatcher = Callable[[Submission, list[WorkKey]], list[Lane]]


def run_submission(submission_id: int, dispatcher: Dispatcher) -> str:
    """Claim a queued submission, check its endpoint, and hand its pending work to ``dispatcher``.

    A resumed or re-run submission takes the same path: its pending work is planned into lanes afresh."""
    if not Submission.objects.claim(submission_id, socket.gethostname()):
        return "not queued (claimed elsewhere, cancelled or finished)"
    submission = Submission.objects.select_related("model", "benchmark").get(id=submission_id)
    try:
        preflight(submission)
    except CodedError as err:
        Submission.objects.fail(submission_id, err.code, err.message)
        return f"failed: {err.message}"
    pending = submission.pending_work()
    if not pending:
        finalize(submission_id)
        return "nothing pending; scored"
    lanes = dispatcher(submission, pending)
    return f"dispatched {len(pending)} items in {sum(len(lane.batches) for lane in lanes)} batches on {len(lanes)} lanes"


# --- running a batch ----------------------------------------------------------------------------------


def headline_value(evaluator: Evaluator, outcome: Outcome) -> bool:
    metric = evaluator.headline_metric().name
    per_instance = outcome.metrics.get(metric, outcome.metrics.get("success", outcome.metrics.get("exact_match", 0)))
    return not outcome.error_code and bool(per_instance)


def _result(submission_id: int, evaluator: Evaluator, item: WorkItem, outcome: Outcome) -> InstanceResult:
    return InstanceResult(
        submission_id=submission_id,
        instance_id=item.instance.id,
        scenario=item.scenario,
        trial=item.trial,
        prediction=outcome.prediction,
        transcript=outcome.transcript,
        metrics=outcome.metrics,
        correct=headline_value(evaluator, outcome),
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        latency_ms=outcome.latency_ms,
        error_code=outcome.error_code,
        error_message=outcome.error[:2000],
    )


def persist(submission_id: int, evaluator: Evaluator, done: list[tuple[WorkItem, Outcome]]) -> int:
    """Store outcomes and count them, in one transaction; return how many were new.

    Outcomes that complete together are written together (one INSERT, one UPDATE), which keeps the
    per-item cost low at high concurrency. Each is stored within ``GATHER_SECONDS`` of completing, with
    its count: a crash loses no stored result and counts none twice. If one was already stored (a re-delivered batch racing this one), the group falls
    back to one transaction per outcome, so the others still land and nothing is counted twice.
    """
    if not done:
        return 0
    try:
        with transaction.atomic():
            InstanceResult.objects.bulk_create([_result(submission_id, evaluator, item, outcome) for item, outcome in done])
            _count(submission_id, len(done), sum(1 for _, outcome in done if outcome.error_code))
        return len(done)
    except IntegrityError:
        if len(done) == 1:
            return 0
    return sum(persist(submission_id, evaluator, [pair]) for pair in done)


def _count(submission_id: int, results: int, errors: int) -> None:
    Submission.objects.filter(id=submission_id).update(
        progress_done=F("progress_done") + results, error_count=F("error_count") + errors, heartbeat_at=timezone.now())


@dataclass
class Breaker:
    """Stops a batch after repeated endpoint faults; the submission fails with the fault's message."""

    errors_in_a_row: int = 0
    timeouts_in_a_row: int = 0
    tripped_by: Outcome | None = field(default=None)

    def record(self, outcome: Outcome) -> bool:
        """Count an outcome; True when the breaker has just tripped."""
        code = outcome.error_code
        if not code or code == "internal":
            self.errors_in_a_row = self.timeouts_in_a_row = 0
            return False
        self.errors_in_a_row += 1
        self.timeouts_in_a_row = self.timeouts_in_a_row + 1 if code == "timeout" else 0
        if self.tripped_by is None and (code in FAULTS_OF_EVERY_ITEM or self.errors_in_a_row >= MAX_CONSECUTIVE_ENDPOINT_ERRORS
                                        or self.timeouts_in_a_row >= MAX_CONSECUTIVE_TIMEOUTS):
            self.tripped_by = outcome
            return True
        return False

    def code(self) -> str:
        assert self.tripped_by is not None
        code = self.tripped_by.error_code
        return code if code == SIMULATOR_ERROR else "endpoint_" + code

    def message(self) -> str:
        assert self.tripped_by is not None
        whose = "the benchmark's user simulator or judge" if self.tripped_by.error_code == SIMULATOR_ERROR else "the endpoint"
        if self.tripped_by.error_code in FAULTS_OF_EVERY_ITEM:
            what = f"Stopped at the first error of {whose}, which every item would meet"
        elif self.timeouts_in_a_row >= MAX_CONSECUTIVE_TIMEOUTS:
            what = f"Stopped after {self.timeouts_in_a_row} timeouts of {whose} in a row"
        else:
            what = f"Stopped after {self.errors_in_a_row} errors of {whose} in a row"
        return f"{what}: {self.tripped_by.error}. Finished results are kept; re-run the submission to resume."


def _work_items(keys: list[WorkKey], chunk: int, evaluator: Evaluator) -> Iterator[WorkItem]:
    """The keys' work items, their instances loaded ``chunk`` keys at a time as the runner asks for more:
    the first calls go out without waiting for every instance of the batch, and memory stays flat in the
    batch's size. An input is loaded only where a run reads it (``Evaluator.needs_input``): a next-action
    run builds its prompts from the parts prepared at import, and its input holds the whole page."""
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        rows = list(TaskInstance.objects.filter(id__in={k[0] for k in part}).defer("input"))
        wanted = [row.id for row in rows if evaluator.needs_input(row.prepared)]
        inputs = dict(TaskInstance.objects.filter(id__in=wanted).values_list("id", "input")) if wanted else {}
        instances = {row.id: Instance(id=row.id, key=row.key, input=inputs.get(row.id, {}), reference=row.reference,
                                      scenario=row.scenario, prepared=row.prepared) for row in rows}
        yield from (WorkItem(instances[i], scenario, trial) for i, scenario, trial in part if i in instances)


def run_of(submission: Submission) -> str:
    """Names a run of a submission (its claim's time): a resumed or re-run submission is a new run."""
    return submission.started_at.isoformat() if submission.started_at else ""


def run_batch(submission_id: int, keys: list[WorkKey], *, concurrency: int | None = None, run: str | None = None,
              on_progress: Callable[[], None] = lambda: None) -> int:
    """Evaluate one batch of work keys at ``concurrency`` calls in flight (its lane's share; by default the
    submission's); skip keys already done; return how many new results were stored.

    A batch planned for an earlier ``run`` does nothing: the current run planned all pending work into its
    own lanes, and running both would exceed the submission's concurrency (a batch of a lane that waited in
    the queue past the reaper's patience, or a message delivered again after its worker died).
    """
    submission = Submission.objects.select_related("model", "benchmark").get(id=submission_id)
    concurrency = concurrency or submission.concurrency
    if submission.status != Submission.Status.RUNNING or run not in (None, run_of(submission)):
        return 0
    done = set(
        InstanceResult.objects.filter(submission_id=submission_id, instance_id__in={k[0] for k in keys})
        .values_list("instance_id", "scenario", "trial")
    )
    keys = [tuple(k) for k in keys if tuple(k) not in done]  # type: ignore[misc]
    if not keys:
        return 0
    evaluator = evaluator_for(submission)
    items = _work_items(keys, chunk=2 * max(1, concurrency), evaluator=evaluator)
    breaker = Breaker()
    stored = 0
    last_beat = time.monotonic()
    stopped = not Submission.objects.heartbeat(submission_id)

    def should_stop() -> bool:
        # Polled between completions and while items are in flight: the heartbeat tells the reaper this
        # batch is alive, and its answer tells the batch the submission was cancelled or failed meanwhile.
        nonlocal last_beat, stopped
        if not stopped and time.monotonic() - last_beat > HEARTBEAT_INTERVAL:
            last_beat = time.monotonic()
            stopped = not Submission.objects.heartbeat(submission_id)
        return stopped

    def on_outcomes(completed: list[tuple[WorkItem, Outcome]]) -> None:
        nonlocal stored, stopped
        kept = []
        for item, outcome in completed:
            if breaker.record(outcome) and not stopped:
                stopped = True
                Submission.objects.fail(submission_id, breaker.code(), breaker.message())
            if not (stopped and outcome.error_code):  # after a trip, errors are not a verdict: they re-run on resume
                kept.append((item, outcome))
        stored += persist(submission_id, evaluator, kept)
        for _ in kept:
            on_progress()

    with client_for(submission.model) as client:
        run_items(evaluator, client, items, concurrency=concurrency, on_outcomes=on_outcomes,
                  should_stop=should_stop, poll_seconds=HEARTBEAT_INTERVAL, gather_seconds=GATHER_SECONDS)
    return stored


# --- the inline dispatcher (the ``evaluate`` command) ---------------------------------------------------


def run_inline(on_progress: Callable[[], None] = lambda: None) -> Dispatcher:
    """A dispatcher that runs every batch in this process, one lane at the submission's concurrency, then scores."""

    def run(submission: Submission, keys: list[WorkKey]) -> list[Lane]:
        lanes = plan_lanes(keys, submission.concurrency, batch_size=settings.ACTBOARD_BATCH_SIZE, max_lanes=1)
        for lane in lanes:
            for part in lane.batches:
                run_batch(submission.id, part, concurrency=lane.concurrency, on_progress=on_progress)
        finalize(submission.id)
        return lanes

    return run


# --- reaping ------------------------------------------------------------------------------------------


@dataclass
class Reaped:
    redispatched: list[int] = field(default_factory=list)  # queued ones whose start message never arrived
    resumed: list[int] = field(default_factory=list)  # running ones whose workers died
    failed: list[int] = field(default_factory=list)  # resumed too often: given up, with the reason

    def __bool__(self) -> bool:
        return bool(self.redispatched or self.resumed or self.failed)


def reap(heartbeat_timeout: float | None = None, dispatch_timeout: float | None = None) -> Reaped:
    """Pick up what was stranded, without a manual re-run and without duplicating anything.

    - queued submissions that never reached the broker (it was down) or whose message was lost are
      dispatched again; a second start message is harmless, only one claim wins;
    - running submissions with no heartbeat for ``heartbeat_timeout`` (every live batch beats every few
      seconds, even while its items hang) go back to queued and are dispatched: finished results are
      kept, pending work runs again. After ``MAX_AUTO_RESUMES`` such resumes the submission fails.
    """
    heartbeat_timeout = settings.ACTBOARD_HEARTBEAT_TIMEOUT if heartbeat_timeout is None else heartbeat_timeout
    dispatch_timeout = settings.ACTBOARD_REDISPATCH_AFTER if dispatch_timeout is None else dispatch_timeout
    report = Reaped()
    cutoff = timezone.now() - timedelta(seconds=heartbeat_timeout)
    stale = Submission.objects.filter(status=Submission.Status.RUNNING, heartbeat_at__lt=cutoff).values_list("id", "auto_resumes")
    for pk, resumes in list(stale):
        if resumes >= MAX_AUTO_RESUMES:
            if Submission.objects.fail(pk, "heartbeat_lost", f"No progress for {heartbeat_timeout:g} s after {resumes} automatic "
                                       "resumes: its workers keep stopping. Finished results are kept; re-run to resume."):
                report.failed.append(pk)
        elif Submission.objects.resume_stale(pk, cutoff):
            report.resumed.append(pk)
            dispatch(pk)
    for pk in Submission.objects.undispatched(timedelta(seconds=dispatch_timeout)).values_list("id", flat=True):
        if dispatch(pk):
            report.redispatched.append(pk)
    return report
