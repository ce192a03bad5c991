"""Character folding shared by the classifier and the location parser: traditional characters and
full-width forms become the plain simplified ones residents mostly type. One character in, one out,
so offsets in the folded text are offsets in the original."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    lines = resources.files("handlers").joinpath("data", "t2s.txt").read_text(encoding="utf-8").splitlines()
    for line in lines:
        if not line or line.startswith("#"):
            continue
        traditional, simplified = line.split()
        table[ord(traditional)] = simplified
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
