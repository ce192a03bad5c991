"""The daily digest: each worker gets their open and overdue cases, each grid leader their grid's, and
the admins the staff nobody can reach (a case for them would otherwise wait unseen), at the community's
``digest.time``. Once a day per person and account, even with several processes: the
outbox's unique ``dedup_key`` refuses a second copy.

It greets by the community's local hour (the digest goes out at ``digest.time``, or later when the
server was down then). A case whose card reached the same person within ``RECENT_CARD`` (a new case,
a transfer, an escalation minutes before the digest) is not listed again in full: those are named on
one line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers.cases import cases, numbers
from handlers.cases.models import OPEN_STATUSES, Case
from handlers.community.model import Community
from handlers.kernel.context import Services, Turn
from handlers.kernel.people import Address, staff_addresses
from messages import render
from storage.models import OutboxMessage

LINES = 15
RECENT_CARD = timedelta(hours=1)  # a card sent this recently is named, not repeated
# Local hours from which each greeting applies (before the first: the last one of the day before).
GREETINGS = (
    (5, "digest.greeting.morning"),
    (12, "digest.greeting.afternoon"),
    (18, "digest.greeting.evening"),
)


def greeting(community: Community, now: datetime) -> str:
    hour = now.astimezone(community.timezone).hour
    key = GREETINGS[-1][1]
    for start, name in GREETINGS:
        if hour >= start:
            key = name
    return render(key)


async def _lines(turn: Turn, shown: Sequence[Case], addresses: Sequence[Address]) -> str:
    """The cases in full, except those whose card went to one of these accounts within
    ``RECENT_CARD`` (a digest aside), which are named on one line."""
    ids = [c.id for c in shown]
    recent: set[int] = set()
    for address in addresses if ids else ():
        rows = await turn.session.scalars(
            select(OutboxMessage.case_id).where(
                OutboxMessage.case_id.in_(ids),  # indexed: the outbox may hold a broadcast's 100,000 rows
                OutboxMessage.channel == address.channel,
                OutboxMessage.recipient == address.recipient,
                OutboxMessage.kind != "digest",
                OutboxMessage.not_before >= turn.now - RECENT_CARD,  # queued then (created_at is wall time)
            )
        )
        recent |= {n for n in rows if n is not None}
    lines = [_line(turn, c) for c in shown if c.id not in recent]
    if recent:
        numbers = "、".join(f"#{n}" for n in ids if n in recent)
        minutes = int(RECENT_CARD.total_seconds() // 60)
        lines.append(render("digest.recent_cards", numbers=numbers, minutes=minutes))
    return "\n".join(lines)


def _line(turn: Turn, case: Case) -> str:
    overdue = case.due_at is not None and case.due_at <= turn.now
    return render(
        "digest.line",
        number=numbers.label(turn, case),
        urgent=render("staff.urgent") if case.urgent else "",
        category=cases.category_name(turn, case.category_code),
        location=cases.location_label(turn, case),
        status=render(f"status.{case.status}"),
        overdue=render("staff.overdue_mark") if overdue else "",
    )


async def _send(turn: Turn, staff_id: str, text: str, day: str) -> int:
    sent = 0
    for address in await staff_addresses(turn.session, staff_id, turn.services.channels):
        key = f"digest:{day}:{staff_id}:{address.channel}:{address.recipient}"
        if await turn.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key)) is None:
            turn.say(address, text, kind="digest", dedup_key=key)
            sent += 1
    return sent


async def unreachable_staff(turn: Turn) -> list[str]:
    """Workers and leaders of the grids who have no account we can reach on a running channel."""
    community: Community = turn.community
    handlers = {w.staff for g in community.grids.values() for w in g.workers} | set(community.leaders())
    return [s for s in sorted(handlers) if s in community.staff and not await cases.reachable(turn, s)]


async def _digest_for(services: Services, staff_id: str, now: datetime, day: str) -> int:
    community = services.community
    try:
        async with services.sessions.begin() as session:
            turn = Turn(services, session, now)
            addresses = await staff_addresses(session, staff_id, services.channels)
            mine = (
                await session.scalars(
                    select(Case)
                    .where(Case.assignee_id == staff_id, Case.status.in_(OPEN_STATUSES))
                    .order_by(Case.id)
                )
            ).all()
            led = [g for g in community.grids.values() if g.leader == staff_id]
            parts: list[str] = []
            if mine:
                overdue = sum(1 for c in mine if c.due_at is not None and c.due_at <= now)
                lines = await _lines(turn, mine[:LINES], addresses)
                parts.append(render("digest.worker", count=len(mine), overdue=overdue, lines=lines))
            for grid in led:
                rows = (
                    await session.scalars(
                        select(Case)
                        .where(Case.grid_code == grid.code, Case.status.in_(OPEN_STATUSES))
                        .order_by(Case.id)
                    )
                ).all()
                if rows:
                    late = [c for c in rows if c.due_at is not None and c.due_at <= now]
                    lines = await _lines(turn, (late or rows)[:LINES], addresses)
                    parts.append(
                        render(
                            "digest.leader", grid=grid.name, count=len(rows), overdue=len(late), lines=lines
                        )
                    )
            if staff_id in community.admins():
                absent = await unreachable_staff(turn)
                if absent:
                    lines = "\n".join(
                        render(
                            "digest.unreachable_line",
                            name=community.staff[s].name,
                            id=s,
                            role=cases.role_label(community.staff[s].role),
                        )
                        for s in absent
                    )
                    parts.append(render("digest.unreachable", lines=lines))
            if not parts:
                return 0
            name = community.staff[staff_id].name
            return await _send(
                turn,
                staff_id,
                render("digest.header", name=name, greeting=greeting(community, now))
                + "\n"
                + "\n\n".join(parts),
                day,
            )
    except IntegrityError:
        return 0  # another process sent this digest first


async def send_digests(services: Services) -> int:
    """Send today's digests if their time has come and they have not gone out yet."""
    community = services.community
    if not community.config.digest.enabled:
        return 0
    now = services.clock()
    local = now.astimezone(community.timezone)
    if local.time() < time.fromisoformat(community.config.digest.time):
        return 0
    if not community.calendar.is_working_day(local.date()):
        return 0
    day = local.date().isoformat()
    people = (
        {w.staff for g in community.grids.values() for w in g.workers}
        | set(community.leaders())
        | set(community.admins())
    )
    sent = 0
    for staff_id in sorted(people):
        sent += await _digest_for(services, staff_id, now, day)
    return sent
