"""Saved or deleted submissions and models may change a leaderboard: bump its version (cache key).

Bulk ``.update()`` calls do not send these signals; they go through ``SubmissionQuerySet.moderate`` or
call ``Benchmark.touch_boards`` themselves (see ``worker.scoring``).
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from leaderboard.models import Benchmark, ModelEntry, Submission


@receiver([post_save, post_delete], sender=Submission)
def submission_changed(sender, instance: Submission, **kwargs) -> None:
    Benchmark.touch_boards([instance.benchmark_id])


@receiver([post_save, post_delete], sender=ModelEntry)
def model_changed(sender, instance: ModelEntry, **kwargs) -> None:
    Benchmark.touch_boards(Submission.objects.filter(model_id=instance.pk).values_list("benchmark_id", flat=True).distinct())
