"""One message naming several problems ("楼道有小广告，而且楼下下水道也堵了"): telling them apart, and
a case for each."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.cases import cases, time_limits
from handlers.cases.lifecycle import record
from handlers.cases.models import ActorType, Case
from handlers.cases.resident_questions import AWAIT_LOCATION, numbers_text, place_examples
from handlers.community.classify import OTHER, Classification
from handlers.community.location import LocationMatch
from handlers.community.other_problem import clauses, other_clause
from handlers.kernel.features import ChatContext
from messages import render


@dataclass(frozen=True)
class Problem:
    """One problem of a report: its category, the words that name it, and where it is."""

    classification: Classification
    text: str
    location: LocationMatch | None


def _other_clause(ctx: ChatContext, text: str, classification: Classification) -> str | None:
    return other_clause(ctx.turn.community.classifier, text, classification)


def split_problems(
    ctx: ChatContext, classification: Classification, location: LocationMatch | None
) -> list[Problem]:
    """Each distinct problem the message names, primary first. A further category is a problem of its
    own only when some clause is mainly about it ("…小广告，而且楼下下水道也堵了"), not when its word
    merely says where ("垃圾站旁边苍蝇嗡嗡的" is one problem: flies). The primary problem keeps the
    whole text; each other gets the clause that names it. Each is placed where its clause says, else
    where the message says."""
    text = ctx.message.text or ""
    codes = [c for c in classification.categories if c != OTHER]
    other = _other_clause(ctx, text, classification)
    if other is not None and len(codes) < 2:
        return _with_other(ctx, classification, text, location, other)
    if len(codes) < 2:
        return [Problem(classification, text, location)]
    classifier = ctx.turn.community.classifier
    locator = ctx.turn.community.locator
    mains = [(part, classifier.classify(part).category) for part in clauses(text)]
    found: list[tuple[str, str | None]] = []  # (category, the clause mainly about it)
    for n, code in enumerate(codes):
        clause = next((part for part, main in mains if main == code), None)
        if n == 0 or clause is not None:
            found.append((code, clause))
    if len(found) < 2:
        return [Problem(classification, text, location)]
    problems = []
    for n, (code, clause) in enumerate(found):
        where = (locator.locate(clause) if clause else None) or location
        own = Classification(
            text=text if n == 0 else clause or text,
            category=code,
            categories=(code,),
            confidence=classification.confidence,
            keywords=classification.keywords,
        )
        problems.append(Problem(own, own.text, where))
    return problems


def _with_other(
    ctx: ChatContext, classification: Classification, text: str, location: LocationMatch | None, clause: str
) -> list[Problem]:
    """The known problem (with the whole text) and the other one its clause names, placed where it says."""
    where = ctx.turn.community.locator.locate(clause) or location
    other = Classification(text=clause, category=OTHER, categories=(), confidence=classification.confidence)
    return [Problem(classification, text, location), Problem(other, clause, where)]


async def report_several(ctx: ChatContext, problems: list[Problem]) -> None:
    """One message, several problems: a case each (linked to the others by an event), each routed to
    its own worker, one acknowledgement listing every number. Unplaced ones share one question."""
    turn, actor = ctx.turn, ctx.actor
    opened = [
        (await cases.open_case(turn, actor, ctx.message, p.classification, text=p.text), p) for p in problems
    ]
    ids = [case.id for case, _ in opened]
    ctx.row.case_id = ids[0]
    for case, _ in opened:
        record(
            turn.session,
            case,
            action="linked",
            actor_type=ActorType.SYSTEM,
            actor_id=None,
            at=turn.now,
            data={"siblings": [n for n in ids if n != case.id]},
        )
    unplaced: list[Case] = []
    for case, problem in opened:
        decision = await cases.route_case(turn, case, problem.location, ack=False)
        if decision.reason == cases.RouteReason.NO_GRID:
            time_limits.wait_for_resident(case, turn.now)
            unplaced.append(case)
    lines = [await cases.ack_line(turn, case) for case, _ in opened if case not in unplaced]
    text = render("report.ack_several", count=len(ids), numbers=numbers_text(ids))
    if lines:
        text += "\n" + "\n".join(lines)
    if unplaced:
        await ctx.set_dialog(
            AWAIT_LOCATION, {"case": unplaced[0].id, "cases": [c.id for c in unplaced], "tries": 0}
        )
        text += "\n" + render(
            "report.ask_location_several",
            numbers=numbers_text([c.id for c in unplaced]),
            examples=place_examples(ctx),
        )
    ctx.reply(text, case_id=ids[0])
