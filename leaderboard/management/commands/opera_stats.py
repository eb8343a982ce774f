from django.core.management.base import BaseCommand, CommandError

from datasets.base import DatasetError
from datasets.opera.bundle import DATA_DIR
from datasets.opera.loader import load_opera
from datasets.opera.simulator import stats

# The real dataset's figures (dataset card and paper, filtered config), to read the bundled data against.
REAL = {
    "test": {"actions": 992, "sessions": 90, "action_types": {"click": 845, "input": 107, "terminate": 40},
             "purchase_sessions": 50, "instances": 902},
    "train": {"actions": 4864, "sessions": 437},
}


class Command(BaseCommand):
    help = "Print the statistics of an OPeRA-format dataset (default: the bundled one) next to the real OPeRA's."

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", default=str(DATA_DIR), help="a folder in the Hub layout, or a Hub repo id")
        parser.add_argument("--config", default="filtered", choices=["filtered", "full"])
        parser.add_argument("--split", action="append", dest="splits", choices=["train", "test"], help="default: both")

    def handle(self, *args, **o):
        try:
            data = load_opera(o["source"], o["config"], splits=tuple(o["splits"] or ("train", "test")))
        except (DatasetError, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for split, figures in stats(data).items():
            real = REAL.get(split, {})
            self.stdout.write(self.style.MIGRATE_HEADING(f"{split} split ({o['source']})"))
            rows = [
                ("sessions", figures["sessions"], real.get("sessions")),
                ("actions", figures["actions"], real.get("actions")),
                *((f"  {t}", n, real.get("action_types", {}).get(t)) for t, n in figures["action_types"].items()),
                ("prediction instances", figures["instances"], real.get("instances")),
                ("sessions with a purchase", f"{figures['purchase_sessions']} ({100 * figures['purchase_rate']:.1f}%)", real.get("purchase_sessions")),
                ("session length mean / median", f"{figures['session_length']['mean']} / {figures['session_length']['median']}", None),
                ("users", figures["users"], None),
                ("actions with a rationale", figures["rationales"], None),
                ("page characters median / max", f"{figures['page_chars']['median']} / {figures['page_chars']['max']}", None),
            ]
            self.stdout.write(f"{'':32}{'this dataset':>18}{'real OPeRA':>14}")
            for label, value, reference in rows:
                self.stdout.write(f"{label:32}{value!s:>18}{'' if reference is None else reference!s:>14}")
            mix = ", ".join(f"{t} {n}" for t, n in figures["click_types"].items())
            self.stdout.write(f"click types: {mix}\n")
