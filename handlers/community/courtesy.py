"""Politeness around a report ("3号楼下水道堵了 谢谢", "thx, lights out in building 2") is manners, not a
closing thanks: the classifier reads the message without it. The phrases are data
(``data/courtesy.yaml``). A message that is only politeness is left whole, and so is a thanks for
something ("谢谢你们把垃圾清走了"), so real thanks still close."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from handlers.kernel.yaml_text import load_yaml

_TAIL_WINDOW = 40  # politeness at the end is shorter than this: the tail pattern is tried only there


@dataclass(frozen=True)
class _Patterns:
    head: re.Pattern[str]  # politeness at the start, with the separators after it
    tail: re.Pattern[str]  # politeness from here to the end, with separators
    separators: re.Pattern[str]  # separators at the end, left when the tail is cut
    done: re.Pattern[str]  # a problem told as solved: the thanks is a real one
    starts: re.Pattern[str]  # where a phrase may start


@cache
def _patterns() -> _Patterns:
    text = resources.files("handlers").joinpath("data", "courtesy.yaml").read_text(encoding="utf-8")
    data = load_yaml(text)
    phrase = "(?:" + "|".join(f"(?:{p})" for p in data["phrases"]) + ")"
    sep = data["separators"]
    return _Patterns(
        # Longest politeness first: "谢谢你们了" whole, not "谢谢" leaving "你们了" (atomic: no backing off).
        head=re.compile(rf"^{sep}(?>(?:{phrase}{sep})+)(?!{data['object']})"),
        # Atomic pieces: a tail that does not reach the end fails at once instead of trying every split.
        tail=re.compile(rf"(?<![a-z])(?:(?>{phrase})(?>{sep}))+$"),
        separators=re.compile(rf"{sep}$"),
        done=re.compile(data["done"]),
        starts=re.compile(data["starts"]),
    )


def without_courtesy(folded: str) -> str:
    """``folded`` (folded, lower-case) without politeness at its head and tail, or unchanged when
    nothing else would be left or the rest says a problem is solved."""
    patterns = _patterns()
    if patterns.starts.search(folded) is None:  # most messages: one quick search
        return folded
    out = folded
    # The tail is tried only where a phrase can start near the end, not at every character.
    for start in patterns.starts.finditer(out, max(0, len(out) - _TAIL_WINDOW)):
        if patterns.tail.match(out, start.start()) is not None:
            out = out[: start.start()]
            cut = patterns.separators.search(out, max(0, len(out) - 8))
            out = out[: cut.start()] if cut is not None else out
            break
    found = patterns.head.match(out)
    if found is not None:
        out = out[found.end() :]
    if out is folded or not out.strip() or patterns.done.search(folded):  # thanks for a fix is a thanks
        return folded
    return out
