"""A rating without a case number ("1", "2", 满意, 不满意 …) when the resident has several fixed cases
waiting for their verdict: nothing is rated by guess. The bot asks which case the verdict is for (the
case numbers, newest fix first; Telegram also gets a button per case), then rates that one, and the
reply names it. With one case waiting, that one is rated at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from handlers.cases import cases, numbers
from handlers.cases.models import Case, CaseStatus
from handlers.kernel.commands import Cmd, action
from handlers.kernel.features import ChatContext
from handlers.kernel.outbox import Button
from handlers.kernel.textnorm import fold
from messages import render

WHICH = "await_rating_which"
MAX_LISTED = 6


async def waiting(ctx: ChatContext) -> list[Case]:
    """The resident's fixed cases waiting for their verdict, newest fix first."""
    resident = ctx.actor.resident
    assert resident is not None
    rows = await ctx.turn.session.scalars(
        select(Case)
        .where(Case.reporter_id == resident.id, Case.status == CaseStatus.RESOLVED)
        .order_by(Case.resolved_at.desc(), Case.id.desc())
        .limit(MAX_LISTED)
    )
    return list(rows)


# The resident flow's rating (``resident_chat.rate``), which calls this module: handed in, not imported.
Rate = Callable[..., Awaitable[None]]


async def bare(ctx: ChatContext, rate: Rate, *, good: bool, reason: str | None, hint: object = None) -> None:
    """A verdict with no case number; ``hint`` is the case the pending rating question was about."""
    found = await waiting(ctx)
    if len(found) < 2:
        number = found[0].id if found else hint
        await rate(ctx, number, good=good, reason=reason)
        return
    data = {"good": good, "reason": reason, "cases": [c.id for c in found]}
    await ctx.set_dialog(WHICH, data)
    ctx.reply(await question(ctx, data), buttons=_buttons(ctx, found, good))


def _buttons(ctx: ChatContext, found: list[Case], good: bool) -> tuple[Button, ...]:
    kind = Cmd.RATE_GOOD if good else Cmd.RATE_BAD
    return tuple(
        Button(f"#{c.id} {cases.category_name(ctx.turn, c.category_code)}", action(kind, c.id)) for c in found
    )


async def question(ctx: ChatContext, data: dict[str, object]) -> str:
    """Which case is the verdict for? (also asked again after a status question)"""
    lines = []
    for number in data.get("cases") or []:  # type: ignore[union-attr]
        case = await ctx.turn.session.get(Case, int(number))
        if case is None:
            continue
        lines.append(
            render(
                "rating.which_line",
                number=numbers.label(ctx.turn, case),
                category=cases.category_name(ctx.turn, case.category_code),
                location=cases.location_label(ctx.turn, case),
                note=case.resolution_note or "",
            )
        )
    verdict = render("rating.verdict_good" if data.get("good") else "rating.verdict_bad")
    return render("rating.which", count=len(lines), verdict=verdict, lines="\n".join(lines))


def _chosen(reply: str, numbers: list[int]) -> int | None:
    """ "3", "#3", "3号", "第2个" → a case of the list: its number, or (when the digit is no listed
    number) its place in the list."""
    core = fold(reply).strip().rstrip("。.!！").strip().lstrip("#＃").removeprefix("第")
    core = core.removesuffix("个").removesuffix("号").removesuffix("案件").strip()
    if not (core.isascii() and core.isdigit()):
        return None
    digit = int(core)
    if digit in numbers:
        return digit
    return numbers[digit - 1] if 1 <= digit <= len(numbers) else None


async def answer(ctx: ChatContext, rate: Rate) -> bool:
    """The reply to "which case?"; False when the message is something else (then it is read on its
    own and the question is dropped: the cases stay waiting, to be rated with their number)."""
    dialog = ctx.dialog
    assert dialog is not None
    data = dict(dialog.data or {})
    numbers = [int(n) for n in data.get("cases") or []]
    number = _chosen(ctx.text, numbers)
    await ctx.clear_dialog()
    if number is None:
        return False
    reason = data.get("reason")
    await rate(ctx, number, good=bool(data.get("good")), reason=reason if isinstance(reason, str) else None)
    return True


def kept_reason(ctx: ChatContext, number: int | None) -> str | None:
    """The reason given with 不满意 before the case was chosen (by its button)."""
    dialog = ctx.dialog
    if dialog is None or dialog.state != WHICH or number not in (dialog.data or {}).get("cases", []):
        return None
    reason = dialog.data.get("reason")
    return reason if isinstance(reason, str) else None
