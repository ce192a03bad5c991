"""The case state machine: which status may follow which, and the event every change appends.

Drawn in ``docs/case_lifecycle.mmd``. Anything not listed here is refused with a clear message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases.models import ActorType, Case, CaseEvent, CaseStatus

S = CaseStatus

TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.NEW: frozenset({S.ASSIGNED, S.CLOSED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.ACCEPTED, S.RESOLVED, S.CLOSED}),
    S.ACCEPTED: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.ASSIGNED, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.CONFIRMED, S.ASSIGNED}),  # confirmed, or reopened to a worker
    S.CLOSED: frozenset({S.ASSIGNED}),
    S.CONFIRMED: frozenset(),
}

_STAMP = {
    S.ASSIGNED: "assigned_at",
    S.ACCEPTED: "accepted_at",
    S.RESOLVED: "resolved_at",
    S.CLOSED: "closed_at",
    S.CONFIRMED: "closed_at",
}


class IllegalTransition(Exception):
    def __init__(self, case: Case, to: CaseStatus) -> None:
        super().__init__(f"case {case.id}: {case.status} -> {to}")
        self.case = case
        self.to = to


def can_move(case: Case, to: CaseStatus) -> bool:
    return to in TRANSITIONS[CaseStatus(case.status)]


def record(
    session: AsyncSession,
    case: Case,
    *,
    action: str,
    actor_type: ActorType,
    actor_id: str | None,
    at: datetime,
    note: str | None = None,
    to: CaseStatus | None = None,
    data: dict[str, object] | None = None,
) -> CaseEvent:
    """Append an event; with ``to``, also move the case there (refusing an illegal move)."""
    before = CaseStatus(case.status)
    if to is not None:
        if not can_move(case, to):
            raise IllegalTransition(case, to)
        case.status = to
        stamp = _STAMP.get(to)
        if stamp is not None:
            setattr(case, stamp, at)
    case.updated_at = at
    event = CaseEvent(
        case_id=case.id,
        at=at,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        from_status=before,
        to_status=to if to is not None else before,
        note=note,
        data=data or {},
    )
    session.add(event)
    return event
