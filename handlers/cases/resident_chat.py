"""What a resident can do in the chat: report a problem (and answer "where is it?" or "is it the
same as #N?"), list and query their cases, rate a fix, bind a staff account with an invite code.
This module reads the message and dispatches; the answers to our questions are ``resident_questions``,
a report naming several problems ``several_problems``, the case list and detail ``case_view``."""

from __future__ import annotations

import re
from dataclasses import replace

from handlers.cases import (
    abuse,
    case_actions,
    cases,
    category_question,
    duplicates,
    emergency,
    feedback,
    numbers,
    rating_choice,
    time_limits,
)
from handlers.cases.case_view import list_own_cases, show_own_case
from handlers.cases.lifecycle import can_move
from handlers.cases.models import Case, CaseStatus
from handlers.cases.resident_questions import (
    AWAIT_DESCRIPTION,
    AWAIT_DUPLICATE,
    AWAIT_LOCATION,
    AWAIT_RATING,
    AWAIT_REASON,
    duplicate_answer,
    location_reply,
    numbers_text,
    pending_cases,
    place_examples,
)
from handlers.cases.several_problems import report_several, split_problems
from handlers.community.classify import Classification
from handlers.community.geo import nearest_place
from handlers.kernel import binding
from handlers.kernel.commands import COMMANDS, Cmd, Command, action
from handlers.kernel.features import ChatContext
from handlers.kernel.outbox import Button
from messages import render

GOOD_REPLIES = frozenset({"1", "满意", "好", "好评", "很好", "非常满意", "满意了", "可以"})
BAD_REPLIES = frozenset({"2", "不满意", "差评", "没解决", "没有解决", "没处理", "不行"})
YES_REPLIES = frozenset({"1", "是", "是的", "对", "关注", "跟进", "好"})
NO_REPLIES = frozenset({"2", "不是", "否", "新报", "不一样"})
# "住址 3号楼", "我住5栋", "我家在A座": where the resident lives (their notices go by its grid).
_HOME = re.compile(
    r"^(?:住址|我的住址|家庭住址|我住在?|我家住在?|我家在|家住在?)\s*[:：]?\s*(?P<where>\S.{0,40})$", re.S
)
# A question about vaccination: the clinic answers it; the bot only offers its reminders.
_VACCINE = re.compile(r"疫苗|接种|预防针|打针")


def _plain(text: str) -> str:
    return text.strip().rstrip("。.!！~～").strip()


async def handle(ctx: ChatContext) -> None:
    resident = ctx.actor.resident
    assert resident is not None
    command, dialog = ctx.command, ctx.dialog
    if resident.blocked:
        ctx.reply(render("chat.received"))  # stored, not routed, and nothing to argue with
        return
    spec = COMMANDS.of_kind(command.kind) if command is not None else None
    if spec is not None and not spec.allows(None):
        ctx.reply(render("chat.staff_only"))  # any pending question stays as it was
        return
    if spec is not None and spec.resident_handler is not None and await spec.resident_handler(ctx, command):
        return
    if (dialog is None or dialog.state != AWAIT_LOCATION) and (where := home_words(ctx)) is not None:
        await set_home(ctx, where)
        return
    if dialog is not None and await continue_dialog(ctx):
        return
    if command is not None and command.kind not in {Cmd.DONT_KNOW, Cmd.FOLLOW, Cmd.NEW_REPORT}:
        ctx.reply(render("chat.staff_only"))
        return
    await report(ctx)


# The resident side of the core's commands (their words and who may use them: handlers/kernel/commands.py).
# Each answers whether it handled the message: 关注 / 新报 with no "same as #N?" question pending, and
# 不知道, fall through to the dialog and the report flow.


async def _start(ctx: ChatContext, command: Command) -> bool:
    if command.kind == Cmd.START and command.arg:
        await bind(ctx, command.arg)
        return True
    await ctx.clear_dialog()
    ctx.reply(render("chat.welcome", community=ctx.turn.community.name))
    return True


async def _bind(ctx: ChatContext, command: Command) -> bool:
    await bind(ctx, command.arg or "")
    return True


async def _cancel(ctx: ChatContext, _command: Command) -> bool:
    await cancel(ctx)
    return True


async def _my_cases(ctx: ChatContext, _command: Command) -> bool:
    await list_own_cases(ctx)
    return True


async def _query(ctx: ChatContext, command: Command) -> bool:
    await show_own_case(ctx, command.number)
    return True


async def _rate(ctx: ChatContext, command: Command) -> bool:
    dialog = ctx.dialog
    good = command.kind == Cmd.RATE_GOOD
    if command.number is None:  # several fixed cases waiting: ask which (handlers/cases/rating_choice.py)
        hint = dialog.data.get("case") if dialog and dialog.state == AWAIT_RATING else None
        await rating_choice.bare(ctx, rate, good=good, reason=command.arg, hint=hint)
        return True
    reason = command.arg or rating_choice.kept_reason(ctx, command.number)
    await rate(ctx, command.number, good=good, reason=reason)
    return True


