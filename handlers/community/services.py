"""Complaints about a service, read as the problem the service is for: "保洁阿姨好几天没来了" and
"收垃圾的车三天没来了" are refuse not collected (garbage), "灭鼠的人来了一趟就没下文了" is rats (pests).
The patterns are data (``data/services.yaml``); the classifier counts a match as a keyword of its
category, so the rules, the learned layer's features and everything after see a named problem."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from handlers.community.category_defs import _data
from handlers.community.pattern_search import PatternSearch
from handlers.kernel import regex_cache


@dataclass(frozen=True)
class ServiceMatch:
    code: str  # the category the service is for
    start: int
    text: str  # the words of the complaint


class ServiceRules:
    """One search per category, in the order the data lists them."""

    def __init__(self, patterns: Mapping[str, Sequence[str]]) -> None:
        self._rules: list[tuple[str, PatternSearch]] = [
            (code, PatternSearch(regex_cache.compile("|".join(f"(?:{p})" for p in found))))
            for code, found in patterns.items()
            if found
        ]

    def find(
        self, text: str, codes: Iterable[str], negated: Sequence[tuple[int, int]] = ()
    ) -> list[ServiceMatch]:
        """The categories among ``codes`` whose service the text complains about, first said first;
        not in a part that says what the problem is not (``negated`` spans)."""
        wanted = set(codes)
        out = []
        for code, search in self._rules:
            m = search.search(text) if code in wanted else None
            if m is not None and not any(a <= m.start() < b for a, b in negated):
                out.append(ServiceMatch(code, m.start(), m.group()))
        return sorted(out, key=lambda s: s.start)


@cache
def default_services() -> dict[str, tuple[str, ...]]:
    raw = _data("services.yaml").get("services") or {}
    for code, patterns in raw.items():
        for pattern in patterns:
            re.compile(pattern)  # a broken pattern fails at load, naming itself
        raw[code] = tuple(patterns)
    return dict(raw)


@cache
def default_service_rules() -> ServiceRules:
    return ServiceRules(default_services())
