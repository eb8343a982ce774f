"""The evaluation engine: runs work items of one benchmark family against one endpoint, concurrently.

It knows nothing about persistence: outcomes are handed to a callback in the calling thread as they
complete, those that completed together in one call (so the caller can store them in one transaction).
At most ``concurrency`` items are in flight, so memory stays flat in N.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from evaluation.base import Evaluator, Instance, Outcome
from evaluation.client import EndpointClient, EndpointError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkItem:
    instance: Instance
    scenario: str
    trial: int


def evaluate_one(evaluator: Evaluator, client: EndpointClient, item: WorkItem) -> Outcome:
    """Evaluate one item; endpoint faults become a recorded error, never an exception."""
    try:
        return evaluator.run(client, item.instance, item.scenario, item.trial)
    except EndpointError as err:
        return Outcome(error_code=err.code, error=err.message)
    except Exception as exc:  # a bug in a family must cost one instance, not the whole submission
        log.exception("evaluating %s (%s, trial %s) failed", item.instance.key, item.scenario, item.trial)
        return Outcome(error_code="internal", error=f"internal error while evaluating: {exc!r}"[:1000])


def run_items(
    evaluator: Evaluator,
    client: EndpointClient,
    items: Iterable[WorkItem],
    *,
    concurrency: int,
    on_outcomes: Callable[[list[tuple[WorkItem, Outcome]]], None],
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float | None = None,
) -> int:
    """Run ``items`` with at most ``concurrency`` in flight; return how many completed.

    ``should_stop`` is polled between completions and, with ``poll_seconds``, at least that often while
    items are in flight (the caller's heartbeat and cancellation check); once it answers True, items
    already in flight finish and are reported, nothing new starts.
    """
    done = 0
    pending: dict[Future[Outcome], WorkItem] = {}
    source: Iterator[WorkItem] = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="eval") as pool:

        def fill() -> None:
            while len(pending) < concurrency and not should_stop():
                item = next(source, None)
                if item is None:
                    return
                pending[pool.submit(evaluate_one, evaluator, client, item)] = item

        fill()
        while pending:
            finished, _ = wait(pending, timeout=poll_seconds, return_when=FIRST_COMPLETED)
            if not finished:
                should_stop()
                continue
            completed = [(pending.pop(future), future.result()) for future in finished]
            fill()  # refill before reporting: the endpoint stays busy while outcomes are stored
            on_outcomes(completed)
            done += len(completed)
    return done