async def _same_or_new(ctx: ChatContext, command: Command) -> bool:
    if ctx.dialog is None or ctx.dialog.state != AWAIT_DUPLICATE:
        return False
    await duplicate_answer(ctx, follow=command.kind == Cmd.FOLLOW)
    return True


def home_words(ctx: ChatContext) -> str | None:
    """Where the resident says they live ("住址 3号楼"), or None. A report that starts the same way
    ("我家在3号楼，楼道里全是小广告") is a report."""
    match = _HOME.match(ctx.text.strip())
    if match is None:
        return None
    if ctx.turn.community.classifier.classify(ctx.message.text or "").is_report:
        return None
    return match.group("where").strip()


async def set_home(ctx: ChatContext, where: str) -> None:
    resident = ctx.actor.resident
    assert resident is not None
    location = ctx.turn.community.locator.locate(where)
    if location is None or location.grid is None:
        ctx.reply(render("resident.home_unknown", where=where))
        return
    resident.home_building = location.matched
    resident.home_grid = location.grid
    grid = ctx.turn.community.grids[location.grid]
    ctx.reply(render("resident.home_set", where=location.matched, grid=grid.name))


async def cancel(ctx: ChatContext) -> None:
    """取消 cancels what is pending, and the reply says what that was (and what remains)."""
    dialog = ctx.dialog
    resident = ctx.actor.resident
    assert resident is not None
    if dialog is None:
        ctx.reply(render("chat.nothing_to_cancel"))
        return
    state, data = dialog.state, dict(dialog.data or {})
    await ctx.clear_dialog()
    if state in {AWAIT_LOCATION, AWAIT_DUPLICATE}:
        withdrawn = []
        for number in pending_cases(data):
            case = await ctx.turn.session.get(Case, number)
            if case is not None and case.status == CaseStatus.NEW and not case.in_triage:
                await case_actions.withdraw(ctx.turn, case, resident.id)
                withdrawn.append(case.id)
        if withdrawn:
            ctx.row.case_id = withdrawn[0]
            ctx.reply(render("report.withdrawn", numbers=numbers_text(withdrawn)), case_id=withdrawn[0])
            return
    elif state == AWAIT_REASON:
        ctx.reply(render("feedback.reason_cancelled", number=data.get("case")))
        return
    elif state == AWAIT_RATING:
        ctx.reply(render("feedback.rating_later", number=data.get("case")))
        return
    elif state == AWAIT_DESCRIPTION:
        ctx.reply(render("report.photo_cancelled"))
        return
    ctx.reply(render("chat.cancelled"))


async def continue_dialog(ctx: ChatContext) -> bool:
    """The resident's answer to our last question; False when the message is not an answer."""
    dialog = ctx.dialog
    assert dialog is not None
    text = _plain(ctx.text)
    if dialog.state == AWAIT_RATING:
        if text in GOOD_REPLIES or text in BAD_REPLIES:
            await rating_choice.bare(
                ctx, rate, good=text in GOOD_REPLIES, reason=None, hint=dialog.data.get("case")
            )
            return True
        return False
    if dialog.state == rating_choice.WHICH:
        return await rating_choice.answer(ctx, rate)
    if dialog.state == AWAIT_REASON:
        await ctx.clear_dialog()
        reason = (ctx.message.text or "").strip() or render("feedback.no_reason")
        await rate(ctx, int(dialog.data["case"]), good=False, reason=reason)
        return True
    if dialog.state == AWAIT_DUPLICATE:
        if text in YES_REPLIES or text in NO_REPLIES:
            await duplicate_answer(ctx, follow=text in YES_REPLIES)
            return True
        await duplicate_answer(ctx, follow=False)  # a new message: route the pending report, then read on
        return False
    if dialog.state == AWAIT_LOCATION:
        return await location_reply(ctx)
    if dialog.state == AWAIT_DESCRIPTION:
        data = dialog.data
        ctx.message = replace(
            ctx.message,
            photo=ctx.message.photo or data.get("photo"),
            latitude=ctx.message.latitude or data.get("latitude"),
            longitude=ctx.message.longitude or data.get("longitude"),
        )
        await ctx.clear_dialog()
    return False


async def bind(ctx: ChatContext, code: str) -> None:
    ctx.reply(await binding.answer(ctx.turn, code, ctx.actor.address))


