"""Time limits and the escalation ladder.

The clock starts when a case is dispatched (or sent to triage) and runs in working time. At 50 % of
the limit the worker is warned, at 100 % the grid leader is told, at 3x the admins; each once. An
unaccepted case counts like any other: silence from a worker must not make a case vanish. The scan
reads only ``cases.next_alarm_at`` (indexed), which also wakes cases waiting for the resident (a
location or a duplicate answer that never came) and resolved cases nobody rated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from handlers.classify import urgent_words
from handlers.community import Community
from handlers.context import Services, Turn
from handlers.lifecycle import record
from messages import render
from storage.models import OPEN_STATUSES, ActorType, Case, CaseStatus

DEFAULT_LIMIT_HOURS = 8.0
RUNGS = (0.5, 1.0, 3.0)  # fractions of the limit: warn the worker, tell the leader, tell the admins
WAIT_FOR_RESIDENT = timedelta(minutes=30)  # then an unanswered question goes to triage
SCAN_BATCH = 500


def is_urgent(text: str) -> bool:
    return any(word in text for word in urgent_words())


def limit_for(community: Community, case: Case) -> float:
    limit = community.category_limits.get(case.category_code or "", DEFAULT_LIMIT_HOURS)
    return limit * (community.config.limits.urgent_factor if case.urgent else 1.0)


def start_clock(community: Community, case: Case, start: datetime) -> None:
    """(Re)start the time limit from ``start``: dispatch, triage or reopening."""
    limit = limit_for(community, case)
    calendar = community.calendar
    case.time_limit_hours = limit
    case.clock_started_at = start
    case.due_at = calendar.add(start, limit)
    case.alarm_stage = 0
    case.next_alarm_at = calendar.add(start, limit * RUNGS[0])


def rung_time(community: Community, case: Case, stage: int) -> datetime | None:
    if stage >= len(RUNGS) or case.clock_started_at is None or case.time_limit_hours is None:
        return None
    return community.calendar.add(case.clock_started_at, case.time_limit_hours * RUNGS[stage])


def stop_clock(case: Case) -> None:
    case.next_alarm_at = None


def wait_for_resident(case: Case, now: datetime) -> None:
    case.next_alarm_at = now + WAIT_FOR_RESIDENT


def auto_confirm_at(community: Community, case: Case, now: datetime) -> None:
    case.next_alarm_at = now + timedelta(days=community.config.limits.auto_confirm_days)


def local_time(community: Community, moment: datetime) -> str:
    local = moment.astimezone(community.timezone)
    return render(
        "time.local", month=f"{local.month:02d}", day=f"{local.day:02d}", clock=local.strftime("%H:%M")
    )


async def _ring(turn: Turn, case: Case) -> None:
    """Send the case's next rung and move it up the ladder."""
    from handlers import cases

    community = turn.community
    stage = case.alarm_stage + 1
    due = local_time(community, case.due_at) if case.due_at else ""
    summary = render(
        "alarm.summary",
        number=case.id,
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
    from handlers import cases, feedback

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
            for case in rows:
                await _wake(turn, case)
        woken += len(rows)
        if len(rows) < SCAN_BATCH:
            return woken
