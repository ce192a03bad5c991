"""The reminders chat feature: a guardian enrols children, records doses, postpones and opts out; health
staff enrol residents in follow-up programmes and record the follow-ups.

Residents
  疫苗提醒 / 登记孩子   consent (explicit 同意; anything else stores nothing) → nickname → birth date →
                      doses already given (or 跳过) → summary with the second guardian's code
  加入 K7M2QX9A        a second guardian joins a child (consent first); wrong codes count towards the
                      account's lockout (handlers/kernel/code_guard.py)
  已打 [孩子] [疫苗剂次] [日期] / 已接种   record doses (no dose named: those of the last reminder)
  推迟 [N天]           remind again in N days (default 7)
  我的孩子             each child's next and missing doses, and the code for a second guardian (the
                      same code while it is valid)
  新邀请码             replace the codes for a second guardian (the old ones stop working)
  退订 / TD            stop everything for this resident at once (children with no other guardian are
                      deleted; follow-up reminders end, the enrolling staff member is told)
  同意随访 [n] / 不同意随访 [n]   answer a follow-up enrolment
  我的编号             the resident number (R12) to give the family doctor
Health staff (role health) and admins
  随访登记 R12 高血压 [YYYY-MM-DD] [家属 R13] [每N天] [书面同意]
  随访记录 F3 电话|上门|门诊 结果 [YYYY-MM-DD] [下次 YYYY-MM-DD]
  随访结束 F3 · 随访待办 · 随访帮助
Grid workers and leaders get a refusal that names nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from handlers.kernel.commands import COMMANDS, RESIDENT, CommandSpec, HelpLine
from handlers.kernel.features import ChatContext
from handlers.reminders import planner, store
from handlers.reminders.config import ReminderSettings
from handlers.reminders.doses_chat import S_DOSES
from handlers.reminders.followups_chat import STAFF_WORDS as _STAFF
from handlers.reminders.followups_chat import FollowupStaffCommands
from handlers.reminders.guardians_chat import S_JOIN, SecondGuardianCommands
from handlers.reminders.jobs import date_text, dose_text, station, turn_community_name
from handlers.reminders.models import (
    Child,
    Consent,
    EnrolmentStatus,
    FollowupEnrolment,
    Guardianship,
    Programme,
)
from handlers.reminders.programmes import load_programmes
from handlers.reminders.schedule import Status, add_months
from handlers.reminders.vaccine_words import parse_date
from messages import render
from storage.models import Role

CONSENT_VERSION = "v1"  # bump when the consent texts (rem.consent.*) change
MAX_NICKNAME = 12
MAX_AGE_YEARS = 18

S_CONSENT = "rem.consent"
S_NICKNAME = "rem.nickname"
S_BIRTH = "rem.birth"

_START = re.compile(
    r"^(?:/vaccines?|疫苗提醒|接种提醒|预防接种提醒|登记孩子|添加孩子|孩子接种|开通疫苗提醒)$", re.I
)
_STOP = re.compile(r"^(?:退订|t\s*d|取消提醒|停止提醒|不要提醒了?)[。.!！]?$", re.I)
_YES = re.compile(r"^(?:同意|我同意|同意的|好的?[，,]?\s*同意)[。.!！]?$")
_DONE = re.compile(r"^(?:已打|已接种|已经打了|已经接种了?|打过了|打完了)(?P<rest>.*)$", re.S)
_POSTPONE = re.compile(r"^(?:推迟|延后|改期|晚点提醒|过几天提醒)(?P<rest>.*)$")
# Any Latin code after 加入 gets an answer ("invalid or expired" at worst), not the generic reply. After
# 关注 only a code's shape (8 digits from before, or 8 characters with a letter): "关注 12" follows case 12.
_JOIN = re.compile(
    r"^(?:(?:加入|监护人?)\s*(?P<code>[A-Za-z0-9]{1,16})|关注\s*(?P<follow>\d{8}|(?=\d*[A-Za-z])[A-Za-z0-9]{8}))$"
)
_RENEW_CODE = re.compile(r"^(?:新邀请码|换邀请码|更换邀请码|重新生成邀请码|新的邀请码)(?P<rest>.*)$")
_PLAN = re.compile(r"^(?:我的孩子|接种计划|疫苗计划|查看接种|接种记录)$")
_FU_ANSWER = re.compile(r"^(?P<no>不)?同意随访\s*[#＃Ff]?\s*(?P<id>\d+)?$")
_MY_NUMBER = re.compile(r"^(?:我的编号|居民编号|我的居民编号)$")
_SKIP = re.compile(r"^(?:跳过|完成|没有|没了|好了|不清楚|不知道|以后再说|稍后)[。.!！]?$")
_CANCEL = re.compile(r"^(?:取消|/cancel)$", re.I)


@dataclass
class ReminderFeature(SecondGuardianCommands, FollowupStaffCommands):
    """The ChatFeature (handlers/kernel/features.py) of the reminders package: the doses and the plan
    lines come from ``ChildDoseCommands`` (doses_chat.py), the second guardian from
    ``SecondGuardianCommands`` (guardians_chat.py), the staff's follow-ups from ``followups_chat.py``."""

    settings: ReminderSettings = field(default_factory=ReminderSettings)  # the tree's, from the root
    name: str = "reminders"

    @property
    def config(self) -> ReminderSettings:
        return self.settings

    async def handle(self, ctx: ChatContext) -> bool:
        text = ctx.text.strip()
        if ctx.actor.is_staff:
            return await self._staff(ctx, text)
        if ctx.actor.resident is None or not text:
            return False
        stop = COMMANDS.get("rem.stop")  # 退订 stops everything, even in the middle of enrolling
        if stop.match(text):
            return await self._stop(ctx)
        if ctx.dialog is not None and ctx.dialog.state.startswith("rem."):
            return await self._dialog(ctx, text)
        commands = (s for s in COMMANDS.for_audience(self.name, staff=False) if s is not stop)
        spec, found = COMMANDS.first_match(text, commands)
        if spec is not None and found is not None:
            assert spec.handler is not None
            handled: bool = await spec.handler(self, ctx, found)
            return handled
        followup = COMMANDS.get("rem.followup")
        if (m := followup.match(text)) and m.group("verb"):  # a staff command typed by a resident
            ctx.reply(render(followup.resident_refusal or "rem.staff.health_only"))
            return True
        return False

    # -- residents' commands (declared at the end of the module) -------------------------------------

    async def _on_start(self, ctx: ChatContext, _m: re.Match[str]) -> bool:
        await ctx.set_dialog(S_CONSENT, {})
        ctx.reply(
            render("rem.consent.child", station=station(ctx.turn.services, turn_community_name(ctx.turn)))
        )
        return True

    async def _on_join(self, ctx: ChatContext, m: re.Match[str]) -> bool:
        return await self._join(ctx, m.group("code") or m.group("follow"))

    async def _on_renew_codes(self, ctx: ChatContext, m: re.Match[str]) -> bool:
        return await self._renew_codes(ctx, m.group("rest").strip())

    async def _on_done(self, ctx: ChatContext, m: re.Match[str]) -> bool:
        return await self._done(ctx, m.group("rest"))

    async def _on_postpone(self, ctx: ChatContext, m: re.Match[str]) -> bool:
        return await self._postpone(ctx, m.group("rest"))

    async def _on_plan(self, ctx: ChatContext, _m: re.Match[str]) -> bool:
        return await self._show_plan(ctx)

    async def _on_followup_answer(self, ctx: ChatContext, m: re.Match[str]) -> bool:
        return await self._followup_answer(ctx, m.group("no") is None, m.group("id"))

    async def _on_my_number(self, ctx: ChatContext, _m: re.Match[str]) -> bool:
        assert ctx.actor.resident is not None
        ctx.reply(render("rem.my_number", number=ctx.actor.resident.id))
        return True

    # -- the enrolment dialog --------------------------------------------------------------------------

    async def _dialog(self, ctx: ChatContext, text: str) -> bool:
        assert ctx.dialog is not None and ctx.actor.resident is not None
        state, data = ctx.dialog.state, dict(ctx.dialog.data or {})
        if _CANCEL.match(text):
            await ctx.clear_dialog()
            ctx.reply(render("rem.cancelled" if state in (S_CONSENT, S_JOIN) else "rem.cancelled_kept"))
            return True
        if state in (S_CONSENT, S_JOIN):
            if not _YES.match(text):
                await ctx.clear_dialog()
                ctx.reply(render("rem.consent.refused"))
                return True
            consent = Consent(
                resident_id=ctx.actor.resident.id,
                programme=Programme.CHILD_VACCINATION,
                text_version=CONSENT_VERSION,
                channel=ctx.message.channel,
                given_at=ctx.turn.now,
            )
            ctx.turn.session.add(consent)
            await ctx.turn.session.flush()
            if state == S_JOIN:
                return await self._join_confirmed(ctx, int(data["child"]), consent, data.get("code"))
            await ctx.set_dialog(S_NICKNAME, {"consent": consent.id})
            ctx.reply(render("rem.ask_nickname"))
            return True
        if state == S_NICKNAME:
            nickname = text.strip()
            if not 1 <= len(nickname) <= MAX_NICKNAME or nickname.isdigit():
                ctx.reply(render("rem.bad_nickname", limit=MAX_NICKNAME))
                return True
            await ctx.set_dialog(S_BIRTH, {**data, "nickname": nickname})
            ctx.reply(render("rem.ask_birth", child=nickname))
            return True
        if state == S_BIRTH:
            return await self._birth(ctx, text, data)
        if state == S_DOSES:
            child = await ctx.turn.session.get(Child, int(data["child"]))
            if child is None:
                await ctx.clear_dialog()
                return False
            if _SKIP.match(text):
                await ctx.clear_dialog()
                await self._summary(ctx, child)
                return True
            recorded = await self._record(ctx, child, text, default_today=False)
            if recorded is None:
                ctx.reply(render("rem.doses_not_understood"))
            return True
        await ctx.clear_dialog()
        return False

    async def _birth(self, ctx: ChatContext, text: str, data: dict[str, Any]) -> bool:
        assert ctx.actor.resident is not None
        today = self._today(ctx)
        born = parse_date(text, today)
        nickname = str(data["nickname"])
        if born is None:
            ctx.reply(render("rem.bad_birth", child=nickname))
            return True
        if born > today or born <= add_months(today, -12 * MAX_AGE_YEARS):
            ctx.reply(render("rem.birth_out_of_range", child=nickname, years=MAX_AGE_YEARS))
            return True
        session = ctx.turn.session
        child = Child(nickname=nickname, birth_date=born, created_at=ctx.turn.now)
        session.add(child)
        await session.flush()
        session.add(
            Guardianship(
                child_id=child.id,
                resident_id=ctx.actor.resident.id,
                consent_id=int(data["consent"]),
                created_at=ctx.turn.now,
            )
        )
        await session.flush()
        await self._plan(ctx, child)
        await ctx.set_dialog(S_DOSES, {"child": child.id})
        _, plan = await self._child_plan(ctx, child)
        should = [d for d in plan if d.due <= today and d.status != Status.EXPIRED]
        hint = (
            render("rem.should_have", vaccines="、".join(dose_text(d.code, d.dose) for d in should[:15]))
            if should
            else render("rem.should_have_none")
        )
        ctx.reply(render("rem.ask_doses", child=nickname, birth=born.isoformat(), hint=hint))
        return True

    async def _summary(self, ctx: ChatContext, child: Child) -> None:
        await self._plan(ctx, child)
        _, plan = await self._child_plan(ctx, child)
        lines = [render("rem.summary", child=child.nickname, next=self._next_line(plan, self._today(ctx)))]
        if missing := self._missing_line(plan):
            lines.append(missing)
        lines.append(
            render(
                "rem.summary_when",
                before="、".join(str(d) for d in sorted(self.config.days_before, reverse=True)) or "0",
                after="、".join(str(d) for d in self.config.overdue_days) or "0",
                quiet_start=self.config.quiet_start.strftime("%H:%M"),
                quiet_end=self.config.quiet_end.strftime("%H:%M"),
            )
        )
        if line := await self._join_code_line(ctx, child):
            lines.append(line)
        lines.append(render("rem.summary_help"))
        ctx.reply("\n".join(lines))

    async def _show_plan(self, ctx: ChatContext) -> bool:
        assert ctx.actor.resident is not None
        children = await store.children_of(ctx.turn.session, ctx.actor.resident.id)
        if not children:
            ctx.reply(render("rem.no_children"))
            return True
        parts = []
        for child in children:
            _, plan = await self._child_plan(ctx, child)
            done = sum(1 for d in plan if d.done)
            lines = [
                render("rem.plan_child", child=child.nickname, birth=child.birth_date.isoformat(), done=done)
            ]
            lines.append(self._next_line(plan, self._today(ctx)))
            if missing := self._missing_line(plan):
                lines.append(missing)
            if line := await self._join_code_line(ctx, child):
                lines.append(line)
            parts.append("\n".join(lines))
        ctx.reply("\n\n".join(parts) + "\n" + render("rem.summary_help"))
        return True

    # -- opting out ------------------------------------------------------------------------------------

    async def _stop(self, ctx: ChatContext) -> bool:
        assert ctx.actor.resident is not None
        session = ctx.turn.session
        me = ctx.actor.resident.id
        if ctx.dialog is not None and ctx.dialog.state.startswith("rem."):
            await ctx.clear_dialog()
        children = await store.children_of(session, me)
        guardians = await store.guardians_of(session, [c.id for c in children])
        kept = 0
        for child in children:
            if len(guardians[child.id]) > 1:
                kept += 1
                guardianship = await session.get(Guardianship, (child.id, me))
                if guardianship is not None:
                    await session.delete(guardianship)
            else:
                await store.delete_child(session, child.id)
        enrolments = list(
            await session.scalars(
                select(FollowupEnrolment).where(
                    FollowupEnrolment.recipient_id == me,
                    FollowupEnrolment.status.in_([EnrolmentStatus.ACTIVE, EnrolmentStatus.AWAITING_CONSENT]),
                )
            )
        )
        for enrolment in enrolments:
            enrolment.status, enrolment.ended_at = EnrolmentStatus.ENDED, ctx.turn.now
            await planner.plan_followup_reminders(
                session, enrolment, ctx.turn.now, self.config, self._tz(ctx)
            )
            await ctx.turn.tell_staff(
                enrolment.enrolled_by, render("rem.staff.opted_out", number=enrolment.id)
            )
        consents = list(
            await session.scalars(
                select(Consent).where(Consent.resident_id == me, Consent.withdrawn_at.is_(None))
            )
        )
        for consent in consents:
            consent.withdrawn_at = ctx.turn.now
        await session.flush()
        if not children and not enrolments and not consents:
            return False  # nothing of ours: another feature (broadcasts) may own the word
        details = []
        if children:
            kept_text = render("rem.stopped_kept", count=kept) if kept else ""
            details.append(render("rem.stopped_children", count=len(children), kept=kept_text))
        if enrolments:
            details.append(render("rem.stopped_followups", count=len(enrolments)))
        ctx.reply(render("rem.stopped", details="".join(details)))
        return True

    # -- follow-ups: the resident's side ---------------------------------------------------------------

    async def _followup_answer(self, ctx: ChatContext, yes: bool, number: str | None) -> bool:
        assert ctx.actor.resident is not None
        session = ctx.turn.session
        query = select(FollowupEnrolment).where(
            FollowupEnrolment.recipient_id == ctx.actor.resident.id,
            FollowupEnrolment.status == EnrolmentStatus.AWAITING_CONSENT,
        )
        if number is not None:
            query = query.where(FollowupEnrolment.id == int(number))
        pending = list(await session.scalars(query.order_by(FollowupEnrolment.id)))
        if not pending:
            ctx.reply(render("rem.fu.none_pending"))
            return True
        if len(pending) > 1:
            ctx.reply(render("rem.fu.which", numbers="、".join(str(e.id) for e in pending)))
            return True
        enrolment = pending[0]
        if not yes:
            staff, number_ = enrolment.enrolled_by, enrolment.id
            await session.delete(enrolment)  # nothing is kept without consent
            await session.flush()
            ctx.reply(render("rem.fu.declined"))
            await ctx.turn.tell_staff(staff, render("rem.staff.declined", number=number_))
            return True
        programme = load_programmes().get(enrolment.programme)
        consent = Consent(
            resident_id=ctx.actor.resident.id,
            programme=enrolment.programme,
            text_version=CONSENT_VERSION,
            channel=ctx.message.channel,
            given_at=ctx.turn.now,
        )
        session.add(consent)
        await session.flush()
        enrolment.consent_id, enrolment.status = consent.id, EnrolmentStatus.ACTIVE
        today = self._today(ctx)
        if enrolment.next_due is None or enrolment.next_due < today:
            enrolment.next_due = programme.first_due(today, enrolment.interval_days, enrolment.anchor_date)
        await planner.plan_followup_reminders(session, enrolment, ctx.turn.now, self.config, self._tz(ctx))
        ctx.reply(render("rem.fu.accepted", date=date_text(enrolment.next_due)))
        await ctx.turn.tell_staff(
            enrolment.enrolled_by,
            render("rem.staff.accepted", number=enrolment.id, date=enrolment.next_due.isoformat()),
        )
        return True

    # -- follow-ups: health staff ----------------------------------------------------------------------


