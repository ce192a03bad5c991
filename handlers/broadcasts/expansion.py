"""A confirmed broadcast expanded into outbox rows, exactly once across crashes and processes.

One outbox row per recipient, written in batches of residents (keyset on the resident id), each batch
in one transaction with ``INSERT … ON CONFLICT DO NOTHING`` on the unique dedup key
``bc:{broadcast}:r{resident}`` (``s{staff}``), moving the cursor in that same transaction. A crash
resumes at the cursor; running it twice (or in two processes) adds nothing twice. A lease on the
broadcast row keeps a second process from expanding it at the same time. Residents who cannot be
reached are written as ``failed`` rows with the reason, so they are counted and listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.broadcasts import audience as aud
from handlers.broadcasts.audience import Audience, Recipient
from handlers.broadcasts.config import DEFAULTS, BroadcastSettings
from handlers.broadcasts.models import Broadcast, BroadcastStatus
from handlers.broadcasts.service import KIND, compose, dedup_key, rows_of
from handlers.kernel.ports import DeliveryMethod
from storage.models import OutboxMessage, OutboxStatus

WECHAT = "wechat"  # the channel whose rows may go by mass send (群发: ``DeliveryMethod.MASS``)
WECHAT_WINDOW = timedelta(hours=47)  # customer-service window (48 h), with an hour's margin
EXPAND_LEASE = timedelta(seconds=120)
ANALYZE_AFTER = 10_000  # outbox rows one broadcast adds before the planner's statistics are refreshed


def _insert(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING into the outbox, compiled once and run with many parameter sets
    (SQLAlchemy batches them as multi-row statements: "insertmanyvalues")."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(OutboxMessage.__table__).on_conflict_do_nothing()


def _row(
    broadcast: Broadcast, r: Recipient, text: str, now: datetime, priority: int, mass: bool
) -> dict[str, Any]:
    payload: dict[str, Any] = {"photo": broadcast.photo} if broadcast.photo else {}
    method = DeliveryMethod.MASS if mass and r.reason is None else DeliveryMethod.DIRECT
    return {
        "channel": r.channel,
        "method": method.value,
        "recipient": r.recipient,
        "kind": KIND,
        "text": text,
        "payload": payload,
        "case_id": None,
        "dedup_key": dedup_key(broadcast.id, r.key),
        "priority": priority,
        "status": OutboxStatus.PENDING if r.reason is None else OutboxStatus.FAILED,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
        "last_error": None if r.reason is None else f"unreachable:{r.reason}",
    }


def use_mass(broadcast: Broadcast, r: Recipient, now: datetime) -> bool:
    """WeChat users outside the customer-service window get a 群发 when the broadcast may use it."""
    if not broadcast.wechat_mass or r.channel != WECHAT or r.reason is not None:
        return False
    return r.last_inbound_at is None or now - r.last_inbound_at >= WECHAT_WINDOW


async def write_rows(
    session: AsyncSession,
    broadcast: Broadcast,
    recipients: Sequence[Recipient],
    community: str,
    now: datetime,
    settings: BroadcastSettings,
) -> None:
    resident_text = compose(broadcast, community)
    staff_text = compose(broadcast, community, staff=True)
    rows = [
        _row(
            broadcast,
            r,
            staff_text if r.resident_id is None else resident_text,
            now,
            settings.priority,
            use_mass(broadcast, r, now),
        )
        for r in recipients
    ]
    if rows:
        connection = await session.connection()
        await connection.execute(_insert(session), rows)


async def due_ids(sessions: async_sessionmaker[AsyncSession], now: datetime) -> list[int]:
    """Broadcasts to expand now: scheduled ones that are due, and expansions whose process died."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Broadcast.id)
            .where(
                or_(
                    and_(Broadcast.status == BroadcastStatus.SCHEDULED, Broadcast.scheduled_at <= now),
                    and_(
                        Broadcast.status == BroadcastStatus.SENDING,
                        Broadcast.expanded_at.is_(None),
                        or_(Broadcast.expand_lease.is_(None), Broadcast.expand_lease < now),
                    ),
                )
            )
            .order_by(Broadcast.id)
        )
        return list(rows)


async def _take_lease(sessions: async_sessionmaker[AsyncSession], broadcast_id: int, now: datetime) -> bool:
    async with sessions.begin() as session:
        result = await session.execute(
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                or_(
                    and_(Broadcast.status == BroadcastStatus.SCHEDULED, Broadcast.scheduled_at <= now),
                    and_(
                        Broadcast.status == BroadcastStatus.SENDING,
                        Broadcast.expanded_at.is_(None),
                        or_(Broadcast.expand_lease.is_(None), Broadcast.expand_lease < now),
                    ),
                ),
            )
            .values(
                status=BroadcastStatus.SENDING,
                started_at=func.coalesce(Broadcast.started_at, now),
                expand_lease=now + EXPAND_LEASE,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


async def expand(
    sessions: async_sessionmaker[AsyncSession],
    broadcast_id: int,
    *,
    channels: frozenset[str] | None,
    community: str,
    clock: Callable[[], datetime],
    settings: BroadcastSettings | None = None,
    max_batches: int | None = None,
) -> bool:
    """Write the broadcast's outbox rows (resuming where a previous run stopped). Returns True when
    every row is written; False if another process holds the expansion, it was cancelled, or
    ``max_batches`` (tests: a crash half-way) stopped it first."""
    settings = settings or DEFAULTS
    if not await _take_lease(sessions, broadcast_id, clock()):
        return False
    batches = 0
    while True:
        if max_batches is not None and batches >= max_batches:
            return False
        batches += 1
        now = clock()
        async with sessions.begin() as session:
            # Row lock: a cancel (which updates this row) waits for the batch, then withdraws its rows.
            broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
            if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
                return False
            audience = Audience.from_json(broadcast.audience)
            staff = await aud.staff_recipients(session, audience, channels)
            recipients: list[Recipient] = []
            if broadcast.expand_cursor == 0:
                recipients.extend(staff)  # idempotent: rewritten (and ignored) if this batch is redone
            ids = await aud.resident_batch(session, audience, broadcast.expand_cursor, settings.batch_size)
            taken = {(s.channel, s.recipient) for s in staff}  # a staff account is not reached twice
            recipients.extend(
                r
                for r in await aud.resident_recipients(session, ids, channels)
                if (r.channel, r.recipient) not in taken
            )
            await write_rows(session, broadcast, recipients, community, now, settings)
            done = len(ids) < settings.batch_size
            if done:
                broadcast.expanded_at = now
                broadcast.expand_lease = None
                broadcast.total = int(
                    await session.scalar(select(func.count()).where(rows_of(session, broadcast_id))) or 0
                )
                total = broadcast.total
            else:
                broadcast.expand_cursor = ids[-1]
                broadcast.expand_lease = now + EXPAND_LEASE
        if done:
            if total >= ANALYZE_AFTER:
                await _analyze_outbox(sessions)
            return True


async def _analyze_outbox(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A large broadcast has just filled the outbox. PostgreSQL plans the claim from statistics that
    autovacuum refreshes only a minute or so later; until then a claim of 50 rows takes ~100 ms
    instead of ~10 (measured with 100,000 rows). SQLite keeps no such statistics."""
    async with sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("ANALYZE outbox"))
