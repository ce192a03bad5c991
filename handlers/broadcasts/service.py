"""Broadcasts: create, confirm, schedule, cancel; expand into outbox rows; progress and the final report.

Life of a broadcast: ``draft`` (chat: waiting for 确认发送) or ``awaiting_approval`` (calendar: waiting
for 批准) → ``scheduled`` (confirmed; due at ``scheduled_at``) → ``sending`` → ``done``; or
``cancelled``. Nothing is written to the outbox before confirmation.

Exactly once, across crashes and processes:

* Expansion (``handlers.broadcasts.expansion``) writes one outbox row per recipient, in batches,
  under the unique dedup key ``bc:{broadcast}:r{resident}`` (``s{staff}``): resumable, never twice.
* Delivery is the core outbox's: rows are claimed (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sent at
  the channel's limits and settled one by one, so at most one message per channel and process can be
  in flight when the process dies. Broadcast rows are at-most-once (``handlers.kernel.outbox.AT_MOST_ONCE``):
  that one is not sent again but reported as ``uncertain`` (the platform may have shown it), listed
  with the unreachable for the admin to follow up.
* Residents who cannot be reached are written as ``failed`` rows with the reason, so they are counted
  and listed, never silently dropped.

Progress and the report are computed from the outbox rows (``progress``); the report is stored in
``broadcasts.report`` when the last row is settled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.broadcasts import audience as aud
from handlers.broadcasts.audience import Audience
from handlers.broadcasts.models import Broadcast, BroadcastStatus, NoticeOptOut
from handlers.broadcasts.report_text import progress_text, report_text
from handlers.kernel.commands import Cmd, action
from handlers.kernel.outbox import UNCERTAIN, Button, Outbound, enqueue
from handlers.kernel.people import Address
from handlers.kernel.ports import OutboxKind
from messages import render
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

# The outbox kind (WeChat may deliver it as a template message configured for this kind).
KIND = OutboxKind.BROADCAST.value
RATE_WINDOW = timedelta(seconds=60)

OPTED_OUT = "opted_out"
CANCELLED = "cancelled"
# Failure reasons that mean "this person could not be reached" (listed for a call or a visit).
UNREACHABLE = frozenset(
    {
        aud.BLOCKED,
        aud.NO_CHANNEL,
        "window_closed",
        "cs_quota",
        "unsubscribed",
        "mass_quota",
        "invalid_user",
        UNCERTAIN,  # the process stopped while the platform had the message: listed, never sent twice
    }
)


def dedup_key(broadcast_id: int, key: str) -> str:
    return f"bc:{broadcast_id}:{key}"


def rows_of(session: AsyncSession, broadcast_id: int) -> ColumnElement[bool]:
    """The outbox rows of one broadcast, by dedup-key prefix, in a form each database can index."""
    bid = int(broadcast_id)
    if session.get_bind().dialect.name == "postgresql":
        # Literals (not parameters), so the planner can use the text_pattern_ops partial index.
        return and_(
            OutboxMessage.dedup_key.like(literal_column(f"'bc:{bid}:%'")),
            OutboxMessage.dedup_key.like(literal_column("'bc:%'")),
        )
    return and_(OutboxMessage.dedup_key >= f"bc:{bid}:", OutboxMessage.dedup_key < f"bc:{bid};")


# The words a failed row's error starts with ("blocked: 403 Forbidden …", "unreachable:no_channel"):
# the channels' causes (``DeliveryError.cause``) and this feature's own.
REASONS = frozenset(
    {
        *UNREACHABLE,
        OPTED_OUT,
        CANCELLED,
        "bad_request",
        "platform_error",
    }
)


def reason_of(error: str | None) -> str:
    """A failed row's reason, as one of a few words: the cause stored in front of its error."""
    e = (error or "").strip().lower()
    if e.startswith("unreachable:"):
        return e.split(":", 1)[1] or "other"
    head = e.split(":", 1)[0].strip()
    if head in REASONS:
        return head
    if e == "quota":
        return "cs_quota"
    return _reason_in_text(e)


def _reason_in_text(e: str) -> str:
    """Rows failed before the channels stored a cause (and errors of rows given up after their retry
    budget) say it only in the platform's text."""
    if e.startswith("403") or "blocked" in e:
        return aud.BLOCKED
    if e.startswith("400"):
        return "bad_request"
    if "40003" in e:
        return "invalid_user"
    if "43004" in e:
        return "unsubscribed"
    if "errcode" in e:
        return "platform_error"
    return "other"


# -- creating and deciding --------------------------------------------------------------------------


