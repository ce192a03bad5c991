"""Reading what residents type into the words the classifier knows.

Before any keyword is matched, a message is rewritten (the original text is kept for everything else):

* dialect words become the standard word (曱甴 → 蟑螂, 耗儿 → 老鼠, 坑渠 → 下水道);
* English words and phrases become the Chinese word (``rats in the basement`` → ``老鼠 in the basement``);
* a run of toneless pinyin (``xia shui dao du le``) is read back into the Chinese words it spells, as
  far as they are known words (keywords, danger words, ``pinyin_words``); other syllables stay;
* a homophone typo of a keyword (拉圾, 下水到, 文子, 着或了) becomes the keyword when the characters
  typed are not a word of their own (文字 stays 文字): the pinyin of each character is looked up in a
  table exported from pypinyin's data (``data/pinyin.txt``, rebuilt by ``outreach-bot classify train``).

The word lists are data (``data/lexicon.yaml``); a community's ``extra_keywords`` join them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from handlers.kernel.textnorm import fold
from handlers.kernel.yaml_text import load_yaml

MAX_WORD_SYLLABLES = 6
_LATIN_RUN = re.compile(r"[a-z][a-z'’\- ]*[a-z]|[a-z]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_ANY = re.compile("[a-z]")
# Words that are valid pinyin but say a message is English when they are frequent in it.
_ENGLISH_HINTS = frozenset(
    "a an the is are was were it its in on at of to for and or but my our i we you".split()  # noqa: SIM905
)


def _data_text(name: str) -> str:
    return resources.files("handlers").joinpath("data", name).read_text(encoding="utf-8")


@cache
def lexicon_data() -> dict[str, Any]:
    return load_yaml(_data_text("lexicon.yaml"))  # type: ignore[no-any-return]


@cache
def char_readings() -> dict[str, tuple[str, ...]]:
    """Character → its toneless readings, most common first (``data/pinyin.txt``: one character a line)."""
    readings: dict[str, tuple[str, ...]] = {}
    for line in _data_text("pinyin.txt").splitlines():
        if line and not line.startswith("#"):
            char, _, rest = line.partition("\t")
            readings[char] = tuple(rest.split(","))
    return readings


@cache
def first_readings() -> dict[str, str]:
    """Character → its commonest toneless reading."""
    return {char: values[0] for char, values in char_readings().items()}


@cache
def syllable_set() -> frozenset[str]:
    return frozenset(s for values in char_readings().values() for s in values)


def build_pinyin_table() -> str:
    """The text of ``data/pinyin.txt`` from pypinyin's character data (needs the ``classify`` extra).
    Toneless, ü written v, readings in pypinyin's order (most common first), CJK basic block only."""
    import unicodedata

    from pypinyin.pinyin_dict import pinyin_dict

    lines = ["# character<TAB>toneless readings, most common first; from pypinyin's pinyin_dict"]
    for code in range(0x4E00, 0xA000):
        raw = pinyin_dict.get(code)
        if not raw:
            continue
        readings: list[str] = []
        for reading in raw.split(","):
            plain = "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))
            plain = plain.replace("ü", "v").lower()
            if plain.isascii() and plain.isalpha() and plain not in readings:
                readings.append(plain)
        if readings:
            lines.append(f"{chr(code)}\t{','.join(readings)}")
    return "\n".join(lines) + "\n"


