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
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases.models import Case, CaseStatus
from handlers.community.street import DEFAULT_TIMEZONE, Street, load_street
from handlers.kernel.cli_output import csv_text, print_json, write_bytes, xlsx_bytes
from handlers.kernel.privacy import mask_text
from messages import render
from storage.models import Community as CommunityRow

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
    "community",  # added: the case's community code (a 街道 of several shows numbers as HPL-12)
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
    tickets.add_argument("--community", metavar="CODE", help="only this community's cases (its code)")
    tickets.add_argument("--format", choices=("json", "csv", "xlsx"), default="json")
    tickets.add_argument("--output", type=Path, metavar="FILE", help="write the CSV or .xlsx to this file")
    tickets.add_argument(
        "--full-text",
        action="store_true",
        help="residents' texts as written (default: phone and ID numbers and health words masked)",
    )
    tickets.set_defaults(func=cmd_tickets)


async def _tickets(
    settings: TicketSettings, status: str | None, full_text: bool = False, community: str | None = None
) -> list[dict[str, Any]] | str:
    """The rows, or a refusal (an unknown community code) said on one line."""
    from storage.migrate import database  # alembic: only when a command opens the database

    async with database(settings.database_url) as db, db.sessions() as session:
        street = await _street(session, settings)
        return await ticket_rows(session, street, status=status, community=community, full_text=full_text)


async def _street(session: AsyncSession, settings: TicketSettings) -> Street:
    from handlers.community.store import stored_street

    stored = await stored_street(session)
    if stored is not None:
        return stored
    try:
        return load_street(settings.config)
    except Exception:  # no file to read: the sample's zone, no community known
        return Street("", DEFAULT_TIMEZONE, ())


async def ticket_rows(
    session: AsyncSession,
    street: Street,
    *,
    status: str | None = None,
    community: str | None = None,
    full_text: bool = False,
) -> list[dict[str, Any]] | str:
    """The cases as ``tickets`` prints them (its JSON fields), in the order they came; ``community``
    (a code, any letter case) keeps that community's cases only. Numbers are those people see:
    ``HPL-12`` in a deployment of several communities, the bare number in one of one."""
    # every community's code, those that left the file too (their cases keep their numbers)
    codes = dict((await session.execute(select(CommunityRow.id, CommunityRow.code))).all())
    ids = {code.upper(): row_id for row_id, code in codes.items()}
    query = select(Case).order_by(Case.id)
    if community is not None:
        chosen = street.get(community)
        row_id = ids.get(chosen.code.upper()) if chosen is not None else None
        if row_id is None:
            return render("cli.unknown_community", code=community, known="、".join(street.codes))
        query = query.where(Case.community_id == row_id)
    if status:
        query = query.where(Case.status == status)
    rows = (await session.scalars(query)).all()
    several = len(street) > 1
    fallback = ZoneInfo(street.timezone or DEFAULT_TIMEZONE)

    def shown(value: str | None) -> str | None:
        return value if full_text or value is None else mask_text(value)

    out = []
    for c in rows:
        code = codes.get(c.community_id) if c.community_id is not None else None
        home = street.get(code) if code is not None else None
        tz = home.timezone if home is not None else fallback

        def iso(value: Any, tz: ZoneInfo = tz) -> str | None:
            # ISO 8601 with the community's offset (the keys stay as they are: a contract)
            return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else None

        number: int | str = c.id
        if several and code is not None and c.number is not None:
            number = f"{code}-{c.number}"
        out.append(
            {
                "number": number,
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
                "community": code,
            }
        )
    return out


def cmd_tickets(args: argparse.Namespace) -> int:
    valid = [status.value for status in CaseStatus]
    if args.status is not None and args.status not in valid:
        print(render("cli.unknown_status", status=args.status, valid="、".join(valid)), file=sys.stderr)
        return 2
    if args.full_text:
        # Residents' phone and ID numbers and health words leave the database unmasked: say so where
        # the operator (and the service's log) will see it.
        logging.getLogger(__name__).warning("tickets --full-text: exporting residents' texts unmasked")
    rows = asyncio.run(_tickets(args.settings(), args.status, args.full_text, args.community))
    if isinstance(rows, str):  # an unknown community: one line, status 2
        print(rows, file=sys.stderr)
        return 2
    if args.format == "json":
        for row in rows:
            print_json(row)
        return 0
    return _tickets_sheet(args, rows)


def _tickets_sheet(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    headers = [render(f"tickets.col.{field}") for field in TICKET_FIELDS]

    def cell(field: str, value: Any) -> Any:
        if field in TICKET_TIMES and value:
            # the row's own community's local time (its JSON form carries that offset)
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
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
