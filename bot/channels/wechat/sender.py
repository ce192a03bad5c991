"""Delivering outbox rows to WeChat users: the path each message may take, and a record when none may.

1. A customer-service message (``message/custom/send``) while the user's window is open: 48 hours and
   5 messages after a message of theirs, 1 minute and 3 messages after a subscribe/menu/scan event.
   WeChat's own answer wins: ``45015`` closes the window, ``45047`` spends the quota.
2. Otherwise a template message (``message/template/send``) when a template id is configured for the
   row's kind (``OUTREACH_WECHAT_TEMPLATES``, e.g. ``{"status": "…", "notify": "…", "default": "…"}``).
   Fields: ``first`` (summary), ``keyword1`` (case number), ``keyword2`` (summary, ≤20 characters),
   ``keyword3`` (time), ``remark``.
3. Otherwise a subscription message (``message/subscribe/bizsend``) when one is configured for the kind
   (``OUTREACH_WECHAT_SUBSCRIBE_TEMPLATES``) and the user accepted that template in the popup. Fields:
   ``character_string1`` (case number), ``thing2`` (summary), ``time3`` (time).
4. Otherwise a ``wechat_unreached`` row (``outreach-bot wechat unreached``) and the outbox row fails.

``45009`` (the app's daily API quota) puts the message back until shortly after midnight, Beijing time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wechat.client import (
    API_QUOTA,
    CS_QUOTA,
    INVALID_OPENID,
    NOT_FOLLOWING,
    OUT_OF_WINDOW,
    SUBSCRIBE_REFUSED,
    WeChatAPIError,
    WeChatClient,
    WeChatTransportError,
)
from bot.channels.wechat.db import insert_ignore
from handlers.kernel.outbox import DeliveryError, mark_dispatched
from messages import render
from storage.models import OutboxMessage, ResidentIdentity, utcnow
from storage.wechat_models import WeChatSubscription, WeChatUnreached, WeChatUser

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MESSAGE_WINDOW = (timedelta(hours=48), 5)
EVENT_WINDOW = (timedelta(minutes=1), 3)
QUOTA_RETRY = timedelta(minutes=30)
BEIJING = ZoneInfo("Asia/Shanghai")
FIELD_LIMIT = 20  # template and subscription fields: ≤20 characters, one line


class Window:
    OPEN = "open"
    UNKNOWN = "unknown"  # we never heard from them: try, WeChat will say
    CLOSED = "window_closed"
    QUOTA = "quota"
    UNSUBSCRIBED = "unsubscribed"


def window_state(user: WeChatUser | None, resident_last: datetime | None, now: datetime) -> str:
    """Whether a customer-service message may go to this user now."""
    if user is None or user.last_inbound_at is None:
        # Nothing of ours: the core's last message time, or what WeChat told us last time.
        if user is not None and user.unsubscribed_at is not None:
            return Window.UNSUBSCRIBED
        if resident_last is None:
            return Window.CLOSED if user is not None and user.window_closed_at else Window.UNKNOWN
        if user is not None and user.window_closed_at and user.window_closed_at >= resident_last:
            return Window.CLOSED
        return Window.OPEN if now - resident_last < MESSAGE_WINDOW[0] else Window.CLOSED
    last = user.last_inbound_at
    if user.unsubscribed_at is not None and user.unsubscribed_at >= last:
        return Window.UNSUBSCRIBED
    if user.window_closed_at is not None and user.window_closed_at >= last:
        return Window.CLOSED
    length, quota = EVENT_WINDOW if user.window_kind == "event" else MESSAGE_WINDOW
    if now - last >= length:
        return Window.CLOSED
    if user.cs_sent >= quota:
        return Window.QUOTA
    return Window.OPEN


def window_end(user: WeChatUser | None) -> datetime | None:
    if user is None or user.last_inbound_at is None:
        return None
    length = EVENT_WINDOW[0] if user.window_kind == "event" else MESSAGE_WINDOW[0]
    return user.last_inbound_at + length


def seconds_to_quota_reset(now: datetime) -> float:
    """WeChat's daily quotas reset at midnight, Beijing time; come back five minutes after."""
    local = now.astimezone(BEIJING)
    reset = (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
    return max((reset - local).total_seconds(), 60.0)


_BRACKETS = re.compile(r"[【】]")


def summary(text: str, limit: int = FIELD_LIMIT) -> str:
    """The first line of a message, fit for a one-line template field."""
    line = _BRACKETS.sub("", (text.strip().splitlines() or [""])[0]).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def photo_url(payload: Mapping[str, Any]) -> str | None:
    photo = payload.get("photo")
    if isinstance(photo, str) and "|" in photo:
        url = photo.split("|", 1)[1]
        if url.startswith(("http://", "https://")):
            return url
    return None


@dataclass
class Route:
    path: str  # custom / template / subscribe / unreached
    reason: str | None = None


class WeChatSender:
    """The outbox ``Sender`` of the Official Account channel."""

    channel = CHANNEL

    def __init__(
        self,
        client: WeChatClient,
        sessions: async_sessionmaker[AsyncSession],
        *,
        templates: Mapping[str, str] | None = None,
        subscribe_templates: Mapping[str, str] | None = None,
        timezone: ZoneInfo = BEIJING,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.templates = dict(templates or {})
        self.subscribe_templates = dict(subscribe_templates or {})
        self.timezone = timezone
        self.clock = clock

    # -- state -----------------------------------------------------------------------------------------

    async def _load(self, openid: str) -> tuple[WeChatUser | None, datetime | None]:
        async with self.sessions() as session:
            user = await session.get(WeChatUser, (CHANNEL, openid))
            resident = await session.get(ResidentIdentity, (CHANNEL, openid))
            return user, resident.last_inbound_at if resident is not None else None

    async def _mark(self, openid: str, **values: Any) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                insert_ignore(session, WeChatUser, {"channel": CHANNEL, "openid": openid, "cs_sent": 0})
            )
            await session.execute(
                update(WeChatUser)
                .where(WeChatUser.channel == CHANNEL, WeChatUser.openid == openid)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def _record_unreached(self, row: OutboxMessage, reason: str) -> None:
        async with self.sessions.begin() as session:
            session.add(
                WeChatUnreached(
                    at=self.clock(),
                    channel=CHANNEL,
                    openid=row.recipient,
                    outbox_id=row.id,
                    case_id=row.case_id,
                    kind=row.kind,
                    reason=reason[:64],
                    text=row.text,
                )
            )
        log.warning("outbox %s (%s) not delivered on wechat: %s", row.id, row.kind, reason)

    # -- sending ---------------------------------------------------------------------------------------

    def _text(self, row: OutboxMessage) -> str:
        url = photo_url(row.payload or {})
        return row.text + ("\n" + render("wechat.photo_link", url=url) if url else "")

    def _fields(self, row: OutboxMessage) -> tuple[str, str, str]:
        created = row.created_at or self.clock()
        number = f"#{row.case_id}" if row.case_id is not None else "-"
        return number, summary(row.text), created.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M")

    async def send(self, row: OutboxMessage) -> None:
        now = self.clock()
        user, resident_last = await self._load(row.recipient)
        state = window_state(user, resident_last, now)
        if state == Window.UNSUBSCRIBED:
            await self._give_up(row, Window.UNSUBSCRIBED)
        reason = state
        if state in (Window.OPEN, Window.UNKNOWN):
            try:
                await self._dispatching(row)
                await self.client.send_text(row.recipient, self._text(row))
            except WeChatAPIError as exc:
                if exc.errcode == OUT_OF_WINDOW:
                    await self._mark(row.recipient, window_closed_at=now)
                    reason = Window.CLOSED
                elif exc.errcode == CS_QUOTA:
                    await self._mark(row.recipient, cs_sent=MESSAGE_WINDOW[1])
                    reason = Window.QUOTA
                else:
                    await self._api_failure(row, exc)
            except WeChatTransportError as exc:
                raise DeliveryError(str(exc)) from None
            else:
                if user is not None:
                    await self._mark(row.recipient, cs_sent=WeChatUser.cs_sent + 1)
                return
        if await self._try_template(row) or await self._try_subscribe(row):
            return
        if reason == Window.QUOTA:
            end = window_end(user)
            if end is not None and end - now > timedelta(minutes=1):
                # The user may write again (a new quota) before the window closes: try again later.
                wait = min(QUOTA_RETRY, end - now)
                raise DeliveryError(Window.QUOTA, retry_after=wait.total_seconds())
        await self._give_up(row, reason)

    async def _dispatching(self, row: OutboxMessage) -> None:
        """Before the first request that may deliver the row (see handlers/kernel/outbox.py)."""
        if row.dispatched_at is None:
            await mark_dispatched(self.sessions, row, self.clock())

    async def _give_up(self, row: OutboxMessage, reason: str, cause: str | None = None) -> None:
        await self._record_unreached(row, reason)
        raise DeliveryError(reason, permanent=True, cause=cause or reason)

    async def _api_failure(self, row: OutboxMessage, exc: WeChatAPIError) -> None:
        """Raise the DeliveryError an API error means (never returns)."""
        if exc.errcode == API_QUOTA:
            raise DeliveryError("api daily quota (45009)", retry_after=seconds_to_quota_reset(self.clock()))
        if exc.errcode == NOT_FOLLOWING:
            await self._mark(row.recipient, unsubscribed_at=self.clock())
            await self._give_up(row, Window.UNSUBSCRIBED)
        if exc.errcode == INVALID_OPENID:
            await self._give_up(row, f"errcode_{exc.errcode}", "invalid_user")
        raise DeliveryError(f"errcode {exc.errcode}")

    async def _try_template(self, row: OutboxMessage) -> bool:
        template_id = self.templates.get(row.kind) or self.templates.get("default")
        if not template_id:
            return False
        number, short, when = self._fields(row)
        data = {
            "first": {"value": short},
            "keyword1": {"value": number},
            "keyword2": {"value": short},
            "keyword3": {"value": when},
            "remark": {"value": summary(render("wechat.template_remark"))},
        }
        try:
            await self._dispatching(row)
            await self.client.send_template(row.recipient, template_id, data)
        except WeChatAPIError as exc:
            if exc.errcode in (API_QUOTA, NOT_FOLLOWING, INVALID_OPENID):
                await self._api_failure(row, exc)
            log.warning("template message for outbox %s refused: errcode %s", row.id, exc.errcode)
            return False
        except WeChatTransportError as exc:
            raise DeliveryError(str(exc)) from None
        return True

    async def _try_subscribe(self, row: OutboxMessage) -> bool:
        template_id = self.subscribe_templates.get(row.kind) or self.subscribe_templates.get("default")
        if not template_id:
            return False
        async with self.sessions() as session:
            status = await session.scalar(
                select(WeChatSubscription.status).where(
                    WeChatSubscription.openid == row.recipient,
                    WeChatSubscription.template_id == template_id,
                )
            )
        if status != "accept":
            return False
        number, short, when = self._fields(row)
        data = {
            "character_string1": {"value": number},
            "thing2": {"value": short},
            "time3": {"value": when},
        }
        try:
            await self._dispatching(row)
            await self.client.send_subscribe(row.recipient, template_id, data)
        except WeChatAPIError as exc:
            if exc.errcode == SUBSCRIBE_REFUSED:
                await record_subscription(self.sessions, row.recipient, template_id, "reject", self.clock())
                return False
            if exc.errcode in (API_QUOTA, NOT_FOLLOWING, INVALID_OPENID):
                await self._api_failure(row, exc)
            log.warning("subscription message for outbox %s refused: errcode %s", row.id, exc.errcode)
            return False
        except WeChatTransportError as exc:
            raise DeliveryError(str(exc)) from None
        return True


async def record_subscription(
    sessions: async_sessionmaker[AsyncSession], openid: str, template_id: str, status: str, now: datetime
) -> None:
    from bot.channels.wechat.db import upsert

    async with sessions.begin() as session:
        await session.execute(
            upsert(
                session,
                WeChatSubscription,
                {"openid": openid, "template_id": template_id, "status": status, "updated_at": now},
                {"status": status, "updated_at": now},
            )
        )
