"""The callback inbox: a checked message is stored (``wechat_inbox``) before WeChat gets its answer, and
handled after, so the callback answers in milliseconds however busy the conversation core is.

* ``put`` group-commits: callbacks arriving together share one transaction, one Core INSERT … ON
  CONFLICT DO NOTHING RETURNING executed for the whole batch (a statement compiled once and cached,
  sent as multi-row VALUES), which also turns WeChat's retries away at the door (unique channel + key).
  Each caller gets its answer only after the commit.
* A message is handled inline (and may get a passive reply) only while nothing is queued; otherwise
  the worker handles the queue in order, one message at a time per process. While callbacks are
  arriving the worker gives way (a conversation turn costs many times a callback's CPU, and answering
  WeChat in time comes first), and catches up when they stop. Claims use a lease and
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes share the queue and a crashed one's
  messages are picked up again (the core's own (channel, message id) check makes that harmless).
* Each callback's seal (signature, timestamp, nonce and the body's SHA-256) is recorded in the same
  transaction (``wechat_callback_seals``), so every process sharing the database sees it: the same body
  under a seal again is a retry (answered as usual), another body under it is refused (``Replayed``).
  A process also remembers the seals it saw (``SEEN_MAX``), so a flood of replays costs no query.
* One bad row (a value the database refuses) cannot fail the batch it was in: the batch is retried
  one row at a time, and only that row's caller gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.callback_inbox import Entry, InboxStore, NewMessage
from handlers.kernel.callback_inbox import Item as Item  # re-exported: what the channel's handler gets
from handlers.kernel.callback_inbox import Replayed as Replayed
from handlers.kernel.callback_inbox import Seal as Seal
from handlers.kernel.clock import utcnow

log = logging.getLogger(__name__)

INLINE_LEASE = timedelta(seconds=30)
BATCH = 200  # messages per group commit
IDLE_POLL = 0.5
PRUNE_EVERY = timedelta(minutes=10)
YIELD_MAX = 1.0  # at most this long the worker gives way to callbacks before each message
YIELD_STEP = 0.01
QUIET = 0.05  # callbacks are "arriving" while one was stored less than this long ago
SEEN_MAX = 20_000  # seals remembered in this process


@dataclass
class _Pending:
    entry: Entry
    future: asyncio.Future[int | None]


class Inbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channel: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.channel = channel
        self.store = InboxStore(sessions, channel, clock)
        self.clock = clock
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.queued = 0  # put for the worker and not handled yet (this process)
        self.inline = 0  # being handled inline right now
        self._pruned: datetime | None = None
        self._busy: Callable[[], bool] = lambda: False
        self._last_put = 0.0  # time.monotonic() of the last put
        self._seen: OrderedDict[tuple[str, int, str], str] = OrderedDict()  # seal key → body SHA-256

    # -- storing -------------------------------------------------------------------------------------

    def check_seen(self, seal: Seal) -> None:
        """Refuse at once a seal this process saw with another body (no query): ``Replayed``."""
        known = self._seen.get(seal.key)
        if known is not None and known != seal.body_sha256:
            raise Replayed

    def remember(self, seal: Seal) -> None:
        """Bind a seal in this process only (a request refused without a write, e.g. rate-limited)."""
        if seal.key not in self._seen:
            self._remember(seal, seal.body_sha256)

    def _remember(self, seal: Seal, digest: str) -> None:
        self._seen[seal.key] = digest
        self._seen.move_to_end(seal.key)
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)

    async def seal(self, seal: Seal) -> None:
        """Record a seal for a callback that stores no message (``Replayed`` if used for another body)."""
        self.check_seen(seal)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(Entry(None, seal), future))
        await future

    async def put(
        self, key: str, openid: str, xml: str, *, inline: bool, seal: Seal | None = None
    ) -> Item | None:
        """Store a message; None when it was stored before (a retry). ``inline``: the caller handles it
        now (the worker leaves it alone for a while). ``seal``: recorded in the same transaction;
        ``Replayed`` when it was used for another body."""
        if seal is not None:
            self.check_seen(seal)
        now = self.clock()
        self._last_put = time.monotonic()
        message = NewMessage(key, openid, xml, now, now + INLINE_LEASE if inline else None)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(Entry(message, seal), future))
        row_id = await future
        if row_id is None:
            return None
        if not inline:
            self.queued += 1
            self._wake.set()
        return Item(row_id, key, openid, xml, now)

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            results: list[int | BaseException | None]
            try:
                results = await self._insert(batch)
            except Exception as exc:
                if len(batch) == 1:
                    log.error("wechat inbox: storing a message failed: %s", type(exc).__name__)
                    results = [exc]
                else:  # one bad row must not fail the others: each on its own
                    results = []
                    for pending in batch:
                        try:
                            results.extend(await self._insert([pending]))
                        except Exception as alone:
                            log.error("wechat inbox: storing a message failed: %s", type(alone).__name__)
                            results.append(alone)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def _insert(self, batch: list[_Pending]) -> list[int | BaseException | None]:
        """One transaction for the batch (``InboxStore.store``); the seals it took are remembered in
        this process."""
        results: list[int | BaseException | None] = list(await self.store.store([p.entry for p in batch]))
        for p, result in zip(batch, results, strict=True):
            if p.entry.seal is not None and not isinstance(result, Replayed):
                self._remember(p.entry.seal, p.entry.seal.body_sha256)
        return results

    # -- handling ------------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self.queued == 0 and self._queue.qsize() < BATCH

    async def done(self, item: Item, status: str = "done") -> None:
        await self.store.done(item.id, status)

    async def _claim(self, limit: int = 20) -> tuple[list[Item], list[Item]]:
        """Due messages, leased to this process: (to handle, tried too often)."""
        return await self.store.claim(limit)

    async def _work(self, handle: Callable[[Item], Awaitable[object]]) -> None:
        while True:
            try:
                items, spent = await self._claim()
            except Exception:
                log.exception("wechat inbox: claiming failed")
                items, spent = [], []
            for item in spent:  # failed too often: kept for inspection, not tried again
                await self.done(item, "failed")
            if not items and not spent:
                self.queued = 0
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
                await self._prune()
                continue
            for item in items:
                await self._give_way()
                try:
                    await handle(item)
                except Exception:
                    log.exception("wechat inbox: handling message %s failed", item.id)
                    continue  # the lease lapses and it is tried again
                finally:
                    self.queued = max(self.queued - 1, 0)
                await self.done(item)

    def arriving(self) -> bool:
        """Callbacks are being answered, or one was stored a moment ago."""
        return self._busy() or time.monotonic() - self._last_put < QUIET

    async def _give_way(self) -> None:
        """Wait while callbacks are arriving, at most ``YIELD_MAX``: a conversation turn costs many
        callbacks' CPU, so under a burst the core handles about one message a second and catches up
        when the burst is over (every message is stored already)."""
        deadline = time.monotonic() + YIELD_MAX
        while self.arriving() and time.monotonic() < deadline:
            await asyncio.sleep(YIELD_STEP)

    async def _prune(self) -> None:
        now = self.clock()
        if self._pruned is not None and now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        try:
            await self.store.prune(now)
        except Exception:
            log.exception("wechat inbox: pruning failed")

    def start(
        self, handle: Callable[[Item], Awaitable[object]], busy: Callable[[], bool] = lambda: False
    ) -> None:
        """``busy``: callbacks are being answered; the worker waits a little for them (answering WeChat
        in time comes first, the queue is handled in the gaps)."""
        self._busy = busy
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"{self.channel}-inbox-writer"),
            asyncio.create_task(self._work(handle), name=f"{self.channel}-inbox-worker"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
