"""jieba's precise mode without HMM (``Tokenizer.lcut(text, HMM=False)``), the same tokens in fewer
Python steps: segmentation is most of the classifier's time, and jieba builds a dictionary of lists
(its DAG), a dictionary of tuples (its route) and a generator per candidate for every block.

Here the DAG and the route are one right-to-left pass over the block, with the same dictionary
lookups, the same floating-point sums in the same order and the same tie-break (the longer word on an
equal score), so every token is jieba's; ``tests/community/test_segment.py`` compares the two on the corpus.
"""

from __future__ import annotations

from math import log

import jieba

# jieba's own patterns, so blocks are split exactly where jieba splits them.
_HAN = jieba.re_han_default
_SKIP = jieba.re_skip_default
_ENG = jieba.re_eng


class Segmenter:
    """Segments with one loaded jieba tokenizer's dictionary (which must not change afterwards)."""

    def __init__(self, tokenizer: jieba.Tokenizer) -> None:
        tokenizer.check_initialized()
        self.freq: dict[str, int] = tokenizer.FREQ
        self.logtotal = log(tokenizer.total)

    def lcut(self, sentence: str) -> list[str]:
        out: list[str] = []
        for block in _HAN.split(sentence):
            if not block:
                continue
            if _HAN.match(block):
                self._cut_block(block, out)
            else:
                for part in _SKIP.split(block):
                    if _SKIP.match(part):
                        out.append(part)
                    else:
                        out.extend(part)
        return out

    def _cut_block(self, block: str, out: list[str]) -> None:
        freq = self.freq
        get = freq.get
        logtotal = self.logtotal
        n = len(block)
        score = [0.0] * (n + 1)
        end = [0] * (n + 1)
        for k in range(n - 1, -1, -1):
            # jieba's get_DAG (extend while the fragment is a word or a word's prefix) and calc (best
            # log-probability to the end; max over (score, end) tuples, so the later end wins a tie).
            best = 0.0
            best_end = -1
            i = k
            f = get(block[k])
            while f is not None:
                if f:
                    s = log(f) - logtotal + score[i + 1]
                    if best_end < 0 or s >= best:
                        best, best_end = s, i
                i += 1
                if i >= n:
                    break
                f = get(block[k : i + 1])
            if best_end < 0:  # no word starts here: the character alone, frequency 1
                best, best_end = log(1) - logtotal + score[k + 1], k
            score[k] = best
            end[k] = best_end
        x = 0
        buf = ""
        while x < n:
            y = end[x] + 1
            word = block[x:y]
            if y - x == 1 and _ENG.match(word):  # single letters and digits are glued back together
                buf += word
            else:
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(word)
            x = y
        if buf:
            out.append(buf)
