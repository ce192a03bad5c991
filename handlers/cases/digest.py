"""The daily digest, per community at its own ``digest.time`` on its working days: each worker gets
their open and overdue cases, each grid leader their grid's, and the admins the staff nobody can reach
(a case for them would otherwise wait unseen). In a deployment of several communities each
community's staff get that community's (its cases only, numbered HPL-12) and the 街道's admins one
summary of every community. Once a day per person and account, even with several processes: the
outbox's unique ``dedup_key`` refuses a second copy.

It greets by the community's local hour (the digest goes out at ``digest.time``, or later when the
server was down then). A case whose card reached the same person within ``RECENT_CARD`` (a new case,
a transfer, an escalation minutes before the digest) is not listed again in full: those are named on
one line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from handlers.cases import cases, numbers
from handlers.cases.models import OPEN_STATUSES, Case, CaseStatus
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


def _open_cases(community_id: int | None, *where: Any) -> Any:
    """Open cases (of the community ``community_id`` when the deployment has several), oldest first."""
    query = select(Case).where(*where, Case.status.in_(OPEN_STATUSES)).order_by(Case.id)
    return query if community_id is None else query.where(Case.community_id == community_id)


async def _parts(
    turn: Turn, staff_id: str, community_id: int | None, addresses: Sequence[Address]
) -> list[str]:
    """The digest's sections for this staff member in the turn's community: their cases, their grids'
    (a leader), the staff nobody can reach (an admin)."""
    community: Community = turn.community
    session, now = turn.session, turn.now
    parts: list[str] = []
    mine = (await session.scalars(_open_cases(community_id, Case.assignee_id == staff_id))).all()
    if mine:
        overdue = sum(1 for c in mine if c.due_at is not None and c.due_at <= now)
        lines = await _lines(turn, mine[:LINES], addresses)
        parts.append(render("digest.worker", count=len(mine), overdue=overdue, lines=lines))
    for grid in (g for g in community.grids.values() if g.leader == staff_id):
        rows = (await session.scalars(_open_cases(community_id, Case.grid_code == grid.code))).all()
        if rows:
            late = [c for c in rows if c.due_at is not None and c.due_at <= now]
            lines = await _lines(turn, (late or rows)[:LINES], addresses)
            parts.append(
                render("digest.leader", grid=grid.name, count=len(rows), overdue=len(late), lines=lines)
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
    return parts


async def _digest_for(
    services: Services, community: Community, staff_id: str, now: datetime, day: str
) -> int:
    """One staff member's digest of one community (a deployment of several: each community's own, its
    cases only, numbered HPL-12)."""
    try:
        async with services.sessions.begin() as session:
            turn = Turn(services, session, now)
            turn.community = community
            community_id = await numbers.row_id(turn, community) if services.several else None
            addresses = await staff_addresses(session, staff_id, services.channels)
            parts = await _parts(turn, staff_id, community_id, addresses)
            if not parts:
                return 0
            header = render(
                "digest.header", name=community.staff[staff_id].name, greeting=greeting(community, now)
            )
            if services.several:
                header = render("digest.community", community=community.name) + header
            text = header + "\n" + "\n\n".join(parts)
            return await _send(turn, staff_id, text, f"{day}:{community.code}" if services.several else day)
    except IntegrityError:
        return 0  # another process sent this digest first


def _due_day(community: Community, now: datetime) -> str | None:
    """The community's local day when its digest is due now (its time has come, a working day)."""
    if not community.config.digest.enabled:
        return None
    local = now.astimezone(community.timezone)
    if local.time() < time.fromisoformat(community.config.digest.time):
        return None
    if not community.calendar.is_working_day(local.date()):
        return None
    return local.date().isoformat()


async def send_digests(services: Services) -> int:
    """Send today's digests if their time has come and they have not gone out yet: each community's
    workers, leaders and admins get their community's (at its own time, on its working days); the
    街道's admins, in a deployment of several, one summary of every community instead."""
    now = services.clock()
    street_admins = set(services.street.admins) if services.several else set()
    sent = 0
    for community in services.street:
        day = _due_day(community, now)
        if day is None:
            continue
        people = (
            {w.staff for g in community.grids.values() for w in g.workers}
            | set(community.leaders())
            | set(community.admins())
        ) - street_admins
        for staff_id in sorted(people):
            sent += await _digest_for(services, community, staff_id, now, day)
    if street_admins:
        sent += await street_digests(services, sorted(street_admins), now)
    return sent


async def street_digests(services: Services, admins: Sequence[str], now: datetime) -> int:
    """The 街道 admins' summary: per community, the open cases, the overdue and those waiting in
    triage (one grouped query), at the first community's digest time and working days."""
    first: Community = next(iter(services.street))
    day = _due_day(first, now)
    if day is None:
        return 0
    try:
        async with services.sessions.begin() as session:
            turn = Turn(services, session, now)
            rows = await session.execute(
                select(
                    Case.community_id,
                    func.count(),
                    func.coalesce(func.sum(sql_case((Case.due_at <= now, 1), else_=0)), 0),
                    func.coalesce(func.sum(sql_case((Case.status == CaseStatus.NEW, 1), else_=0)), 0),
                )
                .where(Case.status.in_(OPEN_STATUSES))
                .group_by(Case.community_id)
            )
            figures = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows.all()}
            lines = []
            for community in services.street:
                open_now, overdue, triage = figures.get(await numbers.row_id(turn, community), (0, 0, 0))
                lines.append(
                    render(
                        "digest.street_line",
                        community=community.name,
                        open=open_now,
                        overdue=overdue,
                        triage=triage,
                    )
                )
            sent = 0
            for staff_id in admins:
                staff = first.staff.get(staff_id)
                header = render(
                    "digest.street",
                    name=staff.name if staff else staff_id,
                    greeting=greeting(first, now),
                    street=services.street.name,
                )
                sent += await _send(turn, staff_id, header + "\n" + "\n".join(lines), f"{day}:street")
            return sent
    except IntegrityError:
        return 0
