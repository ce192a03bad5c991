"""Where a resident's message points: a building (楼栋) or a named place, and the grid (网格) covering it.

Two sides share one grammar of building numbers:

* the community YAML, where each grid lists ``buildings`` ("1-6", "12号楼", "七栋", "A座") and
  ``places`` ("东门", "农贸市场"); malformed entries raise :class:`BuildingSpecError` so a config
  error is reported at load time, not when a resident's case goes astray;
* residents' free text ("3号楼楼道里全是小广告", "十二栋2单元门口", "3-2-301"), scanned with regexes.

Every text is first folded character-for-character (full-width → ASCII, common traditional →
simplified), so offsets in the folded text are offsets in the original and mentions can quote the
resident's own words.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from handlers.kernel.textnorm import fold as _fold

__all__ = [
    "BuildingMention",
    "BuildingSet",
    "BuildingSpecError",
    "GridArea",
    "LocationMatch",
    "Locator",
    "find_buildings",
    "normalise_building",
    "parse_building_spec",
    "parse_buildings",
]

MAX_BUILDING = 9999

# --------------------------------------------------------------------------------------------
# Numbers. Arabic 1-9999; Chinese in the 十/百 form (十四, 二十三, 一百零二, 一百二十) or digit by digit
# ("一〇" = 10). 两/几 are deliberately absent: "两栋楼", "好几栋" count buildings, they do not name one.
# --------------------------------------------------------------------------------------------

_CN_DIGIT = {ch: i for i, ch in enumerate("零一二三四五六七八九")} | {"〇": 0}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_1_9 = "[一二三四五六七八九]"
# Longest forms first: the regex takes the first alternative that matches.
_CN_NUM = (
    rf"(?:{_CN_1_9}百(?:零{_CN_1_9}|{_CN_1_9}十{_CN_1_9}?)?"
    rf"|{_CN_1_9}?十{_CN_1_9}?|[〇零一二三四五六七八九]{{1,3}})"
)
_NUM = rf"(?:[0-9]{{1,4}}|{_CN_NUM})"


def cn_number(num: str) -> int | None:
    """The value of a Chinese numeral ("二十三", "一百零二", "十四", "一〇"), None if it is not one
    whole number. "一百二" (colloquially 120) is None too: a building is never worth a guess."""
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


def _to_int(num: str) -> int:
    if num.isascii():
        return int(num)
    value = cn_number(num)
    if value is None:  # the regexes only let whole numerals through
        raise ValueError(num)
    return value


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


@dataclass(frozen=True)
class BuildingSet:
    """The buildings one grid covers: numeric ranges plus named (letter) buildings.

    Ranges are kept sorted and merged (the constructor does it), so equal sets compare equal.
    """

    ranges: tuple[tuple[int, int], ...] = ()
    names: frozenset[str] = frozenset()
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = _merge(self.ranges)
        object.__setattr__(self, "ranges", merged)
        object.__setattr__(self, "names", frozenset(n.upper() for n in self.names))
        object.__setattr__(self, "_starts", tuple(lo for lo, _ in merged))

    def __bool__(self) -> bool:
        return bool(self.ranges or self.names)

    def __or__(self, other: BuildingSet) -> BuildingSet:
        return BuildingSet(self.ranges + other.ranges, self.names | other.names)

    def contains(self, key: str) -> bool:
        """``key`` as produced by this module: "3", "12", "A" (leading zeros and case tolerated)."""
        key = key.strip()
        if key.isdigit() and key.isascii():
            n = int(key)
            i = bisect_right(self._starts, n) - 1
            return i >= 0 and n <= self.ranges[i][1]
        return key.upper() in self.names

    def overlaps(self, other: BuildingSet) -> list[str]:
        """Buildings in both sets, numbers first: ["3", "7-9", "A"]; consecutive runs as "lo-hi"."""
        shared: list[tuple[int, int]] = []
        for a_lo, a_hi in self.ranges:
            for b_lo, b_hi in other.ranges:
                lo, hi = max(a_lo, b_lo), min(a_hi, b_hi)
                if lo <= hi:
                    shared.append((lo, hi))
        return [_label(lo, hi) for lo, hi in _merge(shared)] + sorted(self.names & other.names)


# A suffix in a config entry carries no meaning beyond "building": "3号楼" = "3栋" = "3#" = "3".
_SPEC_SUFFIX = r"(?:号楼|号栋|号幢|号座|号|栋|幢|座|\#楼|\#栋|\#|楼)?"
# Any digit count, so that "1-10000" is reported as out of range rather than as malformed.
_SPEC_NUM = rf"(?:[0-9]+|{_CN_NUM})"
_SPEC_RANGE = re.compile(
    rf"(?P<lo>{_SPEC_NUM}){_SPEC_SUFFIX} ?(?:-|~|至|到) ?(?P<hi>{_SPEC_NUM}){_SPEC_SUFFIX}", re.ASCII
)
_SPEC_ONE = re.compile(rf"(?P<n>{_SPEC_NUM}){_SPEC_SUFFIX}", re.ASCII)
_SPEC_LETTER = re.compile(r"(?P<letter>[A-Za-z])(?:号楼|座|栋|幢|楼)?", re.ASCII)


def parse_building_spec(spec: str | int) -> BuildingSet:
    """One config entry: "3", "1-6", "1~6号楼", "十二栋", "3#", "A座". Raises BuildingSpecError.

    Ints are accepted because YAML reads an unquoted ``3`` as one.
    """
    if isinstance(spec, bool) or not isinstance(spec, str | int):
        raise BuildingSpecError(spec, "malformed")
    text = _fold(str(spec)).strip()
    if not text:
        raise BuildingSpecError(spec, "empty")
    if m := _SPEC_LETTER.fullmatch(text):
        return BuildingSet(names=frozenset({m["letter"].upper()}))
    if m := _SPEC_ONE.fullmatch(text):
        lo = hi = _to_int(m["n"])
    elif m := _SPEC_RANGE.fullmatch(text):
        lo, hi = _to_int(m["lo"]), _to_int(m["hi"])
    else:
        raise BuildingSpecError(spec, "malformed")
    if lo < 1 or hi > MAX_BUILDING:
        raise BuildingSpecError(spec, "out_of_range")
    if lo > hi:
        raise BuildingSpecError(spec, "reversed_range")
    return BuildingSet(ranges=((lo, hi),))


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
    """The key of a single building written any way ("三号楼", "3栋", "b座" → "3", "3", "B"),
    or None if ``text`` is not exactly one building."""
    try:
        found = parse_building_spec(text)
    except BuildingSpecError:
        return None
    if found.names:
        return next(iter(found.names))
    (lo, hi), *_ = found.ranges
    return str(lo) if lo == hi else None


# --------------------------------------------------------------------------------------------
# Message side.
# --------------------------------------------------------------------------------------------

_UNIT_NUM = rf"(?:[0-9]{{1,2}}|{_CN_NUM})"
_MENTION = re.compile(
    rf"""
    # "3-2-301": building-unit-room, the way addresses are written on forms and parcels.
    # Unit 1-2 digits and room 3-4 digits keep dates (2024-3-15) and phones (138-1234-5678) out.
    (?<![0-9.-]) (?P<addr>[0-9]{{1,4}}) -[0-9]{{1,2}}-[0-9]{{3,4}} (?![0-9-])
    |
    (?:
        # Not the middle of a number ("13号楼" is not "3号楼"), not a date ("11月3号楼下" is the
        # 3rd, "周三号楼道" is Wednesday), not a count after a demonstrative ("这3栋楼", "每一栋").
        (?<![0-9〇零一二三四五六七八九十百千万两几月周期拜这那每哪.])
        (?P<num>{_NUM}) \ ?
        (?:
            号\ ?(?:楼|栋|幢|座)      # 3号楼, 3号栋
          | (?P<measure>栋|幢|座(?!位|桥|山|亭|塔|雕塑|垃圾))  # 3栋, 3幢, 3座 (座位: a seat; 3座桥: a count)
          | \#(?:楼|栋|幢|座)?        # 3#楼, 3#
          | 号(?=门洞|{_UNIT_NUM}单元)  # bare 3号 only before a building part: 3号门洞, 3号2单元
        )
      |
        # Letter buildings: A座, b栋, C楼 ("3楼" is a floor, a letter has no floors).
        (?<![A-Za-z0-9]) (?P<letter>[A-Za-z]) \ ?(?:号楼|座(?!位)|栋|幢|楼)
    )
    # Unit and room are part of the resident's words but not of the key: "3号楼2单元301室".
    (?:门洞)?
    (?:{_UNIT_NUM}单元)?
    (?:(?<=单元)[0-9]{{3,4}}(?![0-9])(?:室|房|号)? | [0-9]{{3,4}}(?:室|房))?
    """,
    re.VERBOSE | re.ASCII,
)


# Buildings written in pinyin or English, as residents abroad, tenants and voice input do:
# "3 hao lou", "er shi san hao lou", "5 dong", "building 3", "building twenty-three", "Block A",
# "No. 7 building", "the twenty-third building". A number is read whole or not at all: "er shi san
# hao lou" is 23, never the 3 at its end. A letter building must be a capital ("building a fence"
# is no building A); "buildings" is a count, and so is "one building".
_PINYIN_NUMERAL = {
    "yi": "一", "yao": "一", "er": "二", "san": "三", "si": "四", "wu": "五", "liu": "六", "qi": "七",
    "ba": "八", "jiu": "九", "shi": "十", "bai": "百", "ling": "零", "qian": "千",
}  # fmt: skip
# Longest first, so that "bai" is not read as "ba" and "ling" not as "li".
_PY_TOKEN = "(?:" + "|".join(sorted(_PINYIN_NUMERAL, key=len, reverse=True)) + ")"
_PY_TOKENS = re.compile(_PY_TOKEN)


def _numbered(words: str, first: int, step: int = 1) -> dict[str, int]:
    return {word: first + step * i for i, word in enumerate(words.split())}


# Words after which "shi" is 是, not 十: "zhe shi san hao lou" is "this is building 3".
_SHI_IS = frozenset(("zhe", "na", "jiu", "bu", "dou", "hai", "ye", "zhen", "dan", "que", "ke", "geng", "hui"))
_EN_UNITS = _numbered("one two three four five six seven eight nine", 1)
_EN_TEENS = _numbered("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen", 10)
_EN_TENS = _numbered("twenty thirty forty fifty sixty seventy eighty ninety", 20, 10)
_EN_ORDINAL_UNITS = _numbered("first second third fourth fifth sixth seventh eighth ninth", 1)
_EN_ORDINAL_TEENS = _numbered(
    "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth", 10
)
_EN_ORDINAL_TENS = {w.replace("y", "ieth"): v for w, v in _EN_TENS.items()}
_EN_WORD = {
    **_EN_UNITS, **_EN_TEENS, **_EN_TENS, **_EN_ORDINAL_UNITS, **_EN_ORDINAL_TEENS, **_EN_ORDINAL_TENS,
}  # fmt: skip


def _alternatives(words: Iterable[str]) -> str:
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


_EN_U, _EN_T, _EN_TY = _alternatives(_EN_UNITS), _alternatives(_EN_TEENS), _alternatives(_EN_TENS)
_EN_CARDINAL = (
    rf"(?:{_EN_U}\s+hundred(?:\s+and)?(?:[\s-]+(?:{_EN_TY}(?:[\s-]+{_EN_U})?|{_EN_T}|{_EN_U}))?"
    rf"|{_EN_TY}(?:[\s-]*{_EN_U})?|{_EN_T}|{_EN_U})"
)
_EN_ORDINAL = (
    rf"(?:(?:{_EN_TY}[\s-]*)?{_alternatives(_EN_ORDINAL_UNITS)}"
    rf"|{_alternatives(_EN_ORDINAL_TEENS)}|{_alternatives(_EN_ORDINAL_TENS)})"
)


def _en_number(words: str) -> int | None:
    """English number words as one number: "twenty-three", "one hundred and two", "twenty third"."""
    total, current = 0, 0
    for word in re.split(r"[\s-]+", words.lower()):
        if word == "and" or not word:
            continue
        if word == "hundred":
            current = max(current, 1) * 100
            total, current = total + current, 0
        elif word in _EN_WORD:
            current += _EN_WORD[word]
        else:
            return None
    return total + current


def _py_number(words: str, before: str) -> int | None:
    """Toneless pinyin numerals ("er shi san", "ershisan", "yi bai ling er") as one number; None when
    they are no whole numeral. ``before`` is the text in front, to tell 是 from 十."""
    tokens = _PY_TOKENS.findall(words.lower())
    previous = re.findall(r"[a-z]+", before.lower()[-12:])
    if tokens and tokens[0] == "shi" and len(tokens) > 1 and previous and previous[-1] in _SHI_IS:
        tokens = tokens[1:]
    elif tokens[:2] == ["jiu", "shi"] and len(tokens) > 2:
        tokens = tokens[2:]  # "jiu shi san hao lou": 就是三号楼 far more often than 93
    return cn_number("".join(_PINYIN_NUMERAL[t] for t in tokens))


_LATIN_MENTION = re.compile(
    rf"""
    (?<![A-Za-z0-9])
    (?:
        (?: (?P<py>[0-9]{{1,4}}) | (?P<pyw>(?:{_PY_TOKEN}\s*){{1,6}}?) | (?P<enh>{_EN_CARDINAL}) )
        \s* hao \s* (?:lou|dong|zhuang) (?![a-z])
      | (?P<pyd>[0-9]{{1,4}}) \s* (?:dong|zhuang) (?![a-z])
      | (?P<pydl>(?:{_PY_TOKEN}\s*){{1,6}}?) \s* (?:dong|zhuang) \s* lou (?![a-z])  # er shi san dong lou
      | (?:building|bldg|bld|blk|block|tower) \.? [\s\-]* (?:no\.?\s*|number\s*|\#\s*)?
        (?: (?P<en>[0-9]{{1,4}}) | (?-i:(?P<enl>[A-Z])) | (?P<enw>{_EN_CARDINAL}) ) (?![A-Za-z0-9])
        (?!\s*(?:buildings?|floors?|storey|stories|stor(?:e)?ys?)\b)
      | (?:no\.?|number|\#) \s* (?: (?P<no>[0-9]{{1,4}}) | (?P<now>{_EN_CARDINAL}) )
        [\s-]* (?:building|bldg)\b
      | (?P<enb>{_EN_CARDINAL}) [\s-]+ (?:building|bldg)\b(?!s)
      | (?P<ord>[0-9]{{1,4}}) (?:st|nd|rd|th) \s+ (?:building|bldg)\b
      | (?P<ordw>{_EN_ORDINAL}) \s+ (?:building|bldg)\b
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class BuildingMention:
    key: str  # normalised building key: "3", "12", "A"
    text: str  # the words matched in the message, e.g. "三号楼", "3栋2单元", "A座"
    start: int  # offset in the message


def _latin_number(m: re.Match[str], folded: str) -> int | None:
    if m["pydl"] and _PY_TOKENS.findall(m["pydl"].lower()) == ["yi"]:
        # "yi dong lou" (一栋楼) counts one building; "di yi dong lou" (第一栋楼) names it
        return 1 if re.search(r"\bdi\s*$", folded[: m.start()], re.IGNORECASE) else None
    if m["pyw"] or m["pydl"]:
        return _py_number(m["pyw"] or m["pydl"], folded[: m.start()])
    if m["enb"] and _EN_WORD.get(m["enb"].lower()) == 1:
        return None  # "one building": a count
    words = m["enw"] or m["now"] or m["enb"] or m["ordw"] or m["enh"]
    if words:
        return _en_number(words)
    number = next(g for g in (m["py"], m["pyd"], m["en"], m["no"], m["ord"]) if g)
    return int(number)


def _latin_mentions(original: str, folded: str) -> list[BuildingMention]:
    found: list[BuildingMention] = []
    for m in _LATIN_MENTION.finditer(folded):
        if m["enl"]:
            key = m["enl"]
        else:
            n = _latin_number(m, folded)
            if n is None or not 1 <= n <= MAX_BUILDING:
                continue
            key = str(n)
        found.append(BuildingMention(key, original[m.start() : m.end()], m.start()))
    return found


def _mentions(original: str, folded: str) -> list[BuildingMention]:
    found: list[BuildingMention] = []
    if folded.isascii() or any(c.isascii() and c.isalpha() for c in folded):
        found.extend(_latin_mentions(original, folded))
    for m in _MENTION.finditer(folded):
        if m["letter"]:
            key = m["letter"].upper()
        elif m["measure"] and m["num"] == "一" and not folded.endswith("第", 0, m.start()):
            continue  # "有一栋楼", "一座桥" count one building; "第一栋" and "1栋" still name it
        else:
            n = _to_int(m["addr"] or m["num"])
            if not 1 <= n <= MAX_BUILDING:  # "0号楼", "〇栋": not a building anyone lives in
                continue
            key = str(n)
        found.append(BuildingMention(key, original[m.start() : m.end()], m.start()))
    return sorted(found, key=lambda b: b.start)


def find_buildings(text: str) -> list[BuildingMention]:
    """Every building named in ``text``, in order of appearance."""
    return _mentions(text, _fold(text))


# --------------------------------------------------------------------------------------------
# Grids.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridArea:
    code: str
    buildings: BuildingSet
    places: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # (everyday name, one of places): "菜场" → "农贸市场"

    @classmethod
    def from_config(
        cls,
        code: str,
        buildings: Sequence[str | int] = (),
        places: Sequence[str] = (),
        aliases: Sequence[tuple[str, str]] = (),
    ) -> GridArea:
        return cls(code, parse_buildings(buildings), tuple(places), tuple(aliases))


@dataclass(frozen=True)
class PlaceNames:
    groups: tuple[frozenset[str], ...]
    not_alone: frozenset[str]
    english: tuple[tuple[str, tuple[str, ...]], ...] = ()  # Chinese word → its English names


def _english_key(phrase: str) -> str:
    """How an English place phrase is compared: case and runs of spaces or hyphens do not count."""
    return " ".join(re.split(r"[\s\-]+", _fold(phrase).casefold().strip()))


@cache
def place_names() -> PlaceNames:
    text = resources.files("handlers").joinpath("data", "place_names.yaml").read_text(encoding="utf-8")
    # libyaml where present: the pure-Python parser takes a noticeable part of the CLI's start-up here
    raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return PlaceNames(
        tuple(frozenset(_fold(w).casefold() for w in group) for group in raw["groups"]),
        frozenset(_fold(w).casefold() for w in raw.get("not_alone") or ()),
        tuple(
            (_fold(word).casefold(), tuple(_english_key(p) for p in phrases))
            for word, phrases in (raw.get("english") or {}).items()
        ),
    )


MAX_SPELLINGS = 8  # readings of a name's polyphonic characters (长: chang or zhang), at most


def _pinyin_spellings(name: str) -> list[tuple[str, ...]]:
    """A Chinese name in toneless pinyin syllables (北门 → ("bei", "men")): the first two readings of
    each character, at most MAX_SPELLINGS spellings; none if a character has no reading."""
    from handlers.community.lexicon import char_readings  # the pinyin table, loaded once a locator is built

    readings = char_readings()
    options = [readings.get(ch, ())[:2] for ch in name]
    if not all(options):
        return []
    spellings: list[tuple[str, ...]] = [()]
    for choices in options:
        spellings = [(*s, c) for s in spellings for c in choices][:MAX_SPELLINGS]
    return spellings


_LATIN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]*)?", re.IGNORECASE)


MIN_PART = 2  # a part of a name shorter than this ("门", "路") points at nothing in particular


def _other_names(place: str) -> set[str]:
    """What residents may call a place besides its full name: its everyday names (a group it fits)
    and its trailing parts ("农贸市场" → "市场", "社区卫生服务站" → "卫生服务站", "服务站")."""
    names = place_names()
    found: set[str] = set()
    for group in names.groups:
        if any(place.endswith(word) for word in group):
            found |= group
    for start in range(1, len(place) - MIN_PART + 1):
        found.add(place[start:])
    return {n for n in found if n != place and n not in names.not_alone and len(n) >= MIN_PART}


@dataclass(frozen=True)
class LocationMatch:
    grid: str | None  # grid code or None if the mention is not covered by any grid
    matched: str  # the words that located it ("3号楼", "东门")
    building: str | None  # building key if located by building
    place: str | None  # canonical place name if located by place


class Locator:
    """Answers "which grid?" for a message. Build once per community config; ``locate`` is cheap.

    Rule when a message names several things: the earliest mention that some grid covers wins
    (residents name the spot first and add landmarks after: "3号楼东门旁边"); at the same offset
    the longer one wins, so a place "A座大堂" beats the building "A座". If two grids claim the same
    building or place, the first grid in ``areas`` wins; the config validator is expected to
    reject that (``BuildingSet.overlaps``).
    """

    def __init__(self, areas: Sequence[GridArea]) -> None:
        self._areas = tuple(areas)
        self._grid_of_key: dict[str, str | None] = {}
        self._places: dict[str, tuple[str, str]] = {}  # folded, casefolded name → (canonical, grid)
        self._add_listed_places()
        self._add_derived_names()
        self._latin = self._latin_names()
        self._latin_words = max((len(n.split(" ")) for n in self._latin), default=0)
        # Longest first: at a given offset the regex takes the first alternative that matches.
        names = sorted(self._places, key=len, reverse=True)
        self._place_re = re.compile("|".join(map(re.escape, names)), re.IGNORECASE) if names else None

    def _add_listed_places(self) -> None:
        """The places and aliases the community file lists, per grid."""
        for area in self._areas:
            for place in area.places:
                folded = _fold(place).strip().casefold()
                if folded:
                    self._places.setdefault(folded, (place.strip(), area.code))
        for area in self._areas:
            for alias, place in area.aliases:
                folded = _fold(alias).strip().casefold()
                if folded:
                    self._places.setdefault(folded, (place.strip(), area.code))

    def _add_derived_names(self) -> None:
        """Everyday names and parts of names, kept only where they point at a single place."""
        derived: dict[str, tuple[str, str] | None] = {}
        for folded_place, target in list(self._places.items()):
            if target[0] != folded_place and _fold(target[0]).strip().casefold() != folded_place:
                continue  # an alias: its target's own names are derived from the target
            for name in _other_names(folded_place):
                if name in derived and derived[name] != target:
                    derived[name] = None
                else:
                    derived[name] = target
        for name, found in derived.items():
            if found is not None:
                self._places.setdefault(name, found)

    def _latin_names(self) -> dict[str, tuple[str, str]]:
        """Names in Latin letters, looked up word by word (a regex of them all is slow): English names
        for the places their Chinese word points at (and only where it points at one) ..."""
        latin: dict[str, tuple[str, str] | None] = {}
        for word, phrases in place_names().english:
            target = self._places.get(word) or self._only_place_containing(word)
            if target is None:
                continue
            for phrase in phrases:
                latin[phrase] = target if latin.get(phrase, target) == target else None
        # ... and toneless pinyin, syllables apart or together ("bei men", "beimen", "lan qiu chang").
        # A name of two characters only as the config lists a place: "shi chang" is 市场 but also
        # 时常, and an alias "wu ye" (物业) is also 午夜.
        for name, target in self._places.items():
            if len(name) < 3 and name != _fold(target[0]).strip().casefold():
                continue
            for syllables in _pinyin_spellings(name):
                for spelling in (" ".join(syllables), "".join(syllables)):
                    latin[spelling] = target if latin.get(spelling, target) == target else None
        return {name: found for name, found in latin.items() if found is not None}

    def _only_place_containing(self, word: str) -> tuple[str, str] | None:
        """The one listed place whose name has ``word`` in it ("物业" in "物业办公室"), if only one has."""
        found = {
            target
            for name, target in self._places.items()
            if word in name and _fold(target[0]).strip().casefold() == name
        }
        return found.pop() if len(found) == 1 else None

    def _latin_place(self, folded: str) -> tuple[int, int, tuple[str, str]] | None:
        """The earliest (then longest) run of words naming a place: (start, end, (canonical, grid)).
        Words are whole ("park" is not in "parking"); a plural s or es is allowed on the last one."""
        words = [(m.group().casefold(), m.start(), m.end()) for m in _LATIN_WORD.finditer(folded)]
        for i in range(len(words)):
            for n in range(min(self._latin_words, len(words) - i), 0, -1):
                phrase = " ".join(w for w, _, _ in words[i : i + n])
                keys = [phrase]
                if phrase.endswith("s"):
                    keys += [phrase[:-1], phrase[:-2]] if phrase.endswith("es") else [phrase[:-1]]
                for key in keys:
                    found = self._latin.get(key)
                    if found is not None:
                        return words[i][1], words[i + n - 1][2], found
        return None

    def grid_for_building(self, key: str) -> str | None:
        if key not in self._grid_of_key:
            # Bounded: keys are at most 9999 numbers and 26 letters.
            self._grid_of_key[key] = next((a.code for a in self._areas if a.buildings.contains(key)), None)
        return self._grid_of_key[key]

    def locate(self, text: str) -> LocationMatch | None:
        """The first building or place named in text that a grid covers; None when nothing is named.
        If something building-like is named but no grid covers it, return LocationMatch(grid=None, ...)."""
        folded = _fold(text)
        mentions = _mentions(text, folded)
        building = next((b for b in mentions if self.grid_for_building(b.key) is not None), None)
        place: tuple[int, int, tuple[str, str]] | None = None
        if found := self._place_re.search(folded) if self._place_re else None:
            place = found.start(), found.end(), self._places[found.group().casefold()]
        if self._latin and _LATIN_WORD.search(folded):
            latin = self._latin_place(folded)
            if latin is not None and (place is None or latin[0] < place[0]):
                place = latin
        if place and (
            building is None
            or place[0] < building.start
            or (place[0] == building.start and place[1] - place[0] > len(building.text))
        ):
            start, end, (canonical, grid) = place
            return LocationMatch(grid, text[start:end], None, canonical)
        if building:
            return LocationMatch(self.grid_for_building(building.key), building.text, building.key, None)
        if mentions:
            return LocationMatch(None, mentions[0].text, mentions[0].key, None)
        return None
