"""Time limits and the escalation ladder.

The clock starts when a case is dispatched (or sent to triage) and runs in working time. At 50 % of
the limit the worker is warned, at 100 % the grid leader is told, at 3x the admins; each once. An
unaccepted case counts like any other: silence from a worker must not make a case vanish. The scan
reads only ``cases.next_alarm_at`` (indexed), which also wakes cases waiting for the resident (a
location or a duplicate answer that never came) and resolved cases nobody rated.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from handlers.cases import cases, feedback, numbers
from handlers.cases.lifecycle import record
from handlers.cases.models import OPEN_STATUSES, ActorType, Case, CaseStatus
from handlers.cases.time_limits import DEFAULT_LIMIT_HOURS, rung_time, stop_clock
from handlers.kernel.clock import local_time
from handlers.kernel.context import Services, Turn
from messages import render

# The clock itself (limits, rungs, local times) is handlers/cases/time_limits.py; re-exported for callers.
__all__ = ["DEFAULT_LIMIT_HOURS", "SCAN_BATCH", "local_time", "scan"]
SCAN_BATCH = 500


async def _ring(turn: Turn, case: Case) -> None:
    """Send the case's next rung and move it up the ladder."""
    community = turn.community
    stage = case.alarm_stage + 1
    due = local_time(community, case.due_at) if case.due_at else ""
    summary = render(
        "alarm.summary",
        number=numbers.label(turn, case),
        urgent=render("staff.urgent") if case.urgent else "",
        category=cases.category_name(turn, case.category_code),
        location=cases.location_label(turn, case),
        due=due,
        status=render(f"status.{case.status}"),
    )
    grid = community.grids.get(case.grid_code) if case.grid_code else None
    if stage == 1:
        if case.assignee_id:
            await turn.tell_staff(
                case.assignee_id, render("alarm.warn_worker", summary=summary), case_id=case.id
            )
        else:
            await turn.tell_admins(render("alarm.triage_waiting", summary=summary), case_id=case.id)
        action = "warned"
    elif stage == 2:
        leader = grid.leader if grid is not None else None
        handler = community.staff.get(case.assignee_id or "")
        text = render(
            "alarm.overdue_leader",
            summary=summary,
            handler=handler.name if handler else render("alarm.nobody"),
        )
        if leader and leader != case.assignee_id:
            await turn.tell_staff(leader, text, case_id=case.id)
        else:
            await turn.tell_admins(text, case_id=case.id)
        if case.assignee_id:
            await turn.tell_staff(
                case.assignee_id, render("alarm.overdue_worker", summary=summary), case_id=case.id
            )
        action = "escalated_leader"
    else:
        handler = community.staff.get(case.assignee_id or "")
        await turn.tell_admins(
            render(
                "alarm.overdue_admin",
                summary=summary,
                handler=handler.name if handler else render("alarm.nobody"),
            ),
            case_id=case.id,
        )
        action = "escalated_admin"
    record(turn.session, case, action=action, actor_type=ActorType.SYSTEM, actor_id=None, at=turn.now)
    case.alarm_stage = stage
    case.next_alarm_at = rung_time(community, case, stage)


async def _wake(turn: Turn, case: Case) -> None:
    status = CaseStatus(case.status)
    if status == CaseStatus.NEW and not case.in_triage and case.assignee_id is None:
        await cases.give_up_waiting(turn, case)  # the resident never answered our question
        return
    if status == CaseStatus.RESOLVED:
        await feedback.confirm(turn, case, rating=None, by=None)
        return
    if status not in OPEN_STATUSES:
        stop_clock(case)
        return
    while case.next_alarm_at is not None and case.next_alarm_at <= turn.now and case.status in OPEN_STATUSES:
        await _ring(turn, case)


def _people(community: Any, case: Case) -> list[str]:
    """Whom a case's rungs may tell: its handler, its grid's leader, the community's admins."""
    grid = community.grids.get(case.grid_code) if case.grid_code else None
    return [
        p for p in (case.assignee_id, grid.leader if grid is not None else None, *community.admins()) if p
    ]


async def scan(services: Services) -> int:
    """One pass of the periodic job; returns how many cases it woke. Safe in several processes."""
    woken = 0
    while True:
        now = services.clock()
        async with services.sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(Case)
                    .where(Case.next_alarm_at <= now)
                    .order_by(Case.next_alarm_at)
                    .limit(SCAN_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            turn = Turn(services, session, now)
            communities = [
                await numbers.community_of(turn, case.community_id) if services.several else None
                for case in rows
            ]
            # everyone the batch's rungs may tell, looked up in one query instead of one per rung
            await turn.know_staff(
                person
                for case, community in zip(rows, communities, strict=True)
                for person in _people(community or services.community, case)
            )
            for case, community in zip(rows, communities, strict=True):
                if services.several:  # the case's community: its leaders, admins, working time
                    turn.community = community
                await _wake(turn, case)
        woken += len(rows)
        if len(rows) < SCAN_BATCH:
            return woken
