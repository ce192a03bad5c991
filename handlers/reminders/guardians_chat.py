"""A child's second guardian in the reminders chat: the join code (handed out with the plan, replaced by
新邀请码), 加入 / 关注 <code> and its consent. Mixed into ``ReminderFeature``
(``handlers/reminders/chat.py``, which declares the commands and reads the consent answer)."""

from __future__ import annotations

from sqlalchemy import select

from handlers.kernel import code_guard
from handlers.kernel.clock import local_time
from handlers.kernel.features import ChatContext
from handlers.reminders import store
from handlers.reminders.doses_chat import ChildDoseCommands
from handlers.reminders.jobs import NOTIFY, station, turn_community_name
from handlers.reminders.models import Child, Consent, Guardianship
from messages import render

S_JOIN = "rem.join"  # the dialog state while a second guardian is asked for consent


class SecondGuardianCommands(ChildDoseCommands):
    """The join code and the second guardian's joining; the plan lines come from ``ChildDoseCommands``."""

    async def _join_code_line(self, ctx: ChatContext, child: Child, *, renew: bool = False) -> str | None:
        """The line handing out the child's join code; None when the child has both guardians."""
        session = ctx.turn.session
        if await store.guardian_count(session, child.id) >= store.MAX_GUARDIANS:
            return None
        code, until = await store.join_code(
            session, child, ctx.turn.now, self.config.join_code_days, renew=renew
        )
        return render(
            "rem.join_code", child=child.nickname, code=code, until=local_time(ctx.turn.community, until)
        )

    async def _renew_codes(self, ctx: ChatContext, rest: str) -> bool:
        """新邀请码 [孩子]: new codes for the guardian's children (or the one named) that can take a
        second guardian; the old codes stop working."""
        assert ctx.actor.resident is not None
        children = await store.children_of(ctx.turn.session, ctx.actor.resident.id)
        if not children:
            ctx.reply(render("rem.no_children"))
            return True
        named = [c for c in children if rest and c.nickname in rest]
        lines = [
            line
            for child in (named or children)
            if (line := await self._join_code_line(ctx, child, renew=True)) is not None
        ]
        ctx.reply("\n".join([render("rem.join_renewed"), *lines]) if lines else render("rem.join_none_open"))
        return True

    async def _join(self, ctx: ChatContext, code: str) -> bool:
        assert ctx.actor.resident is not None
        session, address, now = ctx.turn.session, ctx.actor.address, ctx.turn.now
        # A locked account's codes are not even looked up: a right guess during the lockout tells nothing.
        if (until := await code_guard.locked_until(session, address, now)) is not None:
            ctx.reply(render("code.locked", until=local_time(ctx.turn.community, until)))
            return True
        code = code_guard.normalise(code)
        child = await session.scalar(select(Child).where(Child.join_code == code))
        if child is None or child.join_code_expires_at is None or child.join_code_expires_at <= now:
            until = await code_guard.record_failure(session, address, now)
            lines = [render("rem.join_invalid")]
            if until is not None:
                lines.append(render("code.locked", until=local_time(ctx.turn.community, until)))
            ctx.reply("\n".join(lines))
            return True
        if await session.get(Guardianship, (child.id, ctx.actor.resident.id)) is not None:
            ctx.reply(render("rem.join_already", child=child.nickname))
            return True
        if await store.guardian_count(session, child.id) >= store.MAX_GUARDIANS:
            ctx.reply(render("rem.join_full", child=child.nickname))
            return True
        await ctx.set_dialog(S_JOIN, {"child": child.id, "code": code})
        ctx.reply(
            render(
                "rem.consent.join",
                station=station(ctx.turn.services, turn_community_name(ctx.turn)),
                child=child.nickname,
            )
        )
        return True

    async def _join_confirmed(
        self, ctx: ChatContext, child_id: int, consent: Consent, code: str | None
    ) -> bool:
        assert ctx.actor.resident is not None
        session = ctx.turn.session
        await ctx.clear_dialog()
        child = await session.get(Child, child_id)
        if (
            child is None
            or (code is not None and child.join_code != code)  # replaced (新邀请码) meanwhile
            or child.join_code_expires_at is None
            or child.join_code_expires_at <= ctx.turn.now
            or await store.guardian_count(session, child.id) >= store.MAX_GUARDIANS
        ):
            ctx.reply(render("rem.join_invalid"))
            return True
        others = (await store.guardians_of(session, [child.id]))[child.id]
        session.add(
            Guardianship(
                child_id=child.id,
                resident_id=ctx.actor.resident.id,
                consent_id=consent.id,
                created_at=ctx.turn.now,
            )
        )
        child.join_code, child.join_code_expires_at = None, None
        await session.flush()
        _, plan = await self._child_plan(ctx, child)
        ctx.reply(render("rem.joined", child=child.nickname, next=self._next_line(plan, self._today(ctx))))
        addresses = await store.resident_addresses(session, others, ctx.turn.services.channels)
        for address in addresses.values():
            ctx.turn.say(address, render("rem.joined_other", child=child.nickname), kind=NOTIFY)
        return True
