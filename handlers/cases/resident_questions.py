"""The questions the bot asks a resident and then waits on (the dialog states), and the answers to the
two a report can lead to: "where is it?" and "is it the same as #N?"."""

from __future__ import annotations

from handlers.cases import case_actions, cases, duplicates, time_limits
from handlers.cases.lifecycle import record
from handlers.cases.models import ActorType, Case, CaseStatus
from handlers.community.geo import nearest_place
from handlers.kernel.commands import Cmd
from handlers.kernel.features import ChatContext
from messages import render

AWAIT_LOCATION = "await_location"
AWAIT_DESCRIPTION = "await_description"
AWAIT_DUPLICATE = "await_duplicate"
AWAIT_RATING = "await_rating"
AWAIT_REASON = "await_reason"
LOCATION_TRIES = 2


def pending_cases(data: dict[str, object]) -> list[int]:
    """The cases a location or duplicate question is about (several when one message named several
    problems)."""
    listed = data.get("cases")
    numbers = listed if isinstance(listed, list) else [data.get("case")]
    return [int(n) for n in numbers if isinstance(n, int | str) and str(n).isdigit()]


def numbers_text(numbers: list[int]) -> str:
    return "、".join(f"#{n}" for n in numbers)


def place_examples(ctx: ChatContext) -> str:
    places = [p for g in ctx.turn.community.grids.values() for p in g.places][:2]
    return "、".join(f"“{p}”" for p in places) or render("report.place_example")


async def duplicate_answer(ctx: ChatContext, *, follow: bool) -> None:
    dialog = ctx.dialog
    assert dialog is not None
    turn = ctx.turn
    data = dict(dialog.data)
    await ctx.clear_dialog()
    case = await turn.session.get(Case, int(data["case"]))
    original = await turn.session.get(Case, int(data["original"]))
    if case is None or case.status != CaseStatus.NEW or case.in_triage:
        return
    ctx.row.case_id = case.id
    if follow and original is not None and original.status in {s.value for s in cases.OPEN_STATUSES}:
        await duplicates.follow(turn, original, ctx.actor)
        await case_actions.close(turn, case, None, "duplicate", None, duplicate_of=original.id, notify=False)
        ctx.reply(render("report.following", original=original.id), case_id=original.id)
        return
    await route_pending_report(ctx, data)


async def route_pending_report(ctx: ChatContext, data: dict[str, object]) -> None:
    """The report we asked "same as #N?" about, routed as a new one (the answer was no, or never came)."""
    turn = ctx.turn
    case = await turn.session.get(Case, int(str(data["case"])))
    if case is None or case.status != CaseStatus.NEW or case.in_triage:
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
    waiting = [
        c
        for c in [await turn.session.get(Case, n) for n in pending_cases(dialog.data)]
        if c is not None and c.status == CaseStatus.NEW and not c.in_triage
    ]
    if not waiting:
        await ctx.clear_dialog()
        return False
    case = waiting[0]
    ctx.row.case_id = case.id
    text = message.text or ""
    location = turn.community.locator.locate_answer(text, case.text or "") if text else None
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
        for each in waiting:
            time_limits.wait_for_resident(each, turn.now)
        ctx.reply(render("report.ask_location_again", examples=place_examples(ctx)))
        return True
    await ctx.clear_dialog()
    several = len(waiting) > 1
    # "8号楼门口垃圾堆了好几天" answers where and says more about the problem: the worker reads it too.
    addition = text.strip() if text and _says_more(ctx, text, case) else ""
    for each in waiting:
        if addition and addition not in (each.text or ""):
            each.text = f"{each.text}\n{render('report.resident_addition', text=addition)}"
        if each.latitude is None and case.latitude is not None:
            each.latitude, each.longitude = case.latitude, case.longitude
        record(
            turn.session,
            each,
            action="location_given",
            actor_type=ActorType.RESIDENT,
            actor_id=str(ctx.actor.resident.id) if ctx.actor.resident else None,
            at=turn.now,
            note=text or None,
        )
        if location is None:
            await cases.send_to_triage(turn, each, "no_location", ack=not several)
        else:
            await cases.route_case(turn, each, location, ack=not several)
    if several:
        numbers = [each.id for each in waiting]
        lines = [await cases.ack_line(turn, each) for each in waiting]
        header = render("report.ack_several", count=len(numbers), numbers=numbers_text(numbers))
        ctx.reply("\n".join([header, *lines]), case_id=case.id)
    return True


def _says_more(ctx: ChatContext, text: str, case: Case) -> bool:
    """Whether an answer to "where?" describes the same problem again, not only a place."""
    found = ctx.turn.community.classifier.classify(text)
    named = set(found.categories) or {found.category}
    return not found.ask and bool(named & {case.category_code, *case.categories})
