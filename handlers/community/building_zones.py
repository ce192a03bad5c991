"""Buildings once a community's zones count: which zone (一期/二期, A区, 南区, 紫荆苑) a message names,
and which building a number then names.

In a community with a 3号楼 in 一期 and another in 二期, "3号楼" alone names no building: the bot asks
rather than guesses. "二期3号楼", "2期三栋", "3号楼（二期）", "er qi 3 hao lou", or "我住二期，3号楼…"
name one. A number no zone has ("13号楼" where the highest is 12) names no building either: it is
never matched to another building by a part of its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from handlers.community.building_spec import (
    MAX_BUILDING,
    NUM,
    NUMERAL_CHARS,
    ZONE,
    ZONE_NUM,
    BuildingSet,
    building_key,
    cn_number,
    to_int,
    zone_key,
)

_ZONE_RE = re.compile(ZONE)
_PINYIN_DIGIT = {
    "一": "yi", "二": "er", "三": "san", "四": "si", "五": "wu",
    "六": "liu", "七": "qi", "八": "ba", "九": "jiu", "十": "shi",
}  # fmt: skip
_PINYIN_SIDE = {"东": "dong", "南": "nan", "西": "xi", "北": "bei", "中": "zhong"}
_ENGLISH_SIDE = {"东": "east", "南": "south", "西": "west", "北": "north", "中": "central"}
_ENGLISH_DIGIT = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_ENGLISH_ZONE = r"(?:zone|area|district|section)"
_ESTATE_WORDS = "苑园里村庄坊府邸湾庭居阁轩城"
_ASCII_LETTER = re.compile("[A-Za-z]")
# Between a zone and its building ("二期的3号楼", "二期 3栋"), or a building and its zone ("3号楼(二期)").
_GAP_BEFORE = re.compile(r"[\s的之(（]{0,3}")
_GAP_AFTER = re.compile(r"[\s(（]{0,2}")


class NamedBuilding(Protocol):
    """A building number as found in a message (handlers.community.location.BuildingMention, ZoneNumber)."""

    @property
    def key(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def unit(self) -> int | None: ...


def _syllables(words: Iterable[str]) -> str:
    """Toneless pinyin syllables, apart or together: "er qi", "erqi"."""
    return r"\s*".join(words)


def _readings(name: str) -> list[str] | None:
    from handlers.community.lexicon import char_readings  # the pinyin table, loaded once a locator is built

    table = char_readings()
    first = [table.get(ch, ())[:1] for ch in name]
    return [r[0] for r in first] if all(first) else None


def _named_spellings(zone: str) -> list[str]:
    """A named zone as written: "紫荆苑", and without its estate word when two characters are left
    (but 曹杨一村 is never "曹杨一")."""
    short = len(zone) >= 3 and zone[-1] in _ESTATE_WORDS and zone[-2] not in NUMERAL_CHARS
    return [zone] + ([zone[:-1]] if short else [])


def latin_patterns(zone: str) -> list[str]:
    """Regex alternatives for a zone in pinyin or English: 二期 → er qi, erqi, di er qi, phase 2 …"""
    m = _ZONE_RE.fullmatch(zone)
    if m is None:
        return []
    if m["zn"]:
        n = cn_number(m["zn"])
        word = m["zk"]
        py = _syllables(_PINYIN_DIGIT[ch] for ch in m["zn"])
        english = f"{n}|{_ENGLISH_DIGIT[n]}" if n is not None and n <= 10 else str(n)
        return [
            rf"(?<![a-z])(?:di\s*)?{py}\s*{'qi' if word == '期' else 'qu'}(?![a-z])",
            rf"(?<![a-z]){'phase' if word == '期' else _ENGLISH_ZONE}\s*(?:{english})(?![a-z0-9])",
        ]
    if m["zl"]:
        return [
            rf"(?<![a-z0-9]){m['zl']}\s*qu(?![a-z])",
            rf"(?<![a-z]){_ENGLISH_ZONE}\s*{m['zl']}(?![a-z0-9])",
        ]
    if m["zd"]:
        side = m["zd"]
        return [
            rf"(?<![a-z]){_PINYIN_SIDE[side]}\s*qu(?![a-z])",
            rf"(?<![a-z]){_ENGLISH_SIDE[side]}\s*{_ENGLISH_ZONE}(?![a-z])",
        ]
    found = []
    for name in _named_spellings(zone):
        if (readings := _readings(name)) is not None:
            found.append(rf"(?<![a-z]){_syllables(readings)}(?![a-z])")
    return found


# Zones in Chinese, of any community: numbered (二期, 2期, 第二期, 3区), lettered (A区), by side (南区);
# a community's named zones are added to it. Kept to a few alternatives: locate runs it on every message.
_CN_ZONES = (
    rf"(?<![{NUMERAL_CHARS}])(?:第\s*)?(?P<zn>{ZONE_NUM})\s*(?P<zk>期|区)"
    rf"|(?<![A-Za-z0-9])(?P<zl>[A-Za-z])\s*区|(?P<zd>[东南西北中])\s*区"
)


@dataclass(frozen=True)
class ZoneHit:
    zone: str
    start: int
    end: int


class ZoneFinder:
    """The zones of one community, found in folded text."""

    def __init__(self, zones: Iterable[str]) -> None:
        self.zones = frozenset(zones)
        self._named = {
            spelling: zone
            for zone in self.zones
            if (m := _ZONE_RE.fullmatch(zone)) is not None and m["zname"]
            for spelling in _named_spellings(zone)
        }
        named = "|".join(map(re.escape, sorted(self._named, key=len, reverse=True)))
        self._chinese = re.compile(_CN_ZONES + (f"|(?P<zname>{named})" if named else ""))
        # The Chinese regex only where a zone could be: 期, 区 or the first character of a name.
        self._markers = "期区" + "".join({spelling[0] for spelling in self._named})
        self._zone_of: list[str] = []
        parts: list[str] = []
        for zone in sorted(self.zones, key=len, reverse=True):
            for pattern in latin_patterns(zone):
                parts.append(f"(?P<z{len(self._zone_of)}>{pattern})")
                self._zone_of.append(zone)
        self._latin = re.compile("|".join(parts), re.IGNORECASE) if parts else None
        # "B5栋", "b 5号楼": where the community has a B区, a letter written right before a building
        # number is that zone (only there: elsewhere "B5" may be a parking space or a shop).
        self._letters = "".join(
            sorted(z[0] for z in self.zones if len(z) == 2 and z[1] == "区" and z[0].isascii())
        )
        self._letter_zone = (
            re.compile(
                rf"(?<![A-Za-z0-9])[{self._letters}{self._letters.lower()}](?=\s?[0-9]{{1,3}}\s?(?:号楼|号栋|栋|幢|座|\#))"
            )
            if self._letters
            else None
        )

    def find(self, folded: str) -> list[ZoneHit]:
        hits: list[ZoneHit] = []
        if any(marker in folded for marker in self._markers):
            for m in self._chinese.finditer(folded):
                zone = self._named[m["zname"]] if self._named and m["zname"] else zone_key(m)
                if zone in self.zones:
                    hits.append(ZoneHit(zone, m.start(), m.end()))
        if self._letter_zone is not None and _ASCII_LETTER.search(folded):
            hits += [
                ZoneHit(m.group().upper() + "区", m.start(), m.end())
                for m in self._letter_zone.finditer(folded)
            ]
        if self._latin is not None and _ASCII_LETTER.search(folded):
            hits += [
                ZoneHit(self._zone_of[int(m.lastgroup[1:])], m.start(), m.end())  # type: ignore[index]
                for m in self._latin.finditer(folded)
            ]
        return sorted(hits, key=lambda hit: hit.start)


@dataclass(frozen=True)
class ZoneNumber:
    """ "二期3号", "紫荆苑8号": after a zone, a bare 号 names a building, as residents say it (上海话
    "阿拉住二期3号") and as house plates read; without one "3号" is a date."""

    key: str
    text: str
    start: int
    unit: int | None = None


# Not "3号门" (gate 3), "3号楼" (the main regex has it), "3号2单元", "13号" read as 1 and 3.
_AFTER_ZONE = re.compile(rf"\s*(?:的\s*)?(?P<num>{NUM})\s*号(?![0-9楼栋幢座门单号])")


def zone_numbers(original: str, folded: str, hits: Sequence[ZoneHit]) -> list[ZoneNumber]:
    found: list[ZoneNumber] = []
    for hit in hits:
        if (m := _AFTER_ZONE.match(folded, hit.end)) is not None and 1 <= to_int(m["num"]) <= MAX_BUILDING:
            start = m.start("num")
            found.append(ZoneNumber(str(to_int(m["num"])), original[start : m.end()], start))
    return found


def mask(folded: str, hits: Sequence[ZoneHit]) -> str:
    """The text with its zones blanked out, offsets kept: "二期3号楼" is scanned as "  3号楼", so that
    期 before a number ("星期三号楼道": Wednesday) and "er qi san" as one numeral do not get in the way."""
    chars = list(folded)
    for hit in hits:
        chars[hit.start : hit.end] = " " * (hit.end - hit.start)
    return "".join(chars)


@dataclass(frozen=True)
class Resolved:
    key: str  # "二期3", "15栋2单元", "3"
    grid: str | None  # None: a building no grid has
    start: int  # the words naming it, zone included
    end: int


AMBIGUOUS = "?"  # a grid code never has this value: the building is in several places


class BuildingIndex:
    """Which grid has a (zone, building, unit); cached, the keys are few."""

    def __init__(self, areas: Sequence[tuple[str, BuildingSet]]) -> None:
        self._areas = tuple(areas)
        self.zones: tuple[str, ...] = tuple(sorted(set().union(*(b.zone_names() for _, b in areas))))
        self._cache: dict[tuple[str, str, int | None], tuple[str | None, bool]] = {}

    def grid(self, zone: str, base: str, unit: int | None) -> tuple[str | None, bool]:
        """(grid, whether the unit decided it); grid AMBIGUOUS when the building's units are in
        several grids and no unit was said. If two grids claim it, the first listed wins."""
        key = (zone, base, unit)
        if key not in self._cache:
            found: tuple[str | None, bool] = (None, False)
            whole = next((code for code, b in self._areas if b.covers(zone, base)), None)
            if whole is not None:
                found = (whole, False)
            elif unit is not None:
                units = (code for code, b in self._areas if (zone, base, unit) in b.units)
                found = (next(units, None), True)
            else:
                partly = {code for code, b in self._areas if b.has_units_of(zone, base)}
                if partly:
                    found = (partly.pop() if len(partly) == 1 else AMBIGUOUS, False)
            self._cache[key] = found
        return self._cache[key]

    def _in_zone(self, zone: str, m: NamedBuilding, start: int, end: int) -> Resolved | None:
        grid, by_unit = self.grid(zone, m.key, m.unit)
        if grid == AMBIGUOUS:
            return None
        return Resolved(building_key(zone, m.key, m.unit if by_unit else None), grid, start, end)

    def resolve(self, m: NamedBuilding, hits: Sequence[ZoneHit], folded: str) -> Resolved | None:
        """The building a mention names, None when it could be several (the resident is asked)."""
        start, end = m.start, m.start + len(m.text)
        for hit in hits:  # the zone written with it: "二期3号楼", "3号楼（二期）"
            if hit.end <= start and _GAP_BEFORE.fullmatch(folded, hit.end, start):
                return self._in_zone(hit.zone, m, hit.start, end)
            if hit.start >= end and _GAP_AFTER.fullmatch(folded, end, hit.start):
                return self._in_zone(hit.zone, m, start, hit.end + folded.startswith(")", hit.end))
        candidates = [zone for zone in ("", *self.zones) if self.grid(zone, m.key, m.unit)[0] is not None]
        named = {hit.zone for hit in hits} & set(candidates)
        if len(named) == 1:  # "我住二期，3号楼下面…"
            return self._in_zone(named.pop(), m, start, end)
        if len(candidates) == 1:
            return self._in_zone(candidates[0], m, start, end)
        if not candidates:
            return Resolved(building_key("", m.key), None, start, end)
        return None
