"""The doses of a guardian's children in the reminders chat: the plan lines (next and missing doses),
已打 / 已接种 (recording doses, also the enrolment dialog's answers) and 推迟. Mixed into
``ReminderFeature`` (``handlers/reminders/chat.py``, which declares the commands)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from handlers.kernel.features import ChatContext
from handlers.reminders import planner, store
from handlers.reminders.jobs import date_text, dose_text
from handlers.reminders.models import Child, Reminder
from handlers.reminders.schedule import DoseRule, DoseStatus, Schedule, Status
from handlers.reminders.vaccine_words import find_mentions, parse_date, resolve
from messages import render

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from handlers.reminders.config import ReminderSettings

S_DOSES = "rem.doses"  # the enrolment dialog's last step: the doses already given

_DAYS = re.compile(r"(\d{1,3})\s*(?:天|日)")
_WEEKS = re.compile(r"(\d{1,2}|[一两二三四])\s*(?:周|个?星期|个?礼拜)")
_CN = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4}


class ChildDoseCommands:
    """Mixed into ``ReminderFeature``, which gives it its settings (``config``) and, through
    ``FollowupStaffCommands``, the community's time zone and local date (``_tz``, ``_today``)."""

    if TYPE_CHECKING:

        @property
        def config(self) -> ReminderSettings: ...

        def _tz(self, ctx: ChatContext) -> ZoneInfo: ...

        def _today(self, ctx: ChatContext) -> date: ...

    async def _plan(self, ctx: ChatContext, child: Child) -> list[planner.Planned]:
        return await planner.plan_child_reminders(
            ctx.turn.session, child, ctx.turn.now, self.config, self._tz(ctx)
        )

    async def _child_plan(self, ctx: ChatContext, child: Child) -> tuple[Schedule, list[DoseStatus]]:
        given = await planner.given_doses(ctx.turn.session, child.id)
        return planner.child_plan(child, given, self._today(ctx), self.config)

    def _next_line(self, plan: Sequence[DoseStatus], today: date) -> str:
        ahead = [d for d in plan if d.status in (Status.UPCOMING, Status.DUE)]
        if not ahead:
            return render("rem.next_none")
        first = min(d.due for d in ahead)
        names = "、".join(dose_text(d.code, d.dose) for d in ahead if d.due == first)
        return render("rem.next_now" if first <= today else "rem.next", date=date_text(first), vaccines=names)

    def _missing_line(self, plan: Sequence[DoseStatus]) -> str | None:
        missing = [d for d in plan if d.status == Status.OVERDUE]
        if not missing:
            return None
        names = "、".join(dose_text(d.code, d.dose) for d in missing[:12])
        more = render("rem.and_more", count=len(missing)) if len(missing) > 12 else ""
        return render("rem.missing", vaccines=names + more)

    async def _record(
        self,
        ctx: ChatContext,
        child: Child,
        text: str,
        *,
        default_today: bool,
        fallback: Reminder | None = None,
    ) -> list[tuple[DoseRule, date]] | None:
        """Record the doses a reply names. None if it names none (and there is nothing to fall back on)."""
        today = self._today(ctx)
        schedule, plan = await self._child_plan(ctx, child)
        mentions = find_mentions(text, today)
        wanted: list[tuple[DoseRule, date | None]] = []
        unknown: list[str] = []
        for mention in mentions:
            rule = resolve(mention, plan, schedule)
            if rule is None:
                unknown.append(mention.text)
            else:
                wanted.append((rule, mention.on))
        if not mentions and fallback is not None:
            on = parse_date(text, today)
            done = {(d.code, d.dose) for d in plan if d.done}
            for code, dose in fallback.doses:
                rule = schedule.rule(str(code), int(dose))
                if rule is not None and rule.key not in done:
                    wanted.append((rule, on))
        if not wanted and not unknown:
            return None
        recorded: list[tuple[DoseRule, date]] = []
        problems: list[str] = [render("rem.unknown_dose", text=u) for u in unknown]
        for rule, on in wanted:
            if on is None:
                if not default_today:
                    problems.append(render("rem.dose_needs_date", dose=dose_text(rule.code, rule.dose)))
                    continue
                on = today
            if on > today or on < child.birth_date:
                problems.append(
                    render("rem.dose_bad_date", dose=dose_text(rule.code, rule.dose), date=on.isoformat())
                )
                continue
            await store.record_dose(
                ctx.turn.session, child.id, rule.code, rule.dose, on, ctx.turn.now, "guardian"
            )
            recorded.append((rule, on))
        await self._plan(ctx, child)
        lines = []
        if recorded:
            done = "、".join(
                render("rem.dose_on", dose=dose_text(r.code, r.dose), date=on.isoformat())
                for r, on in recorded
            )
            lines.append(render("rem.recorded", child=child.nickname, doses=done))
        lines.extend(problems)
        if ctx.dialog is not None and ctx.dialog.state == S_DOSES:
            lines.append(render("rem.more_doses"))
        else:
            _, plan = await self._child_plan(ctx, child)
            lines.append(self._next_line(plan, self._today(ctx)))
        ctx.reply("\n".join(lines))
        return recorded

    async def _pick_child(
        self, ctx: ChatContext, text: str
    ) -> tuple[Child | None, Reminder | None, list[Child]]:
        assert ctx.actor.resident is not None
        children = await store.children_of(ctx.turn.session, ctx.actor.resident.id)
        last = await store.last_sent_reminder(ctx.turn.session, ctx.actor.resident.id)
        named = [c for c in children if c.nickname in text]
        if len(named) == 1:
            child = named[0]
        elif len(children) == 1:
            child = children[0]
        elif last is not None and last.child_id is not None:
            child = next((c for c in children if c.id == last.child_id), None)
        else:
            child = None
        fallback = last if last is not None and child is not None and last.child_id == child.id else None
        return child, fallback, children

    async def _done(self, ctx: ChatContext, rest: str) -> bool:
        child, fallback, children = await self._pick_child(ctx, rest)
        if not children:
            ctx.reply(render("rem.no_children"))
            return True
        if child is None:
            names = "、".join(c.nickname for c in children)
            ctx.reply(render("rem.which_child", children=names, example=children[0].nickname))
            return True
        text = rest.replace(child.nickname, " ")
        if await self._record(ctx, child, text, default_today=True, fallback=fallback) is None:
            ctx.reply(render("rem.done_which_dose", child=child.nickname))
        return True

    async def _postpone(self, ctx: ChatContext, rest: str) -> bool:
        assert ctx.actor.resident is not None
        last = await store.last_sent_reminder(ctx.turn.session, ctx.actor.resident.id)
        if last is None:
            ctx.reply(render("rem.nothing_to_postpone"))
            return True
        days = 7
        if m := _DAYS.search(rest):
            days = int(m.group(1))
        elif m := _WEEKS.search(rest):
            raw = m.group(1)
            days = 7 * (int(raw) if raw.isdigit() else _CN[raw])
        if not 1 <= days <= self.config.max_postpone_days:
            ctx.reply(render("rem.postpone_range", limit=self.config.max_postpone_days))
            return True
        at = await planner.postpone(ctx.turn.session, last, days, ctx.turn.now, self.config, self._tz(ctx))
        local = at.astimezone(self._tz(ctx))
        ctx.reply(render("rem.postponed", date=date_text(local.date()), time=local.strftime("%H:%M")))
        return True
