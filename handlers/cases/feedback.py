"""The reporter's verdict on a fix: 满意 confirms the case, 不满意 reopens it to the same worker with
the resident's reason (and counts against the on-time figures). Nobody answering confirms it after
the community's ``limits.auto_confirm_days``."""

from __future__ import annotations

from handlers.cases import case_actions, numbers, time_limits
from handlers.cases.lifecycle import record
from handlers.cases.models import ActorType, Case, CaseStatus
from handlers.kernel.context import Turn
from messages import render


async def confirm(turn: Turn, case: Case, *, rating: str | None, by: int | None) -> None:
    actor_type, actor_id = (ActorType.RESIDENT, str(by)) if by is not None else (ActorType.SYSTEM, None)
    if rating is not None:
        case.rating = rating
    record(
        turn.session,
        case,
        action="confirmed" if by is not None else "auto_confirmed",
        actor_type=actor_type,
        actor_id=actor_id,
        at=turn.now,
        to=CaseStatus.CONFIRMED,
        data={"rating": rating} if rating else None,
    )
    time_limits.stop_clock(case)
    if by is not None and case.assignee_id:
        await turn.tell_staff(
            case.assignee_id, render("staff.rated_good", number=numbers.label(turn, case)), case_id=case.id
        )


async def rate_bad(turn: Turn, case: Case, resident_id: int, reason: str) -> None:
    await case_actions.reopen(turn, case, by_staff=None, by_resident=resident_id, reason=reason)
