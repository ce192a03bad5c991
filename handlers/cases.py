"""Cases: opening one from a report, routing it, and the staff actions on it (assign, accept, resolve).

Every change is a ``lifecycle.record`` event and every message it causes goes through ``Turn.say`` /
``Turn.tell_staff`` into the outbox, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from handlers.classify import Classification
from handlers.context import Turn
from handlers.inbound import Inbound
from handlers.lifecycle import record
from handlers.location import LocationMatch
from handlers.outbox import Button
from handlers.people import Actor, Address
from handlers.routing import Route, RouteReason, route
from messages import render
from storage.models import OPEN_STATUSES, ActorType, Case, CaseStatus, Role, Staff


def category_name(turn: Turn, code: str | None) -> str:
    if code is None or code == "other":
        return render("category.other")
    return turn.community.category_names.get(code, code)


def location_label(turn: Turn, case: Case) -> str:
    where = case.location_text
    if where is None and case.latitude is not None:
        where = render("location.pin", lat=f"{case.latitude:.5f}", lon=f"{case.longitude:.5f}")
    if where is None:
        return render("location.unknown")
    grid = turn.community.grids.get(case.grid_code) if case.grid_code else None
    return render("location.in_grid", where=where, grid=grid.name) if grid else where


def role_label(role: str) -> str:
    return render(f"role.{role}")


def reporter_address(case: Case) -> Address | None:
    if case.reporter_external is None:
        return None
    return Address(case.channel, case.reporter_external)


async def open_counts(turn: Turn, staff_ids: Iterable[str]) -> dict[str, int]:
    ids = list(staff_ids)
    if not ids:
        return {}
    rows = await turn.session.execute(
        select(Case.assignee_id, func.count())
        .where(Case.assignee_id.in_(ids), Case.status.in_(OPEN_STATUSES))
        .group_by(Case.assignee_id)
    )
    return {staff: count for staff, count in rows.all()}


async def open_case(turn: Turn, actor: Actor, message: Inbound, classification: Classification) -> Case:
    assert actor.resident is not None
    case = Case(
        status=CaseStatus.NEW,
        category_code=classification.category,
        categories=list(classification.categories),
        confidence=classification.confidence,
        text=message.text or "",
        photo=message.photo,
        latitude=message.latitude,
        longitude=message.longitude,
        reporter_id=actor.resident.id,
        reporter_external=actor.address.recipient,
        channel=actor.address.channel,
        created_at=turn.now,
        updated_at=turn.now,
    )
    turn.session.add(case)
    await turn.session.flush()  # the number is needed for the acknowledgement
    record(
        turn.session,
        case,
        action="reported",
        actor_type=ActorType.RESIDENT,
        actor_id=str(actor.resident.id),
        at=turn.now,
        data={"keywords": list(classification.keywords), "categories": list(classification.categories)},
    )
    return case


def apply_location(case: Case, location: LocationMatch | None) -> None:
    if location is None:
        return
    case.location_text = location.matched
    case.building = location.building
    case.place = location.place
    case.grid_code = location.grid


async def route_case(
    turn: Turn, case: Case, classification: Classification, location: LocationMatch | None
) -> Route:
    """Decide who handles the case and tell everyone concerned. A case with no location is left for the
    caller to ask the resident; one that cannot be routed goes to the admins' triage queue."""
    apply_location(case, location)
    candidates = [w.staff for g in turn.community.grids.values() for w in g.workers]
    decision = route(turn.community, classification, location, await open_counts(turn, candidates))
    if decision.reason == RouteReason.NO_GRID:
        return decision
    if decision.assignee is not None:
        await assign(turn, case, decision.assignee, by=None, reason=decision.reason.value)
        await acknowledge(turn, case)
    else:
        await send_to_triage(turn, case, decision.reason.value)
    return decision


