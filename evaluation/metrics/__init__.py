"""Metric functions of both benchmark families (DESIGN §1.1 and §1.2)."""

from evaluation.metrics.next_action import next_action_scores
from evaluation.metrics.tool_use import pass_hat_k

__all__ = ["next_action_scores", "pass_hat_k"]
