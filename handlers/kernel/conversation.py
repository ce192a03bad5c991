"""The channel-neutral conversation: one inbound message in, replies and notifications (outbox rows) out.

Every channel adapter (console, Telegram, WeChat) turns its platform's update into an ``Inbound`` and
calls ``Conversation.handle`` (or ``act`` for a button press); then it delivers what the outbox holds
for it. The whole turn is one transaction, so a report and its acknowledgement are stored together or
not at all, and a redelivered message (same platform message id) is recognised and does nothing.
It is built with a ``ChatComposition`` (``handlers.kernel.features``): the features, the residents' and
staff's flows and the pending-question policy, composed in ``handlers.feature_set`` (the kernel names
no feature).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers.kernel.commands import Command, parse_action, parse_command
from handlers.kernel.context import Services, Turn
from handlers.kernel.features import ChatComposition, ChatContext
from handlers.kernel.inbound import MAX_TEXT, Inbound, normalise, problem_with
from handlers.kernel.people import Actor, Address, identify
from messages import render
from storage.models import Dialog, InboundMessage

log = logging.getLogger(__name__)


@dataclass
class Handled:
    duplicate: bool = False
    outbox_ids: list[int] = field(default_factory=list)
    case_id: int | None = None
    failed: bool = False


class Conversation:
    def __init__(self, services: Services, chat: ChatComposition) -> None:
        self.services = services
        self.chat = chat
        self.features = list(chat.features)

    async def handle(self, message: Inbound, *, action: str | None = None) -> Handled:
        message = normalise(message)
        now = self.services.clock()
        try:
            async with self.services.sessions.begin() as session:
                turn = Turn(self.services, session, now)
                row = await self._log_inbound(turn, message, action)
                if row is None:
                    return Handled(duplicate=True)
                actor = await identify(session, message, now)
                await self._dispatch(turn, actor, message, row, action)
                await session.flush()
                return Handled(outbox_ids=[m.id for m in turn.sent], case_id=row.case_id)
        except IntegrityError:
            if message.message_id is not None and await self._seen(message):
                return Handled(duplicate=True)  # another process took the same redelivery first
            log.exception("integrity error handling a %s message", message.channel)
        except Exception:
            log.exception("failed to handle a %s message", message.channel)
        return await self._record_failure(message, now)

    async def act(self, message: Inbound, action: str) -> Handled:
        """A button press: the same as typing the command the button stands for."""
        return await self.handle(message, action=action)

    # -- bookkeeping ---------------------------------------------------------------------------------

    async def _seen(self, message: Inbound) -> bool:
        async with self.services.sessions() as session:
            found = await session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == message.channel,
                    InboundMessage.external_id == message.message_id,
                )
            )
        return found is not None

    async def _log_inbound(self, turn: Turn, message: Inbound, action: str | None) -> InboundMessage | None:
        if message.message_id is not None:
            exists = await turn.session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == message.channel,
                    InboundMessage.external_id == message.message_id,
                )
            )
            if exists is not None:
                return None
        row = InboundMessage(
            channel=message.channel,
            external_id=message.message_id,
            sender=message.sender,
            received_at=turn.now,
            text=message.text if action is None else f"[{action}]",
            photo=message.photo,
            latitude=message.latitude,
            longitude=message.longitude,
        )
        turn.session.add(row)
        await turn.session.flush()
        return row

    async def _record_failure(self, message: Inbound, now: datetime) -> Handled:
        """Keep the message and apologise, even though handling it failed (nothing half-written stays)."""
        try:
            async with self.services.sessions.begin() as session:
                turn = Turn(self.services, session, now)
                session.add(
                    InboundMessage(
                        channel=message.channel,
                        external_id=message.message_id,
                        sender=message.sender,
                        received_at=now,
                        text=message.text,
                        photo=message.photo,
                        latitude=message.latitude,
                        longitude=message.longitude,
                        status="failed",
                        error="handler error",
                    )
                )
                turn.say(Address(message.channel, message.sender), render("chat.internal_error"))
                await session.flush()
                return Handled(failed=True, outbox_ids=[m.id for m in turn.sent])
        except Exception:
            log.exception("could not record a failed %s message", message.channel)
            return Handled(failed=True)

    # -- dispatch ------------------------------------------------------------------------------------

    async def _dispatch(
        self, turn: Turn, actor: Actor, message: Inbound, row: InboundMessage, action: str | None
    ) -> None:
        command: Command | None
        turn.button = action is not None
        if self.chat.place is not None:
            message = await self.chat.place(turn, actor, message)
        if action is not None:
            command = parse_action(action)
            if command is None:
                turn.say(actor.address, render("chat.old_button"))
                return
            message = replace(message, text=None)
        else:
            problem = problem_with(message)
            if problem is not None:
                turn.say(actor.address, render(f"input.{problem.value}", limit=MAX_TEXT))
                return
            command = parse_command(message.text) if message.text else None
        dialog = await turn.session.get(Dialog, (message.channel, message.sender))
        ctx = ChatContext(turn, actor, message, command, dialog, row)
        questions = self.chat.questions
        if questions.staff_only(ctx):
            # Refused before any pending question can take it as an answer; the question stays.
            turn.say(actor.address, render("chat.staff_only"))
            return
        closing = await questions.close(ctx) if await questions.interrupts(ctx, self.features) else None
        await self._handle(ctx)
        if closing is not None:
            await closing()

    async def _handle(self, ctx: ChatContext) -> None:
        for feature in self.features:
            if await feature.handle(ctx):
                return
        if ctx.actor.is_staff:
            await self.chat.staff(ctx)
        else:
            await self.chat.resident(ctx)
