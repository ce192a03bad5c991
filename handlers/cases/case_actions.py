"""What is done to a case once it is routed: accepted, worked on, resolved, closed without a fix,
withdrawn by its reporter, reopened; and telling the reporter and the followers.

Like ``cases``, every change goes through ``lifecycle.record`` and every message through the ``Turn``'s
outbox, inside the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import select

from handlers.cases import cases, numbers, time_limits
from handlers.cases.lifecycle import record
from handlers.cases.models import ActorType, Case, CaseFollower, CaseStatus
from handlers.kernel.commands import Cmd, action
from handlers.kernel.context import Turn
from handlers.kernel.outbox import Button
from handlers.kernel.people import Address
from handlers.kernel.privacy import mask_text
from messages import render
from storage.models import Staff


async def tell_reporter_and_followers(
    turn: Turn, case: Case, text: str, *, kind: str = "status", photo: str | None = None
) -> None:
    to = cases.reporter_address(case)
    if to is not None:
        turn.say(to, text, kind=kind, case_id=case.id, photo=photo)
    for address in await followers(turn, case):
        turn.say(address, text, kind=kind, case_id=case.id, photo=photo)


async def followers(turn: Turn, case: Case) -> list[Address]:
    """Who follows the case besides its reporter."""
    reporter = cases.reporter_address(case)
    rows = await turn.session.scalars(select(CaseFollower).where(CaseFollower.case_id == case.id))
    return [a for a in (Address(f.channel, f.external_id) for f in rows) if a != reporter]


async def accept(turn: Turn, case: Case, staff: Staff) -> None:
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
    to = cases.reporter_address(case)
    if to is not None:
        turn.say(
            to,
            render(
                "resident.accepted",
                number=numbers.label(turn, case),
                role=cases.role_label(staff.role),
                handler=staff.name,
            ),
            kind="status",
            case_id=case.id,
        )


async def start_work(turn: Turn, case: Case, staff: Staff) -> None:
    record(
        turn.session,
        case,
        action="in_progress",
        actor_type=ActorType.STAFF,
        actor_id=staff.id,
        at=turn.now,
        to=CaseStatus.IN_PROGRESS,
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
    time_limits.auto_confirm_at(turn.community, case, turn.now)
    to = cases.reporter_address(case)
    if to is not None:
        turn.say(
            to,
            render("resident.resolved", number=numbers.label(turn, case), note=note),
            kind="status",
            case_id=case.id,
            photo=photo,
            buttons=(
                Button(render("button.good"), action(Cmd.RATE_GOOD, case.id)),
                Button(render("button.bad"), action(Cmd.RATE_BAD, case.id)),
            ),
        )
    for address in await followers(turn, case):
        turn.say(
            address,
            render("resident.followed_resolved", number=numbers.label(turn, case), note=note),
            kind="status",
            case_id=case.id,
            photo=photo,
        )


async def close(
    turn: Turn,
    case: Case,
    staff: Staff | None,
    reason: str,
    note: str | None,
    *,
    duplicate_of: int | None = None,
    notify: bool = True,
) -> None:
    """Close without a fix: not ours (with the body it was referred to), a duplicate, or invalid."""
    actor_type, actor_id = cases.staff_actor(staff)
    case.close_reason = reason
    case.duplicate_of = duplicate_of
    if reason == "not_ours":
        case.referral = note
    case.in_triage = False
    record(
        turn.session,
        case,
        action=f"closed_{reason}",
        actor_type=actor_type,
        actor_id=actor_id,
        at=turn.now,
        to=CaseStatus.CLOSED,
        note=note,
        data={"duplicate_of": duplicate_of} if duplicate_of else None,
    )
    time_limits.stop_clock(case)
    if notify:
        # The staff's words are quoted as the reason, never glued onto the sentence before them.
        shown = render("resident.close_reason", note=note) if note and reason == "invalid" else note or ""
        text = render(
            f"resident.closed_{reason}",
            number=numbers.label(turn, case),
            note=shown,
            original=duplicate_of or "",
        )
        await tell_reporter_and_followers(turn, case, text)


async def withdraw(turn: Turn, case: Case, resident_id: int) -> None:
    """The reporter withdrew the report before anyone took it (取消 while we asked where it is)."""
    case.close_reason = "withdrawn"
    case.in_triage = False
    record(
        turn.session,
        case,
        action="withdrawn",
        actor_type=ActorType.RESIDENT,
        actor_id=str(resident_id),
        at=turn.now,
        to=CaseStatus.CLOSED,
    )
    time_limits.stop_clock(case)


async def reopen(
    turn: Turn, case: Case, *, by_staff: Staff | None, by_resident: int | None, reason: str
) -> None:
    """Back to the worker who had it, with the reason; the clock restarts and the rework is counted."""
    case.reopen_count += 1
    case.rating = "bad" if by_resident is not None else case.rating
    assignee = case.assignee_id
    actor_type, actor_id = (
        (ActorType.RESIDENT, str(by_resident)) if by_resident is not None else cases.staff_actor(by_staff)
    )
    record(
        turn.session,
        case,
        action="reopened",
        actor_type=actor_type,
        actor_id=actor_id,
        at=turn.now,
        to=CaseStatus.ASSIGNED,
        note=reason,
    )
    case.resolved_at = None
    case.close_reason = None
    case.resolution_note = None  # the old note is in the event log; shown now it would claim a fix
    time_limits.start_clock(turn.community, case, turn.now)
    if assignee is None:
        await cases.send_to_triage(turn, case, "reopened")
        return
    if not await cases.reachable(turn, assignee):
        cases.record_unreachable(turn, case, assignee)
        await cases.hand_on_unreachable(turn, case)
        return
    staff = await turn.session.get_one(Staff, assignee)
    await turn.tell_staff(
        assignee,
        render(
            "staff.reopened",
            number=numbers.label(turn, case),
            urgent=render("staff.urgent") if case.urgent else "",
            reason=mask_text(reason),
            text=mask_text(case.text),
            location=cases.location_label(turn, case),
            due=time_limits.local_time(turn.community, case.due_at) if case.due_at else "",
        ),
        case_id=case.id,
        buttons=cases.case_buttons(case),
    )
    to = cases.reporter_address(case)
    if to is not None:
        turn.say(
            to,
            render(
                "resident.reopened",
                number=numbers.label(turn, case),
                role=cases.role_label(staff.role),
                handler=staff.name,
            ),
            kind="status",
            case_id=case.id,
        )
