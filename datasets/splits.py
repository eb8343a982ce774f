"""Split export and import: canonical JSONL, parquet, a manifest and a dataset card; Hub publish and fetch.

A published folder (and Hub dataset repo) looks like::

    README.md           dataset card: YAML front matter (configs, license, citation) and a description
    manifest.json       format, benchmark metadata, scenarios, and per split: counts, sha256, files
    data/<split>.jsonl  one instance per line: {"input", "key", "reference", "scenario"}

Lines are canonical JSON (sorted keys, compact), the same form ``leaderboard.importing.split_sha256``
hashes, so a published split's file hash equals the dataset hash that submissions record. Splits whose
labels are hidden are written without the ``reference`` key: test references never leave the server.
Reading validates every row and raises ``DatasetError`` naming the file, row and field; nothing is
returned (so nothing is imported) unless the whole folder is valid.

This module needs no Django: the service turns its database rows into ``SplitExport`` values.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.base import BenchmarkData, DatasetError, Instance, ScenarioInfo, SplitData, read_jsonl
from evaluation.canonical import canonical_json

FORMAT = "actboard-splits/1"
MANIFEST = "manifest.json"
CARD = "README.md"
ROW_FIELDS = {"key", "scenario", "input", "reference"}
PARQUET_SCHEMA = pa.schema([("key", pa.string()), ("scenario", pa.string()), ("input", pa.string()), ("reference", pa.string())])
# Licence ids the Hub knows; anything else is published as "other" with its own name.
HUB_LICENSES = {"apache-2.0", "mit", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "odc-by", "odbl",
                "cdla-permissive-2.0", "bsd-3-clause", "gpl-3.0", "openrail", "unknown"}
LICENSE_ALIASES = {"cc0": "cc0-1.0"}
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")

Row = tuple[str, str, dict[str, Any], "dict[str, Any] | None"]  # key, scenario, input, reference (None: hidden)
Progress = Callable[[int], Any]


def _no_progress(n: int) -> None:
    return None


@dataclass
class SplitExport:
    """One split to export. ``rows`` yields references only when ``labels_hidden`` is false."""

    name: str
    version: str
    sha256: str
    labels_hidden: bool
    instances: int
    counts: dict[str, int]
    rows: Callable[[], Iterable[Row]] = field(repr=False)


# --- lines and files -------------------------------------------------------------------------------


def jsonl_line(key: str, scenario: str, input: dict[str, Any], reference: dict[str, Any] | None) -> bytes:
    line: dict[str, Any] = {"key": key, "scenario": scenario, "input": input}
    if reference is not None:
        line["reference"] = reference
    return canonical_json(line).encode() + b"\n"


def iter_jsonl(rows: Iterable[Row], hidden: bool) -> Iterator[bytes]:
    """The split's JSONL, line by line (for streaming). ``hidden`` drops references whatever the rows hold."""
    for key, scenario, input, reference in rows:
        yield jsonl_line(key, scenario, input, None if hidden else reference)


def jsonl_sha256(rows: Iterable[Row], hidden: bool) -> str:
    digest = hashlib.sha256()
    for line in iter_jsonl(rows, hidden):
        digest.update(line)
    return digest.hexdigest()


def write_parquet(rows: Iterable[Row], hidden: bool, target: IO[bytes], batch_size: int = 500) -> None:
    """Parquet with input and reference as JSON text columns: instance schemas vary, and large inputs
    (OPeRA pages) compress well. Written in row groups so memory stays flat in the split's size."""
    with pq.ParquetWriter(target, PARQUET_SCHEMA, compression="zstd") as writer:
        batch: list[Row] = []

        def flush() -> None:
            columns = list(zip(*batch))
            writer.write_batch(pa.record_batch([
                pa.array(columns[0], pa.string()),
                pa.array(columns[1], pa.string()),
                pa.array([json.dumps(v, sort_keys=True) for v in columns[2]], pa.string()),
                pa.array([None if hidden or v is None else json.dumps(v, sort_keys=True) for v in columns[3]], pa.string()),
            ], schema=PARQUET_SCHEMA))
            batch.clear()

        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()


# --- manifest and card -----------------------------------------------------------------------------


