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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import utcnow
from storage.wechat_models import WeChatInbox

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
INLINE_LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 5
BATCH = 200  # messages per group commit
IDLE_POLL = 0.5
KEEP = timedelta(days=2)  # handled rows kept this long (retries arrive within seconds)
PRUNE_EVERY = timedelta(minutes=10)
YIELD_MAX = 1.0  # at most this long the worker gives way to callbacks before each message
YIELD_STEP = 0.01
QUIET = 0.05  # callbacks are "arriving" while one was stored less than this long ago


@dataclass(frozen=True)
class Item:
    id: int
    key: str
    openid: str
    xml: str
    received_at: datetime


@dataclass
class _Pending:
    values: dict[str, object]
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
        self.clock = clock
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.queued = 0  # put for the worker and not handled yet (this process)
        self.inline = 0  # being handled inline right now
        self._pruned: datetime | None = None
        self._busy: Callable[[], bool] = lambda: False
        self._last_put = 0.0  # time.monotonic() of the last put
        self._statement: object = None

    # -- storing -------------------------------------------------------------------------------------

    async def put(self, key: str, openid: str, xml: str, *, inline: bool) -> Item | None:
        """Store a message; None when it was stored before (a retry). ``inline``: the caller handles it
        now (the worker leaves it alone for a while)."""
        now = self.clock()
        self._last_put = time.monotonic()
        values: dict[str, object] = {
            "channel": self.channel,
            "key": key[:200],
            "openid": openid,
            "xml": xml,
            "received_at": now,
            "status": "pending",
            "attempts": 0,
            "claimed_until": now + INLINE_LEASE if inline else None,
        }
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(values, future))
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
            try:
                ids = await self._insert(batch)
            except Exception as exc:
                log.exception("wechat inbox: storing %d messages failed", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, row_id in zip(batch, ids, strict=True):
                if not pending.future.done():
                    pending.future.set_result(row_id)

    def _insert_statement(self, session: AsyncSession) -> object:
        if self._statement is None:
            table = WeChatInbox.__table__
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            self._statement = (
                dialect.insert(table).on_conflict_do_nothing().returning(table.c.id, table.c.key)
            )
        return self._statement

    async def _insert(self, batch: list[_Pending]) -> list[int | None]:
        """INSERT … ON CONFLICT DO NOTHING RETURNING for the whole batch in one transaction (Core,
        executemany: SQLAlchemy sends it as multi-row VALUES, compiled once); a key that was already
        stored (or repeats within the batch) gets None."""
        first: dict[str, int] = {}
        for index, pending in enumerate(batch):
            first.setdefault(str(pending.values["key"]), index)
        rows = [batch[i].values for i in sorted(first.values())]
        async with self.sessions.begin() as session:
            result = await session.execute(self._insert_statement(session), rows)  # type: ignore[arg-type]
            stored = {key: row_id for row_id, key in result.all()}
        return [
            stored.get(str(p.values["key"])) if first[str(p.values["key"])] == i else None
            for i, p in enumerate(batch)
        ]

    # -- handling ------------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self.queued == 0 and self._queue.qsize() < BATCH

    async def done(self, item: Item, status: str = "done") -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(WeChatInbox)
                .where(WeChatInbox.id == item.id)
                .values(status=status, claimed_until=None)
                .execution_options(synchronize_session=False)
            )

    async def _claim(self, limit: int = 20) -> tuple[list[Item], list[Item]]:
        """Due messages, leased to this process: (to handle, tried too often)."""
        now = self.clock()
        due = and_(
            WeChatInbox.channel == self.channel,
            WeChatInbox.status == "pending",
            or_(WeChatInbox.claimed_until.is_(None), WeChatInbox.claimed_until < now),
        )
        async with self.sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(WeChatInbox)
                    .where(due)
                    .order_by(WeChatInbox.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if rows:
                await session.execute(
                    update(WeChatInbox)
                    .where(WeChatInbox.id.in_([r.id for r in rows]))
                    .values(claimed_until=now + LEASE, attempts=WeChatInbox.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
        items = [Item(r.id, r.key, r.openid, r.xml, r.received_at) for r in rows]
        fresh = [i for i, r in zip(items, rows, strict=True) if r.attempts < MAX_ATTEMPTS]
        spent = [i for i, r in zip(items, rows, strict=True) if r.attempts >= MAX_ATTEMPTS]
        return fresh, spent

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
            async with self.sessions.begin() as session:
                await session.execute(
                    delete(WeChatInbox).where(
                        WeChatInbox.channel == self.channel,
                        WeChatInbox.status == "done",
                        WeChatInbox.received_at < now - KEEP,
                    )
                )
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
