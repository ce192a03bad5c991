"""Character folding shared by the classifier and the location parser: traditional and variant
characters and full-width forms become the plain simplified ones residents mostly type.

The traditional → simplified pairs come from OpenCC (its t2s, hk2s and tw2s conversions applied to
each character OpenCC knows), not from a hand-written list. Only conversions that give exactly one
character are kept (all of OpenCC's single-character ones do), so one character goes in and one
comes out and offsets in the folded text are offsets in the original: the location parser relies
on that. Phrase-level conversions (which may change length) are deliberately not applied."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# OpenCC's own tables listing single traditional or variant characters (key<TAB>value …).
_OPENCC_TABLES = ("TSCharacters.txt", "HKVariantsRev.txt", "TWVariantsRev.txt")
_OPENCC_CONFIGS = ("t2s", "hk2s", "tw2s")


# Bump when _build_pairs changes what it computes, so cached tables are rebuilt.
_PAIRS_VERSION = 1


def _opencc_module(folder: str) -> str:
    return os.path.join(os.path.dirname(folder), "opencc.py")


@cache
def _opencc_pairs() -> dict[int, str]:
    """The pairs from a JSON cache in the user's cache directory (building them from OpenCC takes
    ~0.2 s of start-up), keyed by OpenCC's version and tables; built and cached when missing."""
    spec = importlib.util.find_spec("opencc")  # located, not imported: a cache hit needs no OpenCC
    assert spec is not None and spec.origin is not None, "opencc is a dependency"
    folder = os.path.join(os.path.dirname(spec.origin), "dictionary")
    path = _pairs_cache_path(folder)
    if path is not None and path.is_file():
        try:
            with path.open(encoding="utf-8") as stream:
                return {int(code): target for code, target in json.load(stream).items()}
        except (OSError, ValueError, AttributeError) as exc:  # damaged: rebuild it
            log.warning("OpenCC fold cache unreadable (%s); rebuilding it", type(exc).__name__)
    import opencc  # only here: ~15 ms, and only a cache miss pays it

    pairs = _build_pairs(opencc, folder)
    if path is not None:
        _write_pairs(path, pairs)
    return pairs


def _pairs_cache_path(folder: str) -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    parts = [str(_PAIRS_VERSION)]
    try:
        # The tables, and OpenCC's module standing in for its version (an upgrade rewrites it).
        for file in (*(os.path.join(folder, name) for name in _OPENCC_TABLES), _opencc_module(folder)):
            stat = os.stat(file)
            parts.append(f"{stat.st_size}.{int(stat.st_mtime)}")
    except OSError:
        return None
    return Path(base) / "shequtong" / f"opencc-fold-{'-'.join(parts)}.json"


def _write_pairs(path: Path, pairs: dict[int, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(pairs, stream, ensure_ascii=False)
        os.replace(temp, path)  # readers see the old file or the whole new one
    except OSError as exc:  # no cache is only slower
        log.info("OpenCC fold cache not written (%s)", exc.strerror)


def _build_pairs(opencc: Any, folder: str) -> dict[int, str]:
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
