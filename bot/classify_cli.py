"""``outreach-bot classify`` (one message per line in, JSON lines out; eval, train, corrections) and
``outreach-bot route``: the classifier's command line, a contract automation depends on."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_io import community_of, fail_config, print_json, stdin_lines
from bot.settings import Settings
from messages import render

if TYPE_CHECKING:
    from handlers.community.classify import Classification


async def _corrections(settings: Settings, include_residents: bool) -> list[str]:
    from handlers.cases.corrections import export_rows, load_corrections
    from storage.migrate import database

    async with database(settings.database_url) as db, db.sessions() as session:
        return export_rows(await load_corrections(session, include_residents=include_residents))


def _classify_corrections(args: argparse.Namespace) -> int:
    lines = asyncio.run(_corrections(args.settings(), args.with_answers))
    if not lines:
        print(render("cli.no_corrections"), file=sys.stderr)
    for line in lines:
        sys.stdout.write(line + "\n")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from handlers.community.model import CommunityConfigError
    from handlers.kernel.inbound import clean_text

    if args.action == "corrections":
        return _classify_corrections(args)
    if args.action == "train":
        return _classify_train(args)
    try:
        community = community_of(args.config, args.settings().config)
    except CommunityConfigError as exc:
        return fail_config(exc, args.config)
    classifier = community.classifier
    if args.action == "eval":
        return _classify_eval(classifier, args.files)
    for line in stdin_lines():
        text = clean_text(line)
        result = classifier.classify(text)
        fields = classification_fields(line, result, classifier, text)
        print_json({**fields, "candidates": list(result.candidates)})
    return 0


def _classify_train(args: argparse.Namespace) -> int:
    try:
        from handlers.community.classify_train import train
    except ImportError as exc:  # scikit-learn and pypinyin are the optional "classify" extra
        print(render("cli.classify_train_needs_extra", module=exc.name or "sklearn"), file=sys.stderr)
        return 1
    try:
        lines = train(args.data, args.out, tuple(args.cv or ()))
    except (OSError, ValueError) as exc:
        print(render("cli.classify_train_failed", error=str(exc)), file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def _classify_eval(classifier: Any, files: Sequence[Path]) -> int:
    from handlers.community.classify_corpus import CorpusError, Prediction, evaluate, read_rows

    if not files:
        print(render("cli.classify_eval_needs_file"), file=sys.stderr)
        return 2

    def predict(text: str) -> Prediction:
        result = classifier.classify(text)
        return Prediction(result.category or "none", result.urgent is not None)

    for path in files:
        try:
            rows = read_rows(path)
        except (OSError, UnicodeDecodeError, CorpusError) as exc:
            print(render("cli.classify_eval_bad_file", file=str(path), error=str(exc)), file=sys.stderr)
            return 1
        figures = evaluate(rows, predict)
        print(f"== {path.name}: {len(rows)} messages")
        print(f"all   {figures.summary()}")
        for split in ("train", "test"):
            part = [r for r in rows if r.split == split]
            if part:
                print(f"{split:<5} {evaluate(part, predict).summary()}")
        for line in figures.table():
            print(line)
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    from bot.street_cli import route

    return route(args, classification_fields)  # a 街道 file or a community file (a 街道 of one)


def classification_fields(
    text: str, result: Classification, classifier: Any = None, cleaned: str | None = None
) -> dict[str, Any]:
    """The fields every `classify` and `route` line starts with (a contract automation reads). Given the
    classifier, a problem of no category said beside a known one ("…，另外电梯也坏了") is listed last in
    ``categories`` as `other`, the way the chat opens a case for it."""
    categories = list(result.categories)
    if classifier is not None:
        from handlers.community.other_problem import with_other

        categories = list(with_other(classifier, text if cleaned is None else cleaned, result))
    return {
        "text": text,
        "category": result.category,
        "categories": categories,
        "confidence": round(result.confidence, 3),
        "keywords": list(result.keywords),
        "urgent": result.urgent,
        "ask": result.ask,
    }


def register(sub: Any) -> None:
    classify = sub.add_parser(
        "classify",
        help="classify one message per stdin line (JSON lines out); `classify eval FILE…` measures on "
        "labelled files; `classify train` rebuilds the learned layer; `classify corrections` prints staff "
        "corrections as training corpus lines",
    )
    classify.add_argument(
        "action", nargs="?", choices=("eval", "train", "corrections"), help="eval, train or corrections"
    )
    classify.add_argument("files", nargs="*", type=Path, help="eval: labelled TSV files")
    classify.add_argument("--config", type=Path, help="community YAML (for category overrides)")
    classify.add_argument(
        "--data", type=Path, default=Path("bench/data"), help="train: folder of labelled TSV files"
    )
    classify.add_argument("--out", type=Path, help="train: model file (default: the shipped one)")
    classify.add_argument(
        "--cv", type=float, action="append", help="train: report 5-fold accuracy for this C"
    )
    classify.add_argument(
        "--format", choices=("tsv",), default="tsv", help="corrections: labels, slice, urgent, masked text"
    )
    classify.add_argument(
        "--with-answers", action="store_true", help="corrections: also residents' answers to 'which kind?'"
    )
    classify.set_defaults(func=cmd_classify)

    route = sub.add_parser(
        "route", help="classify, locate and route one message per stdin line (no database)"
    )
    route.add_argument(
        "--config", type=Path, help="community or 街道 YAML (default: OUTREACH_CONFIG or the sample)"
    )
    route.add_argument("--community", help="route in this community (its code); default: the message tells")
    route.set_defaults(func=cmd_route)
