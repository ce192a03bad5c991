"""The case a staff command names, if the actor may act on it (the chat's one rights check on a case).

Shared by the staff flow and the features that act on cases (category corrections), below both."""

from __future__ import annotations

from handlers.cases import cases
from handlers.cases.models import Case
from handlers.kernel.features import ChatContext
from messages import render


async def case_for_action(ctx: ChatContext, number: int | None) -> Case | None:
    staff = ctx.actor.staff
    assert staff is not None
    case = await ctx.turn.session.get(Case, number) if number is not None else None
    if case is None:
        ctx.reply(render("staff.case_not_found", number=number))
        return None
    if not cases.can_act(ctx.turn, staff, case):
        ctx.reply(render("staff.not_allowed", number=case.id))
        return None
    return case
