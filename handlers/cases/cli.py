"""``outreach-bot tickets``: the cases in the database, as JSON lines, CSV or .xlsx (added to bot/cli.py
by ``register``; ``stats`` and ``export`` are ``cli_stats``). Its fields and their JSON/CSV output are a
contract that automation depends on: keep names and fields stable. Residents' texts are masked unless
``--full-text`` is given, and then a warning says so."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.cases.models import Case, CaseStatus
from handlers.community.model import load_community
from handlers.kernel.cli_output import csv_text, print_json, write_bytes, xlsx_bytes
from handlers.kernel.privacy import mask_text
from messages import render

TICKET_FIELDS = (
    "number",
    "status",
    "category",
    "categories",
    "grid",
    "assignee",
    "location",
    "text",
    "channel",
    "in_triage",
    "created_at",
    "updated_at",
    "resolved_at",
    "resolution_note",
)
# Times in the spreadsheet forms are the community's local time, without an offset (Excel and WPS
# cannot show one); the JSON form keeps ISO 8601 with the offset.
TICKET_TIMES = ("created_at", "updated_at", "resolved_at")


class TicketSettings(Protocol):
    """What ``outreach-bot tickets`` reads of the settings tree the composition root hands in."""

    database_url: str
    config: Path | None


def register(subparsers: Any) -> None:
    """Add ``tickets`` to the ``outreach-bot`` sub-commands."""
    tickets_command(subparsers)


def tickets_command(subparsers: Any) -> None:
    tickets = subparsers.add_parser("tickets", help="list the cases in the database")
    tickets.add_argument(
        "--status",
        help="only cases in this status: new, assigned, accepted, in_progress, resolved, closed, confirmed",
    )
    tickets.add_argument("--format", choices=("json", "csv", "xlsx"), default="json")
    tickets.add_argument("--output", type=Path, metavar="FILE", help="write the CSV or .xlsx to this file")
    tickets.add_argument(
        "--full-text",
        action="store_true",
        help="residents' texts as written (default: phone and ID numbers and health words masked)",
    )
    tickets.set_defaults(func=cmd_tickets)


async def _tickets(
    settings: TicketSettings, status: str | None, full_text: bool = False
) -> list[dict[str, Any]]:
    from storage.migrate import database  # alembic: only when a command opens the database

    async with database(settings.database_url) as db, db.sessions() as session:
        query = select(Case).order_by(Case.id)
        if status:
            query = query.where(Case.status == status)
        rows = (await session.scalars(query)).all()

    tz = _community_timezone(settings)

    def iso(value: Any) -> str | None:
        # ISO 8601 with the community's offset (the keys stay as they are: a contract)
        return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else None

    def shown(value: str | None) -> str | None:
        return value if full_text or value is None else mask_text(value)

    return [
        {
            "number": c.id,
            "status": c.status,
            "category": c.category_code,
            "categories": list(c.categories),
            "grid": c.grid_code,
            "assignee": c.assignee_id,
            "location": c.location_text,
            "text": shown(c.text),
            "channel": c.channel,
            "in_triage": c.in_triage,
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "resolved_at": iso(c.resolved_at),
            "resolution_note": shown(c.resolution_note),
        }
        for c in rows
    ]


def cmd_tickets(args: argparse.Namespace) -> int:
    valid = [status.value for status in CaseStatus]
    if args.status is not None and args.status not in valid:
        print(render("cli.unknown_status", status=args.status, valid="、".join(valid)), file=sys.stderr)
        return 2
    if args.full_text:
        # Residents' phone and ID numbers and health words leave the database unmasked: say so where
        # the operator (and the service's log) will see it.
        logging.getLogger(__name__).warning("tickets --full-text: exporting residents' texts unmasked")
    rows = asyncio.run(_tickets(args.settings(), args.status, args.full_text))
    if args.format == "json":
        for row in rows:
            print_json(row)
        return 0
    return _tickets_sheet(args, rows)


def _tickets_sheet(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    tz = _community_timezone(args.settings())
    headers = [render(f"tickets.col.{field}") for field in TICKET_FIELDS]

    def cell(field: str, value: Any) -> Any:
        if field in TICKET_TIMES and value:
            return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        if field == "categories":
            return " ".join(value)
        if field == "in_triage":
            return render("tickets.yes") if value else ""
        if field == "status":
            return render(f"status.{value}")
        return value

    table = [[cell(field, row[field]) for field in TICKET_FIELDS] for row in rows]
    if args.format == "xlsx":
        if not write_bytes(xlsx_bytes(render("tickets.sheet"), headers, table), args.output):
            print(render("cli.xlsx_needs_output"), file=sys.stderr)
            return 2
        return 0
    text = csv_text(headers, table)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _community_timezone(settings: TicketSettings) -> Any:
    try:
        return load_community(settings.config).timezone
    except Exception:  # the sample's zone: every community in China keeps Beijing time
        return ZoneInfo("Asia/Shanghai")
