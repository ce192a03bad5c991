"""A case as its reporter sees it (我的 list, 查询 #N), and the same view for staff with the resident's
words masked."""

from __future__ import annotations

from sqlalchemy import select

from handlers.cases import cases, numbers, time_limits
from handlers.cases.models import Case
from handlers.kernel.features import ChatContext
from handlers.kernel.privacy import mask_text
from messages import render

LIST_LIMIT = 10


async def list_own_cases(ctx: ChatContext) -> None:
    resident = ctx.actor.resident
    assert resident is not None
    rows = (
        await ctx.turn.session.scalars(
            select(Case).where(Case.reporter_id == resident.id).order_by(Case.id.desc()).limit(LIST_LIMIT)
        )
    ).all()
    if not rows:
        ctx.reply(render("resident.no_cases"))
        return
    ctx.reply(render("resident.case_list", lines="\n".join(case_line(ctx, c) for c in rows)))


async def show_own_case(ctx: ChatContext, number: int | None) -> None:
    case = await numbers.find(ctx.turn, number, within=ctx.turn.chosen) if number is not None else None
    resident = ctx.actor.resident
    if case is None or resident is None or case.reporter_id != resident.id:
        ctx.reply(render("resident.case_not_found", number=number))
        return
    ctx.reply(case_detail(ctx, case))


def case_line(ctx: ChatContext, case: Case) -> str:
    local = case.created_at.astimezone(ctx.turn.community.timezone)
    return render(
        "case.line",
        number=numbers.label(ctx.turn, case),
        category=cases.category_name(ctx.turn, case.category_code),
        status=render(f"status.{case.status}"),
        date=local.strftime("%m-%d %H:%M"),
    )


def case_detail(ctx: ChatContext, case: Case, *, full_text: bool = True) -> str:
    """One case in full. ``full_text`` False: what a worker or leader may read of the resident's words
    (phone and ID numbers and health words masked); the reporter and admins see them as written."""
    turn = ctx.turn

    def shown(text: str) -> str:
        return text if full_text else mask_text(text)

    local = case.created_at.astimezone(turn.community.timezone)
    detail = render(
        "case.detail",
        number=numbers.label(turn, case),
        category=cases.category_name(turn, case.category_code),
        status=render(f"status.{case.status}"),
        location=cases.location_label(turn, case),
        date=local.strftime("%Y-%m-%d %H:%M"),
        text=shown(case.text),
    )
    if case.due_at is not None and case.status in {s.value for s in cases.OPEN_STATUSES}:
        detail += "\n" + render("case.detail_due", due=time_limits.local_time(turn.community, case.due_at))
    if case.resolution_note:
        detail += "\n" + render("case.detail_note", note=shown(case.resolution_note))
    if case.referral:
        detail += "\n" + render("case.detail_referral", referral=shown(case.referral))
    if case.duplicate_of:
        detail += "\n" + render("case.detail_duplicate", original=case.duplicate_of)
    return detail
