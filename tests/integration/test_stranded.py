"""Nothing is stranded: a submission made while the broker is down waits with a clear message and is
dispatched by the reaper once the broker is back, then runs to the end on a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.registry import load_bundled
from leaderboard.baselines import register
from leaderboard.importing import import_benchmark
from leaderboard.models import Submission
from tests.integration.conftest import ROOT, database_url, wait_for
from worker import lifecycle

pytestmark = [pytest.mark.integration]

CREATE = """
from django.db import transaction
from leaderboard.models import Benchmark, ModelEntry
from leaderboard.submissions import create_submission
with transaction.atomic():
    submission = create_submission(model=ModelEntry.objects.get(id={model}), benchmark=Benchmark.objects.get(id={benchmark}),
                                   max_instances=5)
print("created", submission.id)
"""


def test_a_submission_made_while_the_broker_is_down_runs_once_it_is_back(celery_worker_factory, baseline_endpoint):
    benchmark = import_benchmark(load_bundled("opera"))
    model = register(baseline_endpoint.base_url, "opera-majority", "majority baseline")

    # A web process whose broker is unreachable (nothing listens on port 1) creates the submission.
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", CREATE.format(model=model.id, benchmark=benchmark.id)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    submission = Submission.objects.get(id=int(done.stdout.split("created")[-1]))
    assert (submission.status, submission.error_code, submission.dispatched_at) == ("queued", "queue_unreachable", None)
    assert "dispatched automatically" in submission.error_message

    # The broker is back (this process's Redis); the reaper dispatches it, a worker runs it.
    celery_worker_factory("w1")
    Submission.objects.filter(id=submission.id).update(created_at=timezone.now() - timedelta(minutes=5))
    assert lifecycle.reap(dispatch_timeout=60).redispatched == [submission.id]
    wait_for(lambda: Submission.objects.get(id=submission.id).status == Submission.Status.FINISHED, 180, "the submission to finish")
    submission.refresh_from_db()
    assert submission.progress_done == submission.progress_total and submission.error_message == ""
