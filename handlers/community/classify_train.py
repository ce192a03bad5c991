"""``outreach-bot classify train``: rebuild the classifier's learned layer from the labelled corpus.

Reproducible: the train split only (SHA-1 of each text), deduplicated and sorted; a fixed seed; the
corpus's SHA-256 stored in the model file; gzip without a time stamp, so the same corpus and code
give the same bytes. Needs the ``classify`` extra (scikit-learn, pypinyin); classifying never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from handlers.community import classify_model
from handlers.community.classify_corpus import LABELS, corpus_files, corpus_hash, training_rows

MAX_MODEL_BYTES = 20 * 1024 * 1024


def data_dir() -> Path:
    return Path(__file__).resolve().parent / "data"


def rebuild_pinyin_table() -> bool:
    """Re-export the character → pinyin table from pypinyin; True when it changed."""
    from handlers.community import lexicon

    path = data_dir() / "pinyin.txt"
    text = lexicon.build_pinyin_table()
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if text == old:
        return False
    path.write_text(text, encoding="utf-8")
    lexicon.char_readings.cache_clear()
    lexicon.first_readings.cache_clear()
    lexicon.syllable_set.cache_clear()
    return True


def samples(corpus_dir: Path) -> tuple[list[tuple[list[str], str]], str]:
    from handlers.community.classify import Classifier, load_default_categories

    rows = training_rows(corpus_files(corpus_dir))
    rules = Classifier(load_default_categories(), model=False)
    out = [(rules.features(rules.analyse(row.text)), row.label) for row in rows]
    return out, corpus_hash(rows)


def train(corpus_dir: Path, out: Path | None = None, c_values: Sequence[float] = ()) -> list[str]:
    """Train and write the model; returns the lines to print."""
    lines = []
    # The shipped model goes with the shipped pinyin table: rebuild it first (a model written
    # elsewhere, e.g. an experiment, leaves the package's data alone).
    if out is None and rebuild_pinyin_table():
        lines.append("pinyin table rebuilt from pypinyin")
    data, digest = samples(corpus_dir)
    if not data:
        raise ValueError(f"no labelled train messages under {corpus_dir}")
    for c in c_values:
        accuracy = classify_model.cross_validate(data, LABELS, _argmax, c)
        lines.append(f"C={c}: 5-fold accuracy on train {accuracy:.1%}")
    model = classify_model.fit(data, LABELS, digest)
    path = out or data_dir() / classify_model.MODEL_FILE
    size = classify_model.write_model(model, path)
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"model is {size} bytes, over {MAX_MODEL_BYTES}")
    lines.append(
        f"trained on {len(data)} train messages (corpus sha256 {digest[:12]}), "
        f"{len(model['weights'])} features, {size / 1024:.0f} KiB → {path}"
    )
    classify_model.load_model.cache_clear()
    return lines


def _argmax(model: classify_model.LinearModel, features: list[str]) -> str:
    probabilities = model.probabilities(features)
    return max(probabilities, key=lambda k: probabilities[k])
