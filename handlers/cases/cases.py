"""Cases: opening one from a report, routing it (to a worker, a leader or the admins' triage queue),
and handing it to someone else. What is done to a case once it has a handler (accept, resolve, close,
reopen …) is ``handlers.cases.case_actions``.

Every change goes through ``lifecycle.record`` (an event, and a refused illegal move) and every message
it causes through ``Turn.say`` / ``Turn.tell_staff`` into the outbox, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from handlers.cases import numbers, time_limits
from handlers.cases.lifecycle import can_move, record
from handlers.cases.models import OPEN_STATUSES, ActorType, Case, CaseStatus
from handlers.community.classify import OTHER, Classification
from handlers.community.location import LocationMatch
from handlers.community.routing import Route, RouteReason, grid_handler, route
from handlers.kernel.commands import Cmd, action
from handlers.kernel.context import Turn
from handlers.kernel.inbound import Inbound
from handlers.kernel.outbox import Button
from handlers.kernel.people import Actor, Address
from handlers.kernel.privacy import mask_text
from messages import render
from storage.models import Role, Staff, StaffIdentity


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


def classification_of(case: Case) -> Classification:
    return Classification(
        text=case.text,
        category=case.category_code,
        categories=tuple(case.categories),
        confidence=case.confidence,
    )


def staff_actor(staff: Staff | None) -> tuple[ActorType, str | None]:
    return (ActorType.STAFF, staff.id) if staff is not None else (ActorType.SYSTEM, None)


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


async def open_case(
    turn: Turn,
    actor: Actor,
    message: Inbound,
    classification: Classification,
    *,
    text: str | None = None,
) -> Case:
    """A new case from a report; ``text`` is the part of the message this case is about (one problem
    of several), the whole message by default."""
    assert actor.resident is not None
    text = message.text or "" if text is None else text
    case = Case(
        status=CaseStatus.NEW,
        category_code=classification.category,
        categories=list(classification.categories),
        confidence=classification.confidence,
        text=text,
        photo=message.photo,
        latitude=message.latitude,
        longitude=message.longitude,
        urgent=time_limits.is_urgent(text),
        reporter_id=actor.resident.id,
        reporter_external=actor.address.recipient,
        channel=actor.address.channel,
        created_at=turn.now,
        updated_at=turn.now,
    )
    turn.session.add(case)
    await turn.session.flush()  # the number is needed for the acknowledgement
    await numbers.number_case(turn, case)
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


async def route_case(turn: Turn, case: Case, location: LocationMatch | None, *, ack: bool = True) -> Route:
    """Decide who handles the case and tell everyone concerned. With no location the caller asks the
    resident; a case that cannot be routed goes to the admins' triage queue. ``ack=False`` when the
    caller acknowledges several cases in one message."""
    apply_location(case, location)
    candidates = [w.staff for g in turn.community.grids.values() for w in g.workers]
    decision = route(turn.community, classification_of(case), location, await open_counts(turn, candidates))
    if decision.reason == RouteReason.NO_GRID:
        return decision
    if decision.assignee is not None:
        time_limits.start_clock(turn.community, case, turn.now)
        if not await assign(turn, case, decision.assignee, by=None, reason=decision.reason.value):
            await hand_on_unreachable(turn, case, ack=ack)
            return decision
        if ack:
            await acknowledge(turn, case)
    else:
        await send_to_triage(turn, case, decision.reason.value, ack=ack)
    return decision


async def reachable(turn: Turn, staff_id: str) -> bool:
    """Whether the staff member has an account on a running channel that the platform has not
    reported as blocked or gone."""
    found = await turn.session.scalar(
        select(StaffIdentity.external_id)
        .where(
            StaffIdentity.staff_id == staff_id,
            StaffIdentity.channel.in_(turn.services.channels),
            StaffIdentity.unreachable_since.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def hand_on_unreachable(turn: Turn, case: Case, *, ack: bool = True) -> None:
    """The assignee cannot be told: a case nobody hears of is a case nobody handles. It goes at once
    to the grid leader, or (no reachable leader) to the admins' triage queue."""
    grid = turn.community.grids.get(case.grid_code) if case.grid_code else None
    leader = grid.leader if grid is not None else None
    absent = case.assignee_id
    if leader and leader != absent and await reachable(turn, leader):
        await assign(turn, case, leader, by=None, reason="unreachable", note=absent)
        if ack:
            await acknowledge(turn, case)
        return
    await send_to_triage(turn, case, "unreachable", ack=ack)


