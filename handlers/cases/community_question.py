"""Which community a resident is in, when the deployment serves several (a 街道).

``place`` (the composition's hook, before the message is read as a command) sets ``Turn.community``:
for a resident, the community the message names ("锦绣园3号楼…", remembered), else the one remembered
(``residents.community_id``), else the one of their latest report (remembered); for staff, the
community a case number names ("接单 HPL-12") or their only community. It also reads coded case
numbers ("HPL-12", "hpl12") as the number and its community (``numbers.read_coded``).

When a resident's community is still unknown, a report is not filed in a guessed one: the bot asks
(``CommunityQuestion``: a numbered list, buttons on Telegram). The report stays stored (its inbound
row) and is filed in the chosen community once answered; the answer is remembered. A message that is
not an answer is never swallowed: a command goes its way (the question stays), a further report joins
the one waiting. ``换小区`` / ``换社区`` changes the community (asks again, or names it: "换小区 锦绣园").
A deployment of one community never asks and behaves as before.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import select

from handlers.cases import numbers
from handlers.cases.category_question import _digit
from handlers.cases.models import Case
from handlers.cases.resident_questions import AWAIT_LOCATION, location_reply, pending_cases
from handlers.community.scenes import Scanned
from handlers.kernel.commands import Cmd, action, parse_command
from handlers.kernel.community_port import CommunityPort
from handlers.kernel.context import Turn
from handlers.kernel.features import ChatContext
from handlers.kernel.inbound import Inbound
from handlers.kernel.outbox import Button
from handlers.kernel.people import Actor
from handlers.kernel.textnorm import fold
from messages import render
from storage.models import InboundMessage, Resident

STATE = "question_community"
TOKEN = "c"  # the CHOOSE buttons of this question carry "c<token>:<digit>"
QUESTION_LIFETIME = timedelta(hours=24)
MAX_WAITING = 5  # reports kept waiting for the answer
_CHANGE = re.compile(r"^\s*(?:切换|换个?|更换)(?:小区|社区)\s*[:：]?\s*(?P<rest>.*)$", re.S)


async def place(turn: Turn, actor: Actor, message: Inbound) -> Inbound:
    street = turn.services.street
    if len(street) < 2:
        return message
    text = message.text or ""
    reworded, scope = numbers.read_coded(turn, text)
    # a resident's report keeps its words ("JXY3号楼…"); a command's case number is read ("查询 JXY-3")
    if scope is not None and (actor.staff is not None or parse_command(reworded) is not None):
        turn.number_scope = scope
        message = replace(message, text=reworded)
    else:
        scope = None
    if actor.staff is not None:
        theirs = street.of_staff(actor.staff.id)
        turn.community = scope or (theirs[0] if len(theirs) == 1 else None)
        return message
    resident = actor.resident
    assert resident is not None
    named = street.named_in(text) if text and not _CHANGE.match(text) else None
    if named is not None:
        await remember(turn, resident, named)
        turn.community = named
        return message
    turn.community = await _remembered(turn, resident)
    return message


async def _remembered(turn: Turn, resident: Resident) -> CommunityPort | None:
    if resident.community_id is not None:
        found = await numbers.community_of(turn, resident.community_id)
        if found is not None:
            return found
    latest = await turn.session.scalar(
        select(Case.community_id)
        .where(Case.reporter_id == resident.id, Case.community_id.is_not(None))
        .order_by(Case.id.desc())
        .limit(1)
    )
    found = await numbers.community_of(turn, latest)
    if found is not None:
        await remember(turn, resident, found)
    return found


async def remember(turn: Turn, resident: Resident, community: CommunityPort) -> None:
    """Remember the resident's community; moving to another one drops the home (building, grid) kept
    in the old one (its "3号楼" is not the new one's)."""
    row = await numbers.row_id(turn, community)
    if resident.community_id is not None and row != resident.community_id:
        resident.home_building = resident.home_grid = None
    resident.community_id = row


# What files a waiting report once the community is known: the residents' flow (handed in).
ResidentFlow = Callable[[ChatContext], Awaitable[None]]


@dataclass
class CommunityQuestion:
    """The chat feature asking and answering "which community are you in?"."""

    resident_flow: ResidentFlow
    name: str = "community"

    async def handle(self, ctx: ChatContext) -> bool:
        if ctx.actor.resident is None or not ctx.turn.services.several:
            return False
        dialog, command = ctx.dialog, ctx.command
        pending = dialog is not None and dialog.state == STATE
        if pending and dialog.updated_at + QUESTION_LIFETIME < ctx.turn.now:  # type: ignore[union-attr]
            await ctx.clear_dialog()
            pending = False
        if command is not None and command.kind == Cmd.CHOOSE and (command.arg or "").startswith(TOKEN):
            return await self._button(ctx, pending)
        change = _CHANGE.match(ctx.text) if command is None else None
        if change is not None:
            return await self._change(ctx, change.group("rest").strip(), pending)
        if pending:
            return await self._pending(ctx)
        if not ctx.turn.community_known and command is None and _is_report(ctx):
            await ask(ctx, [ctx.row.id])
            return True
        return False

    async def scanned(self, ctx: ChatContext, community: CommunityPort, scanned: Scanned) -> None:
        """After a resident scanned a code of ``community`` (home set, greeting said): remember the
        community (a code of another one moves them, as 换小区 does) and let the scan answer what the
        bot is waiting for: "which community?" (the waiting reports are filed there, at the scanned
        building) and "where is it?" (the scanned building or place, when the case is of that
        community). Any other question stays and is recalled after the greeting."""
        resident = ctx.actor.resident
        assert resident is not None
        resident.community_id = await numbers.row_id(ctx.turn, community)  # the home just set stays
        ctx.turn.community = community
        dialog = ctx.dialog
        if dialog is None:
            return
        if dialog.state == STATE:
            await self._file_waiting(ctx, community)
        elif dialog.state == AWAIT_LOCATION and await _of_community(ctx, dialog.data, resident.community_id):
            message = ctx.message
            ctx.message = replace(message, text=scanned.target.label, scene=None)
            await location_reply(ctx)
            ctx.message = message
        else:
            ctx.reply(render("scan.question_waiting"))

    async def _button(self, ctx: ChatContext, pending: bool) -> bool:
        token, _, digit = (ctx.command.arg or "").removeprefix(TOKEN).partition(":")  # type: ignore[union-attr]
        dialog = ctx.dialog
        if not pending or dialog is None or str(dialog.data.get("token")) != token or not digit.isdigit():
            ctx.reply(render("community.expired"))
            return True
        await self._answer(ctx, _choice(ctx, int(digit)))
        return True

    async def _change(self, ctx: ChatContext, rest: str, pending: bool) -> bool:
        street = ctx.turn.services.street
        named = street.named_in(rest) if rest else None
        if named is None:
            waiting = list(ctx.dialog.data.get("reports", [])) if pending and ctx.dialog else []
            await ask(ctx, waiting)
            return True
        assert ctx.actor.resident is not None
        await remember(ctx.turn, ctx.actor.resident, named)
        ctx.turn.community = named
        ctx.reply(render("community.changed", community=named.name))
        if pending:
            await self._file_waiting(ctx, named)
        return True

    async def _pending(self, ctx: ChatContext) -> bool:
        dialog = ctx.dialog
        assert dialog is not None
        command = ctx.command
        if command is not None:
            if command.kind == Cmd.CANCEL:
                await ctx.clear_dialog()
                ctx.reply(render("community.cancelled"))
                return True
            return False  # a command goes its way; the question stays
        reply = fold(ctx.text).strip().rstrip("。.!！").strip()
        digit = _digit(reply)
        if digit is not None:
            await self._answer(ctx, _choice(ctx, digit))
            return True
        named = ctx.turn.services.street.named_in(ctx.message.text or "")
        if named is not None:
            await self._file_waiting(ctx, named)
            if _is_report(ctx):
                return False  # "锦绣园3号楼有垃圾": the waiting report is filed, then this one
            ctx.reply(render("community.chosen", community=named.name))
            return True
        if _is_report(ctx):  # another report: it waits with the first, and the question is asked again
            waiting = [*dialog.data.get("reports", []), ctx.row.id][-MAX_WAITING:]
            await ask(ctx, waiting)
            return True
        return False  # not an answer, not a report: read as it is (the question stays)

    async def _answer(self, ctx: ChatContext, chosen: CommunityPort | None) -> None:
        if chosen is None:
            ctx.reply(render("community.again", count=len(ctx.turn.services.street)))
            return
        assert ctx.actor.resident is not None
        await remember(ctx.turn, ctx.actor.resident, chosen)
        ctx.turn.community = chosen
        waiting = await self._file_waiting(ctx, chosen)
        if not waiting:
            ctx.reply(render("community.chosen", community=chosen.name))

    async def _file_waiting(self, ctx: ChatContext, community: CommunityPort) -> int:
        """File the reports that waited for the answer in ``community``, as if just sent; how many."""
        dialog = ctx.dialog
        waiting = list(dialog.data.get("reports", [])) if dialog is not None else []
        await ctx.clear_dialog()
        assert ctx.actor.resident is not None
        await remember(ctx.turn, ctx.actor.resident, community)
        ctx.turn.community = community
        message, row, command = ctx.message, ctx.row, ctx.command
        filed = 0
        for row_id in waiting:
            stored = await ctx.turn.session.get(InboundMessage, int(row_id))
            if stored is None:
                continue
            ctx.message = Inbound(
                channel=stored.channel,
                sender=stored.sender,
                text=stored.text,
                photo=stored.photo,
                latitude=stored.latitude,
                longitude=stored.longitude,
            )
            ctx.row, ctx.command = stored, None
            await self.resident_flow(ctx)
            filed += 1
        ctx.message, ctx.row, ctx.command = message, row, command
        return filed


async def _of_community(ctx: ChatContext, data: dict[str, object], community_id: int | None) -> bool:
    """Whether the cases waiting for "where is it?" were filed in the scanned community."""
    for number in pending_cases(dict(data)):
        case = await ctx.turn.session.get(Case, number)
        if case is not None and case.community_id not in {None, community_id}:
            return False
    return True


def _choice(ctx: ChatContext, digit: int) -> CommunityPort | None:
    communities = list(ctx.turn.services.street)
    return communities[digit - 1] if 1 <= digit <= len(communities) else None


def _is_report(ctx: ChatContext) -> bool:
    if ctx.message.photo is not None or ctx.message.latitude is not None:
        return True
    text = ctx.message.text or ""
    return bool(text.strip()) and ctx.turn.community.classifier.classify(text).is_report


async def ask(ctx: ChatContext, waiting: list[int]) -> None:
    """Ask which community (the reports in ``waiting`` are filed in the answer)."""
    token = ctx.row.id
    await ctx.set_dialog(STATE, {"token": token, "reports": waiting})
    communities = list(ctx.turn.services.street)
    lines = [render("community.choice", digit=i, name=c.name) for i, c in enumerate(communities, 1)]
    key = "community.ask" if waiting else "community.ask_plain"
    ctx.reply(
        render(key, choices="\n".join(lines)),
        buttons=[
            Button(c.name, action(Cmd.CHOOSE, None, f"{TOKEN}{token}:{i}"))
            for i, c in enumerate(communities, 1)
        ],
    )
