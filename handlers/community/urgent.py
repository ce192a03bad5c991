"""Immediate danger in a resident's message: gas, fire, live wires, someone trapped or fallen, a collapse,
deep water. The words are data (``data/urgent.yaml``: Chinese and dialect, English, pinyin per kind,
with the Chinese label and the emergency number); the first kind in file order that matches wins,
so gas beats fire ("煤气罐着火了" is a gas emergency first)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from handlers.community.pattern_search import PatternSearch, sre, sre_parse
from handlers.kernel.textnorm import fold
from handlers.kernel.yaml_text import load_yaml


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
def _pinyin_exclusions() -> tuple[str, ...]:
    return tuple(f" {p.strip()} " for p in urgent_data().get("pinyin_exclusions") or ())


def _without_objects(syllables: str) -> str:
    """The syllables with everyday objects' names blanked (dian xian gan is a pole, not dian xian)."""
    for name in _pinyin_exclusions():
        if name in syllables:
            syllables = syllables.replace(name, " | ")
    return syllables


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


def _leads(pattern: str) -> set[str] | None:
    """Literal strings (one or two characters) one of which every match of ``pattern`` starts with,
    or None when they cannot be worked out (a class, a repeat, a look-around first)."""
    try:
        items = list(sre_parse.parse(pattern))
    except re.error:  # pragma: no cover - the patterns compiled above
        return None
    return _needles(items)


def _needles(items: list[tuple[Any, Any]]) -> set[str] | None:
    """Like the leads, but two characters that every match holds somewhere when some part of the
    pattern says so ("(人|老人)…被撞(倒|伤)" holds 撞倒 or 撞伤): a lone 人 would let most messages by."""
    if len(items) == 1 and items[0][0] is sre.BRANCH:
        out: set[str] = set()
        for alternative in items[0][1][1]:
            found = _needles(list(alternative))
            if found is None:
                return None
            out |= found
        return out
    best: set[str] | None = None
    for i in range(len(items)):
        found = _sequence_leads(items[i:])
        if found and all(len(f) == 2 for f in found) and (best is None or len(found) < len(best)):
            best = found
    return best if best is not None else _sequence_leads(items)


def _sequence_leads(items: list[tuple[Any, Any]]) -> set[str] | None:
    prefixes = {""}
    for op, av in items:
        if all(len(p) >= 2 for p in prefixes):
            break
        if op is sre.LITERAL:
            options: set[str] | None = {chr(av)}
        elif op is sre.SUBPATTERN and not av[1] and not av[2]:
            options = _literal_alternatives(list(av[3]))
        elif op is sre.BRANCH:
            options = _literal_alternatives([(op, av)])
        else:
            options = None
        if options is None:
            break
        prefixes = {(p + o)[:2] if len(p) < 2 else p for p in prefixes for o in options}
    return None if "" in prefixes else prefixes


def _literal_alternatives(items: list[tuple[Any, Any]]) -> set[str] | None:
    """The strings a group of plain words (煤气|燃气|天然气) matches, or None if it is not one."""
    if len(items) == 1 and items[0][0] is sre.BRANCH:
        out: set[str] = set()
        for alternative in items[0][1][1]:
            words = _literal_alternatives(list(alternative))
            if words is None:
                return None
            out |= words
        return out
    words = {""}
    for op, av in items:  # plain characters and lists of them ([一二三]岁)
        if op is sre.LITERAL:
            chars = [chr(av)]
        elif op is sre.IN and all(kind is sre.LITERAL for kind, _ in av):
            chars = [chr(c) for _, c in av]
        else:
            return None
        words = {w + c for w in words for c in chars}
    return words if items and len(words) <= 64 else None


@cache
def _leading_text() -> tuple[frozenset[str], frozenset[str]] | None:
    """Every danger word's first one or two characters: a message holding none of them names no
    danger, found with a set intersection instead of the long alternation (~25 µs a message)."""
    singles: set[str] = set()
    pairs: set[str] = set()
    for raw in urgent_data()["kinds"].values():
        for word in raw.get("words") or ():
            folded = fold(str(word)).lower()
            leads = {folded[:2]} if _PLAIN.fullmatch(folded) else _leads(folded)
            if leads is None:
                return None
            for lead in leads:
                (pairs if len(lead) == 2 else singles).add(lead)
    return frozenset(singles), frozenset(pairs)


def _may_name_danger(text: str) -> bool:
    leading = _leading_text()
    if leading is not None:
        singles, pairs = leading
        if singles.isdisjoint(text) and pairs.isdisjoint(map(operator.add, text, text[1:])):
            return False
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
    if syllables:
        syllables = _without_objects(syllables)

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