async def give_up_waiting(turn: Turn, case: Case) -> None:
    """The resident never answered our question (where? same as #N?): route with what we have."""
    if case.grid_code is not None or case.location_text is not None:
        location = LocationMatch(case.grid_code, case.location_text or "", case.building, case.place)
        await route_case(turn, case, location)
    else:
        await send_to_triage(turn, case, "no_location")


async def ack_line(turn: Turn, case: Case) -> str:
    """One case of a report that named several problems, for the combined acknowledgement."""
    staff = await turn.session.get(Staff, case.assignee_id) if case.assignee_id else None
    due = time_limits.local_time(turn.community, case.due_at) if case.due_at else render("time.soon")
    category = category_name(turn, case.category_code)
    if staff is None:
        return render("report.ack_line_triage", number=numbers.label(turn, case), category=category, due=due)
    return render(
        "report.ack_line",
        number=numbers.label(turn, case),
        category=category,
        location=location_label(turn, case),
        role=role_label(staff.role),
        handler=staff.name,
        due=due,
    )


async def acknowledge(turn: Turn, case: Case) -> None:
    to = reporter_address(case)
    if to is None:
        return
    staff = await turn.session.get(Staff, case.assignee_id) if case.assignee_id else None
    due = time_limits.local_time(turn.community, case.due_at) if case.due_at else render("time.soon")
    if case.urgent:
        # The safety message came first: no ordinary "已收到…预计…前" after it, only who has it now.
        who = render("report.urgent_who", role=role_label(staff.role), handler=staff.name) if staff else ""
        text = render(
            "report.ack_urgent", number=numbers.label(turn, case), who=who or render("report.urgent_triage")
        )
    elif staff is None:
        text = render(
            "report.ack_triage",
            number=numbers.label(turn, case),
            category=category_name(turn, case.category_code),
            due=due,
        )
    else:
        text = render(
            "report.ack_assigned",
            number=numbers.label(turn, case),
            category=category_name(turn, case.category_code),
            location=location_label(turn, case),
            role=role_label(staff.role),
            handler=staff.name,
            due=due,
        )
    turn.say(to, text, kind="ack", case_id=case.id)


async def send_to_triage(turn: Turn, case: Case, reason: str, *, ack: bool = True) -> None:
    case.in_triage = True
    case.assignee_id = None
    record(
        turn.session,
        case,
        action="triage",
        actor_type=ActorType.SYSTEM,
        actor_id=None,
        at=turn.now,
        note=render(f"triage.reason.{reason}"),
    )
    time_limits.start_clock(turn.community, case, turn.now)
    if ack:
        await acknowledge(turn, case)
    grid = turn.community.grids.get(case.grid_code) if case.grid_code else None
    buttons = [
        Button(turn.community.staff[w.staff].name, action(Cmd.ASSIGN, case.id, w.staff))
        for w in (grid.workers if grid else [])
    ]
    card = render(
        "staff.triage_case",
        number=numbers.label(turn, case),
        urgent=render("staff.urgent") if case.urgent else "",
        category=category_name(turn, case.category_code),
        location=location_label(turn, case),
        text=mask_text(case.text),
        reason=render(f"triage.reason.{reason}"),
    )
    if await turn.tell_admins(card, case_id=case.id, buttons=buttons):
        return
    # No admin has an account on a running channel: the card goes to the leaders (the grid's, else
    # all), so the queue is never one nobody sees.
    record_unreachable(turn, case, "admins")
    leaders = [grid.leader] if grid is not None and grid.leader else turn.community.leaders()
    for leader in leaders:
        await turn.tell_staff(leader, card, case_id=case.id, buttons=buttons)


def record_unreachable(turn: Turn, case: Case, who: str) -> None:
    """The event saying that ``who`` (a staff id, or "admins") could not be reached for this case."""
    record(
        turn.session,
        case,
        action="unreachable",
        actor_type=ActorType.SYSTEM,
        actor_id=None,
        at=turn.now,
        note=who,
    )


def case_buttons(case: Case) -> tuple[Button, ...]:
    return (
        Button(render("button.accept"), action(Cmd.ACCEPT, case.id)),
        Button(render("button.resolve"), action(Cmd.RESOLVE, case.id)),
        Button(render("button.transfer"), action(Cmd.TRANSFER, case.id)),
        Button(render("button.duplicate"), action(Cmd.DUPLICATE, case.id)),
    )


