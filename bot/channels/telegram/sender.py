"""Delivering Telegram outbox rows: ``sendMessage`` / ``sendPhoto`` with the payload's buttons.

Telegram's limits are kept here (``RateLimiter``), before the request. What Telegram answers decides
what happens to the row: 429 puts it back for ``retry_after`` seconds (never dropped); 403 (the user
blocked the bot) marks the account unreachable and gives up, and later rows to that account are
given up without a request until the user writes again; a 400 is not retried. Any other answer,
whatever its body (a 429 without ``retry_after``, a 5xx page, a 200 that is not a Bot API answer),
is retried with back-off: only Telegram's own "ok" counts as sent.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.channels.telegram.keyboards import keyboard
from bot.channels.telegram.limiter import ChatId, RateLimiter
from handlers.kernel.channel_services import is_unreachable, set_unreachable
from handlers.kernel.outbox import DeliveryError, mark_dispatched
from handlers.kernel.ports import DeliveryOutcome
from storage.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

CHANNEL = "telegram"
INLINE_WAIT = 0.25  # wait this long for a free slot in place; longer waits go back to the outbox
MAX_BOOKED = 100_000
CAPTION_MAX = MessageLimit.CAPTION_LENGTH
TEXT_MAX = MessageLimit.MAX_TEXT_LENGTH


def chat_id_of(recipient: str) -> ChatId:
    try:
        return int(recipient)
    except ValueError:
        return recipient  # an @channel name


def retry_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)  # a timedelta since PTB 22.2
    if not isinstance(value, timedelta):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """The outbox ``Sender`` of the Telegram channel (called by the server's drain loop)."""

    channel = CHANNEL
    ready = True  # False until the adapter has reached Telegram: the drain loop waits meanwhile

    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.limiter = limiter or RateLimiter()
        self.clock = clock
        self._booked: dict[int, float] = {}  # outbox row id → the limiter slot booked for it

    async def send(self, message: OutboxMessage) -> None:
        async with self.sessions() as session:
            if await is_unreachable(session, CHANNEL, message.recipient):
                raise DeliveryError(
                    "recipient unreachable (blocked the bot)", outcome=DeliveryOutcome.BLOCKED
                )
        chat_id = chat_id_of(message.recipient)
        booked = self._slot(message.id, chat_id)
        # Marked before the wait for the limiter, so the request follows the limiter's timing exactly
        # (a commit's delay in between would bunch sends up at Telegram).
        await mark_dispatched(self.sessions, message, self.clock())
        await self._wait(chat_id, booked)
        try:
            await self._deliver(chat_id, message)
        except RetryAfter as exc:
            seconds = retry_seconds(exc)
            self.limiter.pause(chat_id, seconds)
            raise DeliveryError(f"429 retry after {seconds:g}s", retry_after=seconds) from None
        except Forbidden as exc:
            async with self.sessions.begin() as session:
                await set_unreachable(session, CHANNEL, message.recipient, self.clock())
            log.info("telegram chat of outbox message %s is unreachable; marked", message.id)
            raise DeliveryError(f"403 {exc.message}"[:200], outcome=DeliveryOutcome.BLOCKED) from None
        except BadRequest as exc:
            raise DeliveryError(f"400 {exc.message}"[:200], permanent=True, cause="bad_request") from None
        except TelegramError as exc:  # network trouble, timeouts, 5xx, a 429 without retry_after …
            raise DeliveryError(f"{type(exc).__name__}: {exc.message}"[:200]) from None
        except (KeyError, TypeError, ValueError) as exc:
            # A 200 whose body is not a Bot API answer (a proxy's page, "{}"): not proof of delivery.
            raise DeliveryError(f"unexpected answer from Telegram ({type(exc).__name__})") from None

    def _slot(self, row_id: int, chat_id: ChatId) -> float | None:
        """The chat's booked slot for this row (None: the next free one), or, when that is further
        away than a moment, ``DeliveryError`` with ``retry_after``: the row goes back to the outbox
        until then (rescheduled, not failed)."""
        limiter = self.limiter
        booked = self._booked.pop(row_id, None)
        if booked is None and limiter.chat_delay(chat_id) > INLINE_WAIT:
            booked = limiter.clock() + limiter.book(chat_id)
        if booked is not None and (wait := limiter.booked_delay(chat_id, booked)) > INLINE_WAIT:
            self._remember(row_id, booked)
            raise DeliveryError("local rate limit", retry_after=wait)
        return booked

    async def _wait(self, chat_id: ChatId, booked: float | None) -> None:
        """Wait for the slot: the booked one and the overall rate, or the chat's and overall rate."""
        limiter = self.limiter
        if booked is not None:
            while (wait := limiter.booked_delay(chat_id, booked)) > 0:
                await asyncio.sleep(wait)
            limiter.record_booked(chat_id)
            return
        while (wait := limiter.reserve(chat_id)) > 0:
            await asyncio.sleep(wait)

    def _remember(self, row_id: int, slot: float) -> None:
        self._booked[row_id] = slot
        if len(self._booked) > MAX_BOOKED:  # rows another process sent, or gave up: forget the oldest
            for stale in sorted(self._booked, key=self._booked.__getitem__)[: MAX_BOOKED // 10]:
                del self._booked[stale]

    async def _deliver(self, chat_id: ChatId, message: OutboxMessage) -> None:
        payload = message.payload or {}
        markup = keyboard(payload.get("buttons"))
        text = message.text[:TEXT_MAX]
        photo = payload.get("photo")
        if photo:
            try:
                await self._send_photo(chat_id, str(photo), text, markup)
                return
            except BadRequest as exc:  # a file id Telegram no longer knows: the text still goes
                log.warning("photo of outbox message %s refused (%s); sending text", message.id, exc.message)
        await self.bot.send_message(chat_id, text, reply_markup=markup)

    async def _send_photo(
        self, chat_id: ChatId, photo: str, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        if len(text) <= CAPTION_MAX:
            await self.bot.send_photo(chat_id, photo, caption=text or None, reply_markup=markup)
            return
        await self.bot.send_photo(chat_id, photo)
        await self.bot.send_message(chat_id, text, reply_markup=markup)