def split_syllables(word: str) -> list[str] | None:
    """``lajitong`` → [la, ji, tong]; None when the letters are not pinyin. Fewest syllables wins."""
    known = syllable_set()
    n = len(word)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for end in range(1, n + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            if head is not None and word[start:end] in known:
                candidate = [*head, word[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[n]


def word_syllables(word: str, per_char: int = 2) -> list[tuple[str, ...]]:
    """The readings of a Chinese word from each character's ``per_char`` commonest readings (a
    heteronym's rare readings would make false homophones: 涂 is also read chu)."""
    readings = char_readings()
    options = [readings.get(c, ())[:per_char] for c in word]
    if not all(options):
        return []
    combos = itertools.islice(itertools.product(*options), 16)
    return [tuple(c) for c in combos]


class Lexicon:
    """The rewriting for one set of known words (a community's keywords change it)."""

    def __init__(self, keywords: Iterable[str], extra_english: Mapping[str, str] | None = None) -> None:
        data = lexicon_data()
        keywords = list(keywords)
        own = frozenset(keywords)  # a word that is itself a keyword is matched as typed (耗子, 蚊虫)
        dialect = ((fold(k).lower(), fold(v).lower()) for k, v in (data.get("dialect") or {}).items())
        kept = ((k, v) for k, v in dialect if k != v and k not in own)
        self.dialect = sorted(kept, key=lambda kv: (-len(kv[0]), kv[0]))
        # Dialect words by first character, longest first: a message only tries the words that can start
        # with one of its own characters.
        self.dialect_by_char: dict[str, list[tuple[str, str]]] = {}
        for wrong, right in self.dialect:
            self.dialect_by_char.setdefault(wrong[0], []).append((wrong, right))
        english = {str(k).lower(): str(v) for k, v in (data.get("english") or {}).items()}
        english.update({k.lower(): v for k, v in (extra_english or {}).items()})
        english = {k: v for k, v in english.items() if k not in own}
        self.english = english
        phrases = sorted(english, key=len, reverse=True)
        self.english_pattern = re.compile(
            r"(?<![a-z])(" + "|".join(re.escape(p) for p in phrases) + r")(?:s|es|ed|d|ing)?(?![a-z])"
        )
        # A keyword of one syllable of substance ("画了") is not read back from pinyin: "hua le" is as
        # often 滑了 or 花了. The pinyin words (坏了, 堵了) are listed because they are meant.
        words = {w for w in keywords if _CJK.search(w) and sum(c not in _FUNCTION_CHARS for c in w) >= 2}
        words.update(fold(w) for w in data.get("pinyin_words") or ())
        words.update(self.english.values())
        self.pinyin_index: dict[tuple[str, ...], str] = {}
        for word in sorted(words, key=lambda w: (len(w), w)):
            if len(word) > MAX_WORD_SYLLABLES:
                continue
            for reading in word_syllables(word):
                self.pinyin_index.setdefault(reading, word)
        # Homophone repair only for keywords of two characters or more: one syllable is too ambiguous.
        self.homophones: dict[tuple[str, ...], str] = {}
        repairable = [*keywords, *(fold(w) for w in data.get("pinyin_words") or ())]
        chinese = (w for w in repairable if _CJK.search(w) and len(w) >= 2)
        for word in sorted(chinese, key=lambda w: (len(w), w)):
            # "画了", "贴了": one syllable of substance is as ambiguous as a one-character keyword (滑了)
            if sum(c not in _FUNCTION_CHARS for c in word) < 2:
                continue
            if len(word) <= 4 and all(_CJK.match(c) for c in word):
                for reading in word_syllables(word, per_char=1):
                    self.homophones.setdefault(reading, word)
        self.keywords = frozenset(words)
        self.meant = frozenset(fold(str(w)).lower() for w in data.get("meant") or ())
        self.homophone_starts = frozenset(key[:2] for key in self.homophones)
        # The lengths of the keys that begin with each two syllables, longest first: a position only
        # tries the lengths some key has (most have only two-character keys).
        sizes: dict[tuple[str, ...], set[int]] = {}
        for key in self.homophones:
            sizes.setdefault(key[:2], set()).add(len(key))
        self.homophone_sizes = {start: tuple(sorted(n, reverse=True)) for start, n in sizes.items()}
        # Dialect words are rare in a message: one search says there is none to replace.
        dialect_words = "|".join(re.escape(w) for w, _ in self.dialect)
        self.dialect_any = re.compile(dialect_words) if self.dialect else None

    def normalize(self, folded: str, is_word: Any = None) -> str:
        """The message as the keyword rules should read it; ``is_word(s)`` says whether ``s`` is a word
        of its own in the segmenter's dictionary (then a homophone of a keyword is left alone)."""
        text = folded
        if self.dialect_any is not None and self.dialect_any.search(folded):
            starts = self.dialect_by_char.keys() & set(folded)
            pairs = (pair for c in starts for pair in self.dialect_by_char[c])
            for wrong, right in sorted(pairs, key=lambda kv: (-len(kv[0]), kv[0])):
                if wrong in text:
                    text = text.replace(wrong, right)
        if _LATIN_ANY.search(text):
            text = _LATIN_RUN.sub(self._latin, text)
        return self._repair_homophones(text, is_word)

    def _latin(self, match: re.Match[str]) -> str:
        run = match.group(0)
        tokens = run.split()
        parsed = [split_syllables(t) for t in tokens]
        hints = sum(t in _ENGLISH_HINTS for t in tokens)
        pinyin_share = sum(p is not None for p in parsed) / len(tokens)
        if pinyin_share >= 0.8 and hints * 4 < len(tokens) and not self._english_words(tokens):
            return self._read_pinyin([s for p in parsed if p is not None for s in p])
        return self.english_pattern.sub(lambda m: self.english[m.group(1)], run)

    def _english_words(self, tokens: list[str]) -> bool:
        """Does a run read as English (a lexicon word longer than a pinyin syllable, e.g. rats, trash)?"""
        return any(len(t) > 3 and (t in self.english or t.rstrip("s") in self.english) for t in tokens)

    def _read_pinyin(self, syllables: list[str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(syllables):
            for size in range(min(MAX_WORD_SYLLABLES, len(syllables) - i), 0, -1):
                word = self.pinyin_index.get(tuple(syllables[i : i + size]))
                if word is not None and (size > 1 or len(syllables) == 1 or word in _SINGLE_SYLLABLE_OK):
                    out.append(word)
                    i += size
                    break
            else:
                out.append(f" {syllables[i]} ")
                i += 1
        return "".join(out)

    def _repair_homophones(self, text: str, is_word: Any) -> str:
        first = list(map(first_readings().get, text))
        starts = self.homophone_starts
        # Most messages: no two syllables in a row start a keyword's sound; stop before the slow path.
        starting = map(starts.__contains__, itertools.pairwise(first))
        candidates = list(itertools.compress(itertools.count(), starting))  # positions, found in C
        if not candidates:
            return text
        chars = list(text)
        n = len(text)
        done = -1
        for i in candidates:
            if i <= done:
                continue
            for size in self.homophone_sizes[(first[i], first[i + 1])]:
                if i + size > n:
                    continue
                key = tuple(first[i : i + size])
                word = self.homophones.get(key)  # type: ignore[arg-type]
                if word is None:
                    continue
                typed = text[i : i + size]
                if typed == word or typed in self.meant or (is_word is not None and is_word(typed)):
                    break
                # A function word typed is meant ("是违见" is 是 + 违建, not 屎味 + 见).
                if any(t != w and t in _FUNCTION_CHARS for t, w in zip(typed, word, strict=True)):
                    break
                # Two characters are easily a chance homophone across words ("5号楼电梯" holds lou dian,
                # 漏电): not when either character belongs with its neighbour in a word of its own.
                if size == 2 and is_word is not None and (is_word(text[i - 1 : i + 1]) if i else False):
                    break
                if size == 2 and is_word is not None and is_word(text[i + 1 : i + 3]):
                    break
                chars[i : i + size] = list(word)
                done = i + size - 1
                break
        return "".join(chars)

    def syllable_text(self, text: str) -> str:
        """The message as space-separated toneless syllables (characters by their commonest reading,
        pinyin and other letters as typed), for matching danger words by sound."""
        readings = char_readings()
        out: list[str] = []
        for token in re.findall(r"[\u4e00-\u9fff]|[a-z]+", text):
            if len(token) == 1 and token in readings:
                out.append(readings[token][0])
            else:
                out.extend(split_syllables(token) or [token])
        return " " + " ".join(out) + " "


# Characters so common as words of their own that they are never a typo of a keyword's character.
_FUNCTION_CHARS = frozenset("的了是在有我你他她它这那不也就都还和与又很吗呢吧啊么个们")

# Single syllables read back as a word only when unambiguous in residents' messages.
_SINGLE_SYLLABLE_OK = frozenset(["臭", "栋"])
