"""Database helpers shared by the chat feature, the job and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kernel import code_guard
from handlers.kernel.features import ChatContext
from handlers.kernel.people import Address
from handlers.reminders.models import (
    Child,
    DoseRecord,
    EnrolmentStatus,
    FollowupEnrolment,
    Guardianship,
    Reminder,
    ReminderStatus,
)
from storage.models import Community as CommunityRow
from storage.models import Resident, ResidentIdentity

MAX_GUARDIANS = 2
_RESIDENT_NUMBER = re.compile(r"^[Rr#＃]?\s*(\d{1,9})$")


async def resident_addresses(
    session: AsyncSession, resident_ids: Iterable[int], channels: frozenset[str]
) -> dict[int, Address]:
    """Where to reach each resident: their most recently used account on a channel this process runs."""
    ids = sorted(set(resident_ids))
    if not ids:
        return {}
    rows = await session.scalars(
        select(ResidentIdentity).where(
            ResidentIdentity.resident_id.in_(ids), ResidentIdentity.channel.in_(channels)
        )
    )
    best: dict[int, ResidentIdentity] = {}
    floor = datetime.min.replace(tzinfo=None)

    def recency(identity: ResidentIdentity) -> tuple[bool, datetime, datetime]:
        last = identity.last_inbound_at or identity.created_at
        return (identity.unreachable_since is None, last.replace(tzinfo=None) if last else floor, floor)

    for identity in rows:
        current = best.get(identity.resident_id)
        if current is None or recency(identity) > recency(current):
            best[identity.resident_id] = identity
    return {rid: Address(i.channel, i.external_id) for rid, i in best.items()}


async def find_resident(session: AsyncSession, ref: str) -> Resident | None:
    """A resident named by staff: their number (R12, 12), a chat account id, or a unique display name."""
    ref = ref.strip()
    match = _RESIDENT_NUMBER.match(ref)
    if match:
        found = await session.get(Resident, int(match.group(1)))
        if found is not None:
            return found
    identity = await session.scalar(
        select(ResidentIdentity).where(ResidentIdentity.external_id == ref).limit(1)
    )
    if identity is not None:
        return await session.get(Resident, identity.resident_id)
    named = (await session.scalars(select(Resident).where(Resident.display_name == ref).limit(2))).all()
    return named[0] if len(named) == 1 else None


async def children_of(session: AsyncSession, resident_id: int) -> list[Child]:
    rows = await session.scalars(
        select(Child)
        .join(Guardianship, Guardianship.child_id == Child.id)
        .where(Guardianship.resident_id == resident_id)
        .order_by(Child.id)
    )
    return list(rows)


async def guardians_of(session: AsyncSession, child_ids: Iterable[int]) -> dict[int, list[int]]:
    ids = sorted(set(child_ids))
    out: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for g in await session.scalars(select(Guardianship).where(Guardianship.child_id.in_(ids))):
            out[g.child_id].append(g.resident_id)
    return out


async def guardian_count(session: AsyncSession, child_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Guardianship).where(Guardianship.child_id == child_id)
        )
        or 0
    )


async def new_join_code(session: AsyncSession, child: Child, now: datetime, days: int) -> str:
    """A fresh code for a second guardian (8 characters, ``handlers.kernel.code_guard``), valid ``days`` days;
    the older one stops working."""
    for _ in range(20):
        code = code_guard.new_code()
        if await session.scalar(select(Child.id).where(Child.join_code == code)) is None:
            child.join_code, child.join_code_expires_at = code, now + timedelta(days=days)
            await session.flush()
            return code
    raise RuntimeError("could not draw a free join code")


async def join_code(
    session: AsyncSession, child: Child, now: datetime, days: int, *, renew: bool = False
) -> tuple[str, datetime]:
    """The child's join code and its expiry: the one already handed out while it is valid (asking
    again must not multiply live codes), a new one when there is none or ``renew`` is asked for."""
    if not renew and child.join_code and child.join_code_expires_at and child.join_code_expires_at > now:
        return child.join_code, child.join_code_expires_at
    code = await new_join_code(session, child, now, days)
    assert child.join_code_expires_at is not None
    return code, child.join_code_expires_at


async def record_dose(
    session: AsyncSession, child_id: int, code: str, dose: int, on: date, now: datetime, source: str
) -> bool:
    """Store a dose (or correct its date). True if it was new."""
    row = await session.scalar(
        select(DoseRecord).where(
            DoseRecord.child_id == child_id, DoseRecord.vaccine == code, DoseRecord.dose == dose
        )
    )
    if row is None:
        session.add(
            DoseRecord(
                child_id=child_id, vaccine=code, dose=dose, given_on=on, source=source, recorded_at=now
            )
        )
        await session.flush()
        return True
    row.given_on, row.recorded_at = on, now
    return False


async def last_sent_reminder(session: AsyncSession, resident_id: int) -> Reminder | None:
    """The newest reminder sent to this resident (as guardian of a child or as follow-up recipient).
    Looked up through the resident's few children and enrolments (indexed), never the sent history."""
    children = list(
        await session.scalars(select(Guardianship.child_id).where(Guardianship.resident_id == resident_id))
    )
    followups = list(
        await session.scalars(
            select(FollowupEnrolment.id).where(
                FollowupEnrolment.recipient_id == resident_id,
                FollowupEnrolment.status == EnrolmentStatus.ACTIVE,
            )
        )
    )
    found: list[Reminder] = []
    for column, ids in ((Reminder.child_id, children), (Reminder.followup_id, followups)):
        if ids:
            row = await session.scalar(
                select(Reminder)
                .where(column.in_(ids), Reminder.status == ReminderStatus.SENT)
                .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
                .limit(1)
            )
            if row is not None:
                found.append(row)
    return max(found, key=lambda r: (r.sent_at or r.created_at, r.id), default=None)


async def delete_child(session: AsyncSession, child_id: int) -> None:
    """Remove a child and everything stored about them (doses, reminders, guardianships)."""
    for model, column in (
        (Reminder, Reminder.child_id),
        (DoseRecord, DoseRecord.child_id),
        (Guardianship, Guardianship.child_id),
    ):
        await session.execute(delete(model).where(column == child_id))
    await session.execute(delete(Child).where(Child.id == child_id))


async def staff_scope(ctx: ChatContext) -> list[int] | None:
    """The row ids of the communities whose residents this staff member may see (follow-ups,
    enrolments), or None for all: a deployment of one community, or a 街道 admin."""
    services = ctx.turn.services
    staff = ctx.actor.staff
    if not services.several or staff is None or staff.id in services.street.admins:
        return None
    codes = [c.code.upper() for c in services.street.of_staff(staff.id)]
    rows = await ctx.turn.session.scalars(
        select(CommunityRow.id).where(func.upper(CommunityRow.code).in_(codes))
    )
    return list(rows)


def in_scope(resident: Resident, scope: list[int] | None) -> bool:
    return scope is None or resident.community_id in scope
