"""Who may see and manage which submission: one rule for the API and the pages."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from leaderboard.models import Submission


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