async def acknowledge(turn: Turn, case: Case) -> None:
    to = reporter_address(case)
    if to is None:
        return
    staff = await turn.session.get(Staff, case.assignee_id) if case.assignee_id else None
    if staff is None:
        text = render("report.ack_triage", number=case.id, category=category_name(turn, case.category_code))
    else:
        text = render(
            "report.ack_assigned",
            number=case.id,
            category=category_name(turn, case.category_code),
            location=location_label(turn, case),
            role=role_label(staff.role),
            handler=staff.name,
        )
    turn.say(to, text, kind="ack", case_id=case.id)


async def send_to_triage(turn: Turn, case: Case, reason: str) -> None:
    case.in_triage = True
    record(
        turn.session,
        case,
        action="triage",
        actor_type=ActorType.SYSTEM,
        actor_id=None,
        at=turn.now,
        note=render(f"triage.reason.{reason}"),
    )
    await acknowledge(turn, case)
    await turn.tell_admins(
        render(
            "staff.triage_case",
            number=case.id,
            category=category_name(turn, case.category_code),
            location=location_label(turn, case),
            text=case.text,
            reason=render(f"triage.reason.{reason}"),
        ),
        case_id=case.id,
    )


async def assign(turn: Turn, case: Case, staff_id: str, *, by: Actor | None, reason: str) -> None:
    staff = await turn.session.get_one(Staff, staff_id)
    actor_type, actor_id = (
        (ActorType.SYSTEM, None) if by is None or by.staff is None else (ActorType.STAFF, by.staff.id)
    )
    case.assignee_id = staff.id
    case.in_triage = False
    record(
        turn.session,
        case,
        action="assigned",
        actor_type=actor_type,
        actor_id=actor_id,
        at=turn.now,
        to=CaseStatus.ASSIGNED,
        note=staff.id,
        data={"reason": reason},
    )
    reached = await turn.tell_staff(
        staff.id,
        render(
            "staff.new_case",
            number=case.id,
            category=category_name(turn, case.category_code),
            location=location_label(turn, case),
            text=case.text,
        ),
        case_id=case.id,
        buttons=(
            Button(render("button.accept"), f"accept:{case.id}"),
            Button(render("button.resolve"), f"resolve:{case.id}"),
        ),
        photo=case.photo,
    )
    if not reached:
        # Nobody can be told: say so in the log, so the admins' view shows the case is stuck.
        record(
            turn.session,
            case,
            action="unreachable",
            actor_type=ActorType.SYSTEM,
            actor_id=None,
            at=turn.now,
            note=staff.id,
        )


def can_act(turn: Turn, staff: Staff, case: Case) -> bool:
    """Admins act on every case; leaders on their grids' and their own; workers on their own and on
    cases of the grids they work in."""
    role = Role(staff.role)
    if role == Role.ADMIN or case.assignee_id == staff.id:
        return True
    grid = turn.community.grids.get(case.grid_code) if case.grid_code else None
    if grid is None:
        return False
    if role == Role.LEADER:
        return grid.leader == staff.id
    return any(w.staff == staff.id for w in grid.workers)


async def accept(turn: Turn, case: Case, staff: Staff) -> None:
    if case.assignee_id != staff.id:
        case.assignee_id = staff.id
    record(
        turn.session,
        case,
        action="accepted",
        actor_type=ActorType.STAFF,
        actor_id=staff.id,
        at=turn.now,
        to=CaseStatus.ACCEPTED,
    )
    to = reporter_address(case)
    if to is not None:
        turn.say(
            to,
            render("resident.accepted", number=case.id, role=role_label(staff.role), handler=staff.name),
            kind="status",
            case_id=case.id,
        )


async def resolve(turn: Turn, case: Case, staff: Staff, note: str, photo: str | None = None) -> None:
    case.resolution_note = note
    record(
        turn.session,
        case,
        action="resolved",
        actor_type=ActorType.STAFF,
        actor_id=staff.id,
        at=turn.now,
        to=CaseStatus.RESOLVED,
        note=note,
        data={"photo": photo} if photo else None,
    )
    to = reporter_address(case)
    if to is not None:
        turn.say(
            to,
            render("resident.resolved", number=case.id, note=note),
            kind="status",
            case_id=case.id,
            photo=photo,
        )
