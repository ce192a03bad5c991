"""Labelled messages for training and measuring the classifier, and the figures reported on them.

Two file formats (TSV, UTF-8, ``#`` comments):

* ``labels<TAB>slice<TAB>urgent<TAB>text`` (bench/data/corpus/): labels ``poster|garbage|mosquito|
  pests|sewage|other|none`` "+"-joined (primary first), urgent ``u`` or ``-``;
* ``labels<TAB>group<TAB>text`` (the older bench/data/*.tsv): the group (dev, held, blind) is kept
  as the slice, urgency is unknown.

Every message falls into ``train`` or ``test`` by the SHA-1 of its text (1 in 5 is test), so the
split does not depend on file order and a message never moves. Rules, word lists and the model are
built and inspected on ``train`` only; ``test`` is only measured.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

NONE = "none"
PROBLEM_LABELS = ("poster", "garbage", "mosquito", "pests", "sewage", "other")
LABELS = (*PROBLEM_LABELS, NONE)
TEST_SHARE = 5  # one message in five is test


@dataclass(frozen=True)
class Row:
    labels: tuple[str, ...]
    slice: str
    urgent: bool | None  # None: the file does not say
    text: str
    source: str

    @property
    def label(self) -> str:
        return self.labels[0]

    @property
    def split(self) -> str:
        return split_of(self.text)


def split_of(text: str) -> str:
    digest = hashlib.sha1(text.strip().encode("utf-8")).hexdigest()
    return "test" if int(digest, 16) % TEST_SHARE == 0 else "train"


class CorpusError(ValueError):
    pass


def read_rows(path: Path) -> list[Row]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) >= 4 and parts[2] in ("u", "-"):
            labels, slice_, urgent, text = parts[0], parts[1], parts[2] == "u", "\t".join(parts[3:])
        elif len(parts) >= 3:
            labels, slice_, urgent, text = parts[0], parts[1], None, "\t".join(parts[2:])
        else:
            raise CorpusError(f"{path.name}:{n}: expected labels<TAB>slice<TAB>[urgent<TAB>]text")
        names = tuple(label.strip() for label in labels.split("+"))
        if not text.strip() or any(label not in LABELS for label in names):
            raise CorpusError(f"{path.name}:{n}: unknown label or empty text")
        rows.append(Row(names, slice_.strip(), urgent, text.strip(), path.name))
    return rows


def corpus_files(folder: Path) -> list[Path]:
    """The labelled files of bench/data and bench/data/corpus, in name order."""
    return sorted(folder.glob("*.tsv")) + sorted((folder / "corpus").glob("*.tsv"))


def training_rows(files: Iterable[Path]) -> list[Row]:
    """Train-split rows, deduplicated by text and sorted, so training is reproducible."""
    seen: dict[str, Row] = {}
    for path in files:
        for row in read_rows(path):
            if row.split == "train" and row.text not in seen:
                seen[row.text] = row
    return [seen[text] for text in sorted(seen)]


def corpus_hash(rows: Sequence[Row]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{'+'.join(row.labels)}\t{row.text}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Prediction:
    label: str  # primary category or "none"
    urgent: bool


@dataclass
class Figures:
    """What `classify eval` and the accuracy bench report for a set of rows."""

    total: int = 0
    right: int = 0
    problems: int = 0
    turned_away: int = 0
    urgent_total: int = 0
    urgent_caught: int = 0
    urgent_false: int = 0
    confusion: Counter[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        self.confusion = Counter()

    def add(self, row: Row, got: Prediction) -> None:
        assert self.confusion is not None
        self.total += 1
        self.right += got.label == row.label
        self.confusion[(row.label, got.label)] += 1
        if row.label != NONE:
            self.problems += 1
            self.turned_away += got.label == NONE
        if row.urgent:
            self.urgent_total += 1
            self.urgent_caught += got.urgent
        elif row.urgent is False and got.urgent:
            self.urgent_false += 1

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def summary(self) -> str:
        away = self.turned_away / self.problems if self.problems else 0.0
        urgent = (
            f"urgent recall {self.urgent_caught}/{self.urgent_total}"
            f" ({self.urgent_caught / self.urgent_total:.0%}), false alarms {self.urgent_false}"
            if self.urgent_total
            else "urgent: none labelled"
        )
        return (
            f"accuracy {self.accuracy:.1%} ({self.right}/{self.total}); problems turned away "
            f"{away:.1%} ({self.turned_away}/{self.problems}); {urgent}"
        )

    def table(self) -> list[str]:
        """Per-label precision and recall, then the confusion matrix (rows: expected)."""
        assert self.confusion is not None
        lines = ["label      precision  recall   n"]
        for label in LABELS:
            predicted = sum(n for (_, g), n in self.confusion.items() if g == label)
            expected = sum(n for (w, _), n in self.confusion.items() if w == label)
            hit = self.confusion[(label, label)]
            precision = f"{hit / predicted:.1%}" if predicted else "-"
            recall = f"{hit / expected:.1%}" if expected else "-"
            lines.append(f"{label:<10} {precision:>9} {recall:>7} {expected:>4}")
        short = [label[:5] for label in LABELS]
        lines.append("confusion (row expected, column got): " + " ".join(f"{s:>5}" for s in short))
        for want in LABELS:
            cells = " ".join(f"{self.confusion[(want, got)]:>5}" for got in LABELS)
            lines.append(f"{want:<38} {cells}")
        return lines


def evaluate(rows: Iterable[Row], predict: Callable[[str], Prediction]) -> Figures:
    figures = Figures()
    for row in rows:
        figures.add(row, predict(row.text))
    return figures