async def report(ctx: ChatContext, chosen: Classification | None = None) -> None:
    """A new report; ``chosen`` is the category the resident picked when we asked."""
    turn, actor, message = ctx.turn, ctx.actor, ctx.message
    assert actor.resident is not None
    text = message.text or ""
    classification = emergency.flag(chosen or (turn.community.classifier.classify(text) if text else None))
    if classification is not None and classification.ask and chosen is None:
        await category_question.ask(ctx, classification)
        return
    if classification is None or not classification.is_report:
        if (
            classification is not None
            and classification.intent in {"question", "topic"}
            and _VACCINE.search(ctx.text)
        ):
            ctx.reply(render("chat.vaccine_question"))
        elif message.photo or message.has_location:
            await ctx.set_dialog(
                AWAIT_DESCRIPTION,
                {"photo": message.photo, "latitude": message.latitude, "longitude": message.longitude},
            )
            ctx.reply(render("report.ask_description"))
        elif classification is not None and classification.intent == "greeting":
            ctx.reply(render("chat.welcome", community=turn.community.name))
        elif classification is not None and classification.intent == "closure":
            ctx.reply(render("chat.thanks"))
        else:
            ctx.reply(render("chat.not_a_report"))
        return
    if not classification.urgent and await abuse.over_rate_limit(turn, actor.resident):
        ctx.reply(render("chat.rate_limited", limit=turn.community.config.limits.reports_per_hour))
        return
    location = turn.community.locator.locate(text)
    if location is None and message.has_location:
        location = nearest_place(turn.community, message.latitude, message.longitude)  # type: ignore[arg-type]
    if location is None and actor.resident.home_building:  # where they scanned a code or said they live
        location = turn.community.locator.locate(actor.resident.home_building)
    problems = split_problems(ctx, classification, location)
    if len(problems) > 1 and not classification.urgent:  # a danger stays one case, raised at once
        await report_several(ctx, problems)
        return
    case = await cases.open_case(turn, actor, message, classification)
    ctx.row.case_id = case.id
    if classification.urgent:
        await emergency.raise_alarm(ctx, case, classification.urgent, location)
    original = await duplicates.find_open(turn, case.category_code, location, exclude=case.id)
    if original is not None:
        cases.apply_location(case, location)
        time_limits.wait_for_resident(case, turn.now)
        await ctx.set_dialog(AWAIT_DUPLICATE, {"case": case.id, "original": original.id})
        ctx.reply(
            render(
                "report.duplicate_offer",
                number=numbers.label(ctx.turn, case),
                original=original.id,
                category=cases.category_name(turn, original.category_code),
                location=cases.location_label(turn, original),
                status=render(f"status.{original.status}"),
            ),
            case_id=case.id,
            buttons=(
                Button(render("button.follow"), action(Cmd.FOLLOW, original.id)),
                Button(render("button.new_report"), action(Cmd.NEW_REPORT, case.id)),
            ),
        )
        return
    decision = await cases.route_case(turn, case, location)
    if decision.reason == cases.RouteReason.NO_GRID:
        time_limits.wait_for_resident(case, turn.now)
        await ctx.set_dialog(AWAIT_LOCATION, {"case": case.id, "tries": 0})
        ctx.reply(
            render(
                "report.ask_location",
                number=numbers.label(ctx.turn, case),
                category=cases.category_name(turn, case.category_code),
                examples=place_examples(ctx),
            ),
            case_id=case.id,
        )


async def rate(ctx: ChatContext, number: object, *, good: bool, reason: str | None) -> None:
    turn = ctx.turn
    resident = ctx.actor.resident
    assert resident is not None
    case = (
        await turn.session.get(Case, int(number))
        if isinstance(number, int | str) and str(number).isdigit()
        else None
    )
    if case is None or case.reporter_id != resident.id:
        ctx.reply(render("feedback.which_case"))
        return
    target = CaseStatus.CONFIRMED if good else CaseStatus.ASSIGNED
    if case.status != CaseStatus.RESOLVED or not can_move(case, target):
        ctx.reply(
            render(
                "feedback.not_resolved",
                number=numbers.label(ctx.turn, case),
                status=render(f"status.{case.status}"),
            )
        )
        return
    if ctx.dialog is not None and ctx.dialog.state in {AWAIT_RATING, AWAIT_REASON, rating_choice.WHICH}:
        await ctx.clear_dialog()
    if good:
        await feedback.confirm(turn, case, rating="good", by=resident.id)
        ctx.reply(render("feedback.thanks", number=numbers.label(ctx.turn, case)), case_id=case.id)
        return
    if not reason:
        await ctx.set_dialog(AWAIT_REASON, {"case": case.id})
        ctx.reply(render("feedback.ask_reason", number=numbers.label(ctx.turn, case)), case_id=case.id)
        return
    await feedback.rate_bad(turn, case, resident.id, reason)


for _kind, _handler in {
    Cmd.START: _start,
    Cmd.HELP: _start,
    Cmd.BIND: _bind,
    Cmd.CANCEL: _cancel,
    Cmd.MY_CASES: _my_cases,
    Cmd.QUERY: _query,
    Cmd.RATE_GOOD: _rate,
    Cmd.RATE_BAD: _rate,
    Cmd.FOLLOW: _same_or_new,
    Cmd.NEW_REPORT: _same_or_new,
}.items():
    COMMANDS.bind(_kind, resident=_handler)
