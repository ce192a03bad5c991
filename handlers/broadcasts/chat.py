"""The broadcasts chat feature (a ``ChatFeature``, after the reminders feature in ``default_features``).

Admins
  广播 对象 内容                     a draft: the bot shows the audience in words and its size (a count,
                                    never names) and asks to confirm; a photo whose caption is "广播 …"
                                    goes with it. 对象 is 全体 (everyone: only ever explicit), grids by
                                    code or name (G1, 第一网格, 一网格, 1网格), #tags; several may
                                    follow each other. An unknown grid, tag or a building is refused
                                    with the valid ones; no 对象 at all is refused too.
  取消                               with no other step pending: cancels the admin's latest draft
  确认发送 12                        send now (or the "确认发送" button)
  定时发送 12 2026-12-01 09:00       send at that time (community time zone)
  取消广播 12                        cancel a draft or a scheduled broadcast, or stop one being sent
  批准 12 / 修改 12 新内容 / 跳过 12   a notice the outreach calendar drafted
  广播进度 [12] / 广播列表            progress of one broadcast, or the latest ones
Residents
  退订通知 / 订阅通知                 stop or restart notices (case updates and reminders go on). The
                                    reminders feature owns 退订 / TD (stop health reminders); the two
                                    never match each other's words.
Other staff get a polite refusal for admin commands; residents typing them get "staff only"
(``staff_only``); residents' messages that merely begin with 广播 (“广播站旁边有垃圾”) are left to the
report flow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from handlers.broadcasts import audience as aud
from handlers.broadcasts import report_text, service, wechat_mass
from handlers.broadcasts.audience import Audience, AudienceError
from handlers.broadcasts.audience_words import (
    community_words,
    describe,
    grid_names,
    local_text,
    parse_when,
    split_audience,
)
from handlers.broadcasts.config import BroadcastSettings
from handlers.broadcasts.models import Broadcast, BroadcastStatus, CalendarDraft, CalendarDraftStatus
from handlers.kernel.commands import COMMANDS, RESIDENT, Cmd, CommandSpec, HelpLine
from handlers.kernel.features import ChatContext
from messages import render
from storage.models import Role

MAX_TEXT = 1000
LIST_LIMIT = 10

_N = r"\s*[#＃]?\s*(?P<id>\d{1,9})"
_BROADCAST = re.compile(r"^(?:/broadcast|广播|发广播|群发通知)(?:[\s:：]+(?P<rest>.*))?$", re.S | re.I)
_CONFIRM = re.compile(rf"^(?:确认发送|确认广播|发送广播)(?:{_N})?[。.!！]?$")
_SCHEDULE = re.compile(rf"^(?:定时发送|定时广播){_N}\s+(?P<when>.+)$")
_CANCEL = re.compile(rf"^(?:取消广播|停止广播|取消发送)(?:{_N})?[。.!！]?$")
_APPROVE = re.compile(rf"^(?:批准|同意发送){_N}[。.!！]?$")
_EDIT = re.compile(rf"^修改{_N}(?:[\s:：]+(?P<text>.*))?$", re.S)
_SKIP = re.compile(rf"^跳过{_N}[。.!！]?$")
_STATUS = re.compile(r"^(?:广播进度|广播列表|/broadcasts)(?:\s*[#＃]?\s*(?P<id>\d{1,9}))?$", re.I)
_OPT_OUT = re.compile(r"^(?:退订通知|取消通知|不要通知了?|不再接收通知|关闭通知|退订社区通知)[。.!！]?$")
_OPT_IN = re.compile(r"^(?:订阅通知|接收通知|恢复通知|开通通知|重新订阅通知|订阅社区通知)[。.!！]?$")


async def draft_text(ctx: ChatContext, broadcast: Broadcast, counts: aud.Counts) -> str:
    extra = render("bc.opted_out_note", count=counts.opted_out) if counts.opted_out else ""
    if broadcast.wechat_mass:
        extra += await wechat_mass.quota_note(
            ctx.turn.session,
            Audience.from_json(broadcast.audience),
            ctx.turn.now,
            ctx.turn.services.section(BroadcastSettings),
        )
    return render(
        "bc.draft",
        id=broadcast.id,
        audience=describe(Audience.from_json(broadcast.audience), grid_names(ctx.turn.community)),
        count=counts.total,
        extra=extra,
        photo=render("bc.photo_note") if broadcast.photo else "",
        text=broadcast.text,
        example_time=_tomorrow_nine(ctx),
    )


def _tomorrow_nine(ctx: ChatContext) -> str:
    """An example time for 定时发送 that is never in the past: tomorrow 09:00 in the community's zone."""
    local = ctx.turn.now.astimezone(ctx.turn.community.timezone)
    return f"{(local + timedelta(days=1)):%Y-%m-%d} 09:00"


