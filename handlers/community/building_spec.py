"""Building names as a community file writes them, and the keys they share with residents' messages.

A grid's ``buildings`` entries: "3", "1-6", "1~6号楼", "十二栋", "3#", "A座", and the names real 小区
give their buildings: a phase or zone first ("二期3号楼", "一期1-12号楼", "A区5号楼", "南区3号楼", a
named estate "紫荆苑8号楼"), a unit after ("7栋2单元": a building whose units two grids share).

A key names one building, or one unit of one, the same way on both sides: zone, building, unit —
"3", "A", "二期3", "A区5", "紫荆苑8", "15栋2单元", "二期7栋2单元". Zones are written canonically
(二期 for 2期 and 第二期, A区 for a区) so that every spelling of one building gives one key.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from handlers.kernel.textnorm import fold as _fold
from messages import render

MAX_BUILDING = 9999

# --------------------------------------------------------------------------------------------
# Numbers. Arabic 1-9999; Chinese in the 十/百 form (十四, 二十三, 一百零二, 一百二十), 廿/卅 (廿三 = 23),
# or digit by digit ("一〇" = 10, "幺三" = 13: 幺 is how 一 is said in numbers read out).
# 两/几 are deliberately absent: "两栋楼", "好几栋" count buildings, they do not name one.
# --------------------------------------------------------------------------------------------

_CN_DIGIT = {ch: i for i, ch in enumerate("零一二三四五六七八九")} | {"〇": 0, "幺": 1}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_1_9 = "[一二三四五六七八九]"
# Longest forms first: the regex takes the first alternative that matches.
CN_NUM = (
    rf"(?:{_CN_1_9}百(?:零{_CN_1_9}|{_CN_1_9}十{_CN_1_9}?)?"
    rf"|{_CN_1_9}?十{_CN_1_9}?|[廿卅]{_CN_1_9}?|[〇零幺一二三四五六七八九]{{1,3}})"
)
NUM = rf"(?:[0-9]{{1,4}}|{CN_NUM})"
# Characters a number can be made of: a building mention may not start right after one.
NUMERAL_CHARS = "0-9〇零幺一二三四五六七八九十百千万两几廿卅"
_TENS = {"廿": "二十", "卅": "三十"}


def cn_number(num: str) -> int | None:
    """The value of a Chinese numeral ("二十三", "一百零二", "十四", "一〇", "廿三"), None if it is not
    one whole number. "一百二" (colloquially 120) is None too: a building is never worth a guess."""
    return _cn_value(_TENS[num[0]] + num[1:] if num[:1] in _TENS else num)


def _cn_value(num: str) -> int | None:
    if all(ch in _CN_DIGIT for ch in num):
        value = 0
        for ch in num:
            value = value * 10 + _CN_DIGIT[ch]
        return value if num else None
    total, digit, last_unit, zero = 0, None, 10_000, False
    for ch in num:
        if ch in _CN_DIGIT:
            if digit is not None or (zero and _CN_DIGIT[ch] == 0):
                return None
            if _CN_DIGIT[ch] == 0:
                if last_unit == 10_000 or last_unit == 10:
                    return None
                zero = True
            else:
                digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            unit = _CN_UNIT[ch]
            if unit >= last_unit or (zero and unit * 10 >= last_unit):
                return None
            if digit is None:
                if unit != 10 or total:  # "十四" is 14, but "百" alone and "一百十" are no numerals
                    return None
                digit = 1
            total += digit * unit
            digit, last_unit, zero = None, unit, False
        else:
            return None
    if digit is not None:
        if last_unit > 10 and not zero:
            return None  # "一百二": 120 or 102? not said
        total += digit
    elif zero:
        return None
    return total


def to_int(num: str) -> int:
    if num.isascii():
        return int(num)
    value = cn_number(num)
    if value is None:  # the regexes only let whole numerals through
        raise ValueError(num)
    return value


def cn_numeral(n: int) -> str:
    """1-99 in Chinese (十二, 二十, 三): how a numbered zone is written in its key (larger: digits)."""
    digits = "零一二三四五六七八九"
    if n >= 100:
        return str(n)
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


# --------------------------------------------------------------------------------------------
# Zones: 一期/2期/第三期, A区/3区, 南区, and named estates (紫荆苑, 阳光花园, 春华里).
# --------------------------------------------------------------------------------------------

ZONE_NUM = rf"(?:[0-9]{{1,2}}|{CN_NUM})"
# A named zone: up to 6 characters that are no numeral or building word, ending in an estate word.
_NAME_CHAR = rf"[^\s{NUMERAL_CHARS}A-Za-z栋幢座号楼单元期区#\-~至到,，、()（）]"
ZONE = (
    rf"(?:第?\s*(?P<zn>{ZONE_NUM})\s*(?P<zk>期|区)"
    rf"|(?P<zl>[A-Za-z])\s*区"
    rf"|(?P<zd>[东南西北中])\s*区"
    # numerals after its first character: Shanghai's 新村 are 曹杨一村, 控江二村
    rf"|(?P<zname>{_NAME_CHAR}(?:{_NAME_CHAR}|[一二三四五六七八九十]){{0,5}}?(?:苑|园|里|村|庄|坊|府|邸|湾|庭|居|阁|轩|城)))"
)
_ZONE_RE = re.compile(ZONE)


def zone_key(match: re.Match[str]) -> str:
    """The canonical name of a zone matched by ZONE: 二期, A区, 三区, 南区, 紫荆苑."""
    if match["zn"]:
        return cn_numeral(to_int(match["zn"])) + match["zk"]
    if match["zl"]:
        return match["zl"].upper() + "区"
    if match["zd"]:
        return match["zd"] + "区"
    return match["zname"]


# --------------------------------------------------------------------------------------------
# Keys.
# --------------------------------------------------------------------------------------------

_KEY = re.compile(r"(?P<zone>.*?)(?P<base>[0-9]+|[A-Z])(?:栋(?P<unit>[0-9]+)单元)?")


def building_key(zone: str, base: str, unit: int | None = None) -> str:
    """A key from its parts: ("二期", "3", None) → "二期3"; ("", "15", 2) → "15栋2单元"."""
    return f"{zone}{base}" + (f"栋{unit}单元" if unit is not None else "")


def split_key(key: str) -> tuple[str, str, int | None]:
    """(zone, building, unit) of a key: "二期3" → ("二期", "3", None). A key this module did not make
    is taken whole as a building of no zone."""
    m = _KEY.fullmatch(key.strip())
    if m is None:
        return "", key.strip().upper(), None
    base = m["base"]
    return m["zone"], str(int(base)) if base.isdigit() else base, int(m["unit"]) if m["unit"] else None


def building_label(key: str) -> str:
    """How staff read a key: "3" → "3号楼", "A" → "A座", "二期3" → "二期3号楼",
    "15栋2单元" → "15号楼2单元"."""
    zone, base, unit = split_key(key)
    building = render("location.building" if base.isdigit() else "location.building_letter", name=zone + base)
    return building if unit is None else render("location.building_unit", building=building, unit=unit)


# --------------------------------------------------------------------------------------------
# Config side.
# --------------------------------------------------------------------------------------------


class BuildingSpecError(ValueError):
    """A malformed building entry; .spec is the offending string, .reason a short English id.

    Reasons: 'empty', 'malformed', 'reversed_range' ("6-1"), 'out_of_range' (0, or above 9999).
    """

    def __init__(self, spec: object, reason: str) -> None:
        super().__init__(f"bad building entry {spec!r}: {reason}")
        self.spec = str(spec)
        self.reason = reason


def _merge(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _label(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


Unit = tuple[str, str, int]  # (zone, building, unit): "15栋2单元" is ("", "15", 2)


@dataclass(frozen=True)
class BuildingSet:
    """The buildings one grid covers: numeric ranges plus named (letter) buildings, the same per zone
    (``zones``), and single units of buildings the grid shares with another (``units``).

    Ranges are kept sorted and merged, zones merged by name (the constructor does it), so equal sets
    compare equal.
    """

    ranges: tuple[tuple[int, int], ...] = ()
    names: frozenset[str] = frozenset()
    zones: tuple[tuple[str, BuildingSet], ...] = ()
    units: frozenset[Unit] = frozenset()
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = _merge(self.ranges)
        object.__setattr__(self, "ranges", merged)
        object.__setattr__(self, "names", frozenset(n.upper() for n in self.names))
        object.__setattr__(self, "_starts", tuple(lo for lo, _ in merged))
        by_zone: dict[str, BuildingSet] = {}
        for zone, inner in self.zones:
            by_zone[zone] = by_zone[zone] | inner if zone in by_zone else inner
        object.__setattr__(self, "zones", tuple(sorted(by_zone.items())))

    def __bool__(self) -> bool:
        return bool(self.ranges or self.names or self.zones or self.units)

    def __or__(self, other: BuildingSet) -> BuildingSet:
        return BuildingSet(
            self.ranges + other.ranges,
            self.names | other.names,
            self.zones + other.zones,
            self.units | other.units,
        )

    def zone(self, name: str) -> BuildingSet | None:
        if not name:
            return self
        return next((inner for zone, inner in self.zones if zone == name), None)

    def zone_names(self) -> set[str]:
        return {zone for zone, _ in self.zones} | {zone for zone, _, _ in self.units if zone}

    def _has(self, base: str) -> bool:
        if base.isdigit() and base.isascii():
            n = int(base)
            i = bisect_right(self._starts, n) - 1
            return i >= 0 and n <= self.ranges[i][1]
        return base.upper() in self.names

    def covers(self, zone: str, base: str, unit: int | None = None) -> bool:
        """Whether the grid has the whole building, or (``unit`` given) that unit of it."""
        inner = self.zone(zone)
        if inner is not None and inner._has(base):
            return True
        return unit is not None and (zone, base, unit) in self.units

    def has_units_of(self, zone: str, base: str) -> bool:
        """Whether the grid has some units of the building (and so another grid the rest)."""
        return any(z == zone and b == base for z, b, _ in self.units)

    def contains(self, key: str) -> bool:
        """``key`` as produced by this module: "3", "12", "A", "二期3", "15栋2单元" (leading zeros and
        case tolerated)."""
        return self.covers(*split_key(key))

    def overlaps(self, other: BuildingSet) -> list[str]:
        """Buildings in both sets, numbers first: ["3", "7-9", "A", "二期3", "15栋2单元"]; consecutive
        runs as "lo-hi"."""
        shared: list[tuple[int, int]] = []
        for a_lo, a_hi in self.ranges:
            for b_lo, b_hi in other.ranges:
                lo, hi = max(a_lo, b_lo), min(a_hi, b_hi)
                if lo <= hi:
                    shared.append((lo, hi))
        found = [_label(lo, hi) for lo, hi in _merge(shared)] + sorted(self.names & other.names)
        for zone, inner in self.zones:
            theirs = other.zone(zone)
            if theirs is not None:
                found += [zone + label for label in BuildingSet(inner.ranges, inner.names).overlaps(theirs)]
        units = (self.units & other.units) | {u for u in self.units if other.covers(*u[:2])}
        units |= {u for u in other.units if self.covers(*u[:2])}
        return found + sorted(building_key(*u) for u in units)


# A suffix in a config entry carries no meaning beyond "building": "3号楼" = "3栋" = "3#" = "3".
_SPEC_SUFFIX = r"(?:号楼|号栋|号幢|号座|号|栋|幢|座|\#楼|\#栋|\#|楼)?"
# Any digit count, so that "1-10000" is reported as out of range rather than as malformed.
_SPEC_NUM = rf"(?:[0-9]+|{CN_NUM})"
_SPEC_RANGE = re.compile(
    rf"(?P<lo>{_SPEC_NUM}){_SPEC_SUFFIX} ?(?:-|~|至|到) ?(?P<hi>{_SPEC_NUM}){_SPEC_SUFFIX}", re.ASCII
)
_SPEC_ONE = re.compile(rf"(?P<n>{_SPEC_NUM}){_SPEC_SUFFIX}", re.ASCII)
_SPEC_LETTER = re.compile(r"(?P<letter>[A-Za-z])(?:号楼|座|栋|幢|楼)?", re.ASCII)
# Zone first, unit last: "二期3号楼", "A区1-6号楼", "7栋2单元", "3号楼(二期)".
_SPEC_PARTS = re.compile(
    rf"(?:(?P<zone>{ZONE})\s*(?:的\s*)?)?(?P<body>.+?)(?:\s*(?P<unit>[0-9]{{1,2}}|{CN_NUM})\s*单元)?"
    rf"(?:\s*\((?P<after>{ZONE.replace('?P<', '?P<a')})\))?"
)


def _plain_spec(spec: str | int, text: str) -> BuildingSet:
    """One building or range with no zone or unit: "3", "1-6", "十二栋", "A座"."""
    if m := _SPEC_LETTER.fullmatch(text):
        return BuildingSet(names=frozenset({m["letter"].upper()}))
    if m := _SPEC_ONE.fullmatch(text):
        lo = hi = to_int(m["n"])
    elif m := _SPEC_RANGE.fullmatch(text):
        lo, hi = to_int(m["lo"]), to_int(m["hi"])
    else:
        raise BuildingSpecError(spec, "malformed")
    if lo < 1 or hi > MAX_BUILDING:
        raise BuildingSpecError(spec, "out_of_range")
    if lo > hi:
        raise BuildingSpecError(spec, "reversed_range")
    return BuildingSet(ranges=((lo, hi),))


def parse_building_spec(spec: str | int) -> BuildingSet:
    """One config entry: "3", "1-6", "1~6号楼", "十二栋", "3#", "A座", "二期3号楼", "A区1-6",
    "紫荆苑8号楼", "7栋2单元", "3号楼（二期）". Raises BuildingSpecError.

    Ints are accepted because YAML reads an unquoted ``3`` as one.
    """
    if isinstance(spec, bool) or not isinstance(spec, str | int):
        raise BuildingSpecError(spec, "malformed")
    text = _fold(str(spec)).strip()
    if not text:
        raise BuildingSpecError(spec, "empty")
    parts = _SPEC_PARTS.fullmatch(text)
    if parts is None or (parts["zone"] and parts["after"]):
        raise BuildingSpecError(spec, "malformed")
    zone_text = parts["zone"] or parts["after"]
    plain = _plain_spec(spec, parts["body"].strip())
    zone = zone_key(_ZONE_RE.fullmatch(zone_text)) if zone_text else ""  # type: ignore[arg-type]
    if parts["unit"]:
        unit = to_int(parts["unit"])
        if plain.names or plain.ranges[0][0] != plain.ranges[0][1] or not 1 <= unit <= 99:
            raise BuildingSpecError(spec, "malformed")  # a unit of one building, never of a range
        base = next(iter(plain.names)) if plain.names else str(plain.ranges[0][0])
        return BuildingSet(units=frozenset({(zone, base, unit)}))
    return BuildingSet(zones=((zone, plain),)) if zone else plain


def parse_buildings(specs: Sequence[str | int]) -> BuildingSet:
    """A grid's ``buildings`` list, as one set. A bare string is refused: it is almost always a
    YAML slip (``buildings: 1-6`` instead of ``buildings: ["1-6"]``)."""
    if isinstance(specs, str):
        raise BuildingSpecError(specs, "malformed")
    result = BuildingSet()
    for spec in specs:
        result = result | parse_building_spec(spec)
    return result


def normalise_building(text: str) -> str | None:
    """The key of a single building written any way ("三号楼", "3栋", "b座", "2期3栋" → "3", "3",
    "B", "二期3"), or None if ``text`` is not exactly one building."""
    try:
        found = parse_building_spec(text)
    except BuildingSpecError:
        return None
    if found.units:
        return building_key(*next(iter(found.units)))
    zone, inner = found.zones[0] if found.zones else ("", found)
    if inner.names:
        return zone + next(iter(inner.names))
    (lo, hi), *_ = inner.ranges
    return zone + str(lo) if lo == hi else None
