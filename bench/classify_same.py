"""Does a change to the classifier's mechanics keep every answer the same?

Classifies every message of bench/data/**/*.tsv (the last column) and the speed bench's glued
30-character messages, and writes one JSON line per message with everything ``outreach-bot classify``
prints (category, categories, confidence, keywords, urgent, ask, candidates). Save a reference before
changing the code, then compare after:

    python bench/classify_same.py --save /tmp/before.jsonl      # on the old code
    python bench/classify_same.py --check /tmp/before.jsonl     # on the new code: lists differences

The reference is a local file, not committed: the rules and the model change for accuracy and with
them the answers; this only checks that a speed-up changed none.
Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classify_speed import messages as glued_messages

from bot.classify_cli import classification_fields
from handlers.community.classify import default_classifier
from handlers.kernel.inbound import clean_text

DATA = Path(__file__).with_name("data")


def texts(glued: int) -> list[str]:
    out = []
    for path in sorted(DATA.rglob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(line.split("\t")[-1])
    return out + glued_messages(glued)


def answers(batch: list[str]) -> list[str]:
    classifier = default_classifier()
    lines = []
    for text in batch:
        result = classifier.classify(clean_text(text))
        lines.append(
            json.dumps(
                {
                    **classification_fields(text, result),
                    "candidates": list(result.candidates),
                    "intent": result.intent,
                },
                ensure_ascii=False,
            )
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the answers here (the reference)")
    group.add_argument("--check", type=Path, help="compare the answers with this reference")
    parser.add_argument("--glued", type=int, default=5000, help="glued 30-character messages to add")
    args = parser.parse_args()
    lines = answers(texts(args.glued))
    if args.save:
        args.save.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(lines)} answers saved to {args.save}")
        return 0
    reference = args.check.read_text(encoding="utf-8").splitlines()
    if len(reference) != len(lines):
        print(f"reference has {len(reference)} messages, now {len(lines)}: not the same data")
        return 2
    differ = [(old, new) for old, new in zip(reference, lines, strict=True) if old != new]
    for old, new in differ[:20]:
        print(f"- {old}\n+ {new}")
    print(f"{len(lines) - len(differ)} of {len(lines)} answers identical, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