def _register() -> None:
    """The feature's commands, in the order they are tried (after 退订 and the enrolment dialog).
    The answers the enrolment dialog reads (同意, 跳过, 取消 …) are answers, not commands."""
    residents = frozenset({RESIDENT})
    health = frozenset({Role.HEALTH, Role.ADMIN})
    f = ReminderFeature
    for name, pattern, examples, handler, before in (
        ("stop", _STOP, ("退订", "TD", "取消提醒"), None, ()),
        ("start", _START, ("疫苗提醒", "登记孩子", "/vaccine"), f._on_start, ()),
        # "关注" and an eight-character code joins a child; "关注 12" follows case 12 (the core's).
        ("join", _JOIN, ("加入 K7M2QX9A", "关注 12345678", "关注 K7M2QX9A"), f._on_join, ("core.follow",)),
        ("renew_codes", _RENEW_CODE, ("新邀请码",), f._on_renew_codes, ()),
        ("done", _DONE, ("已打", "已接种 乙肝疫苗第2剂"), f._on_done, ()),
        ("postpone", _POSTPONE, ("推迟", "推迟 3天"), f._on_postpone, ()),
        ("plan", _PLAN, ("我的孩子", "接种计划"), f._on_plan, ()),
        ("followup_answer", _FU_ANSWER, ("同意随访 3", "不同意随访"), f._on_followup_answer, ()),
        ("my_number", _MY_NUMBER, ("我的编号",), f._on_my_number, ()),
    ):
        COMMANDS.add(
            CommandSpec(
                f"rem.{name}",
                pattern,
                examples,
                residents,
                feature="reminders",
                handler=handler,
                before=frozenset(before),
            )
        )
    COMMANDS.add(
        CommandSpec(
            "rem.followup",
            _STAFF,
            (
                "随访登记 R12 高血压",
                "随访记录 F3 电话 血压平稳",
                "随访结束 F3",
                "随访待办",
                "随访帮助",
                "随访",
            ),
            health,
            refusal="rem.staff.health_only",
            resident_refusal="rem.staff.health_only",
            feature="reminders",
            help=(
                HelpLine("help.rem.enrol", frozenset({Role.HEALTH}), 10),
                HelpLine("help.rem.record", frozenset({Role.HEALTH}), 20),
                HelpLine("help.rem.more", frozenset({Role.HEALTH}), 30),
            ),
        )
    )


_register()
