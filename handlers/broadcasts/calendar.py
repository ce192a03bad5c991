"""The outreach calendar: draft a notice a few days before each health day or campaign, for approval.

The entries are ``handlers/data/outreach_calendar.yaml`` (dates and sources from anchors-health.md §4
and the seeds' campaigns). The periodic job calls ``draft_due``: for every entry whose day falls within
the next ``calendar_days_ahead`` days (community time), it makes ONE draft per entry and year (the
unique (key, year) in ``calendar_drafts`` holds across processes and restarts): a broadcast to every
resident in status ``awaiting_approval``, planned for the day at ``calendar_hour``, and a message to
every admin with 批准 / 修改 / 跳过. Nothing is sent until an admin approves it.
"""

from __future__ import annotations

import calendar as cal
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers.broadcasts import audience as aud
from handlers.broadcasts import service
from handlers.broadcasts.audience import Audience
from handlers.broadcasts.config import BroadcastSettings
from handlers.broadcasts.models import BroadcastStatus, CalendarDraft, CalendarDraftStatus
from handlers.kernel.context import Services, Turn
from handlers.kernel.yaml_text import load_yaml
from messages import render

log = logging.getLogger(__name__)

WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_RANGE = re.compile(r"^(\d{2})-(\d{2})/(\d{2})-(\d{2})$")
_MONTH = re.compile(r"^(\d{1,2})$")
_SEASON = re.compile(r"^(\d{2})/(\d{2})$")
_NTH = re.compile(r"^(\d{2})-(first|second|third|fourth|last)-([a-z]+)$")


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    key: str
    when: str
    name: str
    topic: str
    src: str
    advice: str
    enabled: bool = True

    def start(self, year: int) -> date:
        """The first day of the entry in ``year``."""
        return _start(self.when, year)

    def lead(self, year: int) -> str:
        when = self.when
        if m := _RANGE.match(when):
            m1, d1, m2, d2 = (int(x) for x in m.groups())
            return render("bc.cal.lead.range", month=m1, day=d1, month2=m2, day2=d2, name=self.name)
        if m := _SEASON.match(when):
            return render("bc.cal.lead.season", month=int(m.group(1)), month2=int(m.group(2)), name=self.name)
        if _MONTH.match(when):
            return render("bc.cal.lead.month", month=int(when), name=self.name)
        day = self.start(year)
        return render("bc.cal.lead.day", month=day.month, day=day.day, name=self.name)

    def notice(self, year: int) -> str:
        return render("bc.cal.notice", lead=self.lead(year), advice=self.advice.strip())


def _nth_weekday(year: int, month: int, nth: int, weekday: int) -> date:
    days = [
        d for d in range(1, cal.monthrange(year, month)[1] + 1) if date(year, month, d).weekday() == weekday
    ]
    return date(year, month, days[nth - 1] if nth > 0 else days[-1])


def _start(when: str, year: int) -> date:
    if m := _DAY.match(when):
        return date(year, int(m.group(1)), int(m.group(2)))
    if m := _RANGE.match(when):
        return date(year, int(m.group(1)), int(m.group(2)))
    if m := _MONTH.match(when):
        return date(year, int(m.group(1)), 1)
    if m := _SEASON.match(when):
        return date(year, int(m.group(1)), 1)
    if m := _NTH.match(when):
        if m.group(3) not in WEEKDAYS:
            raise CalendarError(f"unknown weekday in {when!r}")
        return _nth_weekday(year, int(m.group(1)), ORDINALS[m.group(2)], WEEKDAYS[m.group(3)])
    raise CalendarError(f"unreadable date {when!r}")


def parse(data: Any) -> list[Entry]:
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, raw in enumerate((data or {}).get("entries") or []):
        when = raw.get("when")
        if isinstance(when, int):
            when = f"{when:02d}"
        try:
            entry = Entry(
                key=str(raw["key"]),
                when=str(when),
                name=str(raw["name"]),
                topic=str(raw.get("topic", "")),
                src=str(raw["src"]),
                advice=str(raw["advice"]),
                enabled=bool(raw.get("enabled", True)),
            )
        except KeyError as exc:
            raise CalendarError(f"entries[{i}]: missing {exc.args[0]}") from None
        if entry.key in seen:
            raise CalendarError(f"entries[{i}]: duplicate key {entry.key!r}")
        seen.add(entry.key)
        entry.start(2000)  # leap year: every date form must resolve
        entries.append(entry)
    return entries


@cache
def load() -> tuple[Entry, ...]:
    text = resources.files("handlers").joinpath("data/outreach_calendar.yaml").read_text(encoding="utf-8")
    return tuple(parse(load_yaml(text)))


def upcoming(entries: tuple[Entry, ...], today: date, days_ahead: int) -> list[tuple[Entry, date]]:
    """Entries whose first day is today or within ``days_ahead`` days."""
    out = []
    for entry in entries:
        if not entry.enabled:
            continue
        for year in (today.year, today.year + 1):
            day = entry.start(year)
            if today <= day <= today + timedelta(days=days_ahead):
                out.append((entry, day))
    return sorted(out, key=lambda pair: (pair[1], pair[0].key))


async def draft_due(
    services: Services,
    now: datetime | None = None,
    settings: BroadcastSettings | None = None,
    entries: tuple[Entry, ...] | None = None,
) -> list[int]:
    """Draft what is coming up and not drafted yet; returns the new broadcasts' ids."""
    settings = settings or services.section(BroadcastSettings)
    now = now or services.clock()
    tz = services.community.timezone
    today = now.astimezone(tz).date()
    made: list[int] = []
    for entry, day in upcoming(entries or load(), today, settings.calendar_days_ahead):
        async with services.sessions() as session:
            exists = await session.scalar(
                select(CalendarDraft.id).where(CalendarDraft.key == entry.key, CalendarDraft.year == day.year)
            )
        if exists is not None:
            continue
        try:
            made.append(await _draft(services, entry, day, now, settings))
        except IntegrityError:  # another process drafted it at the same moment
            continue
    return made


async def _draft(
    services: Services, entry: Entry, day: date, now: datetime, settings: BroadcastSettings
) -> int:
    tz = services.community.timezone
    planned = datetime.combine(day, time(settings.calendar_hour), tzinfo=tz)
    async with services.sessions.begin() as session:
        everyone = Audience()
        counts = await aud.count(session, everyone)
        broadcast = await service.create(
            session,
            text=entry.notice(day.year),
            audience=everyone,
            created_by="calendar",
            source="calendar",
            now=now,
            status=BroadcastStatus.AWAITING_APPROVAL,
            scheduled_at=max(planned, now),
            wechat_mass=settings.wechat_mass,
            estimate=counts.total,
        )
        session.add(
            CalendarDraft(
                key=entry.key,
                year=day.year,
                event_date=day,
                broadcast_id=broadcast.id,
                status=CalendarDraftStatus.AWAITING,
                created_at=now,
            )
        )
        await session.flush()
        turn = Turn(services, session, now)
        assert broadcast.scheduled_at is not None
        await turn.tell_admins(
            render(
                "bc.cal.draft",
                lead=entry.lead(day.year),
                id=broadcast.id,
                count=counts.total,
                when=broadcast.scheduled_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                text=broadcast.text,
            ),
            buttons=service.decision_buttons(broadcast.id, calendar=True),
        )
        log.info("calendar: drafted %s %s as broadcast %s", entry.key, day, broadcast.id)
        return broadcast.id
