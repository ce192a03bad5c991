"""A resident asking how an earlier report is getting on ("我上次反映的垃圾处理了吗", "12号案件怎么样了",
"进度呢", "any update on my report?") is answered from their own cases: each open one and each finished
in the last ``RECENT``, with its number, category, place, state in words, who has it (role and name,
never a phone number) and its deadline, or that it is overdue. A case number that is not theirs gets
the same answer as one that does not exist. A question never opens a case.

It is a chat feature placed first, so it answers whatever question is pending (where is it? which
kind? a reminder enrolment's step …) and then asks that question again: a query is not an answer and
does not close it (``is_query``, read by ``handlers.cases.pending``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache
from importlib import resources

from sqlalchemy import or_, select

from handlers.cases import cases, category_question, numbers, rating_choice, time_limits
from handlers.cases import resident_questions as Q
from handlers.cases.models import OPEN_STATUSES, Case, CaseFollower, CaseStatus
from handlers.kernel.features import ChatContext
from handlers.kernel.textnorm import fold
from handlers.kernel.yaml_text import load_yaml
from messages import render
from storage.models import Staff

RECENT = timedelta(days=7)  # finished cases still worth mentioning
LIMIT = 5  # cases in one answer; the rest are counted
MAX_QUESTION = 80  # characters: beyond, only the classifier's status intent counts (a story, not a question)
_OPEN = frozenset(s.value for s in OPEN_STATUSES)


@cache
def _patterns() -> tuple[re.Pattern[str], tuple[re.Pattern[str], ...]]:
    raw = load_yaml(
        resources.files("handlers").joinpath("data", "status_questions.yaml").read_text(encoding="utf-8")
    )
    asks = re.compile("|".join(f"(?:{p})" for p in raw["asks"]), re.I)
    numbers = tuple(re.compile(p, re.I) for p in raw["case_number"])
    return asks, numbers


def _folded(ctx: ChatContext) -> str:
    return fold(ctx.text).strip().lower()


def case_number(text: str) -> int | None:
    """The case a question names ("12号案件", "#12", "case 12"); None when it names none (a building
    number is not a case number)."""
    for pattern in _patterns()[1]:
        if (found := pattern.search(text)) is not None:
            return int(found.group("n"))
    return None


def asks_status(ctx: ChatContext) -> bool:
    """Whether a resident's message asks about an earlier report rather than reporting something."""
    if ctx.actor.resident is None or ctx.command is not None or not ctx.message.text:
        return False
    found = ctx.turn.community.classifier.classify(ctx.message.text)
    if found.urgent:
        return False  # a danger is reported, whatever else the message asks
    if found.intent == "status":
        return True
    text = _folded(ctx)
    return (
        len(text) <= MAX_QUESTION
        and _patterns()[0].search(text) is not None
        and (found.category is None or found.ask or bool(case_number(text)))
    )


def is_query(ctx: ChatContext) -> bool:
    """A resident's question that leaves a pending question open (answered, then asked again). The
    commands 我的 / 查询 N keep their own rule (handlers/cases/pending.py: a command closes the question)."""
    return asks_status(ctx)


class CaseStatusFeature:
    name = "status"

    async def handle(self, ctx: ChatContext) -> bool:
        resident = ctx.actor.resident
        if resident is None or resident.blocked:
            return False
        if not asks_status(ctx):
            return False
        pending = ctx.dialog is not None
        await answer(ctx, case_number(_folded(ctx)))
        if pending:
            await reask(ctx)
        return True


async def _own_cases(ctx: ChatContext) -> list[Case]:
    resident = ctx.actor.resident
    assert resident is not None
    followed = select(CaseFollower.case_id).where(CaseFollower.resident_id == resident.id)
    since = ctx.turn.now - RECENT
    rows = await ctx.turn.session.scalars(
        select(Case)
        .where(
            or_(Case.reporter_id == resident.id, Case.id.in_(followed)),
            or_(
                Case.status.in_([*_OPEN, CaseStatus.RESOLVED]),
                Case.updated_at >= since,
            ),
        )
        .order_by(Case.id.desc())
        .limit(50)
    )
    found = list(rows)
    # Open ones first (still being worked on), then the finished; newest first within each.
    return sorted(found, key=lambda c: (c.status not in _OPEN and c.status != CaseStatus.RESOLVED, -c.id))


async def _is_theirs(ctx: ChatContext, case: Case) -> bool:
    resident = ctx.actor.resident
    assert resident is not None
    if case.reporter_id == resident.id:
        return True
    follower = await ctx.turn.session.scalar(
        select(CaseFollower.case_id).where(
            CaseFollower.case_id == case.id, CaseFollower.resident_id == resident.id
        )
    )
    return follower is not None