def build_manifest(meta: BenchmarkData, splits: list[SplitExport], files: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``files``: per split, per format, ``{"path": ..., "sha256": ...}`` (a relative path or a URL)."""
    return {
        "format": FORMAT,
        "benchmark": {"slug": meta.slug, "name": meta.name, "kind": meta.kind, "version": meta.version, "license": meta.license,
                      "description": meta.description, "citation": meta.citation, "homepage": meta.homepage},
        "scenarios": [{"slug": s.slug, "name": s.name, "description": s.description} for s in meta.scenarios],
        "splits": [
            {
                "name": s.name, "version": s.version, "labels_hidden": s.labels_hidden, "references_included": not s.labels_hidden,
                "instances": s.instances, "counts": s.counts,
                # The dataset hash submissions record (inputs and references), equal to the JSONL file's
                # hash when references are included.
                "sha256": s.sha256,
                "files": files.get(s.name, {}),
            }
            for s in splits
        ],
    }


def hub_license(name: str) -> dict[str, str]:
    slug = LICENSE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if slug in HUB_LICENSES:
        return {"license": slug}
    return {"license": "other", "license_name": re.sub(r"[^a-z0-9]+", "-", slug).strip("-") or "custom"}


def dataset_card(manifest: dict[str, Any]) -> str:
    """A Hub dataset card: YAML front matter (configs, licence, citation), then a description."""
    from huggingface_hub import DatasetCard, DatasetCardData

    bench = manifest["benchmark"]
    # Splits without references get their own config: one config's splits must share their columns.
    configs = [
        {"config_name": name, "data_files": [{"split": s["name"], "path": s["files"]["jsonl"]["path"]} for s in group]}
        for name, group in (("default", [s for s in manifest["splits"] if s["references_included"]]),
                            ("inputs_only", [s for s in manifest["splits"] if not s["references_included"]]))
        if group
    ]
    card_data = DatasetCardData(
        pretty_name=bench["name"],
        configs=configs,
        citation=bench["citation"] or None,
        tags=["actboard", "agents", "benchmark"],
        **hub_license(bench["license"]),
    )
    lines = [
        "---", card_data.to_yaml(), "---", "", f"# {bench['name']}", "", bench["description"], "",
        f"Benchmark `{bench['slug']}` (family `{bench['kind']}`), version {bench['version']}, published by Actboard. "
        f"Licence: {bench['license'] or 'not stated'}." + (f" Homepage: {bench['homepage']}" if bench["homepage"] else ""),
        "", "## Splits", "", "| split | instances | references | sha256 |", "|---|---|---|---|",
    ]
    for s in manifest["splits"]:
        refs = "included" if s["references_included"] else "withheld (held-out test labels stay on the server)"
        lines.append(f"| {s['name']} | {s['instances']} | {refs} | `{s['sha256']}` |")
    lines += ["", "## Scenarios", ""] + [f"- **{sc['slug']}**: {sc['name']}. {sc['description']}".rstrip() for sc in manifest["scenarios"]]
    lines += ["", "Each line of `data/<split>.jsonl` holds `key`, `scenario` (empty: every scenario), `input` and, "
              "where included, `reference`. `manifest.json` has per-scenario counts and file hashes."]
    if bench["citation"]:
        lines += ["", "## Citation", "", "```bibtex", bench["citation"].strip(), "```"]
    return DatasetCard("\n".join(lines) + "\n").content


def write_folder(meta: BenchmarkData, splits: list[SplitExport], out_dir: str | Path, progress: Progress = _no_progress) -> dict[str, Any]:
    """Write ``data/<split>.jsonl``, ``manifest.json`` and ``README.md``; return the manifest."""
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, dict[str, Any]]] = {}
    for split in splits:
        relative = f"data/{split.name}.jsonl"
        digest = hashlib.sha256()
        with open(out / relative, "wb") as handle:
            for line in iter_jsonl(split.rows(), split.labels_hidden):
                handle.write(line)
                digest.update(line)
                progress(1)
        files[split.name] = {"jsonl": {"path": relative, "sha256": digest.hexdigest()}}
    manifest = build_manifest(meta, splits, files)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / CARD).write_text(dataset_card(manifest), encoding="utf-8")
    return manifest


# --- reading ---------------------------------------------------------------------------------------


def _require(path: str, data: dict[str, Any], name: str, kind: type, *, allow_empty: bool = True) -> Any:
    if name not in data:
        raise DatasetError(path, "missing", field_name=name)
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool) or (not allow_empty and not value):
        raise DatasetError(path, f"must be a{'' if allow_empty else ' non-empty'} {kind.__name__}", field_name=name)
    return value


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise DatasetError(str(path), "no manifest.json: not a published Actboard split folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(str(path), f"not valid JSON: {exc.msg}", row=exc.lineno) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(str(path), f"unsupported format (expected '{FORMAT}')", field_name="format")
    bench = _require(str(path), manifest, "benchmark", dict)
    for name in ("slug", "name", "kind", "version"):
        _require(str(path), bench, name, str, allow_empty=False)
    if not _SLUG.match(bench["slug"]):
        raise DatasetError(str(path), "must be a slug (letters, digits, - and _)", field_name="benchmark.slug")
    for name in ("license", "description", "citation", "homepage"):
        if not isinstance(bench.get(name, ""), str):
            raise DatasetError(str(path), "must be a string", field_name=f"benchmark.{name}")
    for i, scenario in enumerate(_require(str(path), manifest, "scenarios", list, allow_empty=False)):
        if not isinstance(scenario, dict) or not isinstance(scenario.get("slug"), str) or not _SLUG.match(scenario["slug"]):
            raise DatasetError(str(path), f"item {i} needs a slug", field_name="scenarios")
    for i, split in enumerate(_require(str(path), manifest, "splits", list, allow_empty=False)):
        if not isinstance(split, dict) or not isinstance(split.get("name"), str) or not _SLUG.match(split["name"]):
            raise DatasetError(str(path), f"item {i} needs a name", field_name="splits")
        jsonl = split.get("files", {}).get("jsonl") if isinstance(split.get("files"), dict) else None
        if not isinstance(jsonl, dict) or not isinstance(jsonl.get("path"), str) or not isinstance(jsonl.get("sha256"), str):
            raise DatasetError(str(path), f"split '{split['name']}' needs files.jsonl with path and sha256", field_name="splits")
    return manifest


def read_rows(path: Path, label: str, *, scenarios: set[str], with_references: bool, progress: Progress = _no_progress) -> list[Instance]:
    """Validate and read one split file; ``label`` is the file's name in error messages."""
    records: list[Instance] = []
    seen: set[str] = set()
    required = ROW_FIELDS if with_references else ROW_FIELDS - {"reference"}
    for number, row in read_jsonl(path, label):
        if not isinstance(row, dict):
            raise DatasetError(label, "a row must be a JSON object", row=number)
        for name in sorted(required - row.keys()):
            raise DatasetError(label, "missing", row=number, field_name=name)
        for name in sorted(row.keys() - required):
            raise DatasetError(label, "unexpected field" + (" (this split's references are withheld)" if name == "reference" else ""),
                               row=number, field_name=name)
        if not isinstance(row["key"], str) or not row["key"]:
            raise DatasetError(label, "must be a non-empty string", row=number, field_name="key")
        if row["key"] in seen:
            raise DatasetError(label, f"duplicate key '{row['key']}'", row=number, field_name="key")
        if not isinstance(row["scenario"], str) or (row["scenario"] and row["scenario"] not in scenarios):
            raise DatasetError(label, f"must be empty or one of {', '.join(sorted(scenarios))}", row=number, field_name="scenario")
        for name in ("input", "reference") if with_references else ("input",):
            if not isinstance(row[name], dict):
                raise DatasetError(label, "must be a JSON object", row=number, field_name=name)
        seen.add(row["key"])
        records.append(Instance(key=row["key"], input=row["input"], reference=row.get("reference", {}), scenario=row["scenario"]))
        progress(1)
    return records


@dataclass(frozen=True)
class FolderContents:
    benchmark: BenchmarkData
    # Splits published without references (held-out test labels): nothing to evaluate against, not imported.
    skipped: list[str]


def read_folder(folder: str | Path, progress: Progress = _no_progress) -> FolderContents:
    """Read a published folder into ``BenchmarkData``; every file is checked before anything is returned."""
    root = Path(folder)
    manifest = read_manifest(root)
    bench = manifest["benchmark"]
    scenarios = [ScenarioInfo(s["slug"], s.get("name") or s["slug"], s.get("description", "")) for s in manifest["scenarios"]]
    splits: list[SplitData] = []
    skipped: list[str] = []
    for split in manifest["splits"]:
        if not split.get("references_included", False):
            skipped.append(split["name"])
            continue
        relative = split["files"]["jsonl"]["path"]
        path = root / relative
        # Checked on the name, not the resolved path: HF cache snapshots are symlinks into its blob store.
        if PurePosixPath(relative).is_absolute() or ".." in PurePosixPath(relative).parts or not path.is_file():
            raise DatasetError(relative, f"listed in the manifest for split '{split['name']}' but missing")
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != split["files"]["jsonl"]["sha256"]:
            raise DatasetError(relative, f"sha256 {digest.hexdigest()[:12]}… does not match the manifest")
        records = read_rows(path, relative, scenarios={s.slug for s in scenarios}, with_references=True, progress=progress)
        splits.append(SplitData(split["name"], records, labels_hidden=bool(split.get("labels_hidden"))))
    data = BenchmarkData(
        slug=bench["slug"], name=bench["name"], kind=bench["kind"], version=bench["version"], license=bench.get("license", ""),
        description=bench.get("description", ""), citation=bench.get("citation", ""), homepage=bench.get("homepage", ""),
        scenarios=scenarios, splits=splits,
    )
    return FolderContents(data, skipped)


def count_rows(folder: str | Path) -> int:
    """Rows that ``read_folder`` will read, for a progress bar's total."""
    manifest = read_manifest(Path(folder))
    return sum(int(s.get("instances", 0)) for s in manifest["splits"] if s.get("references_included"))


# --- the Hub ---------------------------------------------------------------------------------------


def publish(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = False, endpoint: str | None = None,
            commit_message: str = "Publish benchmark splits") -> str:
    """Create the dataset repo if needed and upload the folder as one commit; return the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset", commit_message=commit_message)
    return str(info.commit_url)


def fetch(repo_id: str, *, revision: str | None = None, token: str | None = None, endpoint: str | None = None) -> Path:
    """Download (or reuse from the HF cache) a published dataset repo; return its local snapshot folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, token=token, endpoint=endpoint,
                                  allow_patterns=[MANIFEST, CARD, "data/*.jsonl"]))

