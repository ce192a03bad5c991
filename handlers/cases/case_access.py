"""The case a staff command names, if the actor may act on it (the chat's one rights check on a case).

Shared by the staff flow and the features that act on cases (category corrections), below both."""

from __future__ import annotations

from handlers.cases import cases, numbers
from handlers.cases.models import Case
from handlers.kernel.features import ChatContext
from messages import render


async def case_for_action(ctx: ChatContext, number: int | None) -> Case | None:
    """The case, with the turn set to its community (its grids, staff and working time); None (and
    the reply said) when there is none or the staff member may not act on it: in a deployment of
    several communities, staff act on cases of their communities only, 街道 admins on all."""
    staff = ctx.actor.staff
    assert staff is not None
    turn = ctx.turn
    case = await numbers.find(turn, number, within=turn.chosen) if number is not None else None
    if case is None:
        ctx.reply(render("staff.case_not_found", number=number))
        return None
    if turn.services.several:
        community = await numbers.community_of(turn, case.community_id)
        theirs = community is not None and (
            staff.id in turn.services.street.admins or staff.id in community.staff
        )
        if not theirs:
            ctx.reply(render("staff.not_allowed", number=numbers.label(turn, case)))
            return None
        turn.community = community
    if not cases.can_act(ctx.turn, staff, case):
        ctx.reply(render("staff.not_allowed", number=numbers.label(ctx.turn, case)))
        return None
    return case
