"""The outbox: every outbound message is a row, written with the change it reports and sent after commit.

A crash between storing a case and notifying the worker loses nothing: the row is still pending (or
its claim lapses) and the next drain sends it. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so
several processes share the work; SQLite serialises writers anyway.

Exactly once, as far as a platform without idempotency keys allows. Each claim carries a token
(``claimed_by``); a sender calls ``mark_dispatched`` (one committed UPDATE, conditional on the token)
just before the request that delivers the row, and settles it right after. So after a crash:

* a claimed row whose request never started is simply claimed again (nothing was sent);
* a row whose request was under way (``dispatched_at`` set, never settled) may or may not have
  reached the platform. Neither Telegram nor the WeChat customer-service API can be asked, so the
  kind decides: a broadcast (``AT_MOST_ONCE``) is never sent twice: the row fails as ``uncertain``
  and is counted and listed in the broadcast's report; a case notification or reply is sent again
  (a repeated notice beats a lost one);
* a process whose lease lapsed while it was still working cannot send a row another process has
  claimed since: its ``mark_dispatched`` finds the token changed and it skips the row (``Reclaimed``).

The lease is ``OUTREACH_OUTBOX_LEASE_SECONDS`` (60 by default): how long a dead process's claimed rows
wait before another process takes them. These settings are the tree's ``outbox`` section
(``handlers/kernel/outbox_settings.py``), handed to ``drain``/``claim``/``settle`` by the composition root.

A platform outage costs no message. A failed send is retried with back-off doubling up to
``OUTREACH_OUTBOX_BACKOFF_CAP_SECONDS`` (10 min), for a budget counted from the first failure:
``OUTREACH_OUTBOX_RETRY_HOURS`` (24 h) for replies and notices, ``OUTREACH_OUTBOX_BULK_RETRY_HOURS`` (72 h)
for reminders and broadcasts, which still matter days later. Past it the row fails as
``unreached after N h: <last reason>``; ``outreach-bot outbox failed`` lists such rows and
``outreach-bot outbox retry`` puts them back (``handlers/kernel/outbox_admin.py``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, inspect, literal_column, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.outbox_settings import DEFAULTS, OutboxSettings
from handlers.kernel.ports import DeliveryMethod, DeliveryOutcome, OutboxKind, Sender
from handlers.kernel.privacy import mask_codes
from storage.models import OutboxMessage, OutboxStatus, UTCDateTime, utcnow

log = logging.getLogger(__name__)

# Kinds never sent twice: when a crash leaves it unknown whether the platform got one, it is given up
# as UNCERTAIN (and reported) rather than sent again.
AT_MOST_ONCE = frozenset({OutboxKind.BROADCAST.value})
# Kinds whose text holds a secret for its recipient only (a staff invite code): once the row is sent or
# given up, the stored text keeps the code masked (a new invite is issued if it never arrived).
SECRET_KINDS = frozenset({OutboxKind.PUSH_ONLY.value})
UNCERTAIN = DeliveryOutcome.UNCERTAIN.value


# Kinds whose message still matters days later: a platform outage must not cost them after a day.
LONG_RETRY_KINDS = frozenset({OutboxKind.REMINDER.value, OutboxKind.BROADCAST.value})
UNREACHED = "unreached"  # the start of last_error of a row given up after its retry budget
# Where a claimed row keeps its claim's lease (its ORM state's ``info``), so that ``mark_dispatched``,
# which the channels' senders call, restarts the same lease without being handed the settings.
_LEASE = "outbox.lease"


def lease(settings: OutboxSettings = DEFAULTS) -> timedelta:
    return timedelta(seconds=settings.lease_seconds)


def retry_budget(kind: str, settings: OutboxSettings = DEFAULTS) -> timedelta:
    """How long after its first failed send a row of this kind is still retried."""
    hours = settings.bulk_retry_hours if kind in LONG_RETRY_KINDS else settings.retry_hours
    return timedelta(hours=hours)


def backoff(attempts: int, settings: OutboxSettings = DEFAULTS) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 2, 4, 8 … up to the cap."""
    return float(min(2 ** min(attempts, 30), settings.backoff_cap_seconds))


@dataclass(frozen=True)
class Button:
    """An action offered with a message: a button on Telegram, a keyword to reply on WeChat."""

    label: str
    action: str  # e.g. "accept:12"; channels encode it in their own way


@dataclass(frozen=True)
class Outbound:
    channel: str
    recipient: str
    text: str
    kind: str = OutboxKind.REPLY.value  # an OutboxKind's value: the column holds a plain string
    case_id: int | None = None
    buttons: Sequence[Button] = field(default_factory=tuple)
    photo: str | None = None
    dedup_key: str | None = None  # unique: a message that must never be sent twice (digest, reminder …)


