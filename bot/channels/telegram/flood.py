"""The per-sender limit on Telegram updates, before anything is stored: the same in-memory token
bucket as the WeChat and WeCom callbacks (``bot.channels.wechat.guards.SenderLimiter``). A sender over it gets
one short reply (at most one a minute, sent directly: nothing is written to the database), a button
press the same words as its toast; the update itself is confirmed to Telegram and dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, Update
from telegram.error import TelegramError

from bot.channels.wechat.guards import SenderLimiter
from messages import render

log = logging.getLogger(__name__)

TELL_EVERY = 60.0  # seconds: a flooding sender is told once, not once per refused update
_REMEMBERED = 50_000  # senders told recently; the oldest are forgotten beyond that


class FloodGuard:
    def __init__(
        self,
        bot: Bot,
        limiter: SenderLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.limiter = limiter or SenderLimiter(clock=clock)
        self.clock = clock
        self._told: OrderedDict[int, float] = OrderedDict()  # user id → when last told
        self._replies: set[asyncio.Task[None]] = set()

    def admit(self, update: Update) -> bool:
        """Whether the update may be handled; a refused one is answered here and must be dropped."""
        user = update.effective_user
        if user is None:
            return True  # malformed: the handlers log and drop it
        if self.limiter.allow(str(user.id)):
            return True
        now = self.clock()
        told = self._told.get(user.id)
        if update.callback_query is not None:
            self._reply(self._toast(update))  # the press's spinner stops either way
        elif told is None or now - told >= TELL_EVERY:
            self._reply(self._tell(user.id))
        if told is None or now - told >= TELL_EVERY:
            log.warning("telegram: sender %s over the limit; updates dropped", user.id)
            self._told[user.id] = now
            self._told.move_to_end(user.id)
            while len(self._told) > _REMEMBERED:
                self._told.popitem(last=False)
        return False

    def _reply(self, reply: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(reply)
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _tell(self, chat_id: int) -> None:
        with contextlib.suppress(TelegramError):
            await self.bot.send_message(chat_id, render("telegram.too_fast"))

    async def _toast(self, update: Update) -> None:
        query = update.callback_query
        assert query is not None
        with contextlib.suppress(TelegramError):
            await query.answer(text=render("telegram.too_fast"))

    async def close(self) -> None:
        for task in list(self._replies):
            task.cancel()
        await asyncio.gather(*self._replies, return_exceptions=True)
