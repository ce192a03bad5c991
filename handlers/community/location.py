"""Where a resident's message points: a building (楼栋) or a named place, and the grid (网格) covering it.

Two sides share one grammar of building numbers (handlers.community.building_spec):

* the community YAML, where each grid lists ``buildings`` ("1-6", "12号楼", "七栋", "A座", "二期3号楼",
  "7栋2单元") and ``places`` ("东门", "农贸市场"); malformed entries raise :class:`BuildingSpecError` so
  a config error is reported at load time, not when a resident's case goes astray;
* residents' free text ("3号楼楼道里全是小广告", "十二栋2单元门口", "3-2-301"), scanned with regexes;
  the zone a building is in ("二期", "A区", "紫荆苑") is found by handlers.community.building_zones.

Every text is first folded character-for-character (full-width → ASCII, common traditional →
simplified), so offsets in the folded text are offsets in the original and mentions can quote the
resident's own words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from handlers.community.building_latin import latin_buildings
from handlers.community.building_spec import (
    CN_NUM,
    MAX_BUILDING,
    NUM,
    NUMERAL_CHARS,
    BuildingSet,
    BuildingSpecError,
    cn_number,
    normalise_building,
    parse_building_spec,
    parse_buildings,
    split_key,
    to_int,
)
from handlers.community.building_zones import (
    AMBIGUOUS,
    BuildingIndex,
    NamedBuilding,
    Resolved,
    ZoneFinder,
    mask,
    zone_numbers,
)
from handlers.kernel.textnorm import fold as _fold

__all__ = [
    "BuildingMention",
    "BuildingSet",
    "BuildingSpecError",
    "GridArea",
    "LocationMatch",
    "Locator",
    "cn_number",
    "find_buildings",
    "normalise_building",
    "parse_building_spec",
    "parse_buildings",
]

# --------------------------------------------------------------------------------------------
# Message side.
# --------------------------------------------------------------------------------------------

_UNIT_NUM = rf"(?:[0-9]{{1,2}}|{CN_NUM})"
_MENTION = re.compile(
    rf"""
    # "3-2-301": building-unit-room, the way addresses are written on forms and parcels.
    # Unit 1-2 digits and room 3-4 digits keep dates (2024-3-15) and phones (138-1234-5678) out.
    (?<![0-9.-]) (?P<addr>[0-9]{{1,4}}) -(?P<addr_unit>[0-9]{{1,2}})-[0-9]{{3,4}} (?![0-9-])
    |
    (?:
        # Not the middle of a number ("13号楼" is not "3号楼"), not a date ("11月3号楼下" is the
        # 3rd, "周三号楼道" is Wednesday), not a count after a demonstrative ("这3栋楼", "每一栋").
        (?<![{NUMERAL_CHARS}月周期拜这那每哪.])
        (?P<num>{NUM}) \ ?
        (?:
            号\ ?(?:楼|栋|幢|座)      # 3号楼, 3号栋
          | (?P<measure>栋|幢|座(?!位|桥|山|亭|塔|雕塑|垃圾))  # 3栋, 3幢, 3座 (座位: a seat; 3座桥: a count)
          | \#(?:楼|栋|幢|座)?        # 3#楼, 3#
          | 号(?=门洞|{_UNIT_NUM}单元|[0-9]{{3,4}}(?:室|房))  # bare 3号 only before a part: 3号门洞,
                                                           # 3号2单元, 3号401室
        )
      |
        # Letter buildings: A座, b栋, C楼 ("3楼" is a floor, a letter has no floors).
        (?<![A-Za-z0-9]) (?P<letter>[A-Za-z]) \ ?(?:号楼|座(?!位)|栋|幢|楼)
    )
    # Unit and room are part of the resident's words but not of the key: "3号楼2单元301室".
    (?:门洞)?
    (?:(?P<unit>{_UNIT_NUM})单元)?
    (?:(?<=单元)[0-9]{{3,4}}(?![0-9])(?:室|房|号)? | [0-9]{{3,4}}(?:室|房))?
    """,
    re.VERBOSE | re.ASCII,
)


_ASCII_LETTER = re.compile("[A-Za-z]")


@dataclass(frozen=True)
class BuildingMention:
    key: str  # normalised building key: "3", "12", "A" (the zone, if any, is the locator's to find)
    text: str  # the words matched in the message, e.g. "三号楼", "3栋2单元", "A座"
    start: int  # offset in the message
    unit: int | None = field(default=None, compare=False)  # "3栋2单元", "3-2-301": 2


def _mentions(original: str, folded: str) -> list[BuildingMention]:
    found: list[BuildingMention] = []
    if folded.isascii() or _ASCII_LETTER.search(folded):
        found.extend(BuildingMention(key, original[a:b], a) for key, a, b in latin_buildings(folded))
    for m in _MENTION.finditer(folded):
        if m["letter"]:
            key = m["letter"].upper()
        elif m["measure"] and m["num"] == "一" and not folded.endswith("第", 0, m.start()):
            continue  # "有一栋楼", "一座桥" count one building; "第一栋" and "1栋" still name it
        else:
            n = to_int(m["addr"] or m["num"])
            if not 1 <= n <= MAX_BUILDING:  # "0号楼", "〇栋": not a building anyone lives in
                continue
            key = str(n)
        unit = m["addr_unit"] or m["unit"]
        found.append(
            BuildingMention(key, original[m.start() : m.end()], m.start(), to_int(unit) if unit else None)
        )
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
_NUMERAL = re.compile(f"[{NUMERAL_CHARS}]")


def _place_pattern(name: str) -> str:
    """A place name as a regex that never matches inside a number: "5号楼前" is not in "25号楼前",
    nor "1区" in "11区"."""
    pattern = re.escape(name)
    if _NUMERAL.match(name):
        pattern = f"(?<![{NUMERAL_CHARS}])" + pattern
    if _NUMERAL.match(name[-1:]):
        pattern += f"(?![{NUMERAL_CHARS}])"
    return pattern


def _other_names(place: str) -> tuple[set[str], set[str]]:
    """What residents may call a place besides its full name: its trailing parts ("农贸市场" → "市场",
    "社区卫生服务站" → "卫生服务站", "服务站"), then its everyday names (a group it fits)."""
    names = place_names()
    # Never a part cut from inside a number: "二期13号楼" is not called "3号楼", nor "二期北门" "期北门".
    parts = {
        place[start:] for start in range(1, len(place) - MIN_PART + 1) if not _NUMERAL.match(place, start - 1)
    }
    everyday: set[str] = set()
    for group in names.groups:
        if any(place.endswith(word) for word in group):
            everyday |= group

    def usable(found: set[str]) -> set[str]:
        return {n for n in found if n != place and n not in names.not_alone and len(n) >= MIN_PART}

    return usable(parts), usable(everyday)


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
        self._index = BuildingIndex([(a.code, a.buildings) for a in self._areas])
        self._zones = ZoneFinder(self._index.zones) if self._index.zones else None
        self._places: dict[str, tuple[str, str]] = {}  # folded, casefolded name → (canonical, grid)
        self._add_listed_places()
        self._blocked: set[str] = set()  # everyday names of several places: they locate nothing
        self._add_derived_names()
        self._latin = self._latin_names()
        self._latin_words = max((len(n.split(" ")) for n in self._latin), default=0)
        # Longest first: at a given offset the regex takes the first alternative that matches.
        names = sorted([*self._places, *self._blocked], key=len, reverse=True)
        self._place_re = re.compile("|".join(map(_place_pattern, names)), re.IGNORECASE) if names else None

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
        """Parts of names, then everyday names, kept only where they point at a single place: "活动室"
        is 党群活动室 even when 老年活动中心 is an 活动室 by its group too."""
        for tier in (0, 1):
            derived: dict[str, tuple[str, str] | None] = {}
            for folded_place, target in list(self._places.items()):
                if target[0] != folded_place and _fold(target[0]).strip().casefold() != folded_place:
                    continue  # an alias: its target's own names are derived from the target
                for name in _other_names(folded_place)[tier]:
                    derived[name] = None if derived.get(name, target) != target else target
            for name, found in derived.items():
                if name in self._places or name in self._blocked:
                    continue
                if found is not None:
                    self._places[name] = found
                else:
                    # Still matched, so that no part of it is: "老年活动室" fits 老年活动中心 and 党群活动室
                    # alike, and must not be read as "活动室", the everyday name of the second alone.
                    self._blocked.add(name)

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
        grid, _ = self._index.grid(*split_key(key))
        return grid if grid != AMBIGUOUS else None

    def _building(self, text: str, folded: str) -> tuple[Resolved | None, Resolved | None]:
        """The first building named that a grid has, and the first named that none has. A number
        that could be several buildings ("3号楼" with an 一期 and an 二期 one) is neither."""
        hits = self._zones.find(folded) if self._zones is not None else []
        named: list[NamedBuilding] = [*_mentions(text, mask(folded, hits) if hits else folded)]
        if hits:
            named = sorted([*named, *zone_numbers(text, folded, hits)], key=lambda m: m.start)
        resolved = [found for m in named if (found := self._index.resolve(m, hits, folded)) is not None]
        covered = next((r for r in resolved if r.grid is not None), None)
        return covered, next((r for r in resolved if r.grid is None), None)

    def locate(self, text: str) -> LocationMatch | None:
        """The first building or place named in text that a grid covers; None when nothing is named
        (or only a building number several buildings have). If something building-like is named but
        no grid covers it, return LocationMatch(grid=None, ...)."""
        folded = _fold(text)
        building, uncovered = self._building(text, folded)
        place: tuple[int, int, tuple[str, str]] | None = None
        for found in self._place_re.finditer(folded) if self._place_re else ():
            if (target := self._places.get(found.group().casefold())) is not None:
                place = found.start(), found.end(), target
                break
        if self._latin and _ASCII_LETTER.search(folded):  # Latin place names all have letters
            latin = self._latin_place(folded)
            if latin is not None and (place is None or latin[0] < place[0]):
                place = latin
        if place and (
            building is None
            or place[0] < building.start
            or (place[0] == building.start and place[1] > building.end)
        ):
            start, end, (canonical, grid) = place
            return LocationMatch(grid, text[start:end], None, canonical)
        if building:
            return LocationMatch(building.grid, text[building.start : building.end], building.key, None)
        if uncovered:
            return LocationMatch(None, text[uncovered.start : uncovered.end], uncovered.key, None)
        return None

    def locate_answer(self, answer: str, report: str) -> LocationMatch | None:
        """Where an answer to "where is it?" points. "二期" alone answers which 3号楼 the report meant:
        read with the report, it names one building."""
        found = self.locate(answer)
        if found is None and answer.strip():
            with_report = self.locate(f"{report}\n{answer}")
            if with_report is not None and with_report.grid is not None:
                return with_report
        return found
