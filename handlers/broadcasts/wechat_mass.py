"""WeChat mass send (群发, ``message/mass/send`` by openid list) for broadcasts, with the monthly quota.

A verified 服务号 may mass-send; each user receives at most 4 mass messages a calendar month (further
ones fail for that user). With ``OUTREACH_BROADCAST_WECHAT_MASS=true`` a broadcast's WeChat recipients
outside the 48-hour customer-service window get WeChat outbox rows whose delivery method is
``DeliveryMethod.MASS`` (the ordinary WeChat drain leaves them alone); this module sends them, up to
10,000 openids a call, and counts each user's mass messages of the month in ``wechat_mass_receipts``
(Beijing time). A user whose quota is spent is not sent to: the row fails with ``mass_quota`` and is
counted and listed in the report.

The bot/wechat client has no mass-send method; this module calls its generic ``call(path, body)``.
A call carries ``clientmsgid`` derived from the rows it sends (first id, last id, count): if the process
dies after WeChat accepted a batch but before the rows were marked, the same rows are claimed again in
the same order and the repeated call is refused by WeChat as a duplicate (45065), which counts as sent.
A single recipient (the API needs at least two) or an error other than a quota goes back to the
ordinary WeChat path (template or subscription message, else the unreached record).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.broadcasts.audience import Audience, resident_filter
from handlers.broadcasts.config import DEFAULTS, BroadcastSettings
from handlers.broadcasts.expansion import WECHAT, WECHAT_WINDOW
from handlers.broadcasts.models import WeChatMassReceipt
from handlers.kernel.outbox import claim
from handlers.kernel.ports import DeliveryMethod, DeliveryOutcome, MassSender
from messages import render
from storage.models import OutboxMessage, OutboxStatus, Resident, ResidentIdentity

BEIJING = ZoneInfo("Asia/Shanghai")
DIRECT = DeliveryMethod.DIRECT.value  # a mass row handed to the ordinary WeChat path
RETRY = timedelta(minutes=10)


def month_of(now: datetime) -> str:
    return now.astimezone(BEIJING).strftime("%Y-%m")


async def used(session: AsyncSession, openids: Sequence[str], month: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(openids), 900):
        chunk = list(openids[start : start + 900])
        rows = await session.execute(
            select(WeChatMassReceipt.openid, WeChatMassReceipt.count).where(
                WeChatMassReceipt.month == month, WeChatMassReceipt.openid.in_(chunk)
            )
        )
        out.update({openid: int(count) for openid, count in rows})
    return out


async def quota_note(
    session: AsyncSession, audience: Audience, now: datetime, settings: BroadcastSettings = DEFAULTS
) -> str:
    """For the confirmation: how many would get a mass send, and how many have no quota left."""
    if not audience.residents:
        return ""
    outside = (
        select(ResidentIdentity.external_id)
        .join(Resident, Resident.id == ResidentIdentity.resident_id)
        .where(
            ResidentIdentity.channel == WECHAT,
            ResidentIdentity.unreachable_since.is_(None),
            (ResidentIdentity.last_inbound_at.is_(None))
            | (ResidentIdentity.last_inbound_at < now - WECHAT_WINDOW),
            *resident_filter(audience),
        )
    )
    count = int(await session.scalar(select(func.count()).select_from(outside.subquery())) or 0)
    if not count:
        return ""
    exhausted = int(
        await session.scalar(
            select(func.count()).where(
                WeChatMassReceipt.month == month_of(now),
                WeChatMassReceipt.count >= settings.wechat_mass_quota,
                WeChatMassReceipt.openid.in_(outside),
            )
        )
        or 0
    )
    return render("bc.mass_note", count=count, quota=settings.wechat_mass_quota, exhausted=exhausted)


def _count_receipts(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO UPDATE count = count + 1 (executed with one parameter set per user)."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(WeChatMassReceipt)
    return statement.on_conflict_do_update(
        index_elements=["openid", "month"], set_={"count": WeChatMassReceipt.count + 1}
    )


async def _settle(sessions: async_sessionmaker[AsyncSession], ids: Sequence[int], **values: Any) -> None:
    if not ids:
        return
    async with sessions.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)))
            .values(claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )


async def drain(
    sessions: async_sessionmaker[AsyncSession],
    sender: MassSender,
    clock: Callable[[], datetime],
    *,
    quota: int | None = None,
    batch: int | None = None,
    settings: BroadcastSettings = DEFAULTS,
) -> int:
    """Send one claim of mass rows; returns how many were sent (accepted by WeChat)."""
    quota = quota or settings.wechat_mass_quota
    batch = batch or settings.wechat_mass_batch
    now = clock()
    rows = await claim(sessions, WECHAT, now, limit=batch, method=DeliveryMethod.MASS)
    if not rows:
        return 0
    month = month_of(now)
    async with sessions() as session:
        counts = await used(session, [r.recipient for r in rows], month)
    over = [r.id for r in rows if counts.get(r.recipient, 0) >= quota]
    await _settle(sessions, over, status=OutboxStatus.FAILED, last_error="mass_quota")
    groups: dict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
    for r in rows:
        if counts.get(r.recipient, 0) < quota:
            groups[(r.text, str((r.payload or {}).get("photo") or ""))].append(r)
    sent = 0
    for (text, _photo), members in groups.items():
        sent += await _send_group(sessions, sender, clock, text, members, month)
    return sent


async def _send_group(
    sessions: async_sessionmaker[AsyncSession],
    sender: MassSender,
    clock: Callable[[], datetime],
    text: str,
    members: list[OutboxMessage],
    month: str,
) -> int:
    ids = [r.id for r in members]
    if len(members) < 2:  # the API needs two openids at least: the ordinary WeChat path takes it
        await _settle(sessions, ids, method=DIRECT, status=OutboxStatus.PENDING, not_before=clock())
        return 0
    result = await sender.send_mass([r.recipient for r in members], text, f"bc{ids[0]}-{ids[-1]}-{len(ids)}")
    if result.outcome == DeliveryOutcome.RETRY_AT:
        await _settle(
            sessions, ids, status=OutboxStatus.PENDING, not_before=clock() + RETRY, last_error=result.detail
        )
        return 0
    if result.outcome != DeliveryOutcome.SENT:
        await _settle(sessions, ids, method=DIRECT, status=OutboxStatus.PENDING, not_before=clock())
        return 0
    now = clock()
    async with sessions.begin() as session:
        await session.execute(
            _count_receipts(session), [{"openid": r.recipient, "month": month, "count": 1} for r in members]
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status=OutboxStatus.SENT, sent_at=now, claimed_until=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def fall_back(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """No mass-send client in this process (disabled, or WeChat not configured): the ordinary WeChat
    path takes the waiting mass rows, so a broadcast never waits for a sender that does not exist."""
    async with sessions.begin() as session:
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.channel == WECHAT,
                OutboxMessage.method == DeliveryMethod.MASS.value,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            .values(method=DIRECT, not_before=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
