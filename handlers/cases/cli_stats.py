"""``outreach-bot stats`` and ``outreach-bot export``: figures per grid, category and worker, and the
cases as Open311 GeoReport v2 requests (added to bot/cli.py by ``register``). Both read the database
named by ``OUTREACH_DATABASE_URL`` (and the community stored in it, else ``OUTREACH_CONFIG`` / the
sample). Output is UTF-8 with real Chinese characters; field names are a contract (see README,
"Command line")."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.cases.models import OPEN_STATUSES, Case
from handlers.cases.stats import PERIODS, compute, period_bounds
from handlers.cases.street_stats import StreetReport, compute_street
from handlers.community.street import load_street
from handlers.kernel.cli_output import csv_text, write_bytes, xlsx_bytes
from messages import render

STATS_FORMATS = ("table", "json", "csv", "xlsx")
# The rows' figures in the order the table, CSV and .xlsx show them (headers: stats.col.*).
COLUMNS = (
    "received",
    "closed",
    "in_hand",
    "triage",
    "referred",
    "merged",
    "invalid",
    "close_rate",
    "on_time_rate",
    "rework_rate",
    "satisfaction",
    "overdue_now",
    "backlog",
    "median_hours_to_close",
)
RATES = ("close_rate", "on_time_rate", "rework_rate", "satisfaction")
EXPORT_BATCH = 1000


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(render("stats.bad_date", value=value)) from None


def register(subparsers: Any) -> None:
    """Add ``stats`` and ``export`` to the ``outreach-bot`` sub-commands."""
    stats_command(subparsers)
    export_command(subparsers)


def stats_command(subparsers: Any) -> None:
    stats = subparsers.add_parser(
        "stats", help="figures per grid, category and worker: received, closed, on-time, rework, satisfaction"
    )
    stats.add_argument("--period", choices=PERIODS, default="month", help="day, ISO week, month or quarter")
    stats.add_argument("--format", choices=STATS_FORMATS, default="table")
    stats.add_argument(
        "--as-of", type=_day, metavar="YYYY-MM-DD", help="the period containing this day, up to its end"
    )
    stats.add_argument("--grid", action="append", metavar="CODE", help="only this grid (repeatable)")
    stats.add_argument(
        "--community",
        metavar="CODE",
        help="this community's figures (a 街道 file; without it: the 街道 table ranking its communities)",
    )
    stats.add_argument("--output", type=Path, metavar="FILE", help="write the .xlsx (or CSV) to this file")
    stats.set_defaults(func=cmd_stats)


def export_command(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="the cases as Open311 GeoReport v2 service requests (JSON)")
    export.add_argument("--format", choices=("open311",), default="open311")
    export.add_argument("--status", choices=("open", "closed"), help="only open or only closed requests")
    export.add_argument(
        "--jurisdiction",
        "--community",
        dest="community",
        metavar="CODE",
        help="only this community's requests (its code, the requests' jurisdiction_id)",
    )
    export.set_defaults(func=cmd_export)


async def _with_street(args: argparse.Namespace, work: Callable[[Any, Any, Any], Any]) -> Any:
    """Open the configured database (migrated), find the 街道 stored in it (else ``OUTREACH_CONFIG`` /
    the sample, a 街道 of one) and the communities' row ids, run ``work(session, street, ids)``."""
    from handlers.community.store import community_ids, stored_street
    from storage.migrate import database  # alembic: only when a command opens the database

    settings = args.settings()
    async with database(settings.database_url) as db, db.sessions() as session:
        street = await stored_street(session) or load_street(settings.config)
        return await work(session, street, await community_ids(session))


def _chosen(street: Any, code: str | None) -> Any:
    """The community ``--community`` names (None when not given), or a refusal (a string)."""
    if code is None:
        return None
    community = street.get(code)
    if community is None:
        return render("cli.unknown_community", code=code, known="、".join(street.codes))
    return community


# -- stats ----------------------------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    async def work(session: Any, street: Any, ids: Any) -> Any:
        community = _chosen(street, args.community)
        if isinstance(community, str):
            return community
        now = datetime.now(UTC)
        if community is None and len(street) > 1:
            if args.grid:
                return render("cli.grid_needs_community", known="、".join(street.codes))
            start, end = period_bounds(args.period, now, ZoneInfo(street.timezone), args.as_of)
            as_now = end if args.as_of else now
            return await compute_street(session, street, ids, start, end, as_now, period=args.period)
        community = community or street.communities[0]
        unknown = [g for g in args.grid or () if g not in community.grids]
        if unknown:
            return render("cli.unknown_grid", grid="、".join(unknown), valid="、".join(community.grids))
        start, end = period_bounds(args.period, now, community.timezone, args.as_of)
        return await compute(
            session,
            community,
            start,
            end,
            end if args.as_of else now,
            period=args.period,
            grids=args.grid,
            # several communities: this one's cases only (grid codes are per community)
            community_id=ids.get(community.code) if len(street) > 1 else None,
        )

    report = asyncio.run(_with_street(args, work))
    if isinstance(report, str):  # a refusal, said on one line
        print(report, file=sys.stderr)
        return 2
    street_table = isinstance(report, StreetReport)
    if args.format == "json":
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
        return 0
    if args.format == "table":
        sys.stdout.write((street_text(report) if street_table else table(report)) + "\n")
        return 0
    headers = street_headers() if street_table else spreadsheet_headers()
    body = street_rows(report) if street_table else spreadsheet_rows(report)
    if args.format == "xlsx":
        if not write_bytes(xlsx_bytes(render("stats.sheet"), headers, body), args.output):
            print(render("cli.xlsx_needs_output"), file=sys.stderr)
            return 2
        return 0
    text = csv_text(headers, body)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def street_headers() -> list[str]:
    return [render(f"stats.col.{c}") for c in ("rank", "community", "name", *COLUMNS)]


