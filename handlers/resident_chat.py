"""What a resident can do in the chat: report a problem (and answer "where is it?" or "is it the
same as #N?"), list and query their cases, rate a fix, bind a staff account with an invite code."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from handlers import abuse, binding, cases, category_question, deadlines, duplicates, emergency, feedback
from handlers.classify import Classification
from handlers.commands import Cmd, action
from handlers.features import ChatContext
from handlers.geo import nearest_place
from handlers.lifecycle import can_move, record
from handlers.outbox import Button
from messages import render
from storage.models import ActorType, Case, CaseStatus

AWAIT_LOCATION = "await_location"
AWAIT_DESCRIPTION = "await_description"
AWAIT_DUPLICATE = "await_duplicate"
AWAIT_RATING = "await_rating"
AWAIT_REASON = "await_reason"
LOCATION_TRIES = 2
LIST_LIMIT = 10
GOOD_REPLIES = frozenset({"1", "满意", "好", "好评", "很好", "非常满意", "满意了", "可以"})
BAD_REPLIES = frozenset({"2", "不满意", "差评", "没解决", "没有解决", "没处理", "不行"})
YES_REPLIES = frozenset({"1", "是", "是的", "对", "关注", "跟进", "好"})
NO_REPLIES = frozenset({"2", "不是", "否", "新报", "不一样"})


def _plain(text: str) -> str:
    return text.strip().rstrip("。.!！~～").strip()


async def handle(ctx: ChatContext) -> None:
    resident = ctx.actor.resident
    assert resident is not None
    command, dialog = ctx.command, ctx.dialog
    if resident.blocked:
        ctx.reply(render("chat.received"))  # stored, not routed, and nothing to argue with
        return
    kind = command.kind if command else None
    if kind == Cmd.START and command and command.arg:
        await bind(ctx, command.arg)
        return
    if kind in {Cmd.START, Cmd.HELP}:
        await ctx.clear_dialog()
        ctx.reply(render("chat.welcome", community=ctx.turn.community.name))
        return
    if kind == Cmd.BIND and command and command.arg:
        await bind(ctx, command.arg)
        return
    if kind == Cmd.CANCEL:
        await ctx.clear_dialog()
        ctx.reply(render("chat.cancelled"))
        return
    if kind == Cmd.MY_CASES:
        await list_own_cases(ctx)
        return
    if kind == Cmd.QUERY:
        await show_own_case(ctx, command.number if command else None)
        return
    if kind in {Cmd.RATE_GOOD, Cmd.RATE_BAD}:
        assert command is not None
        number = command.number or (
            dialog.data.get("case") if dialog and dialog.state == AWAIT_RATING else None
        )
        await rate(ctx, number, good=kind == Cmd.RATE_GOOD, reason=command.arg)
        return
    if kind in {Cmd.FOLLOW, Cmd.NEW_REPORT} and dialog is not None and dialog.state == AWAIT_DUPLICATE:
        await duplicate_answer(ctx, follow=kind == Cmd.FOLLOW)
        return
    if dialog is not None and await continue_dialog(ctx):
        return
    if command is not None and kind not in {Cmd.DONT_KNOW, Cmd.FOLLOW, Cmd.NEW_REPORT}:
        ctx.reply(render("chat.staff_only"))
        return
    await report(ctx)


async def continue_dialog(ctx: ChatContext) -> bool:
    """The resident's answer to our last question; False when the message is not an answer."""
    dialog = ctx.dialog
    assert dialog is not None
    text = _plain(ctx.text)
    if dialog.state == AWAIT_RATING:
        if text in GOOD_REPLIES or text in BAD_REPLIES:
            await rate(ctx, int(dialog.data["case"]), good=text in GOOD_REPLIES, reason=None)
            return True
        return False
    if dialog.state == AWAIT_REASON:
        await ctx.clear_dialog()
        await rate(ctx, int(dialog.data["case"]), good=False, reason=ctx.text or render("feedback.no_reason"))
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
    staff = await binding.redeem(ctx.turn.session, code, ctx.actor.address, ctx.turn.now)
    if staff is None:
        ctx.reply(render("binding.failed"))
        return
    ctx.reply(render("binding.ok", name=staff.name, role=cases.role_label(staff.role)))


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
        if message.photo or message.has_location:
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
    case = await cases.open_case(turn, actor, message, classification)
    ctx.row.case_id = case.id
    location = turn.community.locator.locate(text)
    if location is None and message.has_location:
        location = nearest_place(turn.community, message.latitude, message.longitude)  # type: ignore[arg-type]
    if classification.urgent:
        await emergency.raise_alarm(ctx, case, classification.urgent, location)
    original = await duplicates.find_open(turn, case.category_code, location, exclude=case.id)
    if original is not None:
        cases.apply_location(case, location)
        deadlines.wait_for_resident(case, turn.now)
        await ctx.set_dialog(AWAIT_DUPLICATE, {"case": case.id, "original": original.id})
        ctx.reply(
            render(
                "report.duplicate_offer",
                number=case.id,
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
        deadlines.wait_for_resident(case, turn.now)
        await ctx.set_dialog(AWAIT_LOCATION, {"case": case.id, "tries": 0})
        ctx.reply(
            render(
                "report.ask_location",
                number=case.id,
                category=cases.category_name(turn, case.category_code),
                examples=place_examples(ctx),
            ),
            case_id=case.id,
        )


async def duplicate_answer(ctx: ChatContext, *, follow: bool) -> None:
    dialog = ctx.dialog
    assert dialog is not None
    turn = ctx.turn
    await ctx.clear_dialog()
    case = await turn.session.get(Case, int(dialog.data["case"]))
    original = await turn.session.get(Case, int(dialog.data["original"]))
    if case is None or case.status != CaseStatus.NEW or case.in_triage:
        return
    ctx.row.case_id = case.id
    if follow and original is not None and original.status in {s.value for s in cases.OPEN_STATUSES}:
        await duplicates.follow(turn, original, ctx.actor)
        await cases.close(turn, case, None, "duplicate", None, duplicate_of=original.id, notify=False)
        ctx.reply(render("report.following", original=original.id), case_id=original.id)
        return
    location = None
    if case.grid_code is not None or case.location_text is not None:
        location = cases.LocationMatch(case.grid_code, case.location_text or "", case.building, case.place)
    await cases.route_case(turn, case, location)


async def location_reply(ctx: ChatContext) -> bool:
    """The answer to "where is it?". Returns False when the message is not an answer."""
    dialog = ctx.dialog
    assert dialog is not None
    turn, message = ctx.turn, ctx.message
    case = await turn.session.get(Case, int(dialog.data["case"]))
    if case is None or case.status != CaseStatus.NEW or case.in_triage:
        await ctx.clear_dialog()
        return False
    ctx.row.case_id = case.id
    text = message.text or ""
    location = turn.community.locator.locate(text) if text else None
    if location is None and message.has_location:
        location = nearest_place(turn.community, message.latitude, message.longitude)  # type: ignore[arg-type]
        if location is None:
            case.latitude, case.longitude = message.latitude, message.longitude
    if ctx.command is not None and ctx.command.kind == Cmd.DONT_KNOW:
        tries = LOCATION_TRIES
    else:
        tries = int(dialog.data.get("tries", 0)) + 1
    if location is None and tries < LOCATION_TRIES:
        dialog.data = {**dialog.data, "tries": tries}
        deadlines.wait_for_resident(case, turn.now)
        ctx.reply(render("report.ask_location_again", examples=place_examples(ctx)))
        return True
    await ctx.clear_dialog()
    record(
        turn.session,
        case,
        action="location_given",
        actor_type=ActorType.RESIDENT,
        actor_id=str(ctx.actor.resident.id) if ctx.actor.resident else None,
        at=turn.now,
        note=text or None,
    )
    if location is None:
        await cases.send_to_triage(turn, case, "no_location")
    else:
        await cases.route_case(turn, case, location)
    return True


def place_examples(ctx: ChatContext) -> str:
    places = [p for g in ctx.turn.community.grids.values() for p in g.places][:2]
    return "、".join(f"“{p}”" for p in places) or render("report.place_example")


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
        ctx.reply(render("feedback.not_resolved", number=case.id, status=render(f"status.{case.status}")))
        return
    if ctx.dialog is not None and ctx.dialog.state in {AWAIT_RATING, AWAIT_REASON}:
        await ctx.clear_dialog()
    if good:
        await feedback.confirm(turn, case, rating="good", by=resident.id)
        ctx.reply(render("feedback.thanks", number=case.id), case_id=case.id)
        return
    if not reason:
        await ctx.set_dialog(AWAIT_REASON, {"case": case.id})
        ctx.reply(render("feedback.ask_reason", number=case.id), case_id=case.id)
        return
    await feedback.rate_bad(turn, case, resident.id, reason)


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
    case = await ctx.turn.session.get(Case, number) if number is not None else None
    resident = ctx.actor.resident
    if case is None or resident is None or case.reporter_id != resident.id:
        ctx.reply(render("resident.case_not_found", number=number))
        return
    ctx.reply(case_detail(ctx, case))


def case_line(ctx: ChatContext, case: Case) -> str:
    local = case.created_at.astimezone(ctx.turn.community.timezone)
    return render(
        "case.line",
        number=case.id,
        category=cases.category_name(ctx.turn, case.category_code),
        status=render(f"status.{case.status}"),
        date=local.strftime("%m-%d %H:%M"),
    )


def case_detail(ctx: ChatContext, case: Case) -> str:
    turn = ctx.turn
    local = case.created_at.astimezone(turn.community.timezone)
    detail = render(
        "case.detail",
        number=case.id,
        category=cases.category_name(turn, case.category_code),
        status=render(f"status.{case.status}"),
        location=cases.location_label(turn, case),
        date=local.strftime("%Y-%m-%d %H:%M"),
        text=case.text,
    )
    if case.due_at is not None and case.status in {s.value for s in cases.OPEN_STATUSES}:
        detail += "\n" + render("case.detail_due", due=deadlines.local_time(turn.community, case.due_at))
    if case.resolution_note:
        detail += "\n" + render("case.detail_note", note=case.resolution_note)
    if case.referral:
        detail += "\n" + render("case.detail_referral", referral=case.referral)
    if case.duplicate_of:
        detail += "\n" + render("case.detail_duplicate", original=case.duplicate_of)
    return detail
