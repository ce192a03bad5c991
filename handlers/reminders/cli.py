"""``outreach-bot vaccines`` and ``outreach-bot reminders due`` (added to bot/cli.py by ``register``).

Output is a contract for automation: JSON lines (UTF-8, real Chinese characters), one object per dose
or per reminder, with stable field names; ``--format table`` is for people.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from messages import render


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(render("rem.cli.bad_date", value=value)) from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _table(rows: list[list[str]]) -> None:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write(
            "  ".join(_pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def _parse_given(values: list[str]) -> list[Any]:
    from handlers.reminders.schedule import Given

    out = []
    for value in values:
        parts = value.split(":")
        if len(parts) != 3 or not parts[1].isdigit():
            raise ValueError(render("rem.cli.bad_given", value=value))
        try:
            on = date.fromisoformat(parts[2])
        except ValueError:
            raise ValueError(render("rem.cli.bad_given", value=value)) from None
        out.append(Given(parts[0], int(parts[1]), on))
    return out


def cmd_vaccines(args: argparse.Namespace) -> int:
    from handlers.reminders.schedule import ScheduleError, plan_child, schedule_for

    as_of = args.as_of or date.today()
    try:
        schedule = schedule_for(as_of, args.schedule)
        given = _parse_given(args.given or [])
    except (ValueError, ScheduleError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for g in given:
        if schedule.rule(g.code, g.dose) is None:
            print(
                render("rem.cli.unknown_dose", schedule=schedule.id, code=g.code, dose=g.dose),
                file=sys.stderr,
            )
            return 2
    plan = plan_child(schedule, args.birth, given, as_of, args.sex)
    if args.format == "json":
        for dose in plan:
            _print_json({**dose.as_dict(), "schedule": schedule.id})
        return 0
    rows = [render("rem.cli.table_header").split()]
    for dose in plan:
        note = dose.given_on or (dose.earliest if dose.earliest and dose.earliest != dose.due else None)
        rows.append(
            [
                f"{dose.code} {dose.rule.name_zh}",
                str(dose.dose),
                dose.due.isoformat(),
                render(f"rem.status.{dose.status.value}") + (f" {note.isoformat()}" if note else ""),
            ]
        )
    _table(rows)
    return 0


class CliSettings(Protocol):
    """What the commands read of the app's settings (the composition root, bot/cli.py, hands them in)."""

    database_url: str
    config: Path | None


async def _due(settings: CliSettings, as_of: date | None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from handlers.community.model import load_community
    from handlers.community.store import stored_community
    from handlers.kernel.context import Services
    from handlers.reminders.jobs import build_messages, due_query
    from handlers.reminders.models import Reminder
    from storage.migrate import database
    from storage.models import utcnow

    async with database(settings.database_url) as db, db.sessions() as session:
        sessions = db.sessions
        community = await stored_community(session) or load_community(settings.config)
        tz = community.timezone
        now = utcnow()
        cutoff = now if as_of is None else datetime.combine(as_of + timedelta(days=1), time(0), tz)
        ids = (await session.scalars(due_query(cutoff))).all()
        rows = list(await session.scalars(select(Reminder).where(Reminder.id.in_(ids))))
        rows.sort(key=lambda r: (r.due_at, r.id))
        services = Services(sessions=sessions, community=community, channels=frozenset())
        plan, dropped = await build_messages(session, services, rows, now)
        recipients = {r.id: len(msgs) for r, msgs in plan}
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "due_at": r.due_at.astimezone(tz).isoformat(),
                "for_date": r.for_date.isoformat(),
                "offset_days": r.offset_days,
                "target": f"child:{r.child_id}" if r.child_id is not None else f"followup:{r.followup_id}",
                "doses": [[str(c), int(n)] for c, n in r.doses],
                "recipients": recipients.get(r.id, 0),
                "send": r.id in recipients,
                "skip_reason": dropped.get(r.id),
            }
            for r in rows
        ]


def cmd_reminders(args: argparse.Namespace) -> int:
    rows = asyncio.run(_due(args.settings(), args.as_of))
    if args.format == "json":
        for row in rows:
            _print_json(row)
        return 0
    table = [["id", "due_at", "target", "doses", "send"]]
    for row in rows:
        doses = " ".join(f"{c}:{n}" for c, n in row["doses"]) or "-"
        send = "yes" if row["send"] else f"no ({row['skip_reason']})"
        table.append([str(row["id"]), row["due_at"][:16], row["target"], doses, send])
    _table(table)
    return 0


def register(sub: Any, settings: Callable[[], CliSettings]) -> None:
    """Add ``vaccines`` and ``reminders`` to the ``outreach-bot`` sub-commands (``settings`` is read
    when a command runs, not when the parser is built)."""
    vaccines = sub.add_parser(
        "vaccines",
        help="a child's NIP doses with due date and status (done/overdue/due/upcoming; "
        "expired=true marks an overdue dose past the catch-up age)",
    )
    vaccines.add_argument("--birth", type=_date, required=True, help="birth date, YYYY-MM-DD")
    vaccines.add_argument("--as-of", type=_date, help="reference date (default: today)")
    vaccines.add_argument(
        "--given",
        action="extend",
        nargs="+",
        metavar="CODE:DOSE:DATE",
        help="doses already given, e.g. HepB:1:2024-05-01 BCG:1:2024-05-01",
    )
    vaccines.add_argument("--sex", choices=("F", "M"), help="only needed for sex-specific doses")
    vaccines.add_argument("--schedule", help="schedule version id (default: the one in force on --as-of)")
    vaccines.add_argument("--format", choices=("json", "table"), default="json")
    vaccines.set_defaults(func=cmd_vaccines)

    reminders = sub.add_parser("reminders", help="the reminders in the database")
    action = reminders.add_subparsers(dest="reminders_command", required=True, metavar="ACTION")
    due = action.add_parser("due", help="what the job would send by the end of a day (default: now)")
    due.add_argument("--as-of", type=_date, help="a date, YYYY-MM-DD: everything due by the end of it")
    due.add_argument("--format", choices=("json", "table"), default="json")
    due.set_defaults(func=cmd_reminders, settings=settings)
