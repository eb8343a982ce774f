"""Who may see and manage which submission, and which of its details: one rule for the API and the pages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import Q, QuerySet

from evaluation.tau2.evaluator import public_verdict
from leaderboard.models import InstanceResult, Submission

# Per benchmark kind, how a stored prediction reads without what its verifier took from the reference.
# Kinds not listed store nothing of the reference in a prediction (next-action predictions are the
# model's own action; its reference is a separate column that the pages leave out).
PUBLIC_PREDICTION: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"tool_use": public_verdict, "tau2": public_verdict}


def visible_submissions(user, qs: QuerySet[Submission] | None = None) -> QuerySet[Submission]:
    """Public, unhidden submissions for everyone; private and hidden ones only for their owner and staff."""
    qs = Submission.objects.all() if qs is None else qs
    if user.is_staff:
        return qs
    public = Q(is_public=True, is_hidden=False)
    return qs.filter(public | Q(owner_id=user.id)) if user.is_authenticated else qs.filter(public)


def can_manage(user, submission: Submission) -> bool:
    """Cancel, re-run and make public or private: the owner and staff."""
    return user.is_authenticated and (user.is_staff or submission.owner_id == user.id)


def can_see_references(user, submission: Submission) -> bool:
    """Hidden test references never leave the server except to staff; other splits publish theirs."""
    return not submission.split.labels_hidden or user.is_staff


def public_prediction(kind: str, prediction: Any) -> Any:
    """``prediction`` as anyone may see it: without expected values its verifier copied from the reference."""
    redact = PUBLIC_PREDICTION.get(kind)
    return redact(prediction) if redact and isinstance(prediction, dict) else prediction


def shown_results(user, submission: Submission, results: Iterable[InstanceResult]) -> Iterator[InstanceResult]:
    """``results`` of ``submission`` with each prediction in the form ``user`` may see, for pages,
    exports and the API alike. The objects are changed in memory only; never save them."""
    with_references = can_see_references(user, submission)
    for result in results:
        if not with_references:
            result.prediction = public_prediction(submission.benchmark.kind, result.prediction)
        yield result
