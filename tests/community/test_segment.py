"""The classifier's own segmentation pass gives exactly jieba's tokens (precise mode, HMM off) with the
classifier's dictionary: every labelled message, folded as the classifier reads it, and odd input
(letters, digits, symbols, whitespace, traditional characters)."""

from __future__ import annotations

import random
from pathlib import Path

import jieba

from handlers.community import segment as segment_module
from handlers.community.classify import default_classifier

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


def _messages() -> list[str]:
    return [
        line.split("\t")[-1]
        for path in sorted(DATA.rglob("*.tsv"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def test_same_tokens_as_jieba_on_every_labelled_message() -> None:
    # The classifier's table is read group by group as messages need it; jieba's is whole.
    classifier = default_classifier()
    segment = classifier.segment
    texts = _messages()
    assert len(texts) > 3000
    for text in texts:
        for form in (text, classifier.analyse(text).normalized):
            assert segment(form) == classifier.tokenizer.lcut(form, HMM=False), form


def test_same_tokens_as_jieba_on_odd_input() -> None:
    classifier = default_classifier()
    segment = classifier.segment
    alphabet = "的了是下水道堵垃圾桶老鼠蟑螂號樓楼区门口小广告贴满abcXYZ0123 ，。!?\n\r\t+#&._%-㐀😀"
    rng = random.Random(5)
    texts = ["", " ", "\r\n", "abc123", "3号楼", "a b", "垃圾", "囧囧囧"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(3000)]
    for text in texts:
        assert segment(text) == classifier.tokenizer.lcut(text, HMM=False), text


def test_block_patterns_are_jiebas() -> None:
    # Copied so that segmenting needs no jieba import; a jieba upgrade that changes them must be seen.
    for ours, theirs in (
        (segment_module._HAN, jieba.re_han_default),
        (segment_module._SKIP, jieba.re_skip_default),
        (segment_module._ENG, jieba.re_eng),
    ):
        assert (ours.pattern, ours.flags) == (theirs.pattern, theirs.flags)
