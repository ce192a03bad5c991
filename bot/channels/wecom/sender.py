"""Delivering outbox rows to staff on WeCom (``message/send``), and card updates after clicks
(``message/update_template_card``).

* A row with buttons goes as a ``button_interaction`` template card (``cards.py``); a row without as
  ``text`` (at most 2048 bytes; a photo the resident sent goes as its link).
* WeCom silently drops what exceeds 30 messages a minute or 1000 an hour to one member, so our own
  ``MemberLimiter`` is asked first: a full window puts the row back in the outbox for as long as it
  needs (``DeliveryError(retry_after=…)``), it is never sent to be dropped.
* What WeCom answers decides the row's fate: frequency and quota codes reschedule; an unknown or
  departed member (``40031``, ``81013`` …) fails the row and marks the staff account unreachable until
  they write again (later rows to them fail without a request); transport errors and ``-1`` are
  retried with the outbox's back-off. Token errors were already retried once by the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wechat.client import WeChatAPIError, WeChatTransportError
from bot.channels.wechat.sender import photo_url
from bot.channels.wecom import cards
from bot.channels.wecom.client import WeComClient
from bot.channels.wecom.limits import MemberLimiter
from handlers.kernel.channel_services import is_unreachable, set_unreachable
from handlers.kernel.outbox import DeliveryError, mark_dispatched
from handlers.kernel.ports import OutboxKind
from messages import render
from storage.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

CHANNEL = "wecom"
TEXT_MAX_BYTES = 2048
CARD_UPDATE = OutboxKind.CARD_UPDATE.value  # outbox kind of a card update after a click

# Error codes (WeCom's global error code list).
API_FREQUENCY = frozenset({45009, 45033, 45035, 45047})  # api/interface frequency, concurrency, quota
INVALID_USER = frozenset({40031, 60111, 81013, 82001})  # no such member / no member reachable
SYSTEM_BUSY = -1
RETRY_FREQUENCY = 60.0  # seconds to wait after WeCom says "too often"


def fit_bytes(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def message_body(row: OutboxMessage) -> dict[str, Any]:
    """What ``message/send`` gets for the row (recipient and agent are added by the client)."""
    payload = row.payload or {}
    buttons = cards.usable_buttons(payload.get("buttons"))
    url = photo_url(payload)
    text = row.text + ("\n" + render("wechat.photo_link", url=url) if url else "")
    if buttons:
        return {
            "msgtype": "template_card",
            "template_card": cards.card(text, buttons, cards.new_task_id(row.id)),
        }
    return {"msgtype": "text", "text": {"content": fit_bytes(text)}}


class WeComSender:
    """The outbox ``Sender`` of the WeCom channel."""

    channel = CHANNEL

    def __init__(
        self,
        client: WeComClient,
        sessions: async_sessionmaker[AsyncSession],
        limiter: MemberLimiter | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.limiter = limiter or MemberLimiter()
        self.clock = clock

    async def send(self, row: OutboxMessage) -> None:
        if row.kind == CARD_UPDATE:
            await self._update_card(row)
            return
        if await self._unreachable(row.recipient):
            raise DeliveryError("member unreachable (left or unknown)", permanent=True)
        wait = self.limiter.take(row.recipient)
        if wait > 0:
            raise DeliveryError("wecom per-member limit", retry_after=wait)
        try:
            await self._dispatching(row)
            await self.client.send(row.recipient, message_body(row))
        except WeChatAPIError as exc:
            await self._failed(row, exc)
        except WeChatTransportError as exc:
            raise DeliveryError(str(exc)) from None

    async def _dispatching(self, row: OutboxMessage) -> None:
        """Just before the request that may deliver the row (see handlers/kernel/outbox.py): a row another
        process has claimed since is not sent here (``Reclaimed``)."""
        if row.dispatched_at is None:
            await mark_dispatched(self.sessions, row, self.clock())

    async def _failed(self, row: OutboxMessage, exc: WeChatAPIError) -> None:
        """Raise the ``DeliveryError`` the API error means."""
        if exc.errcode in API_FREQUENCY:
            raise DeliveryError(f"errcode {exc.errcode}", retry_after=RETRY_FREQUENCY)
        if exc.errcode in INVALID_USER:
            await self._mark_unreachable(row.recipient)
            log.info("wecom member of outbox message %s cannot be reached; marked", row.id)
            raise DeliveryError(f"errcode {exc.errcode}", permanent=True, cause="platform_error")
        if exc.errcode == SYSTEM_BUSY:
            raise DeliveryError("errcode -1 (system busy)")
        if exc.errcode in (40001, 42001):  # the access token: fetched again on the next try
            raise DeliveryError(f"errcode {exc.errcode}")
        raise DeliveryError(f"errcode {exc.errcode}", permanent=True, cause="platform_error")

    async def _update_card(self, row: OutboxMessage) -> None:
        payload = row.payload or {}
        code, body = str(payload.get("response_code") or ""), payload.get("update")
        if not code or not isinstance(body, dict):
            raise DeliveryError("malformed card update", permanent=True)
        try:
            await self._dispatching(row)
            await self.client.update_card(row.recipient, code, body)
        except WeChatAPIError as exc:
            # A used or expired ResponseCode fails for good: the member still sees the card as it
            # was, and the click itself was handled.
            await self._failed(row, exc)
        except WeChatTransportError as exc:
            raise DeliveryError(str(exc)) from None

    async def _unreachable(self, userid: str) -> bool:
        async with self.sessions() as session:
            return await is_unreachable(session, CHANNEL, userid)

    async def _mark_unreachable(self, userid: str) -> None:
        async with self.sessions.begin() as session:
            await set_unreachable(session, CHANNEL, userid, self.clock())