def street_rows(report: StreetReport) -> list[list[Any]]:
    """One row per community, ranked, then the total (no rank); rates as fractions."""
    out = []
    for rank, row in [*enumerate(report.rows, 1), (None, report.total)]:
        values = row.as_dict()
        out.append([rank, values["key"], values["name"], *(values[c] for c in COLUMNS)])
    return out


def street_text(report: StreetReport) -> str:
    tz = report.timezone
    title = render(
        "stats.street_title",
        street=report.street,
        period=render(f"stats.period.{report.period}"),
        start=report.start.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        end=report.end.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        tz=tz.key,
    )
    header = [render(f"stats.col.{c}") for c in ("rank", "community", "name", *COLUMNS)]
    body = [[str(rank), row.key or "", *_cells(row)] for rank, row in enumerate(report.rows, 1)]
    body.append(["", "", *_cells(report.total)])
    note = render("stats.table_note", now=report.now.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
    return "\n".join([title, "", *_grid_lines(header, body), "", note])


def _cells(row: Any) -> list[str]:
    from handlers.cases.stats_summary import percent

    values = row.as_dict()
    median = values["median_hours_to_close"]
    shown = [row.name]
    for column in COLUMNS:
        if column in RATES:
            shown.append(percent(getattr(row, column)) if getattr(row, column) is not None else "-")
        elif column == "median_hours_to_close":
            shown.append("-" if median is None else f"{median:.1f}")
        else:
            shown.append(str(values[column]))
    return shown


def spreadsheet_headers() -> list[str]:
    return [render(f"stats.col.{c}") for c in ("group", "key", "name", *COLUMNS)]


def spreadsheet_rows(report: Any) -> list[list[Any]]:
    """One row per grid, category, worker and the total; rates as fractions (Excel formats them)."""
    out = []
    for group, rows in [*report.groups(), ("total", [report.total])]:
        for row in rows:
            values = row.as_dict()
            out.append(
                [render(f"stats.group.{group}"), values["key"], values["name"], *(values[c] for c in COLUMNS)]
            )
    return out


def width(text: str) -> int:
    """Columns a string takes in a terminal: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * (size - width(text))
    return gap + text if right else text + gap


def _grid_lines(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    sizes = [max(width(r[i]) for r in [header, *body]) for i in range(len(header))]
    out = []
    for line in [header, *body]:
        cells = [_pad(cell, sizes[i], right=i > 0) for i, cell in enumerate(line)]
        out.append("  ".join(cells).rstrip())
    return out


def table(report: Any) -> str:
    cells = _cells
    header = [render(f"stats.col.{c}") for c in ("name", *COLUMNS)]
    tz = report.timezone
    title = render(
        "stats.table_title",
        community=report.community,
        period=render(f"stats.period.{report.period}"),
        start=report.start.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        end=report.end.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        tz=tz.key,
    )
    lines = [title, ""]
    for group, rows in report.groups():
        lines.append(render(f"stats.section.{group}"))
        lines += ["  " + line for line in _grid_lines(header, [cells(r) for r in rows])]
        lines.append("")
    lines.append(render("stats.section.total"))
    lines += ["  " + line for line in _grid_lines(header, [cells(report.total)])]
    lines.append("")
    lines.append(
        render(
            "stats.table_note",
            now=report.now.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        )
    )
    return "\n".join(lines)


# -- export ---------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from handlers.cases.open311 import service_request

    async def work(session: Any, street: Any, ids: Any) -> int | str:
        chosen = _chosen(street, args.community)
        if isinstance(chosen, str):
            return chosen
        # each request in its own community (its code is the request's jurisdiction_id)
        by_id = {ids[c.code]: c for c in street if c.code in ids}
        fallback = street.communities[0]
        query = select(Case).order_by(Case.id).execution_options(yield_per=EXPORT_BATCH)
        if chosen is not None:
            query = query.where(Case.community_id == ids.get(chosen.code))
        if args.status == "open":
            query = query.where(Case.status.in_(OPEN_STATUSES))
        elif args.status == "closed":
            query = query.where(Case.status.not_in(OPEN_STATUSES))
        # A JSON array written as it is read: a big database is never held in memory.
        out = sys.stdout
        out.write("[")
        count = 0
        async for case in await session.stream_scalars(query):
            out.write(",\n" if count else "\n")
            community = by_id.get(case.community_id, fallback)
            out.write(json.dumps(service_request(case, community), ensure_ascii=False))
            count += 1
            if count % EXPORT_BATCH == 0:
                session.expunge_all()
        out.write("\n]\n" if count else "]\n")
        return count

    done = asyncio.run(_with_street(args, work))
    if isinstance(done, str):  # an unknown community: one line, status 2
        print(done, file=sys.stderr)
        return 2
    return 0
