"""Turn a child (or a follow-up enrolment) into reminder rows.

For every date on which some of a child's doses fall due: N days before (default 7 and 1), on the
day, and overdue nudges after it (default 7 and 30 days), each at the send time (default 09:00 local)
and never in quiet hours (default 21:00-08:00, shifted to their end). Only times still to come are
planned; a dose recorded, aged out, or postponed past a reminder leaves that reminder out. Planning is
idempotent: each row has a key (child, date, offset), so planning again after every change inserts
what is new, updates what is pending and deletes pending rows no longer wanted; rows already sent or
cancelled stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

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
from handlers.reminders.programmes import load_programmes
from handlers.reminders.schedule import DoseStatus, Given, Schedule, Status, plan_child, schedule_for


@dataclass(frozen=True)
class Planned:
    key: str
    for_date: date
    offset_days: int
    due_at: datetime
    expires_at: datetime | None
    doses: list[list[str | int]]


def in_quiet_hours(moment: datetime, settings: ReminderSettings, tz: ZoneInfo) -> bool:
    t = moment.astimezone(tz).time()
    start, end = settings.quiet_start, settings.quiet_end
    if start == end:
        return False
    if start > end:  # wraps midnight: 21:00-08:00
        return t >= start or t < end
    return start <= t < end


def out_of_quiet_hours(moment: datetime, settings: ReminderSettings, tz: ZoneInfo) -> datetime:
    """``moment``, or the end of the quiet hours it falls in (08:00 local by default), in UTC."""
    if not in_quiet_hours(moment, settings, tz):
        return moment.astimezone(UTC)
    local = moment.astimezone(tz)
    day = local.date()
    if settings.quiet_start > settings.quiet_end and local.time() >= settings.quiet_start:
        day += timedelta(days=1)
    return datetime.combine(day, settings.quiet_end, tz).astimezone(UTC)


def send_time_on(day: date, settings: ReminderSettings, tz: ZoneInfo) -> datetime:
    """When a reminder for ``day`` goes out (UTC): the send time in the community's time zone."""
    return out_of_quiet_hours(datetime.combine(day, settings.send_time, tz), settings, tz)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def _offsets(days_before: Sequence[int], on_due_day: bool, overdue_days: Sequence[int]) -> list[int]:
    offsets = {-d for d in days_before} | set(overdue_days)
    if on_due_day:
        offsets.add(0)
    return sorted(offsets)


def _with_expiry(rows: list[Planned], settings: ReminderSettings) -> list[Planned]:
    """A reminder the job could not send before the next one for the same date is superseded by it
    (the process was down); the last one lapses after ``stale_after_days``."""
    out = []
    for i, row in enumerate(rows):
        following = rows[i + 1].due_at if i + 1 < len(rows) else None
        expires = following or row.due_at + timedelta(days=settings.stale_after_days)
        out.append(Planned(row.key, row.for_date, row.offset_days, row.due_at, expires, row.doses))
    return out


def child_key(child_id: int, for_date: date, offset: int) -> str:
    return f"c{child_id}:{for_date.isoformat()}:{offset}"


def followup_key(enrolment_id: int, for_date: date, offset: int) -> str:
    return f"f{enrolment_id}:{for_date.isoformat()}:{offset}"


def child_plan(
    child: Child, given: Sequence[Given], today: date, settings: ReminderSettings
) -> tuple[Schedule, list[DoseStatus]]:
    schedule = schedule_for(today, child.schedule or settings.schedule)
    return schedule, plan_child(schedule, child.birth_date, given, today, child.sex)


def desired_child_reminders(
    child: Child, given: Sequence[Given], now: datetime, settings: ReminderSettings, tz: ZoneInfo
) -> list[Planned]:
    _, plan = child_plan(child, given, local_today(now, tz), settings)
    by_date: dict[date, list[DoseStatus]] = {}
    for dose in plan:
        if dose.status not in (Status.DONE, Status.EXPIRED):
            by_date.setdefault(dose.due, []).append(dose)
    planned: list[Planned] = []
    for due, doses in sorted(by_date.items()):
        rows = []
        for offset in _offsets(settings.days_before, settings.on_due_day, settings.overdue_days):
            day = due + timedelta(days=offset)
            alive = [[d.code, d.dose] for d in doses if d.expires > day]
            at = send_time_on(day, settings, tz)
            if alive and at > now:
                rows.append(Planned(child_key(child.id, due, offset), due, offset, at, None, alive))
        planned.extend(_with_expiry(rows, settings))
    return planned


