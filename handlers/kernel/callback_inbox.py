"""The callback inbox's rows (``wechat_inbox``, ``wechat_callback_seals``), written and read for a
channel's inbox (``bot/channels/wechat/inbox.py``, which batches, remembers and works the queue).

* ``store`` writes one batch in one transaction: the seals first (a seal already bound to another body
  refuses its message: ``Replayed``), then INSERT … ON CONFLICT DO NOTHING RETURNING for the messages
  (Core, executemany: sent as multi-row VALUES, compiled once); a key stored before (a retry) or
  repeated within the batch gets None.
* ``claim`` leases due messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes share
  the queue); ``done`` settles one; ``prune`` drops handled rows and expired seals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.wechat_models import WeChatCallbackSeal, WeChatInbox

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
KEEP = timedelta(days=2)  # handled rows kept this long (retries arrive within seconds)
SEAL_KEEP = 600  # seconds after its timestamp a seal is kept (twice the accepted clock skew)


class Replayed(Exception):
    """A seal (signature, timestamp, nonce) already used for a different body."""


@dataclass(frozen=True)
class Seal:
    signature: str
    timestamp: int
    nonce: str
    body_sha256: str

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.signature, self.timestamp, self.nonce)


@dataclass(frozen=True)
class Item:
    id: int
    key: str
    openid: str
    xml: str
    received_at: datetime


@dataclass(frozen=True)
class NewMessage:
    """A checked callback to store; ``claimed_until`` set when its caller handles it inline."""

    key: str
    openid: str
    xml: str
    received_at: datetime
    claimed_until: datetime | None


@dataclass(frozen=True)
class Entry:
    """One caller's part of a batch: a message (None: only the seal is recorded) and its seal."""

    message: NewMessage | None
    seal: Seal | None


class InboxStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], channel: str, clock: Callable[[], datetime]
    ) -> None:
        self.sessions = sessions
        self.channel = channel
        self.clock = clock
        self._statement: object = None

    def _values(self, message: NewMessage) -> dict[str, object]:
        return {
            "channel": self.channel,
            "key": message.key[:200],
            "openid": message.openid,
            "xml": message.xml,
            "received_at": message.received_at,
            "status": "pending",
            "attempts": 0,
            "claimed_until": message.claimed_until,
        }

    def _insert_statement(self, session: AsyncSession) -> object:
        if self._statement is None:
            table = WeChatInbox.__table__
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            self._statement = (
                dialect.insert(table).on_conflict_do_nothing().returning(table.c.id, table.c.key)
            )
        return self._statement

    async def store(self, batch: Sequence[Entry]) -> list[int | Replayed | None]:
        """Each entry's stored row id, None (stored before, or only a seal), or ``Replayed``."""
        async with self.sessions.begin() as session:
            refused = await self._check_seals(session, batch)
            first: dict[str, int] = {}
            for index, entry in enumerate(batch):
                if entry.message is not None and index not in refused:
                    first.setdefault(entry.message.key[:200], index)
            rows = [self._values(m) for i in sorted(first.values()) if (m := batch[i].message) is not None]
            stored: dict[str, int] = {}
            if rows:
                result = await session.execute(self._insert_statement(session), rows)  # type: ignore[arg-type]
                stored = {key: row_id for row_id, key in result.all()}
        results: list[int | Replayed | None] = []
        for i, entry in enumerate(batch):
            if i in refused:
                results.append(Replayed())
            elif entry.message is None:
                results.append(None)
            else:
                key = entry.message.key[:200]
                results.append(stored.get(key) if first.get(key) == i else None)
        return results

    async def _check_seals(self, session: AsyncSession, batch: Sequence[Entry]) -> set[int]:
        """Record the batch's seals; the indexes of those already bound to another body."""
        seals = {i: e.seal for i, e in enumerate(batch) if e.seal is not None}
        if not seals:
            return set()
        bound: dict[tuple[str, int, str], str] = {}  # what each seal is bound to: the database, or the
        for seal in seals.values():  # first of the batch to use it
            bound.setdefault(seal.key, seal.body_sha256)
        table = WeChatCallbackSeal.__table__
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        values = [
            {
                "channel": self.channel,
                "signature": key[0],
                "timestamp": key[1],
                "nonce": key[2],
                "body_sha256": digest,
                "expires_at": datetime.fromtimestamp(key[1] + SEAL_KEEP, UTC),
            }
            for key, digest in bound.items()
        ]
        result = await session.execute(
            dialect.insert(table)
            .values(values)
            .on_conflict_do_nothing()
            .returning(table.c.signature, table.c.timestamp, table.c.nonce)
        )
        inserted = {(str(r[0]), int(r[1]), str(r[2])) for r in result.all()}
        earlier = [key for key in bound if key not in inserted]
        if earlier:  # seen before, perhaps by another process: what were they bound to?
            rows = await session.execute(
                select(table.c.signature, table.c.timestamp, table.c.nonce, table.c.body_sha256).where(
                    table.c.channel == self.channel,
                    or_(
                        *(
                            and_(table.c.signature == k[0], table.c.timestamp == k[1], table.c.nonce == k[2])
                            for k in earlier
                        )
                    ),
                )
            )
            for sig, ts, nonce, digest in rows.all():
                bound[(str(sig), int(ts), str(nonce))] = str(digest)
        return {i for i, seal in seals.items() if bound[seal.key] != seal.body_sha256}

    async def done(self, item_id: int, status: str = "done") -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(WeChatInbox)
                .where(WeChatInbox.id == item_id)
                .values(status=status, claimed_until=None)
                .execution_options(synchronize_session=False)
            )

    async def claim(self, limit: int = 20) -> tuple[list[Item], list[Item]]:
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

    async def prune(self, now: datetime) -> None:
        """Drop handled rows older than ``KEEP`` and seals past their window."""
        async with self.sessions.begin() as session:
            await session.execute(
                delete(WeChatInbox).where(
                    WeChatInbox.channel == self.channel,
                    WeChatInbox.status == "done",
                    WeChatInbox.received_at < now - KEEP,
                )
            )
            await session.execute(
                delete(WeChatCallbackSeal).where(
                    WeChatCallbackSeal.channel == self.channel, WeChatCallbackSeal.expires_at < now
                )
            )
