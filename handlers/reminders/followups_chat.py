"""Health staff's follow-up commands (随访登记 / 随访记录 / 随访结束 / 随访待办 / 随访帮助), part of the
reminders chat feature (``handlers/reminders/chat.py`` declares them in the command registry).

  随访登记 R12 高血压 [YYYY-MM-DD] [家属 R13] [每N天] [书面同意]
  随访记录 F3 电话|上门|门诊 结果 [YYYY-MM-DD] [下次 YYYY-MM-DD]
  随访结束 F3 · 随访待办 · 随访帮助
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.kernel.commands import COMMANDS
from handlers.kernel.features import ChatContext
from handlers.kernel.ports import OutboxKind
from handlers.reminders import planner, store
from handlers.reminders.config import ReminderSettings
from handlers.reminders.jobs import community_names, station
from handlers.reminders.models import Consent, EnrolmentStatus, FollowupEnrolment, FollowupRecord, Programme
from handlers.reminders.programmes import ProgrammeDef, load_programmes
from handlers.reminders.vaccine_words import parse_date
from messages import render
from storage.models import Resident

LIST_LIMIT = 30

STAFF_WORDS = re.compile(r"^随访(?P<verb>登记|记录|结束|待办|列表|帮助)?(?P<rest>.*)$", re.S)
_FAMILY = re.compile(r"家属\s*(?P<ref>\S+)")
_EVERY = re.compile(r"每\s*(?P<n>\d{1,3})\s*天")
_WRITTEN = re.compile(r"书面同意|已签|知情同意")
_NEXT = re.compile(r"下次\s*(?P<date>\S+)")
_FU_ID = re.compile(r"^[#＃Ff]?\s*(\d{1,9})$")


@dataclass(frozen=True)
class _EnrolRequest:
    """A health staff member's 随访登记, read and checked."""

    patient: Resident
    recipient: Resident
    programme: ProgrammeDef
    written: bool
    on: date | None
    interval: int


