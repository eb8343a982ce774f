import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.base import DatasetError, read_jsonl
from datasets.opera.bundle import DATA_DIR
from datasets.opera.loader import load_opera
from datasets.opera.simulator import name_pattern, stats

# The real dataset's figures (dataset card and paper, filtered config), to read another dataset against.
PAGES = "2.8K / 100K / 626K"  # the card's page size: min / median (about) / max characters
REAL = {
    "test": {"actions": 992, "sessions": 90, "action_types": {"click": 845, "input": 107, "terminate": 40},
             "purchase_sessions": "50 (55.6%)", "instances": 902, "session_length": "11.0 / –", "users": "51 in all",
             "pages": PAGES},
    "train": {"actions": 4864, "sessions": 437, "session_length": "11.1 / –", "users": "51 in all", "pages": PAGES},
}


def _thousands(n: int) -> str:
    return f"{n / 1000:.1f}K"


class Command(BaseCommand):
    help = "Print the statistics of an OPeRA-format dataset (default: the bundled one) next to the real OPeRA's."

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", default=str(DATA_DIR), help="a folder in the Hub layout, or a Hub repo id")
        parser.add_argument("--config", default="filtered", choices=["filtered", "full"])
        parser.add_argument("--split", action="append", dest="splits", choices=["train", "test"], help="default: both")
        parser.add_argument("--sample", type=Path,
                            help="real ground-truth actions as JSON Lines (action_gt.name per row): how many of their click "
                                 "names have a counterpart (same pattern) in this dataset")

    def handle(self, *args, **o):
        try:
            data = load_opera(o["source"], o["config"], splits=tuple(o["splits"] or ("train", "test")))
            sample = [row["action_gt"] for _, row in read_jsonl(o["sample"])] if o["sample"] else []
        except (DatasetError, OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        for split, figures in stats(data).items():
            real = REAL.get(split, {})
            pages = figures["page_chars"]
            self.stdout.write(self.style.MIGRATE_HEADING(f"{split} split ({o['source']})"))
            rows = [
                ("sessions", figures["sessions"], real.get("sessions")),
                ("actions", figures["actions"], real.get("actions")),
                *((f"  {t}", n, real.get("action_types", {}).get(t)) for t, n in figures["action_types"].items()),
                ("prediction instances", figures["instances"], real.get("instances")),
                ("sessions with a purchase", f"{figures['purchase_sessions']} ({100 * figures['purchase_rate']:.1f}%)", real.get("purchase_sessions")),
                ("purchase clicks / before last 3", f"{figures['purchase_clicks']} / {figures['purchase_clicks_before_last_3']}", None),
                ("session length mean / median", f"{figures['session_length']['mean']} / {figures['session_length']['median']}", real.get("session_length")),
                ("users", figures["users"], real.get("users")),
                ("page chars min / median / max", " / ".join(_thousands(pages[k]) for k in ("min", "median", "max")), real.get("pages")),
                ("page chars p10 / p90", f"{_thousands(pages['p10'])} / {_thousands(pages['p90'])}", None),
                ("click names / with 2+ click types", f"{figures['click_names']} / {figures['ambiguous_click_names']}", None),
                ("rationales / distinct", f"{figures['rationales']} / {figures['distinct_rationales']}", None),
                ("personas that contradict themselves", figures["persona_conflicts"], None),
            ]
            self.stdout.write(f"{'':36}{'this dataset':>22}{'real OPeRA':>20}")
            for label, value, reference in rows:
                self.stdout.write(f"{label:36}{value!s:>22}{'' if reference is None else reference!s:>20}")
            mix = ", ".join(f"{t} {n}" for t, n in figures["click_types"].items())
            self.stdout.write(f"click types: {mix}\n")
        if sample:
            patterns = {name_pattern(a.semantic_id) for actions in data.actions.values() for a in actions if a.semantic_id}
            names = [a["name"] for a in sample if a.get("type") == "click" and a.get("name")]
            covered = [n for n in names if name_pattern(n) in patterns]
            missing = sorted({name_pattern(n) for n in names} - patterns)
            self.stdout.write(f"real sample click names with a counterpart here: {len(covered)} of {len(names)}"
                              + (f"; missing patterns: {json.dumps(missing)}" if missing else ""))
