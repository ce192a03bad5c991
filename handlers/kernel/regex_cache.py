"""``re.compile`` for the classifier's long word alternations, from compiled code cached on disk.

Python's regex compiler is written in Python: the intent, exclusion, danger and lexicon patterns (a few
hundred alternatives each) took ~0.3 s of every start to parse and compile, and a compiled pattern does
not pickle (unpickling compiles it again). What the compiler hands to the C engine (``_sre.compile``'s
arguments: the code list, flags and group names) is plain data, so that is what is cached, keyed by the
pattern text and flags themselves: a changed word list is a different key, never a stale hit.

A pattern is only cached when the engine, given the cached arguments, makes a pattern equal to
``re.compile``'s (``Pattern.__eq__`` compares the pattern, flags and code); otherwise it is compiled
as usual. The file is per Python version (the code format is private to each version).

``memo`` caches other small facts worked out from a pattern's parse (``handlers/community/pattern_search.py``:
which characters a match can start with) in the same file.
"""

from __future__ import annotations

import atexit
import logging
import pickle
import re
from collections.abc import Callable, Hashable
from typing import Any

from handlers.kernel import disk_cache

log = logging.getLogger(__name__)

try:  # the compiler's own steps, as ``re._compiler.compile`` takes them (3.11+)
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python: compile as usual
    _sre = None

# A file with more entries than this is rewritten with only what this process used: word lists that
# changed many times must not make it grow without end.
MAX_ENTRIES = 4000

_table: dict[Hashable, Any] | None = None
_used: set[Hashable] = set()
_dirty = False


def _path() -> Any:
    key = disk_cache.fingerprint(disk_cache.source_of(__name__, disk_cache.__name__))
    return disk_cache.cache_dir() / f"regex-{key}.pickle"


def _loaded() -> dict[Hashable, Any]:
    global _table
    if _table is None:
        _table = _read()
    return _table


def _read() -> dict[Hashable, Any]:
    try:
        with _path().open("rb") as stream:
            table = pickle.load(stream)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # a damaged file: compile again, and write a whole one
        log.warning("regex cache unreadable (%s); rebuilding it", type(exc).__name__)
        return {}
    return table if isinstance(table, dict) else {}


def _arguments(pattern: str, flags: int) -> tuple[Any, ...]:
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = parsed.state.groupdict
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    # The code holds the compiler's named opcode constants; plain ints are what the engine reads.
    plain = [int(op) for op in code]
    groups = parsed.state.groups - 1
    return (int(flags | parsed.state.flags), plain, groups, dict(groupindex), tuple(indexgroup))


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``; raises ``re.error`` for a bad pattern as it does."""
    global _dirty
    if _sre is None:
        return re.compile(pattern, flags)
    table = _loaded()
    key = ("re", pattern, flags)
    _used.add(key)
    arguments = table.get(key)
    if arguments is not None:
        try:
            return _sre.compile(pattern, *arguments)  # type: ignore[no-any-return]
        except Exception:  # pragma: no cover - a file from an incompatible build: compile below
            table.pop(key, None)
    compiled = re.compile(pattern, flags)
    try:
        arguments = _arguments(pattern, flags)
        same = _sre.compile(pattern, *arguments) == compiled
    except Exception:  # pragma: no cover - the compiler's internals differ: do not cache
        same = False
    if same:
        table[key] = arguments
        _dirty = True
    return compiled


def memo(kind: str, of: Hashable, build: Callable[[], Any]) -> Any:
    """``build()``: a picklable fact worked out from a pattern ``of`` (its text, or text and flags),
    remembered with the compiled patterns."""
    global _dirty
    table = _loaded()
    key = (kind, of)
    _used.add(key)
    if key in table:
        return table[key]
    value = build()
    table[key] = value
    _dirty = True
    return value


def save() -> None:
    """Write what this process compiled anew (the next start reads it); nothing when there is none."""
    global _dirty
    if not _dirty or _table is None:
        return
    kept = _table if len(_table) <= MAX_ENTRIES else {k: v for k, v in _table.items() if k in _used}
    disk_cache.write(_path(), pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))
    _dirty = False


def forget() -> None:
    """Drop the table read from disk (tests: read the file again)."""
    global _table, _dirty
    _table, _dirty = None, False
    _used.clear()


atexit.register(save)  # patterns first compiled after the classifier was built
