"""The evaluation engine: runs work items of one benchmark family against one endpoint, concurrently.

It knows nothing about persistence: outcomes are handed to a callback in the calling thread as they
complete, those that completed together (or within a short gathering time) in one call, so the caller
can store them in one transaction.
At most ``concurrency`` items are in flight, so memory stays flat in N.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
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

    ``concurrency`` threads each take the next item as soon as they finish one, from a queue that this
    (the calling) thread keeps a round ahead: the endpoint's slots stay busy while this thread pulls items
    from ``items`` and stores outcomes, and no thread but this one touches ``items`` or the callbacks.

    ``should_stop`` is polled as items are queued and, with ``poll_seconds``, at least that often while
    items are in flight (the caller's heartbeat and cancellation check); once it answers True, items
    already in flight finish and are reported, nothing new starts.

    Outcomes are handed to ``on_outcomes`` at most ``gather_seconds`` after the first of them completed,
    with every one that completed meanwhile (at once when nothing is left in flight): at high concurrency
    items complete a few milliseconds apart, and the caller's cost per call (a transaction) is shared.
    """
    workers = max(1, concurrency)
    todo: queue.SimpleQueue[WorkItem | None] = queue.SimpleQueue()
    results: queue.SimpleQueue[tuple[WorkItem, Outcome]] = queue.SimpleQueue()
    source: Iterator[WorkItem] = iter(items)
    outstanding = 0  # queued or in flight, not yet back
    finished = stopped = False
    threads: list[threading.Thread] = []  # started as items come, up to ``workers``

    def work() -> None:
        while (item := todo.get()) is not None:
            results.put((item, evaluate_one(evaluator, client, item)))

    def end_workers() -> None:
        nonlocal finished
        finished = True
        for _ in threads:
            todo.put(None)

    def finish() -> None:
        """Nothing more is queued: each worker ends once the queue is empty."""
        if not finished:
            end_workers()

    def stop() -> None:
        """Items queued but not taken are not started, so not done and not reported; those in flight finish."""
        nonlocal outstanding, stopped
        if stopped:
            return
        stopped = True
        with contextlib.suppress(queue.Empty):
            while True:
                if todo.get_nowait() is not None:
                    outstanding -= 1
        end_workers()  # again, if the queue held the ends that ``finish`` put: a spare end is never read

    def top_up() -> None:
        nonlocal outstanding
        while not finished and outstanding < 2 * workers:
            if should_stop():
                stop()
                return
            item = next(source, None)
            if item is None:
                finish()
                return
            todo.put(item)
            outstanding += 1
            if len(threads) < min(workers, outstanding):
                threads.append(threading.Thread(target=work, name=f"eval-{len(threads)}", daemon=True))
                threads[-1].start()

    done = 0
    completed: list[tuple[WorkItem, Outcome]] = []
    report_by = 0.0  # monotonic time by which the completed outcomes are handed over
    try:
        top_up()
        while outstanding or completed:
            timeout = max(0.0, report_by - time.monotonic()) if completed else poll_seconds
            try:
                first = results.get(timeout=timeout) if outstanding else None
            except queue.Empty:
                first = None
            if first is not None:
                if not completed:
                    report_by = time.monotonic() + gather_seconds
                received = [first]
                with contextlib.suppress(queue.Empty):
                    while True:
                        received.append(results.get_nowait())
                completed += received
                outstanding -= len(received)
                top_up()
            elif not completed:
                if should_stop():
                    stop()
                continue
            if not outstanding or time.monotonic() >= report_by:
                on_outcomes(completed)
                done += len(completed)
                completed = []
                if not stopped and should_stop():  # the outcomes may have tripped it (the caller's breaker)
                    stop()
    finally:
        stop()
        for thread in threads:
            thread.join()
    return done