async def answer(ctx: ChatContext, number: int | None) -> None:
    if number is not None:
        case = await numbers.find(ctx.turn, number, within=ctx.turn.chosen)
        if case is None or not await _is_theirs(ctx, case):
            ctx.reply(render("resident.case_not_found", number=number))  # the same words either way
            return
        ctx.reply(render("status.one", line=await status_line(ctx, case)), case_id=case.id)
        return
    found = await _own_cases(ctx)
    if not found:
        ctx.reply(render("status.none", example=render("status.report_example")))
        return
    lines = [await status_line(ctx, c) for c in found[:LIMIT]]
    text = render("status.list", count=len(found), lines="\n".join(lines))
    if len(found) > LIMIT:
        text += "\n" + render("status.more", more=len(found) - LIMIT)
    ctx.reply(text, case_id=found[0].id)


async def status_line(ctx: ChatContext, case: Case) -> str:
    turn = ctx.turn
    staff = await turn.session.get(Staff, case.assignee_id) if case.assignee_id else None
    who = render("status.who", role=cases.role_label(staff.role), name=staff.name) if staff else ""
    status = CaseStatus(case.status)
    if status == CaseStatus.NEW:
        state = render("status.state.triage" if case.in_triage else "status.state.where")
    elif status == CaseStatus.ASSIGNED:
        state = render("status.state.assigned", who=who or render("status.who_unknown"))
    elif status in (CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS):
        state = render("status.state.working", who=who or render("status.who_unknown"))
    elif status == CaseStatus.RESOLVED:
        state = render("status.state.resolved", number=numbers.label(ctx.turn, case))
    elif status == CaseStatus.CONFIRMED:
        state = render("status.state.confirmed")
    elif case.close_reason == "duplicate" and case.duplicate_of:
        state = render("status.state.merged", original=case.duplicate_of)
    elif case.close_reason == "not_ours":
        state = render("status.state.referred", referral=case.referral or render("location.unknown"))
    elif case.close_reason == "withdrawn":
        state = render("status.state.withdrawn")
    else:
        state = render("status.state.closed")
    if status.value in _OPEN and case.due_at is not None:
        due = time_limits.local_time(turn.community, case.due_at)
        overdue = case.due_at <= turn.now
        state += render("status.overdue" if overdue else "status.due", due=due)
    return render(
        "status.line",
        number=numbers.label(ctx.turn, case),
        category=cases.category_name(turn, case.category_code),
        location=cases.location_label(turn, case),
        state=state,
    )


async def reask(ctx: ChatContext) -> None:
    """The pending question again, in one line, after the answer to a query; a question about a case
    that has moved on meanwhile is dropped instead."""
    dialog = ctx.dialog
    if dialog is None:
        return
    state, data = dialog.state, dict(dialog.data or {})
    session = ctx.turn.session
    if state == Q.AWAIT_LOCATION:
        waiting = [
            n
            for n in Q.pending_cases(data)
            if (c := await session.get(Case, n)) is not None
            and c.status == CaseStatus.NEW
            and not c.in_triage
        ]
        if not waiting:
            await ctx.clear_dialog()
            return
        ctx.reply(
            render("status.reask.location", numbers=Q.numbers_text(waiting), examples=Q.place_examples(ctx))
        )
    elif state in (Q.AWAIT_RATING, Q.AWAIT_REASON):
        case = await session.get(Case, int(data.get("case") or 0))
        if case is None or case.status != CaseStatus.RESOLVED:
            await ctx.clear_dialog()
            return
        ctx.reply(
            render(
                f"status.reask.{'rating' if state == Q.AWAIT_RATING else 'reason'}",
                number=numbers.label(ctx.turn, case),
            )
        )
    elif state == rating_choice.WHICH:
        ctx.reply(render("status.reask.which", question=await rating_choice.question(ctx, data)))
    elif state == Q.AWAIT_DUPLICATE:
        ctx.reply(render("status.reask.duplicate", number=data.get("case"), original=data.get("original")))
    elif state == Q.AWAIT_DESCRIPTION:
        ctx.reply(render("status.reask.description"))
    elif state == category_question.STATE:
        choices = [str(c) for c in data.get("choices", [])]
        lines = [
            render("question.choice", digit=i, label=category_question._label(ctx, c))
            for i, c in enumerate(choices, 1)
        ]
        ctx.reply(render("status.reask.category", choices="\n".join(lines)))
    else:
        ctx.reply(render("status.reask.other"))
