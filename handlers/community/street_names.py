"""Which community of a 街道 a message names, read the way residents write: "和平里小区3号楼", "和平里那边",
"和平小区" (for 和平里社区, when no other community could be meant), 錦繡園 (traditional characters),
锦秀园 (a typo of the same sound), "jinxiuyuan" or "jin xiu yuan" (toneless pinyin), or a place only one
community has ("星星幼儿园").

The names are indexed once (``NameIndex``): a dict of every form of every name, and one of their
spellings in toneless pinyin, looked up at each position of the text for each length a form has. A
message costs the same for 3 communities as for 300: no loop over the communities.

False hits are refused: a name inside a longer word ("幸福" in 幸福感), a name that is a road or a stop
("新村路", "和平里站"), a bare name that is an everyday word (幸福, 和平, 新村: only with 社区/小区 after
it, or as an alias the file lists). A form two communities share names neither of them alone: it names
both (the bot asks which).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from handlers.kernel.textnorm import fold

SUFFIXES = ("社区", "小区", "居委会", "居委")
# What a community's name ends in besides 社区/小区: "和平小区" may stand for 和平里社区.
ESTATE_TAILS = ("新村", "花园", "家园", "里", "苑", "园", "村", "庄", "坊", "城", "府")
# After a bare name these make it another place: a road, a street, a stop ("新村路", "和平里站").
ROAD_TAILS = frozenset("路街道巷弄桥站镇县市")
COMMON_FREQ = 3  # a jieba dictionary word at least this frequent is an everyday word
MIN_SOUND_CHARS = 3  # a name matched by its sound has at least 3 characters ...
MAX_LATIN_WORDS = 8  # a name in pinyin is read from at most this many words
_LATIN_WORD = re.compile(r"[a-z]+")
_AREA_CHARS = frozenset("东南西北中前后左右上下新老大小一二三四五六七八九十期区号栋楼座门口")


@dataclass(frozen=True)
class Located:
    """What a message says about its community: ``codes`` (one: that community; several: ask which;
    none: it does not say), the words that said it, and how (``name``, ``place``)."""

    codes: tuple[str, ...] = ()
    matched: str = ""
    by: str = ""

    @property
    def code(self) -> str | None:
        return self.codes[0] if len(self.codes) == 1 else None


@dataclass(frozen=True)
class _Form:
    codes: frozenset[str]
    bare: bool  # no 社区/小区 after it: checked against longer words and roads


@cache
def _words() -> Any:
    from handlers.community.jieba_cache import WordTable, base_groups

    return WordTable(*base_groups())


def everyday_word(text: str) -> bool:
    return _words().base_freq(text) >= COMMON_FREQ


@cache
def _readings() -> Mapping[str, tuple[str, ...]]:
    from handlers.community.lexicon import char_readings

    return char_readings()


def _spellings(form: str, limit: int = 8) -> list[tuple[str, ...]]:
    """A form in toneless pinyin, each character's two commonest readings, at most ``limit`` spellings."""
    readings = _readings()
    out: list[tuple[str, ...]] = [()]
    for char in form:
        choices = readings.get(char, (char,))[:2]
        out = [(*s, c) for s in out for c in choices][:limit]
    return out


def name_forms(name: str) -> tuple[set[str], set[str]]:
    """The forms of one name as listed (the name or an alias): those that name it (the name as written,
    without 社区/小区 unless that leaves an everyday word such as 幸福, and with each other suffix), and
    the looser forms (和平里社区 → 和平小区, 和平社区) used only where no other community has them."""
    folded = fold(name.strip()).lower()
    if len(folded) < 2:
        return set(), set()
    core = next(
        (folded[: -len(s)] for s in SUFFIXES if folded.endswith(s) and len(folded) - len(s) >= 2), None
    )
    forms = {folded}
    if core is None:
        core = folded
    elif not everyday_word(core):
        forms.add(core)
    forms |= {core + suffix for suffix in SUFFIXES}
    loose = {
        core[: -len(tail)] + suffix
        for tail in ESTATE_TAILS
        if core.endswith(tail) and len(core) - len(tail) >= 2
        for suffix in ("社区", "小区")
    }
    return forms, loose - forms


def distinctive_place(name: str) -> bool:
    """Whether a place's name points at one community: a proper name (星星幼儿园, 幸福路, 紫荆苑), not an
    everyday one any community may have (东门, 菜场, 北区停车场, 社区卫生服务站)."""
    from handlers.community.location import place_names

    if len(name) < 3:
        return False
    names = place_names()
    generic = sorted((w for group in names.groups for w in group if name.endswith(w)), key=len, reverse=True)
    proper = name[: -len(generic[0])] if generic else name
    if proper in names.not_alone or proper in SUFFIXES:
        return False
    return len(proper) >= 2 and not set(proper) <= _AREA_CHARS


