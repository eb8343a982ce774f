"""Fine-tuning export of successful tool-use rollouts stored as InstanceResults.

Both tool-use families export alike: the bundled Trajectory2Task benchmark (``tool_use``) and tau2-format
benchmarks (``tau2``) run on tau2-bench's environments, so each row gets its domain's tau2 tool schemas.
"""

from __future__ import annotations

from collections.abc import Iterator

from evaluation.tau2.sft import Rollout, export_rollouts
from leaderboard.models import InstanceResult

TOOL_USE_KINDS = ("tool_use", "tau2")


def sft_lines(*, benchmark: str | None = None, scenarios: list[str] | None = None, submission: int | None = None) -> Iterator[str]:
    """JSONL lines (OpenAI chat fine-tuning format) for the successful rollouts matching the filters.

    Only public, unflagged submissions are exported unless one submission is asked for by id (the
    caller checks access to it). Rows are streamed, so memory stays flat however many there are.
    """
    results = InstanceResult.objects.filter(correct=True, submission__benchmark__kind__in=TOOL_USE_KINDS)
    if submission is not None:
        results = results.filter(submission_id=submission)
    else:
        results = results.filter(submission__is_public=True, submission__is_hidden=False, submission__is_flagged=False)
    if benchmark:
        results = results.filter(submission__benchmark__slug=benchmark)
    if scenarios:
        results = results.filter(scenario__in=scenarios)
    rows = results.order_by("id").values_list("scenario", "transcript", "instance__input").iterator(chunk_size=500)
    yield from export_rollouts(Rollout(domain=task["domain"], scenario=scenario, success=True, transcript=transcript)
                               for scenario, transcript, task in rows)
