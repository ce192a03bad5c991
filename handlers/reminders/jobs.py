"""The periodic job: send the reminders that are due, through the outbox.

Durable and safe with several processes on one database:

* the work is read from ``rem_reminders`` through the (status, due_at) index, never by scanning
  children or enrolments;
* a batch is claimed and its outbox rows are written in ONE transaction: PostgreSQL locks the rows
  (``FOR UPDATE SKIP LOCKED``) so a second process takes other rows; the claim itself is
  ``UPDATE … WHERE status = 'pending'``, so even without row locks (SQLite, one writer at a time) a row
  is claimed once. A crash before the commit leaves the reminder pending and writes no outbox row; after
  the commit the outbox row is durable and the channel's drain sends it. Each outbox row carries the
  dedup key ``rem:{reminder}:{resident}`` (unique), the last guard against a second copy;
* nothing is sent in quiet hours: the job waits, and what is due goes out when they end.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kernel.context import Services
from handlers.kernel.outbox import Outbound, enqueue
from handlers.kernel.people import Address
from handlers.kernel.ports import OutboxKind
from handlers.reminders.config import ReminderSettings
from handlers.reminders.models import (
    Child,
    DoseRecord,
    EnrolmentStatus,
    FollowupEnrolment,
    Reminder,
    ReminderKind,
    ReminderStatus,
)
from handlers.reminders.planner import in_quiet_hours
from handlers.reminders.schedule import load_schedules
from handlers.reminders.store import guardians_of, resident_addresses
from messages import render
from storage.models import Community as CommunityRow
from storage.models import OutboxMessage, Resident

log = logging.getLogger(__name__)

KIND = OutboxKind.REMINDER  # the outbox kind (channels may deliver it as a template message)
NOTIFY = OutboxKind.NOTIFY  # the kind of a message to another guardian or to staff


def due_query(now: datetime) -> Select[tuple[int]]:
    """The ids of what is due at ``now``: the query the job runs (index ix_rem_reminders_status_due)."""
    return (
        select(Reminder.id)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
    )


def dedup_key(reminder_id: int, resident_id: int) -> str:
    return f"rem:{reminder_id}:{resident_id}"


def station(services: Services, community: str | None = None) -> str:
    """Who the notice is from: the resident's community's 卫生服务站 (in a 街道 of several, each
    resident's own: ``community`` is its name), else the deployment's community's."""
    return render("rem.station", community=community or services.community.name)


def turn_community_name(turn: Any) -> str | None:
    """The name of the community a chat turn is about, once known (a resident's), else None."""
    return turn.community.name if turn.community_known else None


async def community_names(session: AsyncSession, resident_ids: set[int]) -> dict[int, str]:
    """The name of each resident's community, by resident id (those with none are left out)."""
    if not resident_ids:
        return {}
    rows = await session.execute(
        select(Resident.id, CommunityRow.name)
        .join(CommunityRow, CommunityRow.id == Resident.community_id)
        .where(Resident.id.in_(resident_ids))
    )
    return {rid: name for rid, name in rows.all()}


def date_text(day: date) -> str:
    return render("rem.date", month=day.month, day=day.day, weekday=render(f"rem.weekday.{day.weekday()}"))


def dose_text(code: str, dose: int) -> str:
    """How a resident reads a dose: 乙肝疫苗第2剂; a one-dose vaccine by its name alone."""
    for schedule in reversed(list(load_schedules().values())):
        rule = schedule.rule(code, dose)
        if rule is not None:
            if schedule.single_dose(code):
                return rule.name_zh
            return render("rem.dose_label", name=rule.name_zh, dose=dose)
    return render("rem.dose_label", name=code, dose=dose)


def vaccine_message(
    services: Services,
    reminder: Reminder,
    child: Child,
    doses: list[tuple[str, int]],
    community: str | None = None,
) -> str:
    names = "、".join(dose_text(code, dose) for code, dose in doses)
    if reminder.postponed:
        body = render("rem.msg.vaccine_postponed", child=child.nickname, vaccines=names)
    elif reminder.offset_days < 0:
        body = render(
            "rem.msg.vaccine_before", child=child.nickname, date=date_text(reminder.for_date), vaccines=names
        )
    elif reminder.offset_days == 0:
        body = render("rem.msg.vaccine_due", child=child.nickname, vaccines=names)
    else:
        body = render(
            "rem.msg.vaccine_overdue",
            child=child.nickname,
            date=date_text(reminder.for_date),
            days=reminder.offset_days,
            vaccines=names,
        )
    return render(
        "rem.msg.vaccine",
        head=render("rem.msg.head", station=station(services, community)),
        body=body,
        howto=render("rem.msg.vaccine_howto"),
        footer=render("rem.msg.footer"),
    )


def followup_message(
    services: Services, reminder: Reminder, family: bool, community: str | None = None
) -> str:
    whose = render("rem.whose.family" if family else "rem.whose.self")
    if reminder.postponed:
        body = render("rem.msg.followup_postponed", whose=whose, date=date_text(reminder.for_date))
    elif reminder.offset_days < 0:
        body = render("rem.msg.followup_before", whose=whose, date=date_text(reminder.for_date))
    elif reminder.offset_days == 0:
        body = render("rem.msg.followup_due", whose=whose)
    else:
        body = render(
            "rem.msg.followup_overdue",
            whose=whose,
            date=date_text(reminder.for_date),
            days=reminder.offset_days,
        )
    return render(
        "rem.msg.followup",
        head=render("rem.msg.head", station=station(services, community)),
        body=body,
        footer=render("rem.msg.footer"),
    )


async def build_messages(
    session: AsyncSession, services: Services, claimed: list[Reminder], now: datetime
) -> tuple[list[tuple[Reminder, list[tuple[int, str]]]], dict[int, str]]:
    """What to send for each claimed reminder: [(reminder, [(resident, text)])], and why others are
    dropped {reminder id: reason}."""
    child_ids = {r.child_id for r in claimed if r.child_id is not None}
    followup_ids = {r.followup_id for r in claimed if r.followup_id is not None}
    children = {c.id: c for c in await session.scalars(select(Child).where(Child.id.in_(child_ids)))}
    given: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for d in await session.scalars(select(DoseRecord).where(DoseRecord.child_id.in_(child_ids))):
        given[d.child_id].add((d.vaccine, d.dose))
    guardians = await guardians_of(session, child_ids)
    followups = {
        f.id: f
        for f in await session.scalars(
            select(FollowupEnrolment).where(FollowupEnrolment.id.in_(followup_ids))
        )
    }
    everyone = {g for gs in guardians.values() for g in gs} | {f.recipient_id for f in followups.values()}
    names = await community_names(session, everyone) if services.several else {}
    out: list[tuple[Reminder, list[tuple[int, str]]]] = []
    dropped: dict[int, str] = {}
    for r in claimed:
        if r.expires_at is not None and r.expires_at <= max(now, r.due_at):
            dropped[r.id] = "stale"
            continue
        if r.kind == ReminderKind.VACCINE:
            child = children.get(r.child_id or 0)
            remaining = [(str(c), int(n)) for c, n in r.doses if (c, n) not in given[r.child_id or 0]]
            if child is None or not guardians.get(child.id):
                dropped[r.id] = "no_recipient"
            elif not remaining:
                dropped[r.id] = "done"
            else:
                out.append(
                    (
                        r,
                        [
                            (g, vaccine_message(services, r, child, remaining, names.get(g)))
                            for g in guardians[child.id]
                        ],
                    )
                )
        else:
            enrolment = followups.get(r.followup_id or 0)
            if enrolment is None or enrolment.status != EnrolmentStatus.ACTIVE:
                dropped[r.id] = "ended"
            elif enrolment.next_due != r.for_date:
                dropped[r.id] = "moved"  # a follow-up was recorded since; its reminders are planned anew
            else:
                family = enrolment.recipient_id != enrolment.resident_id
                text = followup_message(services, r, family, names.get(enrolment.recipient_id))
                out.append((r, [(enrolment.recipient_id, text)]))
    return out, dropped


async def _send_batch(services: Services, now: datetime, settings: ReminderSettings) -> tuple[int, int]:
    """One transaction: claim up to a batch of due reminders and write their outbox rows. Returns
    (reminders claimed, outbox rows written)."""
    async with services.sessions.begin() as session:
        ids = (
            await session.scalars(due_query(now).limit(settings.batch_size).with_for_update(skip_locked=True))
        ).all()
        if not ids:
            return 0, 0
        claimed = list(
            (
                await session.scalars(
                    update(Reminder)
                    .where(Reminder.id.in_(ids), Reminder.status == ReminderStatus.PENDING)
                    .values(status=ReminderStatus.CLAIMED, attempts=Reminder.attempts + 1)
                    .returning(Reminder)
                )
            ).all()
        )
        if not claimed:
            return 0, 0
        plan, dropped = await build_messages(session, services, claimed, now)
        recipients = {rid for _, msgs in plan for rid, _ in msgs}
        addresses = await resident_addresses(session, recipients, services.channels)
        keys = [dedup_key(r.id, rid) for r, msgs in plan for rid, _ in msgs]
        already = (
            set(
                (
                    await session.scalars(
                        select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(keys))
                    )
                ).all()
            )
            if keys
            else set()
        )
        written = 0
        for reminder, msgs in plan:
            reached = 0
            for resident_id, text in msgs:
                address: Address | None = addresses.get(resident_id)
                key = dedup_key(reminder.id, resident_id)
                if address is None:
                    continue
                reached += 1
                if key in already:
                    continue
                row = enqueue(session, Outbound(address.channel, address.recipient, text, kind=KIND), now)
                row.dedup_key = key
                written += 1
            if reached:
                reminder.status, reminder.sent_at = ReminderStatus.SENT, now
            else:
                dropped[reminder.id] = "no_address"
        for reminder in claimed:
            if reminder.id in dropped:
                reminder.status, reminder.cancel_reason = ReminderStatus.CANCELLED, dropped[reminder.id]
        await session.flush()
        return len(claimed), written


async def send_due(
    services: Services, settings: ReminderSettings | None = None, now: datetime | None = None
) -> int:
    """Send everything due now (batch after batch); returns the number of outbox rows written."""
    settings = settings or services.section(ReminderSettings)
    now = now or services.clock()
    tz: ZoneInfo = services.community.timezone
    if in_quiet_hours(now, settings, tz):
        return 0
    total = 0
    while True:
        claimed, written = await _send_batch(services, now, settings)
        total += written
        if claimed < settings.batch_size:
            break
    if total:
        log.info("reminders: %d messages queued", total)
    return total


async def run_job(app: Any) -> int:
    """The PeriodicJob entry point (bot/jobs.py): ``app`` is bot.app.App."""
    return await send_due(app.services)
