"""The evaluation engine: runs work items of one benchmark family against one endpoint, concurrently.

It knows nothing about persistence: outcomes are handed to a callback in the calling thread as they
complete, those that completed together (or within a short gathering time) in one call, so the caller
can store them in one transaction.
At most ``concurrency`` items are in flight, so memory stays flat in N.
"""

from __future__ import annotations

import logging
import time
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
    gather_seconds: float = 0.0,
) -> int:
    """Run ``items`` with at most ``concurrency`` in flight; return how many completed.

    ``should_stop`` is polled between completions and, with ``poll_seconds``, at least that often while
    items are in flight (the caller's heartbeat and cancellation check); once it answers True, items
    already in flight finish and are reported, nothing new starts.

    Outcomes are handed to ``on_outcomes`` at most ``gather_seconds`` after the first of them completed,
    with every one that completed meanwhile (at once when nothing is left in flight): at high concurrency
    items complete a few milliseconds apart, and the caller's cost per call (a transaction) is shared.
    """
    done = 0
    pending: dict[Future[Outcome], WorkItem] = {}
    completed: list[tuple[WorkItem, Outcome]] = []
    report_by = 0.0  # monotonic time by which the completed outcomes are handed over
    source: Iterator[WorkItem] = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="eval") as pool:

        def fill() -> None:
            while len(pending) < concurrency and not should_stop():
                item = next(source, None)
                if item is None:
                    return
                pending[pool.submit(evaluate_one, evaluator, client, item)] = item

        fill()
        while pending or completed:
            timeout = max(0.0, report_by - time.monotonic()) if completed else poll_seconds
            finished = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED).done if pending else set()
            if finished:
                if not completed:
                    report_by = time.monotonic() + gather_seconds
                completed += [(pending.pop(future), future.result()) for future in finished]
                fill()  # refill before reporting: the endpoint stays busy while outcomes are stored
            elif not completed:
                should_stop()
                continue
            if not pending or time.monotonic() >= report_by:
                on_outcomes(completed)
                done += len(completed)
                completed = []
    return done
