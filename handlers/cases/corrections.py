"""Staff corrections teach the classifier: ``改类 12 垃圾`` (grid leaders and admins) changes a case's
category, sends it to the grid's worker for the new category and keeps (text, old, new) as a labelled
example; changing the category of a case waiting in triage is the triage assignment that names its
category. Residents' answers to "which kind of problem?" are kept the same way. ``export_rows`` turns
the examples into the training corpus's format, text masked.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases import cases, numbers
from handlers.cases.case_access import case_for_action
from handlers.cases.classify_models import ExampleSource, LabelledExample
from handlers.cases.lifecycle import record
from handlers.cases.models import OPEN_STATUSES, ActorType, Case, CaseEvent
from handlers.community.classify import OTHER
from handlers.community.routing import grid_handler
from handlers.kernel.commands import Command
from handlers.kernel.context import Turn
from handlers.kernel.features import ChatContext
from handlers.kernel.privacy import mask_text
from handlers.kernel.textnorm import fold
from messages import render
from storage.models import Staff

CORRECTION_SLICE = "correction"
ANSWER_SLICE = "answer"  # a resident's own answer to "which kind of problem?"
NO_CATEGORY = "none"  # the corpus's label of a message that is no report


async def record_example(
    turn: Turn,
    *,
    source: ExampleSource,
    text: str,
    category: str | None,
    actor_id: str | None,
    previous: str | None = None,
    case_id: int | None = None,
    urgent_kind: str | None = None,
) -> None:
    turn.session.add(
        LabelledExample(
            source=source,
            text=text,
            category=category,
            previous=previous,
            case_id=case_id,
            actor_id=actor_id,
            urgent_kind=urgent_kind,
            created_at=turn.now,
        )
    )


def category_code(turn: Turn, word: str) -> str | None:
    """A category named by its code ("garbage"), its Chinese name ("垃圾/乱堆放"), a part of the
    name between slashes ("垃圾", "小广告") or one of its keywords ("老鼠"); 其他 is "other"."""
    word = fold(word).strip().lower()
    if not word:
        return None
    names = turn.community.category_names
    if word in names:
        return word
    if word in {OTHER, "其他", "其他问题", "其它"}:
        return OTHER
    for code, name in names.items():
        parts = {fold(p).strip().lower() for p in name.replace("（", "/").replace("）", "/").split("/")}
        if word == fold(name).lower() or word in parts - {""}:
            return code
    matches = [code for code, name in names.items() if word in fold(name).lower()]
    if not matches:
        matches = [c.code for c in turn.community.categories if c.enabled and word in c.keywords]
    return matches[0] if len(matches) == 1 else None


def _known(turn: Turn) -> str:
    return "、".join([*turn.community.category_names.values(), render("category.other")])


async def _urgent_kind(session: AsyncSession, case: Case) -> str | None:
    return await session.scalar(
        select(CaseEvent.note).where(CaseEvent.case_id == case.id, CaseEvent.action == "urgent").limit(1)
    )


async def reclassify(ctx: ChatContext, command: Command) -> None:
    turn = ctx.turn
    staff = ctx.actor.staff
    assert staff is not None
    if command.number is None or not command.arg:
        ctx.reply(render("correction.usage", known=_known(turn)))
        return
    new = category_code(turn, command.arg)
    if new is None:
        ctx.reply(render("correction.unknown_category", category=command.arg, known=_known(turn)))
        return
    case = await case_for_action(ctx, command.number)
    if case is None:
        return
    if case.status not in {s.value for s in OPEN_STATUSES}:
        ctx.reply(
            render(
                "correction.closed",
                number=numbers.label(ctx.turn, case),
                status=render(f"status.{case.status}"),
            )
        )
        return
    old = case.category_code
    if old == new:
        ctx.reply(
            render(
                "correction.same",
                number=numbers.label(ctx.turn, case),
                category=cases.category_name(turn, new),
            )
        )
        return
    from_triage = case.in_triage
    case.category_code = new
    case.categories = [new, *(c for c in case.categories if c != new)]
    record(
        turn.session,
        case,
        action="reclassified",
        actor_type=ActorType.STAFF,
        actor_id=staff.id,
        at=turn.now,
        data={"from": old, "to": new},
    )
    await record_example(
        turn,
        source=ExampleSource.TRIAGE if from_triage else ExampleSource.RECLASSIFY,
        text=case.text,
        category=new,
        previous=old,
        case_id=case.id,
        actor_id=staff.id,
        urgent_kind=await _urgent_kind(turn.session, case),
    )
    routed = await _reroute(ctx, case, staff)
    ctx.reply(
        render(
            "correction.ok",
            number=numbers.label(ctx.turn, case),
            old=cases.category_name(turn, old),
            new=cases.category_name(turn, new),
            routed=routed,
        ),
        case_id=case.id,
    )


async def _reroute(ctx: ChatContext, case: Case, by: Staff) -> str:
    """Give the case to whoever handles the new category in its grid; tell the resident only when
    the person handling it changes (they were told a name)."""
    turn = ctx.turn
    grid = turn.community.grids.get(case.grid_code) if case.grid_code else None
    target = None
    if grid is not None and case.category_code is not None:
        counts = await cases.open_counts(turn, [w.staff for w in grid.workers])
        handler = grid_handler(turn.community, grid.code, case.category_code, counts)
        target = handler[0] if handler is not None else None
    if target is None:
        current = turn.community.staff.get(case.assignee_id or "")
        if current is not None:
            return render("correction.kept", name=current.name)
        if not case.in_triage:
            await cases.send_to_triage(turn, case, "unclassified")
            return render("correction.triage")
        return render("correction.still_triage", number=numbers.label(ctx.turn, case))
    if target == case.assignee_id:
        return render("correction.kept", name=turn.community.staff[target].name)
    first = case.assignee_id is None
    await cases.assign(turn, case, target, by=by, reason="reclassified")
    handler = turn.community.staff[target]
    if first:
        await cases.acknowledge(turn, case)  # a triaged case: the resident learns who has it now
    else:
        to = cases.reporter_address(case)
        if to is not None:
            turn.say(
                to,
                render(
                    "correction.resident",
                    number=numbers.label(ctx.turn, case),
                    category=cases.category_name(turn, case.category_code),
                    role=cases.role_label(handler.role),
                    handler=handler.name,
                ),
                kind="status",
                case_id=case.id,
            )
    return render("correction.routed", name=handler.name)


def export_rows(examples: Iterable[LabelledExample]) -> list[str]:
    """One corpus line per example: ``labels<TAB>slice<TAB>urgent<TAB>text`` (the training corpus's
    format; slice ``correction``, or ``answer`` for a resident's answer), text masked, on one line."""
    lines = []
    for example in examples:
        label = example.category or NO_CATEGORY
        part = ANSWER_SLICE if example.source == ExampleSource.RESIDENT else CORRECTION_SLICE
        text = " ".join(mask_text(example.text).split())
        lines.append("\t".join((label, part, "u" if example.urgent_kind else "-", text)))
    return lines


async def load_corrections(
    session: AsyncSession, *, include_residents: bool = False
) -> list[LabelledExample]:
    sources = [ExampleSource.RECLASSIFY, ExampleSource.TRIAGE]
    if include_residents:
        sources.append(ExampleSource.RESIDENT)
    rows = await session.scalars(
        select(LabelledExample).where(LabelledExample.source.in_(sources)).order_by(LabelledExample.id)
    )
    return list(rows)
