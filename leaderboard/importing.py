"""Import a ``BenchmarkData`` (bundled, from a folder, or from the Hub) into the database, atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from datasets.base import BenchmarkData, Instance, SplitData
from datasets.splits import jsonl_sha256
from evaluation.registry import get_evaluator_class
from leaderboard.models import Benchmark, Scenario, Split, TaskInstance

# Instances written at a time: a chunk of 100K-character pages takes a few seconds to prepare, and progress
# is reported per chunk.
BULK_SIZE = 200
Prepare = Callable[[dict[str, Any]], dict[str, Any]]


def split_sha256(split: SplitData) -> str:
    """Hash of the split's canonical JSONL (inputs and references), the dataset hash of a submission."""
    return jsonl_sha256(((r.key, r.scenario, r.input, r.reference) for r in split.instances), hidden=False)


class ImportConflict(ValueError):
    pass


@transaction.atomic
def import_benchmark(data: BenchmarkData, *, progress: Callable[[int], None] = lambda n: None, replace: bool = False) -> Benchmark:
    """Create or update a benchmark; unchanged splits are kept as they are (their results stay valid).

    A changed split that already has submissions is refused unless ``replace`` is set (which deletes
    those results): scores must always refer to the data they were computed on.
    """
    evaluator_cls = get_evaluator_class(data.kind)
    benchmark, _ = Benchmark.objects.update_or_create(
        slug=data.slug,
        defaults={
            "name": data.name, "kind": data.kind, "version": data.version, "license": data.license,
            "description": data.description, "citation": data.citation, "homepage": data.homepage,
            "main_metric": evaluator_cls.headline_metric().name,
        },
    )
    for position, info in enumerate(data.scenarios):
        Scenario.objects.update_or_create(
            benchmark=benchmark, slug=info.slug, defaults={"name": info.name, "description": info.description, "position": position}
        )
    benchmark.scenarios.exclude(slug__in=[s.slug for s in data.scenarios]).delete()
    for split_data in data.splits:
        sha = split_sha256(split_data)
        split = Split.objects.filter(benchmark=benchmark, name=split_data.name).first()
        if split and split.sha256 == sha:
            _refresh_prepared(split, split_data, evaluator_cls.prepare)
            progress(len(split_data.instances))
            continue
        if split:
            if split.submissions.exists() and not replace:
                raise ImportConflict(
                    f"split '{split_data.name}' of '{data.slug}' changed but has submissions; bump the version "
                    "or import with replace to delete their results"
                )
            split.submissions.all().delete()
            split.delete()
        split = Split.objects.create(
            benchmark=benchmark, name=split_data.name, version=data.version, sha256=sha,
            labels_hidden=split_data.labels_hidden, instance_count=len(split_data.instances),
        )
        insert = _copy_instances if connection.vendor == "postgresql" else _bulk_create_instances
        for start in range(0, len(split_data.instances), BULK_SIZE):
            chunk = split_data.instances[start : start + BULK_SIZE]
            insert(split, chunk, evaluator_cls.prepare)
            progress(len(chunk))
    return benchmark


def _refresh_prepared(split: Split, split_data: SplitData, prepare: Prepare) -> None:
    """Store the instances' prepared parts again where the evaluator now prepares them differently (a new
    prompt version, or a split imported before they were stored). One instance tells: they change together."""
    first = split.instances.order_by("id").first()
    records = {r.key: r for r in split_data.instances}
    if first is None or first.prepared == prepare(records[first.key].input):
        return
    ids = dict(split.instances.values_list("key", "id"))
    for start in range(0, len(split_data.instances), BULK_SIZE):
        chunk = split_data.instances[start : start + BULK_SIZE]
        TaskInstance.objects.bulk_update([TaskInstance(id=ids[r.key], prepared=prepare(r.input)) for r in chunk],
                                         ["prepared"], batch_size=100)


def _bulk_create_instances(split: Split, records: list[Instance], prepare: Prepare) -> None:
    TaskInstance.objects.bulk_create(
        TaskInstance(split=split, key=r.key, scenario=r.scenario, input=r.input, reference=r.reference,
                     prepared=prepare(r.input)) for r in records
    )


def _copy_instances(split: Split, records: list[Instance], prepare: Prepare) -> None:
    """PostgreSQL's COPY: an INSERT's client-side quoting escapes every quote of a 100K-character page in
    Python (minutes for the OPeRA test split); COPY sends the rows as they are, escaped in C."""
    meta = TaskInstance._meta
    columns = [meta.get_field(name).column for name in ("split", "key", "scenario", "input", "reference", "prepared")]
    sql = f"COPY {connection.ops.quote_name(meta.db_table)} ({', '.join(map(connection.ops.quote_name, columns))}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for r in records:
            copy.write_row((split.id, r.key, r.scenario, json.dumps(r.input), json.dumps(r.reference), json.dumps(prepare(r.input))))
