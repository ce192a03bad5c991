"""The learned layer of the classifier: a multinomial logistic regression over character n-grams, the
segmenter's words and the keyword rules' findings, trained offline by ``outreach-bot classify train``.

The weights are exported to ``data/classify_model.json.gz`` (labels, intercepts, each feature's
weights packed into one integer, the SHA-256 of the training corpus and the training settings) and
read here with the standard library only: scikit-learn is needed to train, never to classify, so
start-up stays fast.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

MODEL_FILE = "classify_model.json.gz"
FORMAT = 2
NGRAMS = (1, 2, 3)
SEED = 13
C = 16.0  # inverse regularisation; 5-fold CV of rules + model on train: 8 → 95.2 %, 16 → 95.7 %, 32 → 95.9 %;
# larger values make the probabilities overconfident (fewer questions when unsure), so 16 is kept
MIN_WEIGHT = 0.1  # features whose every weight is smaller are dropped from the exported file
_SCALE = 10_000  # weights are stored to 4 decimals
_BIAS = 1 << 21  # |weight| < 200 assumed: a biased weight is positive and below 2**22
_FIELD = 34  # bits per label: room for the sum of _MAX_TERMS biased weights
_MAX_TERMS = 4000  # 4000 * 2**22 < 2**34
_PACKING = {"scale": _SCALE, "bias": _BIAS, "field_bits": _FIELD}


def text_features(normalized: str, tokens: Sequence[str]) -> list[str]:
    """Character n-grams (the text padded with ^ and $) and the segmenter's words."""
    return list(text_feature_set(normalized, tokens))


def text_feature_set(normalized: str, tokens: Sequence[str]) -> set[str]:
    padded = f"^{normalized.replace(' ', '')}$"
    out = {"w:" + t for t in tokens}
    out.discard("w: ")
    for n in NGRAMS:
        # n-grams by concatenating shifted copies of the text (C-level loops, not one slice per n-gram)
        if n == 1:
            out.update(padded)
        elif n == 2:
            out.update(map(str.__add__, padded, padded[1:]))
        elif n == 3:
            out.update(map(str.__add__, map(str.__add__, padded, padded[1:]), padded[2:]))
        else:
            out.update([padded[i : i + n] for i in range(len(padded) - n + 1)])
    return out


def pack(row: Sequence[float]) -> int:
    """One feature's weights for all labels as one integer: fixed point, biased to stay positive, one
    ``_FIELD``-bit field per label, so a message's scores are one C-level sum of ints at run time."""
    value = 0
    for k, w in enumerate(row):
        value |= (round(w * _SCALE) + _BIAS) << (_FIELD * k)
    return value


@dataclass(frozen=True)
class LinearModel:
    labels: tuple[str, ...]
    intercept: tuple[float, ...]
    packed: dict[str, int]  # feature → its packed weights (see ``pack``)
    corpus_sha256: str

    def weights(self, feature: str) -> tuple[float, ...]:
        """The weights of one feature, per label (for inspection)."""
        value, mask = self.packed.get(feature, 0), (1 << _FIELD) - 1
        if not value:
            return (0.0,) * len(self.labels)
        return tuple((((value >> (_FIELD * k)) & mask) - _BIAS) / _SCALE for k in range(len(self.labels)))

    def probabilities(self, features: Collection[str]) -> dict[str, float]:
        """Label → probability for one message's features (each feature counts once: a set, or a
        sequence without repeats, as ``Classifier.features`` gives)."""
        packed = self.packed
        unique = features if isinstance(features, set | frozenset) else set(features)
        present = packed.keys() & unique if len(unique) == len(features) else None
        if present is not None and len(present) <= _MAX_TERMS:
            # The model's features among the message's by one C-level intersection: the packed values
            # are never 0, so this is the same count and sum as looking each feature up.
            n, total = len(present), sum(map(packed.__getitem__, present))
        else:  # repeats, or so many features that the packed fields would overflow: as listed
            values = list(map(packed.get, features, itertools.repeat(0)))
            n = len(values) - values.count(0)
            if n > _MAX_TERMS:  # score the first ones
                values, n = [v for v in values if v][:_MAX_TERMS], _MAX_TERMS
            total = sum(values)
        scale = 1.0 / math.sqrt(len(features)) if features else 0.0  # rows are L2-normalised
        mask = (1 << _FIELD) - 1
        z = [
            b + scale * (((total >> (_FIELD * k)) & mask) - n * _BIAS) / _SCALE
            for k, b in enumerate(self.intercept)
        ]
        top = max(z)
        exp = [math.exp(v - top) for v in z]
        total = sum(exp)
        return {label: e / total for label, e in zip(self.labels, exp, strict=True)}


