"""How many reference targets survive the prompt's page budget, and what shortening a page costs.

Usage: python bench/bench_prompt_targets.py [--data DIR] [--budgets 8000 32000 128000] [--repeat 20]

For every test step whose reference names an element (clicks and inputs), the share whose
``name="..."`` is still in ``compact_observation(page, budget)``; beside it the share a shortening by
position would keep (the named elements in page order, as many as fit), to show what the priority buys.
Then the time to shorten pages of about 100K and 600K characters (best and median of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.opera.bundle import DATA_DIR  # noqa: E402
from datasets.opera.loader import load_local  # noqa: E402
from evaluation.next_action.prompt import compact_observation  # noqa: E402

_NAMED = re.compile(r"""<([a-zA-Z][\w-]*)\b[^>]*?\sname="([^"]*)"[^>]*>""")


def by_position(html: str, budget: int) -> str:
    """The reference: named elements in page order while they fit (what a positional cut keeps)."""
    if len(html) <= budget:
        return html
    out, used = [], 0
    for tag, name in _NAMED.findall(html):
        line = f'<{tag} name="{name}"/>\n'
        if used + len(line) > budget:
            break
        out.append(line)
        used += len(line)
    return "".join(out)


def timed(html: str, budget: int, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        compact_observation(html, budget)
        times.append(time.process_time() - started)
    return min(times) * 1000, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="a folder in the OPeRA Hub layout (default: the bundle)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[8_000, 32_000, 128_000])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    actions = load_local(args.data, splits=["test"]).actions["test"]
    steps = [a for a in actions if a.action_type in ("click", "input")]
    pages = [a.simplified_html for a in steps]
    print(f"{len(steps)} test steps with a named target; pages: median {statistics.median(map(len, pages)):,.0f} "
          f"characters, max {max(map(len, pages)):,}")
    print(f"{'budget':>8} {'kept (priority)':>16} {'kept (position)':>16} {'pages over budget':>18} {'ms per step':>12}")
    for budget in args.budgets:
        started = time.process_time()
        kept = sum(f'name="{a.semantic_id}"' in compact_observation(a.simplified_html, budget) for a in steps)
        elapsed = time.process_time() - started
        positional = sum(f'name="{a.semantic_id}"' in by_position(a.simplified_html, budget) for a in steps)
        over = sum(len(p) > budget for p in pages)
        print(f"{budget:>8,} {kept / len(steps):>15.1%} {positional / len(steps):>16.1%} {over:>18} {1000 * elapsed / len(steps):>12.2f}")
    print("shortening time per page (best / median of runs):")
    all_pages = sorted({len(a.simplified_html): a.simplified_html for a in actions}.items())
    for wanted in (100_000, 600_000):
        size, html = min(all_pages, key=lambda item: abs(item[0] - wanted))
        for budget in args.budgets:
            best, middle = timed(html, budget, args.repeat)
            print(f"  page of {size:,} characters, budget {budget:,}: {best:.2f} / {middle:.2f} ms")


if __name__ == "__main__":
    main()