class DeliveryError(Exception):
    """A send that did not go out, and what that means: ``outcome`` RETRY_AT (again later: after
    ``retry_after`` seconds when the platform or a limiter named the time, else with back-off), or
    BLOCKED / UNREACHABLE (given up at once; ``permanent=True`` is UNREACHABLE). ``cause`` is the
    report's word for it (``blocked``, ``invalid_user``, ``unsubscribed`` …) when the channel knows it:
    it is stored in front of the row's error, so reports never read platform codes out of the text."""

    def __init__(
        self,
        reason: str,
        *,
        outcome: DeliveryOutcome | None = None,
        retry_after: float | None = None,
        permanent: bool = False,
        cause: str | None = None,
    ) -> None:
        super().__init__(reason)
        if outcome is None:
            outcome = DeliveryOutcome.UNREACHABLE if permanent else DeliveryOutcome.RETRY_AT
        self.reason = reason
        self.outcome = outcome
        self.retry_after = retry_after
        self.permanent = outcome in (DeliveryOutcome.BLOCKED, DeliveryOutcome.UNREACHABLE)
        self.cause = cause or ("blocked" if outcome == DeliveryOutcome.BLOCKED else None)

    @property
    def stored(self) -> str:
        """The row's ``last_error``: ``cause: reason`` (just the reason when they are the same word)."""
        if self.cause is None or self.reason == self.cause:
            return self.reason[:500]
        return f"{self.cause}: {self.reason}"[:500]


@dataclass(slots=True)
class OutboxItem:
    """One claimed outbox row as a channel's ``Sender`` gets it: plain values, no ORM object (a channel
    never touches the table). ``dispatched_at`` is set by ``mark_dispatched``; the rest is the row's."""

    id: int
    channel: str
    recipient: str
    kind: str
    text: str
    payload: dict[str, Any]
    case_id: int | None = None
    dedup_key: str | None = None
    priority: int = 0
    attempts: int = 0
    claimed_by: str | None = None
    dispatched_at: datetime | None = None
    created_at: datetime | None = None
    give_up_at: datetime | None = None
    lease: timedelta | None = None  # the lease its claim took; mark_dispatched restarts the same

    @classmethod
    def of(cls, row: OutboxMessage) -> OutboxItem:
        return cls(
            id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            kind=row.kind,
            text=row.text,
            payload=dict(row.payload or {}),
            case_id=row.case_id,
            dedup_key=row.dedup_key,
            priority=row.priority,
            attempts=row.attempts,
            claimed_by=row.claimed_by,
            dispatched_at=row.dispatched_at,
            created_at=row.created_at,
            give_up_at=row.give_up_at,
            lease=inspect(row).info.get(_LEASE),
        )


# What the claim's bookkeeping reads of a row: the claimed ORM row or the item a sender got.
OutboxRow = OutboxItem | OutboxMessage


class Reclaimed(Exception):
    """The row's lease lapsed and another claim took it: this process must not send it."""


def enqueue(session: AsyncSession, out: Outbound, now: datetime | None = None) -> OutboxMessage:
    payload: dict[str, Any] = {}
    if out.buttons:
        payload["buttons"] = [{"label": b.label, "action": b.action} for b in out.buttons]
    if out.photo:
        payload["photo"] = out.photo
    row = OutboxMessage(
        channel=out.channel,
        recipient=out.recipient,
        kind=str(out.kind),  # the value: the column is a plain string (no migration)
        text=out.text,
        payload=payload,
        case_id=out.case_id,
        dedup_key=out.dedup_key,
        status=OutboxStatus.PENDING,
        not_before=now or utcnow(),
    )
    session.add(row)
    return row


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    channel: str,
    now: datetime,
    limit: int = 50,
    method: DeliveryMethod = DeliveryMethod.DIRECT,
    *,
    settings: OutboxSettings = DEFAULTS,
) -> list[OutboxMessage]:
    """Take up to ``limit`` due messages of one channel and delivery method for sending: highest
    priority first (replies before broadcasts), then oldest first. Rows of a lapsed claim come back,
    except at-most-once rows whose request was under way: those fail as ``uncertain``."""
    token = uuid.uuid4().hex
    mine = (OutboxMessage.channel == channel, OutboxMessage.method == method.value)
    async with sessions.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.SENDING,
                *mine,
                OutboxMessage.claimed_until < now,
                OutboxMessage.dispatched_at.is_not(None),
                OutboxMessage.kind.in_(AT_MOST_ONCE),
            )
            .values(status=OutboxStatus.FAILED, claimed_until=None, last_error=UNCERTAIN)
            .execution_options(synchronize_session=False)
        )
        lapsed = await _due(
            session,
            limit,
            *mine,
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.claimed_until < now,
        )
        pending = await _due(session, limit, *mine, *_pending_due(session, now))
        ids = [row_id for row_id, _ in sorted([*lapsed, *pending], key=lambda r: (-r[1], r[0]))[:limit]]
        if not ids:
            return []
        rows = (
            await session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(
                    status=OutboxStatus.SENDING,
                    claimed_until=now + lease(settings),
                    claimed_by=token,
                    dispatched_at=None,
                    attempts=OutboxMessage.attempts + 1,
                )
                .returning(OutboxMessage)
            )
        ).all()
    for row in rows:
        inspect(row).info[_LEASE] = lease(settings)
    return sorted(rows, key=lambda r: (-r.priority, r.id))


