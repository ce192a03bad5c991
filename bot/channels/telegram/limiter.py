"""Telegram's flood limits, enforced on our side before a message leaves the outbox.

Telegram asks bots to stay under about 30 messages a second overall, 1 a second in one chat and 20 a
minute in one group (a chat id below zero, or an ``@channel`` name). PTB's ``AIORateLimiter`` knows
only the first and the last, so this small sliding-window limiter keeps all three. It never sleeps by
itself: ``reserve`` says how long to wait, so the sender can wait a moment, or ``book`` a later slot
in the chat and put the message back in the outbox until then (so a thousand messages to one worker
are each rescheduled once, not once per pass). Tests drive it with an injected clock. The limits hold
per process; several processes sharing one bot should lower them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

PER_SECOND = 30  # messages a second, all chats together
CHAT_INTERVAL = 1.0  # seconds between two messages to one chat
GROUP_PER_MINUTE = 20  # messages a minute to one group
_PRUNE_AT = 4096  # chats remembered before idle ones are forgotten

ChatId = int | str


def is_group(chat_id: ChatId) -> bool:
    if isinstance(chat_id, int):
        return chat_id < 0
    return chat_id.startswith(("@", "-"))


class RateLimiter:
    def __init__(
        self,
        *,
        per_second: int = PER_SECOND,
        chat_interval: float = CHAT_INTERVAL,
        group_per_minute: int = GROUP_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.chat_interval = chat_interval
        self.group_per_minute = group_per_minute
        self.clock = clock
        self._recent: deque[float] = deque()  # send times within the last second
        self._chat_next: dict[ChatId, float] = {}  # earliest next send per chat (bookings included)
        self._chat_last: dict[ChatId, float] = {}  # when the last message to each chat actually went
        self._groups: dict[ChatId, deque[float]] = {}  # send times within the last minute, per group

    @classmethod
    def shared_by(cls, processes: int, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
        """This process's share when ``processes`` send for the same bot: together they keep within
        30/s overall, 1/s per chat and 20/min per group without talking to each other."""
        n = max(1, processes)
        return cls(
            per_second=max(1, PER_SECOND // n),
            chat_interval=CHAT_INTERVAL * n,
            group_per_minute=max(1, GROUP_PER_MINUTE // n),
            clock=clock,
        )

    def delay(self, chat_id: ChatId) -> float:
        """Seconds until a message to ``chat_id`` may go (0 = now)."""
        return max(self.global_delay(), self.chat_delay(chat_id))

    def global_delay(self) -> float:
        """Seconds until the overall rate allows one more message."""
        now = self.clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) < self.per_second:
            return 0.0
        return max(self._recent[-self.per_second] + 1.0 - now, 0.0)

    def chat_delay(self, chat_id: ChatId) -> float:
        """Seconds until the chat's own limits (and its group limit) allow a message."""
        now = self.clock()
        wait = self._chat_next.get(chat_id, now) - now
        sent = self._group_sent(chat_id, now)
        if sent is not None and len(sent) >= self.group_per_minute:
            wait = max(wait, sent[-self.group_per_minute] + 60.0 - now)
        return max(wait, 0.0)

    def _group_sent(self, chat_id: ChatId, now: float) -> deque[float] | None:
        if not is_group(chat_id):
            return None
        sent = self._groups.setdefault(chat_id, deque())
        while sent and sent[0] <= now - 60.0:
            sent.popleft()
        return sent

    def record(self, chat_id: ChatId) -> None:
        now = self.clock()
        self._recent.append(now)
        self._chat_last[chat_id] = now
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, now), now + self.chat_interval)
        sent = self._group_sent(chat_id, now)
        if sent is not None:
            sent.append(now)
        if len(self._chat_next) > _PRUNE_AT:
            self._prune(now)

    def reserve(self, chat_id: ChatId) -> float:
        """Take a slot for ``chat_id`` if one is free (returns 0), else return the wait and take none."""
        wait = self.delay(chat_id)
        if wait <= 0:
            self.record(chat_id)
        return wait

    def book(self, chat_id: ChatId) -> float:
        """Reserve the chat's next free slot (after every slot booked before) and return the seconds
        until it. The message sent in that slot counts against the overall rate only when it goes
        (``record_booked``)."""
        now = self.clock()
        slot = max(now, self._chat_next.get(chat_id, now))
        sent = self._group_sent(chat_id, now)
        if sent is not None and len(sent) >= self.group_per_minute:
            slot = max(slot, sent[-self.group_per_minute] + 60.0)
        self._chat_next[chat_id] = slot + self.chat_interval
        if sent is not None:
            sent.append(slot)
        return slot - now

    def booked_delay(self, chat_id: ChatId, slot: float) -> float:
        """Seconds until a booked message may go: its slot, the overall rate, and the chat's interval
        since the message before it actually went (a booking sent late must not crowd the next)."""
        now = self.clock()
        last = self._chat_last.get(chat_id)
        spacing = last + self.chat_interval - now if last is not None else 0.0
        return max(slot - now, spacing, self.global_delay(), 0.0)

    def record_booked(self, chat_id: ChatId) -> None:
        """A booked message goes now: it counts against the overall rate (its chat slot was taken
        when it was booked)."""
        now = self.clock()
        self._recent.append(now)
        self._chat_last[chat_id] = now
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, now), now + self.chat_interval)

    def pause(self, chat_id: ChatId, seconds: float) -> None:
        """Telegram said "retry after": nothing more to that chat for ``seconds``."""
        until = self.clock() + seconds
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, until), until)

    async def acquire(
        self, chat_id: ChatId, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    ) -> None:
        """Wait until a message to ``chat_id`` may go, and take the slot."""
        while (wait := self.reserve(chat_id)) > 0:
            await sleep(wait)

    def _prune(self, now: float) -> None:
        for chat in [c for c, t in self._chat_next.items() if t <= now]:
            del self._chat_next[chat]
        for chat in [c for c, t in self._chat_last.items() if t <= now - self.chat_interval]:
            del self._chat_last[chat]
        for group in [g for g, sent in self._groups.items() if not sent or sent[-1] <= now - 60.0]:
            del self._groups[group]