def buttons_for(turn: Turn, case: Case, staff: Staff) -> tuple[Button, ...]:
    """The actions this staff member may take on the case in its current state, and no others
    (an accepted case offers no 接单, a resolved one only 重开)."""
    if not can_act(turn, staff, case):
        return ()
    status = CaseStatus(case.status)
    role = Role(staff.role)
    out: list[Button] = []
    if status == CaseStatus.NEW:
        if role in {Role.LEADER, Role.ADMIN}:
            grid = turn.community.grids.get(case.grid_code) if case.grid_code else None
            out += [
                Button(turn.community.staff[w.staff].name, action(Cmd.ASSIGN, case.id, w.staff))
                for w in (grid.workers if grid else [])
                if w.staff in turn.community.staff
            ]
        return tuple(out)
    if status in {CaseStatus.RESOLVED, CaseStatus.CLOSED}:
        return (Button(render("button.reopen"), action(Cmd.REOPEN, case.id)),)
    if status == CaseStatus.CONFIRMED:
        return ()
    if can_move(case, CaseStatus.ACCEPTED) and role != Role.ADMIN and status == CaseStatus.ASSIGNED:
        out.append(Button(render("button.accept"), action(Cmd.ACCEPT, case.id)))
    if can_move(case, CaseStatus.RESOLVED):
        out.append(Button(render("button.resolve"), action(Cmd.RESOLVE, case.id)))
    out.append(Button(render("button.transfer"), action(Cmd.TRANSFER, case.id)))
    if can_move(case, CaseStatus.CLOSED):
        out.append(Button(render("button.duplicate"), action(Cmd.DUPLICATE, case.id)))
    return tuple(out)


async def assign(
    turn: Turn, case: Case, staff_id: str, *, by: Staff | None, reason: str, note: str | None = None
) -> bool:
    """Give the case to a staff member (dispatch, transfer, reassignment). The clock keeps running:
    a transfer does not buy time. Returns whether the staff member could be told."""
    staff = await turn.session.get_one(Staff, staff_id)
    actor_type, actor_id = staff_actor(by)
    previous = case.assignee_id
    transfer = previous is not None and previous != staff.id
    case.assignee_id = staff.id
    case.in_triage = False
    if case.clock_started_at is None:
        time_limits.start_clock(turn.community, case, turn.now)
    record(
        turn.session,
        case,
        action="transferred" if transfer else "assigned",
        actor_type=actor_type,
        actor_id=actor_id,
        at=turn.now,
        to=CaseStatus.ASSIGNED,
        note=note,
        data={"reason": reason, "to": staff.id},
    )
    due = time_limits.local_time(turn.community, case.due_at) if case.due_at else ""
    await turn.tell_staff(
        staff.id,
        render(
            "staff.new_case",
            number=numbers.label(turn, case),
            category=category_name(turn, case.category_code),
            location=location_label(turn, case),
            text=mask_text(case.text),
            due=due,
            urgent=render("staff.urgent") if case.urgent else "",
        ),
        case_id=case.id,
        buttons=case_buttons(case),
        photo=case.photo,
    )
    if transfer and previous is not None and (by is None or by.id != previous):
        # Taken away by someone else (改类, 分派, 转网格): the worker must know to stop working on it.
        await turn.tell_staff(
            previous,
            render(
                "staff.case_taken",
                number=numbers.label(turn, case),
                name=staff.name,
                category=category_name(turn, case.category_code),
            ),
            case_id=case.id,
        )
    if await reachable(turn, staff.id):
        return True
    record_unreachable(turn, case, staff.id)
    return False


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
    return role == Role.WORKER and any(w.staff == staff.id for w in grid.workers)


async def transfer_to_grid(turn: Turn, case: Case, grid_code: str, by: Staff) -> str | None:
    """Move the case to another grid's worker for its category (or that grid's leader)."""
    grid = turn.community.grids.get(grid_code)
    if grid is None:
        return None
    case.grid_code = grid.code
    counts = await open_counts(turn, [w.staff for w in grid.workers])
    handler = grid_handler(turn.community, grid.code, case.category_code or OTHER, counts)
    target = handler[0] if handler is not None else None
    if target is None:
        await send_to_triage(turn, case, "no_staff")
        return grid.code
    await assign(turn, case, target, by=by, reason="transfer_grid", note=grid.code)
    return target