def desired_followup_reminders(
    enrolment: FollowupEnrolment, now: datetime, settings: ReminderSettings, tz: ZoneInfo
) -> list[Planned]:
    if enrolment.status != EnrolmentStatus.ACTIVE or enrolment.next_due is None:
        return []
    programme = load_programmes().get(enrolment.programme)
    due = enrolment.next_due
    rows = []
    for offset in _offsets(programme.days_before, programme.on_due_day, programme.overdue_days):
        at = send_time_on(due + timedelta(days=offset), settings, tz)
        if at > now:
            rows.append(Planned(followup_key(enrolment.id, due, offset), due, offset, at, None, []))
    return _with_expiry(rows, settings)


async def given_doses(session: AsyncSession, child_id: int) -> list[Given]:
    rows = await session.scalars(select(DoseRecord).where(DoseRecord.child_id == child_id))
    return [Given(r.vaccine, r.dose, r.given_on) for r in rows]


async def _sync(
    session: AsyncSession,
    kind: ReminderKind,
    owner: dict[str, int],
    desired: list[Planned],
) -> None:
    column = Reminder.child_id if kind == ReminderKind.VACCINE else Reminder.followup_id
    (owner_id,) = owner.values()
    existing = {
        r.key: r
        for r in await session.scalars(
            select(Reminder).where(column == owner_id, Reminder.postponed.is_(False))
        )
    }
    wanted = {p.key for p in desired}
    stale = [r.id for k, r in existing.items() if k not in wanted and r.status == ReminderStatus.PENDING]
    if stale:
        await session.execute(delete(Reminder).where(Reminder.id.in_(stale)))
    for p in desired:
        row = existing.get(p.key)
        if row is None:
            session.add(
                Reminder(
                    kind=kind,
                    **owner,
                    for_date=p.for_date,
                    offset_days=p.offset_days,
                    doses=p.doses,
                    due_at=p.due_at,
                    expires_at=p.expires_at,
                    status=ReminderStatus.PENDING,
                    key=p.key,
                )
            )
        elif row.status == ReminderStatus.PENDING:
            row.doses, row.due_at, row.expires_at = p.doses, p.due_at, p.expires_at
    await session.flush()


async def plan_child_reminders(
    session: AsyncSession, child: Child, now: datetime, settings: ReminderSettings, tz: ZoneInfo
) -> list[Planned]:
    """Bring the child's reminder rows in line with the schedule and the doses recorded."""
    desired = desired_child_reminders(child, await given_doses(session, child.id), now, settings, tz)
    await _sync(session, ReminderKind.VACCINE, {"child_id": child.id}, desired)
    return desired


async def plan_followup_reminders(
    session: AsyncSession,
    enrolment: FollowupEnrolment,
    now: datetime,
    settings: ReminderSettings,
    tz: ZoneInfo,
) -> list[Planned]:
    desired = desired_followup_reminders(enrolment, now, settings, tz)
    await _sync(session, ReminderKind.FOLLOWUP, {"followup_id": enrolment.id}, desired)
    if enrolment.status != EnrolmentStatus.ACTIVE:  # ended: postponed ones go too
        await session.execute(
            delete(Reminder).where(
                Reminder.followup_id == enrolment.id, Reminder.status == ReminderStatus.PENDING
            )
        )
    return desired


async def postpone(
    session: AsyncSession,
    sent: Reminder,
    days: int,
    now: datetime,
    settings: ReminderSettings,
    tz: ZoneInfo,
) -> datetime:
    """Remind again ``days`` from now (out of quiet hours) about what ``sent`` was about; reminders of
    the same date falling before that are cancelled. Returns the new time (UTC)."""
    at = out_of_quiet_hours(now + timedelta(days=days), settings, tz)
    owner = Reminder.child_id == sent.child_id if sent.child_id else Reminder.followup_id == sent.followup_id
    for row in await session.scalars(
        select(Reminder).where(
            owner,
            Reminder.for_date == sent.for_date,
            Reminder.status == ReminderStatus.PENDING,
            Reminder.due_at < at,
        )
    ):
        row.status, row.cancel_reason = ReminderStatus.CANCELLED, "postponed"
    key = f"{sent.key.split(':')[0]}:{sent.for_date.isoformat()}:p{sent.id}"
    row = await session.scalar(select(Reminder).where(Reminder.key == key))
    if row is None:
        row = Reminder(
            kind=sent.kind,
            child_id=sent.child_id,
            followup_id=sent.followup_id,
            for_date=sent.for_date,
            key=key,
            postponed=True,
            doses=list(sent.doses),
        )
        session.add(row)
    row.offset_days = (at.astimezone(tz).date() - sent.for_date).days
    row.due_at, row.expires_at = at, at + timedelta(days=settings.stale_after_days)
    row.status, row.cancel_reason = ReminderStatus.PENDING, None
    await session.flush()
    return at
