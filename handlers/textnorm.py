"""Character folding shared by the classifier and the location parser: traditional and variant
characters and full-width forms become the plain simplified ones residents mostly type.

The traditional → simplified pairs come from OpenCC (its t2s, hk2s and tw2s conversions applied to
each character OpenCC knows), not from a hand-written list. Only conversions that give exactly one
character are kept (all of OpenCC's single-character ones do), so one character goes in and one
comes out and offsets in the folded text are offsets in the original: the location parser relies
on that. Phrase-level conversions (which may change length) are deliberately not applied."""

from __future__ import annotations

import os
from functools import cache

# OpenCC's own tables listing single traditional or variant characters (key<TAB>value …).
_OPENCC_TABLES = ("TSCharacters.txt", "HKVariantsRev.txt", "TWVariantsRev.txt")
_OPENCC_CONFIGS = ("t2s", "hk2s", "tw2s")


@cache
def _opencc_pairs() -> dict[int, str]:
    import opencc  # only here: ~15 ms, and only the first fold pays it

    folder = os.path.join(os.path.dirname(opencc.__file__), "dictionary")
    chars: set[str] = set()
    for name in _OPENCC_TABLES:
        with open(os.path.join(folder, name), encoding="utf-8") as table:
            for line in table:
                key = line.split("\t", 1)[0]
                if len(key) == 1:
                    chars.add(key)
    pairs: dict[int, str] = {}
    for config in _OPENCC_CONFIGS:
        converter = opencc.OpenCC(config)
        for char in sorted(chars):
            if ord(char) in pairs:
                continue
            simplified = converter.convert(char)
            if len(simplified) == 1 and simplified != char:
                pairs[ord(char)] = simplified
    # A variant may convert to another traditional form (裏 → 裡): follow it to the simplified end.
    for code, target in list(pairs.items()):
        seen = {code}
        while ord(target) in pairs and ord(target) not in seen:
            seen.add(ord(target))
            target = pairs[ord(target)]
        pairs[code] = target
    return pairs


# Where OpenCC's single-character answer is not what a resident means: 么/麼/麽 alone convert to 幺,
# but residents write them in 什么/怎么; 舖 is a variant OpenCC's tables leave alone.
_CORRECTIONS = {"麼": "么", "麽": "么", "舖": "铺"}
_LEAVE_ALONE = "么"


@cache
def fold_table() -> dict[int, str]:
    table = dict(_opencc_pairs())
    table.update({ord(k): v for k, v in _CORRECTIONS.items()})
    for char in _LEAVE_ALONE:
        table.pop(ord(char), None)
    # Full-width ASCII (U+FF01..FF5E) as typed by Chinese IMEs: "３号楼", "Ａ座", "３＃".
    table.update({cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)})
    table.update(
        {
            0x3000: " ",  # ideographic space
            0x25CB: "〇",  # "○", the circle often typed for 〇 (zero)
            0x2014: "-",  # "—" em dash, in "1—6"
            0x2013: "-",  # "–" en dash
            0x2212: "-",  # "−" minus sign
        }
    )
    return table


def fold(text: str) -> str:
    return text.translate(fold_table())
