"""The OPeRA benchmark as the service stores it: the bundled simulated sessions, or the real dataset.

The bundled data lives in ``datasets/opera/data/`` (about 7 MB of zstd parquet for 5.8K pages of 100K
characters; written by ``python -m datasets.opera.simulator datasets/opera/data`` with
``simulator.DEFAULT_SEED``). ``load_real`` builds the same benchmark from the real ``NEU-HAI/OPeRA``
(Hub or a local folder in its layout), with a version that names its revision.

Only the test split's instances hold their pages. Submissions are evaluated on the test split; the train
split serves downloads and the baselines, and its pages (about 560 MB of text in the bundle, 800 MB in the
real data) would multiply the database's size and the load time for no score. Its instances keep every
other input (persona, history, URL) with ``observation`` empty; the pages stay in the parquet files.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from datasets.base import BenchmarkData, ScenarioInfo, SplitData
from datasets.opera.loader import DEFAULT_REPO, OperaData, build_instances, load_local, load_opera
from datasets.opera.simulator import DEFAULT_SEED, SIMULATOR_VERSION

DATA_DIR = Path(__file__).resolve().parent / "data"
VERSION = f"sim{SIMULATOR_VERSION}-seed{DEFAULT_SEED}"
CITATION = """@misc{wang2025operadatasetobservationpersona,
  title={OPeRA: A Dataset of Observation, Persona, Rationale, and Action for Evaluating LLMs on Human Online Shopping Behavior Simulation},
  author={Ziyi Wang and Yuxuan Lu and Wenbo Li and Amirali Amini and Bo Sun and Yakov Bart and Weimin Lyu and Jiri Gesi and Tian Wang and Jing Huang and Yu Su and Upol Ehsan and Malihe Alikhani and Toby Jia-Jun Li and Lydia Chilton and Dakuo Wang},
  year={2025},
  eprint={2506.05606},
  archivePrefix={arXiv},
  primaryClass={cs.CL},
  url={https://arxiv.org/abs/2506.05606},
}"""
SCENARIOS = [
    ScenarioInfo("full", "Full context", "Persona (survey + interview summary), the session's earlier actions with their rationales, and the current page."),
    ScenarioInfo("no_persona", "No persona", "As full, without the persona: how much does knowing the shopper help?"),
    ScenarioInfo("no_rationale", "No rationale", "As full, with the rationales removed from the action history."),
]


PAGED_SPLITS = ("test",)  # the splits whose instances hold their pages (see the module docstring)
REAL_VERSION_PREFIX = "real-"  # the board tells real data from simulated by it


def _benchmark(data: OperaData, version: str, description: str, license: str, extra: dict) -> BenchmarkData:
    return BenchmarkData(
        slug="opera",
        name="OPeRA next-action prediction",
        kind="next_action",
        version=version,
        license=license,
        description=description,
        scenarios=list(SCENARIOS),
        splits=[
            SplitData("train", build_instances(data, "train")),
            SplitData("test", build_instances(data, "test"), labels_hidden=True),
        ],
        citation=CITATION,
        homepage="https://huggingface.co/datasets/NEU-HAI/OPeRA",
        extra={"paged_splits": list(PAGED_SPLITS), **extra},
    )


@lru_cache(maxsize=1)
def load_bundled() -> BenchmarkData:
    data = load_local(DATA_DIR, "filtered", pages=PAGED_SPLITS)
    return _benchmark(
        data, VERSION,
        "Predict a shopper's next web action (click, input or terminate) from their persona, the session so far and "
        "the current page as simplified HTML. These are simulated sessions in the exact OPeRA format and at its scale "
        "(pages of 2.8K-626K characters); the real dataset (NEU-HAI/OPeRA) loads with "
        "`manage.py load_benchmarks opera --source NEU-HAI/OPeRA`.",
        "CC-BY-4.0 (the OPeRA data format and card; the bundled sessions are simulated by Actboard and released under CC-BY-4.0)",
        {"source": "simulated", "seed": DEFAULT_SEED, "simulator_version": SIMULATOR_VERSION},
    )


def real_version(data: OperaData, root: Path | None) -> str:
    """``real-<revision>``: the Hub commit (12 digits), or for a local folder a digest of its parquet files."""
    if data.revision:
        return f"{REAL_VERSION_PREFIX}{data.revision[:12]}"
    digest = hashlib.sha256()
    for path in sorted((root or Path(data.source)).rglob(f"OPeRA_{data.config}/**/*.parquet")):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"{REAL_VERSION_PREFIX}local-{digest.hexdigest()[:12]}"


def load_real(source: str | Path = DEFAULT_REPO, *, revision: str | None = None) -> BenchmarkData:
    """The benchmark on the real OPeRA: a Hub repo id (through ``huggingface_hub``) or a local folder."""
    data = load_opera(source, "filtered", pages=PAGED_SPLITS, revision=revision)
    local = Path(source) if Path(source).exists() else None
    where = f"{source} at revision {data.revision}" if data.revision else str(source)
    return _benchmark(
        data, real_version(data, local),
        "Predict a real shopper's next web action (click, input or terminate) from their persona, the session so far "
        f"and the current page as simplified HTML. Real sessions of the OPeRA dataset ({where}).",
        "CC-BY-4.0 (NEU-HAI/OPeRA)",
        {"source": "real", "repository": str(source), "revision": data.revision},
    )