def _pending_due(session: AsyncSession, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Pending rows due now, written so the partial index ``ix_outbox_pending`` serves the claim in
    order: the status as a literal (a partial index only matches a constant, never a parameter), and
    on SQLite ``+not_before``, which keeps its planner from preferring ``ix_outbox_due`` and sorting
    the whole backlog (50 ms a claim with 100,000 rows waiting, instead of 1 ms)."""
    due_at: ColumnElement[datetime] = OutboxMessage.not_before
    if session.get_bind().dialect.name == "sqlite":
        due_at = type_coerce(literal_column("+outbox.not_before"), UTCDateTime())
    return OutboxMessage.status == literal_column(f"'{OutboxStatus.PENDING.value}'"), due_at <= now


async def _due(
    session: AsyncSession, limit: int, *where: ColumnElement[bool]
) -> Sequence[Row[tuple[int, int]]]:
    """(id, priority) of up to ``limit`` rows (of one channel and method), in claim order, locked
    (skipping rows another claim holds)."""
    result = await session.execute(
        select(OutboxMessage.id, OutboxMessage.priority)
        .where(*where)
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return result.all()


async def mark_dispatched(
    sessions: async_sessionmaker[AsyncSession], message: OutboxRow, now: datetime
) -> None:
    """Record that the request delivering ``message`` is about to leave (call it just before). Raises
    ``Reclaimed`` when this claim no longer owns the row. The lease restarts, so a slow batch does not
    lose the row it is sending."""
    taken = message.lease if isinstance(message, OutboxItem) else inspect(message).info.get(_LEASE)
    restarted: timedelta = taken or lease()  # the lease its claim took
    async with sessions.begin() as session:
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message.id,
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.claimed_by == message.claimed_by,
            )
            .values(dispatched_at=now, claimed_until=now + restarted)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise Reclaimed(message.id)
    message.dispatched_at = now


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    message: OutboxRow,
    error: DeliveryError | None,
    now: datetime,
    *,
    settings: OutboxSettings = DEFAULTS,
) -> None:
    values: dict[str, Any]
    if error is None:
        values = {"status": OutboxStatus.SENT, "sent_at": now, "claimed_until": None, "last_error": None}
    elif error.permanent:
        values = {"status": OutboxStatus.FAILED, "claimed_until": None, "last_error": error.stored}
    elif error.retry_after is not None:
        # The platform (a 429) or our own limiter named the time: the platform is up, and a row
        # waiting its turn is not failing, so this costs nothing of the retry budget.
        values = _reschedule(now + timedelta(seconds=error.retry_after), error)
    else:
        budget = retry_budget(message.kind, settings)
        give_up_at = message.give_up_at or now + budget
        if now >= give_up_at:
            hours = f"{budget.total_seconds() / 3600:g}"
            values = {
                "status": OutboxStatus.FAILED,
                "claimed_until": None,
                "last_error": f"{UNREACHED} after {hours} h: {error.reason}"[:500],
            }
        else:
            # One last try at the end of the budget rather than none after it.
            next_try = min(now + timedelta(seconds=backoff(message.attempts, settings)), give_up_at)
            values = {**_reschedule(next_try, error), "give_up_at": give_up_at}
    if message.kind in SECRET_KINDS and values["status"] in (OutboxStatus.SENT, OutboxStatus.FAILED):
        values["text"] = mask_codes(message.text)
    mine = [OutboxMessage.id == message.id]
    if message.claimed_by is not None:  # only the claim that owns the row may settle it
        mine.append(OutboxMessage.claimed_by == message.claimed_by)
    async with sessions.begin() as session:
        await session.execute(update(OutboxMessage).where(*mine).values(**values))


def _reschedule(not_before: datetime, error: DeliveryError) -> dict[str, Any]:
    return {
        "status": OutboxStatus.PENDING,
        "not_before": not_before,
        "claimed_until": None,
        "claimed_by": None,
        "dispatched_at": None,
        "last_error": error.reason[:500],
    }


async def drain(
    sessions: async_sessionmaker[AsyncSession],
    sender: Sender,
    clock: Callable[[], datetime] = utcnow,
    limit: int = 50,
    *,
    settings: OutboxSettings = DEFAULTS,
) -> int:
    """Send what is due on the sender's channel once; returns how many were sent. The sender gets
    each row as an ``OutboxItem``."""
    sent = 0
    for row in await claim(sessions, sender.channel, clock(), limit, settings=settings):
        message = OutboxItem.of(row)
        error: DeliveryError | None = None
        try:
            await sender.send(message)
        except Reclaimed:
            log.warning("outbox message %s was claimed again elsewhere; not sending it here", message.id)
            continue
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # one bad message must not stop the others
            log.exception("outbox message %s failed", message.id)
            error = DeliveryError(type(exc).__name__)
        await settle(sessions, message, error, clock(), settings=settings)
        sent += error is None
    return sent
