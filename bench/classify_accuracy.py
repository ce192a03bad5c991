"""Accuracy of the report classifier on the team's labelled messages (bench/data/labelled_messages.tsv).

Each line: expected labels (primary first, "+"-joined; `none` = not a report, `other` = a report of
no category), the split (`dev` = tuned against, `held` = never looked at while tuning), the message.
Run from the repository root: python bench/classify_accuracy.py [--failures]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.classify import default_classifier

DATA = Path(__file__).with_name("data") / "labelled_messages.tsv"


def load() -> list[tuple[list[str], str, str]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        labels, split, text = line.split("\t", 2)
        rows.append((labels.split("+"), split, text))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failures", action="store_true", help="list every misclassified message")
    args = parser.parse_args()
    classifier = default_classifier()
    totals: Counter[str] = Counter()
    right: Counter[str] = Counter()
    multi_total = multi_right = 0
    failures = []
    for labels, split, text in load():
        result = classifier.classify(text)
        got = result.category or "none"
        ok = got == labels[0]
        for key in ("all", split, labels[0]):
            totals[key] += 1
            right[key] += ok
        if len(labels) > 1:
            multi_total += 1
            multi_right += list(result.categories) == labels
        if not ok:
            failures.append((split, labels[0], got, text))
    print(f"messages: {totals['all']}  (dev {totals['dev']}, held-out {totals['held']})")
    for key in ("all", "dev", "held"):
        print(f"accuracy {key:>5}: {right[key] / totals[key]:.1%}  ({right[key]}/{totals[key]})")
    print("per expected label:")
    for label in sorted(k for k in totals if k not in {"all", "dev", "held"}):
        print(f"  {label:<9} {right[label] / totals[label]:.1%}  ({right[label]}/{totals[label]})")
    print(f"two-problem messages with both categories in order: {multi_right}/{multi_total}")
    if args.failures:
        for split, want, got, text in failures:
            print(f"  [{split}] want {want:<8} got {got:<8} {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
