"""Politeness around a report ("3号楼下水道堵了 谢谢", "thx, lights out in building 2") is manners, not a
closing thanks: the classifier reads the message without it. The phrases are data
(``data/courtesy.yaml``). A message that is only politeness is left whole, and so is a thanks for
something ("谢谢你们把垃圾清走了"), so real thanks still close."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from handlers.yaml_text import load_yaml


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    text = resources.files("handlers").joinpath("data", "courtesy.yaml").read_text(encoding="utf-8")
    data = load_yaml(text)
    phrase = "(?:" + "|".join(f"(?:{p})" for p in data["phrases"]) + ")"
    sep = data["separators"]
    # Longest politeness first: "谢谢你们了" whole, not "谢谢" leaving "你们了" behind.
    head = re.compile(rf"^{sep}(?>(?:{phrase}{sep})+)(?!{data['object']})")  # no backing off into 你们
    tail = re.compile(rf"(?<![a-z]){sep}(?:{phrase}{sep})+$")
    return head, tail, re.compile(data["done"])


def without_courtesy(folded: str) -> str:
    """``folded`` (folded, lower-case) without politeness at its head and tail, or unchanged when
    nothing else would be left or the rest says a problem is solved."""
    head, tail, done = _patterns()
    if done.search(folded):  # thanks for a problem solved is a thanks
        return folded
    out = tail.sub("", folded, count=1)
    found = head.match(out)
    if found is not None:
        out = out[found.end() :]
    return out if out.strip() else folded
