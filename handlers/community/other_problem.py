"""A problem of no category said beside a known one ("楼下垃圾没人清，另外电梯也坏了"): the clause that
names it. The chat opens a linked `other` case for it (handlers/cases/several_problems.py); the
`classify` command lists `other` after the known categories. One reading for both."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from handlers.community.category_defs import OTHER

if TYPE_CHECKING:
    from handlers.community.classify import Classification, Classifier

# Where one problem ends and the next begins in "楼道有小广告，而且楼下下水道也堵了".
CLAUSE = re.compile(r"[，,。；;！!？?\n]+|(?:而且|并且|还有|另外|此外|同时|以及|对了)")
JOINERS = ("而且", "并且", "还有", "另外", "此外", "同时", "以及", "对了")
# An "other" problem beside a known one must be said to be another ("…，电梯也坏了", "另外楼上漏水"); a
# clause saying what the first problem causes ("…，走路都过不去", "灯都不亮了") is not a problem of its own.
OTHER_CONFIDENCE = 0.8


def clauses(text: str) -> list[str]:
    return [c.strip() for c in CLAUSE.split(text) if c and c.strip()]


def another_problem(text: str, clause: str) -> bool:
    before = text[: text.find(clause)].rstrip(" ，,。；;！!？?\n")
    said_so = before.endswith(JOINERS) or "也" in clause or clause.startswith(JOINERS)
    return said_so and "都" not in clause


def other_clause(classifier: Classifier, text: str, classification: Classification) -> str | None:
    """A clause that is mainly a problem of no category, said to be another one, beside a known one."""
    if classification.category in (None, OTHER) or classification.urgent:
        return None
    for part in clauses(text)[1:]:
        found = classifier.classify(part)
        if (
            found.category == OTHER
            and not found.ask
            and found.confidence >= OTHER_CONFIDENCE
            and another_problem(text, part)
        ):
            return part
    return None


def with_other(classifier: Classifier, text: str, classification: Classification) -> tuple[str, ...]:
    """The message's categories, with `other` last when a clause names a problem of no category."""
    codes = tuple(classification.categories)
    if OTHER in codes or other_clause(classifier, text, classification) is None:
        return codes
    return (*codes, OTHER)
