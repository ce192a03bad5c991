"""jieba's word → frequency table, read one first character at a time.

Loading jieba's whole table (~500,000 words and prefixes) was the largest part of start-up (~0.35 s even
from a pickle, and ~60 MB), yet a message only ever looks up strings that begin with one of its own
characters. So the table is cached in the user's cache directory grouped by first character, each group
still encoded, and a group is decoded the first time a text holding that character is segmented.
Words a classifier adds (its keywords, as jieba's ``add_word`` would add them) are laid over each group
as it is read. A cache hit does not even import jieba.

The cache is keyed by jieba's dictionary file and code (their size and modification time) and by the
source of this module and ``handlers/kernel/disk_cache.py``.
"""

from __future__ import annotations

import array
import importlib.util
import logging
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from handlers.kernel import disk_cache

Groups = dict[str, tuple[bytes, bytes]]  # first character → (words, "\n"-joined UTF-8; frequencies, int64)
_FREQ_CODE = "q"


def _jieba_files() -> list[Path] | None:
    spec = importlib.util.find_spec("jieba")  # located, not imported: a cache hit needs no jieba
    if spec is None or spec.origin is None:
        return None
    init = Path(spec.origin)
    return [init, init.with_name("dict.txt")]


def _key(files: list[Path] | None = None) -> str:
    stamps = []
    for path in files if files is not None else _jieba_files() or ():
        try:
            stat = path.stat()
        except OSError:
            stamps.append(f"{path.name}:missing")
            continue
        stamps.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return disk_cache.fingerprint([*stamps, *disk_cache.source_of(__name__, disk_cache.__name__)])


def import_jieba() -> Any:
    """jieba, imported with ``pkg_resources`` hidden: jieba reads its dictionary through it when it
    imports, which costs a third of a second (setuptools scans every installed distribution); without
    it jieba opens the same files by path."""
    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        import jieba

        return jieba
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # makes the import fail fast
    try:
        import jieba
    finally:
        del sys.modules["pkg_resources"]
    return jieba


@cache
def _base_tokenizer() -> Any:
    jieba = import_jieba()
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def jieba_tokenizer(added: frozenset[str] = frozenset(), added_freq: int = 0) -> Any:
    """A ``jieba.Tokenizer`` with jieba's dictionary and ``added`` words, for tools and for tests that
    compare its tokens with the classifier's (which never needs it)."""
    base = _base_tokenizer()
    tokenizer = import_jieba().Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(base.FREQ), base.total, True
    for word in sorted(added):
        tokenizer.add_word(word, freq=added_freq)
    return tokenizer


def _build_groups() -> tuple[Groups, int]:
    tokenizer = _base_tokenizer()
    by_char: dict[str, list[tuple[str, int]]] = {}
    for word, freq in tokenizer.FREQ.items():
        by_char.setdefault(word[0], []).append((word, freq))
    groups = {
        char: (
            "\n".join(w for w, _ in items).encode(),
            array.array(_FREQ_CODE, (f for _, f in items)).tobytes(),
        )
        for char, items in by_char.items()
    }
    return groups, int(tokenizer.total)


@cache
def base_groups() -> tuple[Groups, int]:
    """jieba's own table, grouped by first character, and its total frequency (cached)."""
    return disk_cache.load_or_build("jieba-groups", _key(), _build_groups)


def _decode(group: tuple[bytes, bytes]) -> dict[str, int]:
    words, freqs = group
    values = array.array(_FREQ_CODE)
    values.frombytes(freqs)
    return dict(zip(words.decode().split("\n"), values, strict=True))


class WordTable:
    """A jieba dictionary with ``added`` words at ``added_freq`` (as ``Tokenizer.add_word`` adds them:
    the word at that frequency, each of its prefixes at 0 unless already there). ``freq`` holds the
    groups read so far: call ``ensure(text)`` before looking up strings that begin in ``text``."""

    def __init__(self, groups: Groups, total: int, added: Iterable[str] = (), added_freq: int = 0) -> None:
        added = sorted(set(added))
        self.freq: dict[str, int] = {}
        self.total = total + added_freq * len(added)  # add_word adds each word's frequency to the total
        self._groups = groups
        self._added_freq = added_freq
        self._added: dict[str, list[str]] = {}
        for word in added:
            self._added.setdefault(word[0], []).append(word)
        self._unread = set(groups) | set(self._added)
        self._base_freq: dict[str, int] = {}  # an added word's frequency in jieba's own dictionary

    def ensure(self, text: str) -> None:
        unread = self._unread
        if unread.isdisjoint(text):
            return
        for char in unread.intersection(text):
            self._read(char)

    def _read(self, char: str) -> None:
        self._unread.discard(char)
        group = self._groups.get(char)
        table = _decode(group) if group is not None else {}
        for word in self._added.get(char, ()):
            self._base_freq[word] = table.get(word, 0)
            table[word] = self._added_freq
            for end in range(1, len(word)):
                table.setdefault(word[:end], 0)
        self.freq.update(table)

    def base_freq(self, word: str) -> int:
        """The word's frequency in jieba's own dictionary (before the added words)."""
        self.ensure(word)
        if word in self._base_freq:
            return self._base_freq[word]
        return self.freq.get(word, 0)

    def read_all(self) -> dict[str, int]:
        """The whole table (for tools and tests; the classifier reads groups as it needs them)."""
        for char in list(self._unread):
            self._read(char)
        return self.freq
