"""Routing accuracy: category, grid and assignee all right, as `outreach-bot route --config FILE` prints them.

Reads a community file and a TSV of located reports (category, grid, assignee, slice, text; "-" for
null), by default tests/data/route_community.yaml with bench/data/route/oasis_reports.tsv. Prints the
share of exact routes overall and per slice, and the share right for category, grid and assignee alone.
Run from the repository root: python bench/route_accuracy.py [--failures] [--config FILE] [TSV]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.community.model import load_community  # noqa: E402
from handlers.community.routing import route_message  # noqa: E402
from handlers.kernel.inbound import clean_text  # noqa: E402

REPORTS = "oasis_reports.tsv"


def _value(field: str) -> str | None:
    return None if field == "-" else field


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "tests" / "data" / "route_community.yaml")
    parser.add_argument(
        "reports", nargs="?", type=Path, default=ROOT / "bench" / "data" / "route" / "oasis_reports.tsv"
    )
    parser.add_argument("--failures", action="store_true", help="list the reports routed wrong")
    args = parser.parse_args()
    community = load_community(args.config)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    parts = {"category": 0, "grid": 0, "assignee": 0}
    rows = [
        line.split("\t")
        for line in args.reports.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for category, grid, assignee, part, text in rows:
        result, _location, decision = route_message(community, clean_text(text))
        got = (result.category, decision.grid, decision.assignee)
        want = (_value(category), _value(grid), _value(assignee))
        for i, name in enumerate(parts):
            parts[name] += got[i] == want[i]
        for key in ("all", part):
            totals[key][0] += got == want
            totals[key][1] += 1
        if args.failures and got != want:
            print(f"want {want} got {got}: {text}")
    for key, (right, count) in sorted(totals.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        print(f"{key:<14} {right:>4}/{count:<4} {right / count:.3f}")
    print("alone         " + "  ".join(f"{name} {right / len(rows):.3f}" for name, right in parts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
