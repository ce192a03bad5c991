"""Accuracy of the report classifier on the labelled messages in bench/data/ and bench/data/corpus/.

Each message is in the `train` or the `test` split by the SHA-1 of its text (handlers/community/classify_corpus.py).
Rules, word lists and the model are built on `train` only; the `test` figures are the honest ones.
For each file: accuracy, problems turned away (a labelled problem classified as no report) and urgent
recall, per split and per slice (dialect, typo, pinyin, …; dev/held/blind in the older files).
Run from the repository root: python bench/classify_accuracy.py [--failures] [FILE ...]
(--failures lists the misclassified train messages only: the test split is not for looking at.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.community.classify import default_classifier
from handlers.community.classify_corpus import Figures, Prediction, Row, corpus_files, read_rows

DATA = Path(__file__).with_name("data")


def predict(text: str) -> Prediction:
    result = default_classifier().classify(text)
    return Prediction(result.category or "none", getattr(result, "urgent", None) is not None)


def figures(rows: list[Row]) -> Figures:
    out = Figures()
    for row in rows:
        out.add(row, predict(row.text))
    return out


def report(name: str, rows: list[Row], show_failures: bool, slices: bool = True) -> Figures:
    print(f"== {name}: {len(rows)} messages")
    for split in ("train", "test"):
        part = [r for r in rows if r.split == split]
        print(f"  {split:<5} {figures(part).summary()}")
    if slices:
        for slice_ in sorted({r.slice for r in rows}):
            for split in ("train", "test"):
                part = [r for r in rows if r.slice == slice_ and r.split == split]
                if part:
                    print(f"    {slice_:<12} {split:<5} {figures(part).summary()}")
    if show_failures:
        for row in rows:
            if row.split != "train":
                continue
            got = predict(row.text)
            if got.label != row.label or (row.urgent and not got.urgent):
                urgent = " (urgent missed)" if row.urgent and not got.urgent else ""
                print(f"  [{row.slice}] want {row.label:<8} got {got.label:<8}{urgent} {row.text}")
    return figures(rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failures", action="store_true", help="list misclassified train messages")
    parser.add_argument("--no-slices", action="store_true", help="only the per-split figures")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    files = args.files or corpus_files(DATA)
    everything: list[Row] = []
    for path in files:
        rows = read_rows(path)
        everything.extend(rows)
        report(path.name, rows, args.failures, not args.no_slices)
    if len(files) > 1:
        print(f"== all files: {len(everything)} messages")
        for split in ("train", "test"):
            part = [r for r in everything if r.split == split]
            print(f"  {split:<5} {figures(part).summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
