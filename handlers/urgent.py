"""Immediate danger in a resident's message: gas, fire, live wires, someone trapped or fallen, a collapse,
deep water. The words are data (``data/urgent.yaml``: Chinese and dialect, English, pinyin per kind,
with the Chinese label and the emergency number); the first kind in file order that matches wins,
so gas beats fire ("煤气罐着火了" is a gas emergency first)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from handlers.pattern_search import PatternSearch
from handlers.textnorm import fold
from handlers.yaml_text import load_yaml


@dataclass(frozen=True)
class UrgentKind:
    key: str
    label: str
    number: str
    words: re.Pattern[str] | None
    english: re.Pattern[str] | None
    pinyin: tuple[str, ...]


def _alternation(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


@cache
def urgent_data() -> dict[str, Any]:
    text = resources.files("handlers").joinpath("data", "urgent.yaml").read_text(encoding="utf-8")
    return load_yaml(text)  # type: ignore[no-any-return]


@cache
def urgent_kinds() -> tuple[UrgentKind, ...]:
    kinds = []
    for key, raw in urgent_data()["kinds"].items():
        english = [re.escape(w.lower()) for w in raw.get("english") or ()]
        kinds.append(
            UrgentKind(
                key=key,
                label=str(raw["label"]),
                number=str(raw["number"]),
                words=_alternation([fold(str(w)).lower() for w in raw.get("words") or ()]),
                english=re.compile(r"(?<![a-z])(?:" + "|".join(english) + ")") if english else None,
                pinyin=tuple(f" {p.strip()} " for p in raw.get("pinyin") or ()),
            )
        )
    return tuple(kinds)


@cache
def _exclusions() -> re.Pattern[str] | None:
    return _alternation([str(p) for p in urgent_data().get("exclusions") or ()])


@cache
def plain_words() -> frozenset[str]:
    """The danger words that are plain words (not patterns), for homophone repair (着或了 → 着火了)."""
    return frozenset(
        fold(str(w)).lower()
        for raw in urgent_data()["kinds"].values()
        for w in raw.get("words") or ()
        if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", str(w))
    )


_LATIN = re.compile("[a-z]")
_PLAIN = re.compile(r"[^\\.^$*+?{}\[\]|()]+")


@cache
def _prefilter() -> PatternSearch | None:
    """Every kind's Chinese words and patterns in one alternation: most messages name no danger, and
    one search says so without running every kind's pattern."""
    words = [fold(str(w)).lower() for raw in urgent_data()["kinds"].values() for w in raw.get("words") or ()]
    if not words:
        return None
    alternatives = (re.escape(w) if _PLAIN.fullmatch(w) else f"(?:{w})" for w in words)
    return PatternSearch(re.compile("|".join(alternatives)))


def _may_name_danger(text: str) -> bool:
    prefilter = _prefilter()
    return prefilter is not None and prefilter.search(text) is not None


# "没有煤气味了", "no gas smell": a danger named only to say it is not there.
_NEGATIONS = ("没有", "没", "无", "不是", "不再", "no ", "not ", "no more ")


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 5) : start]
    return before.endswith(_NEGATIONS)


def kind_info(key: str) -> UrgentKind | None:
    """The label and emergency number of a kind (for the conversation's reply)."""
    return next((k for k in urgent_kinds() if k.key == key), None)


def detect(text: str, original: str = "", syllables: str = "") -> str | None:
    """The kind of danger a message names, or None. ``text``: folded, lower-case, dialect and English
    already read into Chinese; ``original``: folded as typed (for the English phrases); ``syllables``:
    the message as spaced toneless pinyin, to catch danger typed in pinyin or as a homophone (每气味)."""
    if not syllables and not _LATIN.search(original) and not _may_name_danger(text):
        return None
    excluded = _exclusions()

    def spans(of: str) -> list[tuple[int, int]]:
        return [m.span() for m in excluded.finditer(of)] if excluded is not None else []

    chinese, english = spans(text), spans(original)

    def found(pattern: re.Pattern[str] | None, of: str, skip: list[tuple[int, int]]) -> bool:
        if pattern is None:
            return False
        return any(
            not any(a <= m.start() < b for a, b in skip) and not _negated(of, m.start())
            for m in pattern.finditer(of)
        )

    for kind in urgent_kinds():
        if (
            found(kind.words, text, chinese)
            or found(kind.english, original, english)
            or (syllables and any(p in syllables for p in kind.pinyin))
        ):
            return None if _over(text, original) else kind.key
    return None


@cache
def _over_patterns() -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    data = urgent_data()
    over = [fold(str(p)).lower() for p in data.get("over") or ()]
    still = [fold(str(p)).lower() for p in data.get("still") or ()]
    return _alternation(over), _alternation(still)


def _over(text: str, original: str) -> bool:
    """The danger is fixed, past or asked about in general, and nothing says it is happening now."""
    over, still = _over_patterns()
    if over is None or not (over.search(text) or over.search(original)):
        return False
    return still is None or not (still.search(text) or still.search(original))