class NameIndex:
    """Every community's names (and the places only one community has), indexed for one pass over a
    message. ``names`` is (code, name, aliases) per community; ``places`` (code, place names)."""

    def __init__(
        self, names: Iterable[tuple[str, str, Sequence[str]]], places: Iterable[tuple[str, Iterable[str]]]
    ) -> None:
        found: dict[str, set[str]] = {}  # form → codes
        loose: dict[str, set[str]] = {}
        for code, name, aliases in names:
            for listed in (name, *aliases):
                forms, looser = name_forms(listed)
                for form in forms:
                    found.setdefault(form, set()).add(code)
                for form in looser:
                    loose.setdefault(form, set()).add(code)
        for form, codes in loose.items():
            if form not in found and len(codes) == 1:
                found[form] = codes
        self._forms = {f: _Form(frozenset(codes), not f.endswith(SUFFIXES)) for f, codes in found.items()}
        self._lengths = sorted({len(f) for f in self._forms}, reverse=True)
        self._sounds: dict[tuple[str, ...], tuple[str, _Form]] = {}
        for form, entry in self._forms.items():
            if len(form) >= MIN_SOUND_CHARS and re.fullmatch(r"[\u4e00-\u9fff]+", form):
                for spelling in _spellings(form):
                    self._sounds.setdefault(spelling, (form, entry))
        self._sound_lengths = sorted({len(s) for s in self._sounds}, reverse=True)
        self._latin = {"".join(spelling): entry for spelling, (_, entry) in self._sounds.items()}
        self._places = self._place_index(places)
        self._place_lengths = sorted({len(p) for p in self._places}, reverse=True)

    @staticmethod
    def _place_index(places: Iterable[tuple[str, Iterable[str]]]) -> dict[str, frozenset[str]]:
        owners: dict[str, set[str]] = {}
        for code, names in places:
            for place in names:
                folded = fold(str(place).strip()).lower()
                if distinctive_place(folded):
                    owners.setdefault(folded, set()).add(code)
        return {p: frozenset(codes) for p, codes in owners.items() if len(codes) == 1}

    def names(self, text: str) -> Located:
        """The communities the text names by name (every one it names; none when it names none)."""
        folded = fold(text).lower()
        readings = _readings()
        spelled = tuple(readings.get(c, (c,))[0] for c in folded)
        codes: set[str] = set()
        words: list[str] = []
        i = 0
        while i < len(folded):
            hit = self._name_at(folded, spelled, i)
            if hit is None:
                i += 1
                continue
            end, entry = hit
            codes |= entry.codes
            words.append(text[i:end])
            i = end
        if self._latin and _LATIN_WORD.search(folded):
            for start, end, entry in self._latin_names(folded):
                codes |= entry.codes
                words.append(text[start:end])
        return Located(tuple(sorted(codes)), "、".join(words), "name") if codes else Located()

    def _latin_names(self, folded: str) -> list[tuple[int, int, _Form]]:
        """Names in toneless pinyin, syllables together or apart ("hepingli", "he ping li xiao qu"):
        whole words only, the longest run of words first."""
        words = [(m.group(), m.start(), m.end()) for m in _LATIN_WORD.finditer(folded)]
        found: list[tuple[int, int, _Form]] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_LATIN_WORDS, len(words) - i), 0, -1):
                entry = self._latin.get("".join(w for w, _, _ in words[i : i + n]))
                if entry is not None:
                    found.append((words[i][1], words[i + n - 1][2], entry))
                    i += n
                    break
            else:
                i += 1
        return found

    def places(self, text: str) -> Located:
        """The community of the first distinctive place the text names that only one community has."""
        folded = fold(text).lower()
        for i in range(len(folded)):
            for length in self._place_lengths:
                codes = self._places.get(folded[i : i + length])
                if codes is not None:
                    return Located(tuple(sorted(codes)), text[i : i + length], "place")
        return Located()

    def locate(self, text: str) -> Located:
        """By name first, then by a place only one community has."""
        by_name = self.names(text)
        return by_name if by_name.codes else self.places(text)

    def _name_at(self, folded: str, spelled: tuple[str, ...], i: int) -> tuple[int, _Form] | None:
        for length in self._lengths:
            entry = self._forms.get(folded[i : i + length])
            if entry is not None and (not entry.bare or _stands_alone(folded, i, i + length)):
                return i + length, entry
        return self._sound_at(folded, spelled, i)

    def _sound_at(self, folded: str, spelled: tuple[str, ...], i: int) -> tuple[int, _Form] | None:
        """A name typed with characters of the same sound (锦秀园 for 锦绣园), half of them as written."""
        for length in self._sound_lengths:
            if i + length > len(folded):
                continue
            hit = self._sounds.get(spelled[i : i + length])
            if hit is None:
                continue
            form, entry = hit
            part = folded[i : i + length]
            same = sum(a == b for a, b in zip(form, part, strict=True))
            if same * 2 >= length and (not entry.bare or _stands_alone(folded, i, i + length)):
                return i + length, entry
        return None


def _stands_alone(folded: str, start: int, end: int) -> bool:
    """A bare name is not part of a longer word (幸福感, 不幸福) nor a road or stop (新村路, 和平里站)."""
    if end < len(folded) and folded[end] in ROAD_TAILS:
        return False
    longer = (folded[start : end + 1], folded[start : end + 2], folded[max(0, start - 1) : end])
    return not any(len(w) > end - start and everyday_word(w) for w in longer)
