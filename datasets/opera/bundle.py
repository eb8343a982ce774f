"""The bundled OPeRA-format benchmark: simulated sessions in the real Hub layout, read by the real loader.

The data lives in ``datasets/opera/data/`` (about 0.75 MB of zstd parquet, written by
``python -m datasets.opera.simulator datasets/opera/data`` with ``simulator.DEFAULT_SEED``); loading it
takes well under a second. A test checks that the simulator still reproduces it exactly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from datasets.base import BenchmarkData, ScenarioInfo, SplitData
from datasets.opera.loader import build_instances, load_local
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


@lru_cache(maxsize=1)
def load_bundled() -> BenchmarkData:
    data = load_local(DATA_DIR, "filtered")
    return BenchmarkData(
        slug="opera",
        name="OPeRA next-action prediction",
        kind="next_action",
        version=VERSION,
        license="CC-BY-4.0 (the OPeRA data format and card; the bundled sessions are simulated by Actboard and released under CC-BY-4.0)",
        description=(
            "Predict a shopper's next web action (click, input or terminate) from their persona, the session so far and "
            "the current page as simplified HTML. The bundled splits are simulated sessions in the exact OPeRA format; "
            "the real dataset (NEU-HAI/OPeRA) loads through the same loader."
        ),
        scenarios=list(SCENARIOS),
        splits=[
            SplitData("train", build_instances(data, "train")),
            SplitData("test", build_instances(data, "test"), labels_hidden=True),
        ],
        citation=CITATION,
        homepage="https://huggingface.co/datasets/NEU-HAI/OPeRA",
        extra={"source": "simulated", "seed": DEFAULT_SEED, "simulator_version": SIMULATOR_VERSION},
    )