def compose(broadcast: Broadcast, community: str, *, staff: bool = False) -> str:
    """The message residents receive: a neutral first line (lock-screen previews), the text, and how
    to opt out."""
    key = "bc.message_staff" if staff else "bc.message"
    return render(key, community=community, text=broadcast.text.strip())


async def create(
    session: AsyncSession,
    *,
    text: str,
    audience: Audience,
    created_by: str,
    source: str,
    now: datetime,
    photo: str | None = None,
    notify: Address | None = None,
    status: BroadcastStatus = BroadcastStatus.DRAFT,
    scheduled_at: datetime | None = None,
    wechat_mass: bool = False,  # the caller's choice, by default its OUTREACH_BROADCAST_WECHAT_MASS
    estimate: int | None = None,
) -> Broadcast:
    broadcast = Broadcast(
        text=text.strip(),
        photo=photo,
        audience=audience.to_json(),
        created_by=created_by,
        source=source,
        status=status,
        notify_channel=notify.channel if notify else None,
        notify_recipient=notify.recipient if notify else None,
        wechat_mass=wechat_mass,
        estimate=estimate,
        created_at=now,
        scheduled_at=scheduled_at,
        expand_cursor=0,
        total=0,
        sent=0,
        failed=0,
        report={},
    )
    if status == BroadcastStatus.SCHEDULED:
        broadcast.confirmed_at = now
        broadcast.confirmed_by = created_by
        broadcast.scheduled_at = scheduled_at or now
    session.add(broadcast)
    await session.flush()
    return broadcast


CONFIRMABLE = (BroadcastStatus.DRAFT, BroadcastStatus.AWAITING_APPROVAL)
CANCELLABLE = (
    BroadcastStatus.DRAFT,
    BroadcastStatus.AWAITING_APPROVAL,
    BroadcastStatus.SCHEDULED,
    BroadcastStatus.SENDING,
)


def confirm(
    broadcast: Broadcast, by: str, now: datetime, at: datetime | None = None, notify: Address | None = None
) -> None:
    """A draft (or calendar draft) confirmed: it goes out at ``at`` (or its planned time, or now)."""
    broadcast.status = BroadcastStatus.SCHEDULED
    broadcast.confirmed_by = by
    broadcast.confirmed_at = now
    when = at or broadcast.scheduled_at or now
    broadcast.scheduled_at = max(when, now)
    if notify is not None:
        broadcast.notify_channel, broadcast.notify_recipient = notify.channel, notify.recipient


async def cancel(session: AsyncSession, broadcast: Broadcast, now: datetime) -> int:
    """Stop a broadcast: nothing more is written or sent (rows already being sent still go). Returns
    how many pending messages were withdrawn."""
    was_sending = broadcast.status == BroadcastStatus.SENDING
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.finished_at = now
    broadcast.expand_lease = None
    # Writing the row first takes its lock: an expansion batch in flight commits before we go on, so
    # the withdrawal below sees its rows, and the next batch sees the cancellation and stops.
    await session.flush()
    withdrawn = 0
    if was_sending:
        result = await session.execute(
            update(OutboxMessage)
            .where(rows_of(session, broadcast.id), OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.FAILED, last_error=CANCELLED, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        withdrawn = int(getattr(result, "rowcount", 0) or 0)
    if broadcast.started_at is not None:
        report = await progress(session, broadcast.id, now)
        broadcast.report = report.to_json()
        broadcast.total, broadcast.sent, broadcast.failed = report.total, report.sent, report.failed
    return withdrawn


# -- opting out ---------------------------------------------------------------------------------------


async def is_opted_out(session: AsyncSession, resident_id: int) -> bool:
    return await session.get(NoticeOptOut, resident_id) is not None


async def opt_out(session: AsyncSession, resident_id: int, now: datetime) -> bool:
    """Stop notices for the resident (False if already stopped). Their messages of broadcasts still
    being sent are withdrawn too."""
    if await is_opted_out(session, resident_id):
        return False
    session.add(NoticeOptOut(resident_id=resident_id, opted_out_at=now))
    sending = await session.scalars(select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING))
    keys = [dedup_key(bid, f"r{resident_id}") for bid in sending]
    if keys:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dedup_key.in_(keys), OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.FAILED, last_error=OPTED_OUT)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return True


