"""WeCom's per-member quota, kept on our side.

An app may send one member at most 30 messages a minute and 1000 an hour; WeCom answers ``ok`` to the
excess and silently drops it. So the sender asks ``delay`` first and, when a window is full, puts the
row back in the outbox for that long instead of sending it. Sliding windows over the send times of
each member; the clock is injected (tests) and the limits are divided between ``serve --workers``
processes, which do not talk to each other.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

PER_MINUTE = 30
PER_HOUR = 1000
_PRUNE_AT = 4096  # members remembered before idle ones are forgotten


class MemberLimiter:
    def __init__(
        self,
        *,
        per_minute: int = PER_MINUTE,
        per_hour: int = PER_HOUR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.windows = ((60.0, per_minute), (3600.0, per_hour))
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}  # send times within the last hour, per member

    @classmethod
    def shared_by(cls, processes: int, clock: Callable[[], float] = time.monotonic) -> MemberLimiter:
        n = max(1, processes)
        return cls(per_minute=max(1, PER_MINUTE // n), per_hour=max(1, PER_HOUR // n), clock=clock)

    def _recent(self, member: str, now: float) -> deque[float]:
        sent = self._sent.setdefault(member, deque())
        while sent and sent[0] <= now - 3600.0:
            sent.popleft()
        return sent

    def delay(self, member: str) -> float:
        """Seconds until one more message to ``member`` stays within both windows (0 = now)."""
        now = self.clock()
        sent = self._recent(member, now)
        wait = 0.0
        for length, limit in self.windows:
            inside = [t for t in sent if t > now - length]
            if len(inside) >= limit:
                wait = max(wait, inside[-limit] + length - now)
        return wait

    def record(self, member: str) -> None:
        now = self.clock()
        self._recent(member, now).append(now)
        if len(self._sent) > _PRUNE_AT:
            for idle in [m for m, sent in self._sent.items() if not sent or sent[-1] <= now - 3600.0]:
                del self._sent[idle]

    def take(self, member: str) -> float:
        """Take a slot when one is free (returns 0), else return the wait and take none."""
        wait = self.delay(member)
        if wait <= 0:
            self.record(member)
        return wait