@cache
def load_model() -> LinearModel | None:
    """The shipped model, or None when there is none yet (the rules then decide alone)."""
    path = resources.files("handlers").joinpath("data", MODEL_FILE)
    if not path.is_file():
        return None
    raw = json.loads(gzip.decompress(path.read_bytes()))
    return model_from_json(raw)


def model_from_json(raw: dict[str, Any]) -> LinearModel:
    if raw.get("format") != FORMAT or raw.get("packing") != _PACKING:
        raise ValueError(f"model format {raw.get('format')} {raw.get('packing')} is not {FORMAT} {_PACKING}")
    return LinearModel(
        labels=tuple(raw["labels"]),
        intercept=tuple(raw["intercept"]),
        packed=raw["weights"],
        corpus_sha256=raw["corpus_sha256"],
    )


def fit(
    samples: Sequence[tuple[list[str], str]], labels: Sequence[str], corpus_sha256: str, c: float = C
) -> dict[str, Any]:
    """Train on (features, label) pairs and return the exportable model (needs scikit-learn)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    vectorizer = DictVectorizer(sort=True)
    matrix = normalize(vectorizer.fit_transform([dict.fromkeys(f, 1.0) for f, _ in samples]))
    targets = [label for _, label in samples]
    model = LogisticRegression(C=c, max_iter=3000, random_state=SEED)
    model.fit(matrix, targets)
    order = [list(model.classes_).index(label) for label in labels if label in model.classes_]
    kept_labels = [str(model.classes_[i]) for i in order]
    weights: dict[str, int] = {}
    for j, name in enumerate(vectorizer.get_feature_names_out()):
        row = [float(model.coef_[i, j]) for i in order]
        if max(abs(w) for w in row) >= MIN_WEIGHT:
            weights[str(name)] = pack(row)
    return {
        "format": FORMAT,
        "packing": _PACKING,
        "labels": kept_labels,
        "intercept": [round(float(model.intercept_[i]), 4) for i in order],
        "weights": dict(sorted(weights.items())),
        "corpus_sha256": corpus_sha256,
        "settings": {"ngrams": list(NGRAMS), "C": c, "seed": SEED, "samples": len(samples)},
    }


def cross_validate(
    samples: Sequence[tuple[list[str], str]],
    labels: Sequence[str],
    decide: Callable[[LinearModel, list[str]], str],
    c: float,
    folds: int = 5,
) -> float:
    """Accuracy of ``decide`` over k folds of the train split (folds by position in the sorted corpus)."""
    right = 0
    for k in range(folds):
        train = [s for i, s in enumerate(samples) if i % folds != k]
        held = [s for i, s in enumerate(samples) if i % folds == k]
        model = model_from_json(fit(train, labels, "", c))
        right += sum(decide(model, f) == label for f, label in held)
    return right / len(samples)


def write_model(model: dict[str, Any], path: Path) -> int:
    data = json.dumps(model, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    path.write_bytes(gzip.compress(data, mtime=0))  # mtime 0: the same corpus gives the same bytes
    return path.stat().st_size
