"""A staff invite code is for the admin who asked for it only: an invite that could not be delivered
shows no code in ``outreach-bot outbox failed``, and the stored row keeps the code masked once it is
sent or given up (a new ``邀请`` is the way to a fresh one)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from sqlalchemy import select

from handlers.kernel.conversation import Conversation
from handlers.kernel.inbound import Inbound
from handlers.kernel.outbox import DeliveryError, drain
from storage.models import OutboxMessage, OutboxStatus
from tests.kernel.test_outbox import cli
from tests.support.chat import Chat

CODE = re.compile(r"[A-HJ-NP-Z2-9]{8}")


@dataclass
class RefusingSender:
    """The platform refuses every message (the admin's account blocked the bot)."""

    channel: str
    texts: list[str] = field(default_factory=list)

    async def send(self, message: OutboxMessage) -> None:
        self.texts.append(message.text)
        raise DeliveryError("403 Forbidden: bot was blocked by the user", permanent=True)


async def invite_rows(chat: Chat) -> list[OutboxMessage]:
    async with chat.services.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "push_only")))


async def test_a_failed_invite_is_listed_without_its_code(chat: Chat, db_url: str) -> None:
    conversation: Conversation = chat.conversation
    await conversation.handle(Inbound(channel="console", sender="chen", text="邀请 zhao"))
    refusing = RefusingSender("console")
    while await drain(chat.services.sessions, refusing, chat.clock):
        pass
    [attempted] = [t for t in refusing.texts if "邀请码" in t]
    code = CODE.search(attempted.split("邀请码", 1)[1]).group(0)  # type: ignore[union-attr]
    [row] = await invite_rows(chat)
    assert row.status == OutboxStatus.FAILED and code not in row.text and "********" in row.text

    listed = await asyncio.to_thread(cli, db_url, "failed")
    assert listed.returncode == 0 and f"#{row.id} " in listed.stdout and "push_only" in listed.stdout
    assert code not in listed.stdout and "邀请码：****" in listed.stdout

    # The code itself still works for the person it was meant for (the platform refused only the message).
    out = await chat.send("zhao-tg", f"绑定 {code}")
    assert any("绑定成功" in t for t in chat.to(out, "zhao-tg"))


async def test_a_delivered_invite_keeps_no_code_in_the_outbox(chat: Chat) -> None:
    out = await chat.send("chen", "邀请 zhao")
    [told] = [t for t in chat.to(out, "chen") if "邀请码" in t]
    code = CODE.search(told.split("邀请码", 1)[1]).group(0)  # type: ignore[union-attr]
    [row] = await invite_rows(chat)
    assert row.status == OutboxStatus.SENT and code not in row.text
