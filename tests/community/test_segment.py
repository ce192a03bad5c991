"""The classifier's own segmentation pass gives exactly jieba's tokens (precise mode, HMM off) with the
classifier's dictionary: every labelled message, folded as the classifier reads it, and odd input
(letters, digits, symbols, whitespace, traditional characters)."""

from __future__ import annotations

import random
from pathlib import Path

from handlers.community.classify import default_classifier
from handlers.community.segment import Segmenter

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


def _messages() -> list[str]:
    return [
        line.split("\t")[-1]
        for path in sorted(DATA.rglob("*.tsv"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def test_same_tokens_as_jieba_on_every_labelled_message() -> None:
    classifier = default_classifier()
    segment = Segmenter(classifier.tokenizer).lcut
    texts = _messages()
    assert len(texts) > 3000
    for text in texts:
        for form in (text, classifier.analyse(text).normalized):
            assert segment(form) == classifier.tokenizer.lcut(form, HMM=False), form


def test_same_tokens_as_jieba_on_odd_input() -> None:
    classifier = default_classifier()
    segment = Segmenter(classifier.tokenizer).lcut
    alphabet = "的了是下水道堵垃圾桶老鼠蟑螂號樓楼区门口小广告贴满abcXYZ0123 ，。!?\n\r\t+#&._%-㐀😀"
    rng = random.Random(5)
    texts = ["", " ", "\r\n", "abc123", "3号楼", "a b", "垃圾", "囧囧囧"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(3000)]
    for text in texts:
        assert segment(text) == classifier.tokenizer.lcut(text, HMM=False), text