async def opt_in(session: AsyncSession, resident_id: int) -> bool:
    row = await session.get(NoticeOptOut, resident_id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


# -- progress and report ------------------------------------------------------------------------------


@dataclass
class Progress:
    total: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0  # not settled yet (pending, or being sent, or rescheduled)
    recent: int = 0  # sent within the last RATE_WINDOW
    window: float = RATE_WINDOW.total_seconds()  # seconds ``recent`` covers (less while it is young)
    by_reason: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def unreachable(self) -> int:
        return sum(n for reason, n in self.by_reason.items() if reason in UNREACHABLE)

    @property
    def rate(self) -> float:
        """Messages a second over the last minute (or since the start, if that is less)."""
        return self.recent / self.window if self.window > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        return self.pending / self.rate if self.rate > 0 else None

    @property
    def done(self) -> int:
        return self.sent + self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "sent": self.sent,
            "failed": self.failed,
            "pending": self.pending,
            "unreachable": self.unreachable,
            "by_reason": dict(sorted(self.by_reason.items())),
            "by_channel": {k: dict(v) for k, v in sorted(self.by_channel.items())},
        }


async def progress(session: AsyncSession, broadcast_id: int, now: datetime) -> Progress:
    since = now - RATE_WINDOW
    rows = await session.execute(
        select(
            OutboxMessage.channel,
            OutboxMessage.status,
            OutboxMessage.last_error,
            func.count(),
            func.sum(case((OutboxMessage.sent_at >= since, 1), else_=0)),
        )
        .where(rows_of(session, broadcast_id))
        .group_by(OutboxMessage.channel, OutboxMessage.status, OutboxMessage.last_error)
    )
    p = Progress()
    started = await session.scalar(select(Broadcast.started_at).where(Broadcast.id == broadcast_id))
    if started is not None:
        p.window = max(1.0, min(RATE_WINDOW.total_seconds(), (now - started).total_seconds()))
    for channel, status, error, n, recent in rows:
        n = int(n)
        p.total += n
        per_channel = p.by_channel.setdefault(channel, {})
        if status == OutboxStatus.SENT:
            p.sent += n
            p.recent += int(recent or 0)
            per_channel["sent"] = per_channel.get("sent", 0) + n
        elif status == OutboxStatus.FAILED:
            p.failed += n
            reason = reason_of(error)
            p.by_reason[reason] = p.by_reason.get(reason, 0) + n
            per_channel["failed"] = per_channel.get("failed", 0) + n
        else:
            p.pending += n
            per_channel["pending"] = per_channel.get("pending", 0) + n
    return p


async def sending_ids(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING).order_by(Broadcast.id)
        )
        return list(rows)


def _say(session: AsyncSession, broadcast: Broadcast, text: str, now: datetime, key: str | None) -> None:
    if broadcast.notify_channel and broadcast.notify_recipient:
        enqueue(
            session,
            Outbound(
                broadcast.notify_channel,
                broadcast.notify_recipient,
                text,
                kind=OutboxKind.NOTIFY,
                dedup_key=key,
            ),
            now,
        )


async def send_progress(
    sessions: async_sessionmaker[AsyncSession], broadcast_id: int, now: datetime, every: timedelta
) -> Progress | None:
    """Tell the admin how the broadcast is going: ``every`` after it started, then at most every
    ``every`` (one process does it)."""
    async with sessions.begin() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status != BroadcastStatus.SENDING or not broadcast.notify_channel:
            return None
        if broadcast.expanded_at is None:
            return None
        claimed = await session.execute(
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                or_(
                    and_(Broadcast.last_progress_at.is_(None), Broadcast.started_at <= now - every),
                    Broadcast.last_progress_at <= now - every,
                ),
            )
            .values(last_progress_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        p = await progress(session, broadcast_id, now)
        if p.pending == 0:
            return p  # the report follows at once
        _say(session, broadcast, progress_text(broadcast_id, p), now, None)
        return p


async def finish_if_done(
    sessions: async_sessionmaker[AsyncSession], broadcast_id: int, now: datetime
) -> dict[str, Any] | None:
    """When every row of an expanded broadcast is settled: store the report, mark it done and send it
    to the admin. Returns the report the first time (in one process), else None."""
    async with sessions.begin() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status != BroadcastStatus.SENDING or broadcast.expanded_at is None:
            return None
        p = await progress(session, broadcast_id, now)
        if p.pending:
            return None
        report = p.to_json()
        done = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.SENDING)
            .values(
                status=BroadcastStatus.DONE,
                finished_at=now,
                report=report,
                total=p.total,
                sent=p.sent,
                failed=p.failed,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            return None
        _say(session, broadcast, report_text(broadcast, report), now, f"bcr:{broadcast_id}")
        return report


def decision_buttons(broadcast_id: int, *, calendar: bool = False) -> list[Button]:
    ok = render("bc.button.approve" if calendar else "bc.button.send")
    return [
        Button(ok, action(Cmd.BROADCAST_OK, None, str(broadcast_id))),
        Button(render("bc.button.cancel"), action(Cmd.BROADCAST_CANCEL, None, str(broadcast_id))),
    ]