@dataclass
class BroadcastFeature:
    name: str = "broadcasts"

    def claims(self, ctx: ChatContext) -> bool:
        """Whether the message is one of this feature's commands (it interrupts a pending question)."""
        return COMMANDS.claims(self.name, ctx.actor.is_staff, ctx.text.strip())

    async def handle(self, ctx: ChatContext) -> bool:
        command = ctx.command
        if (
            command is not None
            and command.kind == Cmd.CANCEL
            and ctx.dialog is None
            and ctx.actor.role == Role.ADMIN
        ):
            return await self._cancel_latest_draft(ctx)
        if command is not None and command.kind in (Cmd.BROADCAST_OK, Cmd.BROADCAST_CANCEL):
            number = command.number if command.number is not None else _number(command.arg)
            spec = COMMANDS.of_kind(command.kind)
            if not spec.allows(ctx.actor.role):
                ctx.reply(render(spec.refusal or "bc.admin_only"))
                return True
            if number is None:
                ctx.reply(render("bc.which"))
            elif command.kind == Cmd.BROADCAST_OK:
                await self._confirm(ctx, number, None)
            else:
                await self._cancel(ctx, number)
            return True
        text = ctx.text.strip()
        if not text:
            return False
        if not ctx.actor.is_staff and ctx.actor.resident is None:
            return False
        spec, found = COMMANDS.first_match(text, COMMANDS.for_audience(self.name, ctx.actor.is_staff))
        if spec is None or found is None:
            return False
        if not spec.allows(ctx.actor.role):
            ctx.reply(render(spec.refusal or "bc.admin_only"))
            return True
        assert spec.handler is not None
        await spec.handler(self, ctx, found)
        return True

    # -- residents --------------------------------------------------------------------------------------

    async def _on_opt_out(self, ctx: ChatContext, _found: re.Match[str]) -> None:
        assert ctx.actor.resident is not None
        done = await service.opt_out(ctx.turn.session, ctx.actor.resident.id, ctx.turn.now)
        ctx.reply(render("bc.optout_done" if done else "bc.optout_already"))

    async def _on_opt_in(self, ctx: ChatContext, _found: re.Match[str]) -> None:
        assert ctx.actor.resident is not None
        done = await service.opt_in(ctx.turn.session, ctx.actor.resident.id)
        ctx.reply(render("bc.optin_done" if done else "bc.optin_already"))

    # -- staff (admins: the registry refuses everyone else) ---------------------------------------------

    async def _cancel_latest_draft(self, ctx: ChatContext) -> bool:
        """取消 with no other step pending: the admin's latest draft is what it means."""
        assert ctx.actor.staff is not None
        drafts = list(
            await ctx.turn.session.scalars(
                select(Broadcast)
                .where(Broadcast.status == BroadcastStatus.DRAFT, Broadcast.created_by == ctx.actor.staff.id)
                .order_by(Broadcast.id.desc())
            )
        )
        if not drafts:
            return False
        latest, others = drafts[0], drafts[1:]
        await service.cancel(ctx.turn.session, latest, ctx.turn.now)
        text = render("bc.cancelled", id=latest.id)
        if others:
            text += "\n" + render("bc.drafts_left", ids="、".join(f"#{b.id}" for b in others))
        ctx.reply(text)
        return True

    async def _on_draft(self, ctx: ChatContext, m: re.Match[str]) -> None:
        rest = (ctx.message.text or "")[m.start("rest") : m.end("rest")] if m.group("rest") else ""
        await self._draft(ctx, rest.strip())

    async def _on_confirm(self, ctx: ChatContext, m: re.Match[str]) -> None:
        if (number := await self._which(ctx, m.group("id"))) is not None:
            await self._confirm(ctx, number, None)

    async def _on_schedule(self, ctx: ChatContext, m: re.Match[str]) -> None:
        await self._confirm(ctx, int(m.group("id")), m.group("when"))

    async def _on_cancel(self, ctx: ChatContext, m: re.Match[str]) -> None:
        if (number := await self._which(ctx, m.group("id"))) is not None:
            await self._cancel(ctx, number)

    async def _on_approve(self, ctx: ChatContext, m: re.Match[str]) -> None:
        await self._confirm(ctx, int(m.group("id")), None)

    async def _on_edit(self, ctx: ChatContext, m: re.Match[str]) -> None:
        new = (ctx.message.text or "")[m.start("text") : m.end("text")] if m.group("text") else ""
        await self._edit(ctx, int(m.group("id")), new.strip())

    async def _on_skip(self, ctx: ChatContext, m: re.Match[str]) -> None:
        await self._cancel(ctx, int(m.group("id")))

    async def _on_status(self, ctx: ChatContext, m: re.Match[str]) -> None:
        await self._status(ctx, int(m.group("id")) if m.group("id") else None)

    async def _which(self, ctx: ChatContext, given: str | None) -> int | None:
        """The broadcast a command means: the number given, else the admin's one open draft (typed
        "确认发送" on WeChat, where drafts have no buttons); asks for the number when that is unclear."""
        if given is not None:
            return int(given)
        assert ctx.actor.staff is not None
        drafts = (
            await ctx.turn.session.scalars(
                select(Broadcast.id)
                .where(Broadcast.status == BroadcastStatus.DRAFT, Broadcast.created_by == ctx.actor.staff.id)
                .limit(2)
            )
        ).all()
        if len(drafts) == 1:
            return drafts[0]
        ctx.reply(render("bc.which"))
        return None

    @staticmethod
    def _audience(ctx: ChatContext, rest: str) -> tuple[Audience, str]:
        """The audience and the text. In a deployment of several communities a community admin
        broadcasts to their community's residents only; a 街道 admin may name communities ("广播 HPL
        锦绣园 …"), else reaches the whole 街道 (全体) or the grids of the turn's community."""
        services = ctx.turn.services
        assert ctx.actor.staff is not None
        if not services.several:
            return split_audience(rest, ctx.turn.community)
        if ctx.actor.staff.id in services.street.admins:
            audience, body = split_audience(rest, ctx.turn.community, community_words(services.street))
            if audience.grids and not audience.communities:  # grid codes are per community
                audience = audience.within([ctx.turn.community.code])
            return audience, body
        audience, body = split_audience(rest, ctx.turn.community)
        return audience.within([ctx.turn.community.code]), body

    async def _draft(self, ctx: ChatContext, rest: str) -> None:
        session = ctx.turn.session
        if not rest and not ctx.message.photo:
            ctx.reply(render("bc.usage"))
            return
        try:
            audience, body = self._audience(ctx, rest)
        except AudienceError as exc:
            ctx.reply(render(exc.key, **exc.params))
            return
        if not body:
            ctx.reply(render("bc.empty_text"))
            return
        if len(body) > MAX_TEXT:
            ctx.reply(render("bc.too_long", length=len(body), limit=MAX_TEXT))
            return
        try:
            await aud.validate(session, audience)
        except AudienceError as exc:
            ctx.reply(render(exc.key, **exc.params))
            return
        counts = await aud.count(session, audience)
        if counts.total == 0:  # a draft to nobody would be confirmed and "sent" to no one
            extra = render("bc.opted_out_note", count=counts.opted_out) if counts.opted_out else ""
            named = describe(audience, grid_names(ctx.turn.community))
            ctx.reply(render("bc.nobody", audience=named, extra=extra))
            return
        assert ctx.actor.staff is not None
        broadcast = await service.create(
            session,
            text=body,
            audience=audience,
            created_by=ctx.actor.staff.id,
            source="chat",
            now=ctx.turn.now,
            photo=ctx.message.photo,
            notify=ctx.actor.address,
            wechat_mass=ctx.turn.services.section(BroadcastSettings).wechat_mass,
            estimate=counts.total,
        )
        ctx.reply(await draft_text(ctx, broadcast, counts), buttons=service.decision_buttons(broadcast.id))

    async def _get(self, ctx: ChatContext, number: int) -> Broadcast | None:
        broadcast = await ctx.turn.session.get(Broadcast, number)
        if broadcast is None:
            ctx.reply(render("bc.not_found", id=number))
        return broadcast

    def _wrong(self, ctx: ChatContext, broadcast: Broadcast) -> None:
        ctx.reply(render("bc.wrong_state", id=broadcast.id, status=render(f"bc.status.{broadcast.status}")))

    async def _confirm(self, ctx: ChatContext, number: int, when_text: str | None) -> None:
        broadcast = await self._get(ctx, number)
        if broadcast is None:
            return
        if broadcast.status not in service.CONFIRMABLE:
            self._wrong(ctx, broadcast)
            return
        tz = ctx.turn.community.timezone
        at: datetime | None = None
        if when_text is not None:
            at = parse_when(when_text, ctx.turn.now, tz)
            if at is None:
                ctx.reply(render("bc.bad_time", value=when_text))
                return
            if at <= ctx.turn.now:
                ctx.reply(render("bc.past_time", when=local_text(at, tz)))
                return
        assert ctx.actor.staff is not None
        calendar = broadcast.status == BroadcastStatus.AWAITING_APPROVAL
        service.confirm(broadcast, ctx.actor.staff.id, ctx.turn.now, at, notify=ctx.actor.address)
        if calendar:
            await self._decide_calendar(ctx, broadcast.id, CalendarDraftStatus.APPROVED)
        assert broadcast.scheduled_at is not None
        if broadcast.scheduled_at > ctx.turn.now + timedelta(seconds=60):
            key = "bc.cal.approved" if calendar else "bc.scheduled"
            ctx.reply(render(key, id=broadcast.id, when=local_text(broadcast.scheduled_at, tz)))
            return
        counts = await aud.count(ctx.turn.session, Audience.from_json(broadcast.audience))
        ctx.reply(render("bc.confirmed", id=broadcast.id, count=counts.total))

    async def _cancel(self, ctx: ChatContext, number: int) -> None:
        broadcast = await self._get(ctx, number)
        if broadcast is None:
            return
        if broadcast.status not in service.CANCELLABLE:
            self._wrong(ctx, broadcast)
            return
        was_sending = broadcast.status == BroadcastStatus.SENDING
        calendar = broadcast.status == BroadcastStatus.AWAITING_APPROVAL
        withdrawn = await service.cancel(ctx.turn.session, broadcast, ctx.turn.now)
        if calendar:
            await self._decide_calendar(ctx, broadcast.id, CalendarDraftStatus.SKIPPED)
            ctx.reply(render("bc.cal.skipped", id=broadcast.id))
        elif was_sending:
            ctx.reply(render("bc.stopped", id=broadcast.id, sent=broadcast.sent, withdrawn=withdrawn))
        else:
            ctx.reply(render("bc.cancelled", id=broadcast.id))

    async def _edit(self, ctx: ChatContext, number: int, text: str) -> None:
        broadcast = await self._get(ctx, number)
        if broadcast is None:
            return
        if broadcast.status not in service.CONFIRMABLE:
            self._wrong(ctx, broadcast)
            return
        if not text:
            ctx.reply(render("bc.cal.edit_empty", id=number))
            return
        if len(text) > MAX_TEXT:
            ctx.reply(render("bc.too_long", length=len(text), limit=MAX_TEXT))
            return
        broadcast.text = text
        ctx.reply(
            render("bc.cal.edited", id=number, text=text),
            buttons=service.decision_buttons(number, calendar=True),
        )

    async def _decide_calendar(
        self, ctx: ChatContext, broadcast_id: int, status: CalendarDraftStatus
    ) -> None:
        assert ctx.actor.staff is not None
        await ctx.turn.session.execute(
            update(CalendarDraft)
            .where(CalendarDraft.broadcast_id == broadcast_id)
            .values(status=status, decided_by=ctx.actor.staff.id, decided_at=ctx.turn.now)
            .execution_options(synchronize_session=False)
        )

    async def _status(self, ctx: ChatContext, number: int | None) -> None:
        session = ctx.turn.session
        tz = ctx.turn.community.timezone
        if number is not None:
            broadcast = await self._get(ctx, number)
            if broadcast is None:
                return
            if broadcast.status == BroadcastStatus.DONE:
                ctx.reply(report_text.report_text(broadcast, broadcast.report))
            elif broadcast.status == BroadcastStatus.SENDING:
                if broadcast.expanded_at is None:
                    ctx.reply(render("bc.progress_waiting", id=number))
                else:
                    p = await service.progress(session, number, ctx.turn.now)
                    ctx.reply(report_text.progress_text(number, p))
            else:
                self._wrong(ctx, broadcast)
            return
        rows = (
            await session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(LIST_LIMIT))
        ).all()
        if not rows:
            ctx.reply(render("bc.list_empty"))
            return
        lines = [render("bc.list_header")]
        for b in rows:
            when = b.finished_at or b.scheduled_at or b.created_at
            lines.append(
                render(
                    "bc.list_line",
                    id=b.id,
                    status=render(f"bc.status.{b.status}"),
                    when=local_text(when, tz),
                    audience=describe(Audience.from_json(b.audience), grid_names(ctx.turn.community)),
                    sent=b.sent,
                    total=b.total or b.estimate or 0,
                    text=b.text.replace("\n", " ")[:20],
                )
            )
        ctx.reply("\n".join(lines))


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _register() -> None:
    """The feature's commands, in the order they are tried. Admins only, but for residents' 退订通知 /
    订阅通知; a resident typing an admin's words is told "staff only" (no refusal of our own)."""
    admins = frozenset({Role.ADMIN})
    residents = frozenset({RESIDENT})
    f = BroadcastFeature
    for name, pattern, examples, roles, handler, help_line in (
        ("draft", _BROADCAST, ("广播 全体 明天停水", "广播"), admins, f._on_draft, ("help.bc.draft", 75)),
        ("confirm", _CONFIRM, ("确认发送 12", "确认发送"), admins, f._on_confirm, ("help.bc.manage", 76)),
        ("schedule", _SCHEDULE, ("定时发送 12 2026-12-01 09:00",), admins, f._on_schedule, None),
        ("cancel", _CANCEL, ("取消广播 12", "取消广播"), admins, f._on_cancel, None),
        ("approve", _APPROVE, ("批准 12",), admins, f._on_approve, None),
        ("edit", _EDIT, ("修改 12 新内容",), admins, f._on_edit, None),
        ("skip", _SKIP, ("跳过 12",), admins, f._on_skip, None),
        ("status", _STATUS, ("广播进度 12", "广播列表"), admins, f._on_status, None),
        ("opt_out", _OPT_OUT, ("退订通知",), residents, f._on_opt_out, None),
        ("opt_in", _OPT_IN, ("订阅通知",), residents, f._on_opt_in, None),
    ):
        help_lines = (HelpLine(help_line[0], admins, help_line[1]),) if help_line else ()
        refusal = "bc.admin_only" if roles == admins else None
        COMMANDS.add(
            CommandSpec(
                f"bc.{name}",
                pattern,
                examples,
                roles,
                refusal=refusal,
                feature="broadcasts",
                handler=handler,
                help=help_lines,
            )
        )


_register()
