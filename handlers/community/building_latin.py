"""Building numbers in Latin letters, for handlers.community.location (which reads the Chinese forms and finds
the grid): toneless pinyin and English numerals, read as one whole number each."""

from __future__ import annotations

import re
from collections.abc import Iterable

from handlers.community.building_spec import MAX_BUILDING, cn_number

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


def latin_buildings(folded: str) -> list[tuple[str, int, int]]:
    """Buildings in pinyin or English in folded text: (key, start, end) each."""
    found: list[tuple[str, int, int]] = []
    for m in _LATIN_MENTION.finditer(folded):
        if m["enl"]:
            key = m["enl"]
        else:
            n = _latin_number(m, folded)
            if n is None or not 1 <= n <= MAX_BUILDING:
                continue
            key = str(n)
        found.append((key, m.start(), m.end()))
    return found