class FollowupStaffCommands:
    """The follow-up commands, mixed into ``ReminderFeature`` (which gives them its settings)."""

    @property
    def config(self) -> ReminderSettings:
        raise NotImplementedError

    def _tz(self, ctx: ChatContext) -> ZoneInfo:
        return ctx.turn.community.timezone

    def _today(self, ctx: ChatContext) -> date:
        return planner.local_today(ctx.turn.now, self._tz(ctx))

    async def _staff(self, ctx: ChatContext, text: str) -> bool:
        spec = COMMANDS.get("rem.followup")
        m = spec.match(text)
        if m is None:
            return False
        if not spec.allows(ctx.actor.role):
            ctx.reply(render(spec.refusal or "rem.staff.health_only"))
            return True
        verb, rest = m.group("verb"), m.group("rest").strip()
        if verb == "登记":
            await self._enrol(ctx, rest)
        elif verb == "记录":
            await self._record_followup(ctx, rest)
        elif verb == "结束":
            await self._end_followup(ctx, rest)
        elif verb in ("待办", "列表"):
            await self._list_followups(ctx)
        else:
            ctx.reply(render("rem.staff.help", programmes=self._programme_words()))
        return True

    def _programme_words(self) -> str:
        return "、".join(p.words[0] for p in load_programmes().programmes.values())

    async def _enrol(self, ctx: ChatContext, rest: str) -> None:
        assert ctx.actor.staff is not None
        session = ctx.turn.session
        request = await self._enrol_request(ctx, rest)
        if request is None:
            return
        patient, recipient, programme = request.patient, request.recipient, request.programme
        existing = await session.scalar(
            select(FollowupEnrolment).where(
                FollowupEnrolment.resident_id == patient.id,
                FollowupEnrolment.programme == programme.code,
                FollowupEnrolment.status.in_([EnrolmentStatus.ACTIVE, EnrolmentStatus.AWAITING_CONSENT]),
            )
        )
        if existing is not None:
            ctx.reply(render("rem.staff.already", number=existing.id))
            return
        addresses = await store.resident_addresses(session, [recipient.id], ctx.turn.services.channels)
        if recipient.id not in addresses:
            ctx.reply(render("rem.staff.unreachable", ref=f"R{recipient.id}"))
            return
        if request.written:
            session.add(
                Consent(
                    resident_id=patient.id,
                    programme=programme.code,
                    text_version="written",
                    channel="written",
                    given_at=ctx.turn.now,
                    recorded_by=ctx.actor.staff.id,
                )
            )
        enrolment = FollowupEnrolment(
            resident_id=patient.id,
            recipient_id=recipient.id,
            programme=programme.code,
            interval_days=request.interval,
            anchor_date=request.on if programme.visit_weeks else None,
            next_due=None if programme.visit_weeks else request.on,
            status=EnrolmentStatus.AWAITING_CONSENT,
            enrolled_by=ctx.actor.staff.id,
            created_at=ctx.turn.now,
        )
        session.add(enrolment)
        await session.flush()
        family = recipient.id != patient.id
        names = await community_names(session, {recipient.id}) if ctx.turn.services.several else {}
        ctx.turn.say(
            addresses[recipient.id],
            render(
                "rem.consent.followup",
                head=render("rem.msg.head", station=station(ctx.turn.services, names.get(recipient.id))),
                staff=ctx.actor.staff.name,
                whose=render("rem.whose.family" if family else "rem.whose.self"),
                number=enrolment.id,
                footer=render("rem.msg.footer"),
            ),
            kind=OutboxKind.NOTIFY,
        )
        ctx.reply(
            render(
                "rem.staff.enrolled",
                number=enrolment.id,
                programme=programme.name_zh,
                resident=f"R{patient.id}",
                recipient=render("rem.staff.recipient_family" if family else "rem.staff.recipient_self"),
                interval=request.interval,
            )
        )

    async def _enrol_request(self, ctx: ChatContext, rest: str) -> _EnrolRequest | None:
        """What "随访登记 R12 高血压 …" asks for, or None once the staff member has been told what is
        wrong with it (in this order: who, which programme, the family member, the terms)."""
        session = ctx.turn.session
        parts = rest.split()
        if not parts:
            ctx.reply(render("rem.staff.help", programmes=self._programme_words()))
            return None
        scope = await store.staff_scope(ctx)
        patient = await store.find_resident(session, parts[0])
        if patient is None or not store.in_scope(patient, scope):
            ctx.reply(render("rem.staff.unknown_resident", ref=parts[0]))
            return None
        remainder = " ".join(parts[1:])
        programme = load_programmes().find(remainder)
        if programme is None:
            ctx.reply(render("rem.staff.unknown_programme", programmes=self._programme_words()))
            return None
        recipient: Resident = patient
        if fam := _FAMILY.search(remainder):
            found = await store.find_resident(session, fam.group("ref"))
            if found is None or not store.in_scope(found, scope):
                ctx.reply(render("rem.staff.unknown_resident", ref=fam.group("ref")))
                return None
            recipient = found
            remainder = remainder.replace(fam.group(0), " ")
        if programme.family_recipient and recipient.id == patient.id:
            ctx.reply(render("rem.staff.needs_family"))
            return None
        terms = self._enrol_terms(programme, remainder, self._today(ctx))
        if isinstance(terms, str):
            ctx.reply(render(terms))
            return None
        written, on, interval = terms
        return _EnrolRequest(patient, recipient, programme, written, on, interval)

    def _enrol_terms(
        self, programme: ProgrammeDef, remainder: str, today: date
    ) -> tuple[bool, date | None, int] | str:
        """(written consent, the date, the interval in days), or the key of what is missing or wrong."""
        written = bool(_WRITTEN.search(remainder))
        if programme.code == Programme.SEVERE_MENTAL and not written:
            return "rem.staff.needs_written"
        on = parse_date(remainder, today)
        if programme.visit_weeks and on is None:
            return "rem.staff.needs_anchor"
        interval = programme.routine_interval_days
        if programme.configurable_interval:
            interval = self.config.mental_interval_days
        if every := _EVERY.search(remainder):
            interval = int(every.group("n"))
            if not 7 <= interval <= 365:
                return "rem.staff.bad_interval"
        return written, on, interval

    async def _enrolment(self, ctx: ChatContext, ref: str) -> FollowupEnrolment | None:
        m = _FU_ID.match(ref.strip())
        enrolment = await ctx.turn.session.get(FollowupEnrolment, int(m.group(1))) if m else None
        if enrolment is not None:  # another community's follow-up is unknown here (nothing leaks)
            scope = await store.staff_scope(ctx)
            patient = await ctx.turn.session.get(Resident, enrolment.resident_id)
            if patient is None or not store.in_scope(patient, scope):
                enrolment = None
        if enrolment is None or enrolment.status == EnrolmentStatus.ENDED:
            ctx.reply(render("rem.staff.unknown_followup", ref=ref))
            return None
        return enrolment

    async def _record_followup(self, ctx: ChatContext, rest: str) -> None:
        assert ctx.actor.staff is not None
        session, today, programmes = ctx.turn.session, self._today(ctx), load_programmes()
        parts = rest.split(maxsplit=1)
        if not parts:
            ctx.reply(render("rem.staff.help", programmes=self._programme_words()))
            return
        enrolment = await self._enrolment(ctx, parts[0])
        if enrolment is None:
            return
        programme: ProgrammeDef = programmes.get(enrolment.programme)
        remainder = parts[1] if len(parts) > 1 else ""
        next_given: date | None = None
        if nxt := _NEXT.search(remainder):
            next_given = parse_date(nxt.group("date"), date.max)
            remainder = remainder.replace(nxt.group(0), " ")
            if next_given is None or next_given < today:
                ctx.reply(render("rem.staff.bad_next"))
                return
        method = programmes.method(remainder)
        result = programmes.result(remainder)
        if method is None or result is None or result not in programme.results():
            words = [w for w, code in programmes.results if code in programme.results()]
            ctx.reply(render("rem.staff.bad_record", results="、".join(sorted(set(words), key=len))))
            return
        done_on = parse_date(remainder, today) or today
        if done_on > today:
            ctx.reply(render("rem.staff.bad_next"))
            return
        session.add(
            FollowupRecord(
                enrolment_id=enrolment.id,
                done_on=done_on,
                method=method,
                result=result,
                recorded_by=ctx.actor.staff.id,
                recorded_at=ctx.turn.now,
            )
        )
        due = next_given or programme.next_due(
            done_on, result, enrolment.interval_days, enrolment.anchor_date
        )
        if due is not None and due <= today:
            due = today + timedelta(days=1)
        enrolment.next_due = due
        await session.flush()
        await planner.plan_followup_reminders(session, enrolment, ctx.turn.now, self.config, self._tz(ctx))
        ctx.reply(
            render(
                "rem.staff.recorded",
                number=enrolment.id,
                date=done_on.isoformat(),
                method=render(f"rem.method.{method}"),
                result=render(f"rem.result.{result}"),
                next=due.isoformat() if due else "-",
                waiting=render("rem.staff.waiting_consent")
                if enrolment.status != EnrolmentStatus.ACTIVE
                else "",
            )
        )

    async def _end_followup(self, ctx: ChatContext, rest: str) -> None:
        enrolment = await self._enrolment(ctx, rest)
        if enrolment is None:
            return
        enrolment.status, enrolment.ended_at = EnrolmentStatus.ENDED, ctx.turn.now
        await planner.plan_followup_reminders(
            ctx.turn.session, enrolment, ctx.turn.now, self.config, self._tz(ctx)
        )
        ctx.reply(render("rem.staff.ended", number=enrolment.id))

    async def _list_followups(self, ctx: ChatContext) -> None:
        session, programmes = ctx.turn.session, load_programmes()
        query = select(FollowupEnrolment)
        scope = await store.staff_scope(ctx)
        if scope is not None:  # a community's health staff: their communities' residents only
            query = query.join(Resident, Resident.id == FollowupEnrolment.resident_id).where(
                Resident.community_id.in_(scope)
            )
        rows = list(
            await session.scalars(
                query.where(
                    FollowupEnrolment.status.in_([EnrolmentStatus.ACTIVE, EnrolmentStatus.AWAITING_CONSENT])
                )
                .order_by(
                    FollowupEnrolment.next_due.is_(None), FollowupEnrolment.next_due, FollowupEnrolment.id
                )
                .limit(LIST_LIMIT)
            )
        )
        if not rows:
            ctx.reply(render("rem.staff.list_empty"))
            return
        lines = []
        for e in rows:
            lines.append(
                render(
                    "rem.staff.list_line",
                    number=e.id,
                    resident=f"R{e.resident_id}",
                    programme=programmes.get(e.programme).name_zh,
                    next=e.next_due.isoformat() if e.next_due else "-",
                    status=render(f"rem.enrolment.{e.status}"),
                )
            )
        ctx.reply(render("rem.staff.list", lines="\n".join(lines)))
