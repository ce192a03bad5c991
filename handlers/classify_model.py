"""The learned layer of the classifier: a multinomial logistic regression over character n-grams, the
segmenter's words and the keyword rules' findings, trained offline by ``outreach-bot classify train``.

The weights are exported to ``data/classify_model.json.gz`` (labels, intercepts, one weight row per
feature, the SHA-256 of the training corpus and the training settings) and read here with the standard
library only: scikit-learn is needed to train, never to classify, so start-up stays fast.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

MODEL_FILE = "classify_model.json.gz"
FORMAT = 1
NGRAMS = (1, 2, 3)
SEED = 13
C = 4.0  # inverse regularisation; chosen by 5-fold cross-validation on the train split
MIN_WEIGHT = 0.02  # features whose every weight is smaller are dropped from the exported file


def text_features(normalized: str, tokens: Sequence[str]) -> list[str]:
    """Character n-grams (the text padded with ^ and $) and the segmenter's words."""
    padded = f"^{normalized.replace(' ', '')}$"
    out = {f"w:{t}" for t in tokens if t.strip()}
    for n in NGRAMS:
        out.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return sorted(out)


@dataclass(frozen=True)
class LinearModel:
    labels: tuple[str, ...]
    intercept: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]
    corpus_sha256: str

    def probabilities(self, features: Sequence[str]) -> dict[str, float]:
        present = [self.weights[f] for f in features if f in self.weights]
        scale = 1.0 / math.sqrt(len(features)) if features else 0.0  # rows are L2-normalised
        z = list(self.intercept)
        for row in present:
            for k, w in enumerate(row):
                z[k] += w * scale
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
    if raw.get("format") != FORMAT:
        raise ValueError(f"model format {raw.get('format')} is not {FORMAT}")
    return LinearModel(
        labels=tuple(raw["labels"]),
        intercept=tuple(raw["intercept"]),
        weights={f: tuple(w) for f, w in raw["weights"].items()},
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
    weights: dict[str, list[float]] = {}
    for j, name in enumerate(vectorizer.get_feature_names_out()):
        row = [round(float(model.coef_[i, j]), 4) for i in order]
        if max(abs(w) for w in row) >= MIN_WEIGHT:
            weights[str(name)] = row
    return {
        "format": FORMAT,
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
