"""Accuracy of the report classifier on the team's labelled messages (bench/data/labelled_messages.tsv).

Each line: expected labels (primary first, "+"-joined; `none` = not a report, `other` = a report of
no category), the split, the message. Splits: `dev` (tuned against), `held` (held out from tuning) in
labelled_messages.tsv; `blind` in the blind_*.tsv files, written by someone who never saw the
classifier (blind_messages.tsv was later used for one round of fixes; blind2_messages.tsv never was).
Run from the repository root: python bench/classify_accuracy.py [--failures] [FILE ...]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.classify import default_classifier

DATA = Path(__file__).with_name("data")
DEFAULT_FILES = (
    "labelled_messages.tsv",
    "blind_messages.tsv",
    "blind2_messages.tsv",
    "blind3_messages.tsv",
    "blind4_messages.tsv",
)


def load(path: Path) -> list[tuple[list[str], str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        labels, split, text = line.split("\t", 2)
        rows.append((labels.split("+"), split, text))
    return rows


def report(path: Path, show_failures: bool) -> None:
    classifier = default_classifier()
    totals: Counter[str] = Counter()
    right: Counter[str] = Counter()
    multi_total = multi_right = 0
    failures = []
    splits: list[str] = []
    for labels, split, text in load(path):
        result = classifier.classify(text)
        got = result.category or "none"
        ok = got == labels[0]
        if split not in splits:
            splits.append(split)
        for key in ("all", f"split:{split}", labels[0]):
            totals[key] += 1
            right[key] += ok
        if len(labels) > 1:
            multi_total += 1
            multi_right += list(result.categories) == labels
        if not ok:
            failures.append((split, labels[0], got, text))
    print(f"== {path.name}: {totals['all']} messages")
    for key in ("all", *(f"split:{s}" for s in splits)):
        print(f"accuracy {key:<12} {right[key] / totals[key]:.1%}  ({right[key]}/{totals[key]})")
    labels = sorted(k for k in totals if k != "all" and not k.startswith("split:"))
    print("per expected label: " + ", ".join(f"{k} {right[k]}/{totals[k]}" for k in labels))
    print(f"two-problem messages with both categories in order: {multi_right}/{multi_total}")
    if show_failures:
        for split, want, got, text in failures:
            print(f"  [{split}] want {want:<8} got {got:<8} {text}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failures", action="store_true", help="list every misclassified message")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    files = args.files or [DATA / name for name in DEFAULT_FILES if (DATA / name).exists()]
    for path in files:
        report(path, args.failures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
