"""``pattern.search(text)``, faster for the classifier's long alternations of words.

Python's regex engine tries a pattern at every position of the text unless every alternative starts
with a plain character; the intent and danger patterns start with groups and alternations of their
own, so each search walks dozens of alternatives at each of a message's characters. Here the set of
characters a match can start with is worked out from the parsed pattern once, a character class finds
those positions (in C), and the pattern is tried only there, with ``match(text, pos)``: the same test
``search`` makes at each position (anchors and look-behinds still see the whole text), so the match
is the same. A pattern whose first character cannot be bounded (``.``, ``[^…]``, a class escape, a
back-reference, an empty match) is searched as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

try:  # Python 3.11 moved the regex parser to re._parser
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_MAX_RANGE = 512  # a character range wider than this is not spelled out


class _Unbounded(Exception):
    """A match may start with a character we cannot list."""


def _first(items: Iterable[tuple[object, object]]) -> tuple[set[str], bool]:
    """The characters a match of this sequence can start with, and whether it can match empty."""
    out: set[str] = set()
    for op, av in items:
        chars, nullable = _first_item(op, av)
        out |= chars
        if not nullable:
            return out, False
    return out, True


def _first_item(op: object, av: object) -> tuple[set[str], bool]:
    if op is sre.LITERAL:
        return {chr(av)}, False  # type: ignore[arg-type]
    if op is sre.IN:
        return _charset(av), False  # type: ignore[arg-type]
    if op is sre.BRANCH:
        out: set[str] = set()
        nullable = False
        for alternative in av[1]:  # type: ignore[index]
            chars, empty = _first(alternative)
            out |= chars
            nullable = nullable or empty
        return out, nullable
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = av  # type: ignore[misc]
        if add_flags or del_flags:
            raise _Unbounded
        return _first(sub)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
        low, _high, sub = av  # type: ignore[misc]
        chars, nullable = _first(sub)
        return chars, nullable or low == 0
    if op is getattr(sre, "ATOMIC_GROUP", None):
        return _first(av)  # type: ignore[arg-type]
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return set(), True  # zero width: what follows starts the match (a superset is still exact)
    raise _Unbounded  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, …


def _charset(items: Iterable[tuple[object, object]]) -> set[str]:
    out: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            out.add(chr(av))  # type: ignore[arg-type]
        elif op is sre.RANGE:
            low, high = av  # type: ignore[misc]
            if high - low > _MAX_RANGE:
                raise _Unbounded
            out.update(map(chr, range(low, high + 1)))
        else:  # NEGATE, CATEGORY, …
            raise _Unbounded
    return out


def first_chars(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """The characters any match of ``pattern`` starts with, or None when they cannot be listed."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        chars, nullable = _first(sre_parse.parse(pattern.pattern, pattern.flags))
    except _Unbounded:
        return None
    return None if nullable or not chars else frozenset(chars)


def _literal_starts(items: list[tuple[object, object]]) -> bool:
    """Does every alternative of the pattern begin with a plain character (or an anchor)? The engine
    tries those cheaply at each position; alternatives that begin with a group or a class are where
    it is slow (``(已经|现在)(不|没)…``)."""
    if not items:
        return False
    op, av = items[0]
    if op is sre.SUBPATTERN and av[0] is None and not any(av[1:3]):  # type: ignore[index]
        return _literal_starts(av[3])  # type: ignore[index]
    if op is sre.BRANCH:
        return all(_literal_starts(alternative) for alternative in av[1])  # type: ignore[index]
    return op in (sre.LITERAL, sre.AT)


class PatternSearch:
    """``search(text)`` gives what ``pattern.search(text)`` gives: the leftmost match, or None."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        plain = _literal_starts(list(sre_parse.parse(pattern.pattern, pattern.flags)))
        chars = None if plain else first_chars(pattern)
        self._starts = re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]") if chars else None

    def search(self, text: str) -> re.Match[str] | None:
        starts = self._starts
        if starts is None:
            return self.pattern.search(text)
        match = self.pattern.match
        for start in starts.finditer(text):  # left to right, as search tries them
            found = match(text, start.start())
            if found is not None:
                return found
        return None
