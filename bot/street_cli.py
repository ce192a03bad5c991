"""``outreach-bot route`` over a 街道 file (or a community file: a 街道 of one) and ``outreach-bot config
check`` of either shape: contracts automation depends on (keep names and fields stable).

``route`` prints one JSON line per stdin line: the classifier's fields (``classify_cli``), then
``community`` (its code, or null when the message does not tell which), ``grid``, ``assignee``,
``location``; ``ask`` is true when the bot would ask the resident (the category, as before, or the
community); ``community_choices`` lists the communities a message names when it names several.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.cli_io import fail_config, print_json, stdin_lines
from messages import render

SHOWN_CODES = 12  # an unknown --community lists at most this many known codes


def _street(path: Path | None) -> Any:
    from handlers.community.street import load_street

    return load_street(path)


def route(args: argparse.Namespace, classification_fields: Callable[..., dict[str, Any]]) -> int:
    """``classification_fields``: the fields every classify and route line starts with (classify_cli's)."""
    from handlers.community.model import CommunityConfigError
    from handlers.community.street_route import route_in_street
    from handlers.kernel.inbound import clean_text

    path = args.config or args.settings().config
    try:
        street = _street(path)
    except CommunityConfigError as exc:
        return fail_config(exc, path)
    code = args.community
    if code is not None and street.get(code) is None:
        known = "、".join(street.codes[:SHOWN_CODES]) + ("…" if len(street) > SHOWN_CODES else "")
        print(render("cli.unknown_community", code=code, known=known), file=sys.stderr)
        return 2
    for line in stdin_lines():
        text = clean_text(line)
        found = route_in_street(street, text, code)
        decision = found.route
        classifier = found.community.classifier if found.community is not None else None
        out = {
            **classification_fields(line, found.classification, classifier, text),
            "community": found.community.code if found.community is not None else None,
            "grid": decision.grid if decision is not None else None,
            "assignee": decision.assignee if decision is not None else None,
            "location": found.location.matched if found.location is not None else None,
        }
        if found.ask_community:
            out["ask"] = True
        if found.community is None:
            out["community_choices"] = list(found.choices)
        print_json(out)
    return 0


def config_check(path: Path) -> int:
    """A community file: one line, as before. A 街道 file: a line for the file, then one per community."""
    from handlers.community.model import CommunityConfigError

    try:
        street = _street(path)
    except CommunityConfigError as exc:
        return fail_config(exc, path)
    if street.single_file:
        print(_summary("cli.config_ok", street.communities[0], file=path))
        return 0
    print(render("cli.config_ok_street", file=path, street=street.name, communities=len(street)))
    for community in street:
        print("  " + _summary("cli.config_ok_community", community, code=community.code, name=community.name))
    return 0


def _summary(key: str, community: Any, **values: Any) -> str:
    cfg = community.config
    return render(
        key, grids=len(cfg.grids), staff=len(cfg.staff), categories=len(community.categories), **values
    )
