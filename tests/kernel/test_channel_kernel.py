"""The kernel services channels call so that they only translate (issue #14 point 2), on SQLite and
PostgreSQL: reachability decided once (``handlers/kernel/reachability.py``), the WeChat channel's own rows
(``handlers/kernel/channel_state.py``), the callback inbox's rows (``handlers/kernel/callback_inbox.py``), the
passive reply and the staff list (``handlers/kernel/channel_services.py``), and the ``OutboxItem`` a sender
gets from the drain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel import channel_services, channel_state, reachability
from handlers.kernel.callback_inbox import MAX_ATTEMPTS, Entry, InboxStore, NewMessage, Replayed, Seal
from handlers.kernel.outbox import DeliveryError, Outbound, OutboxItem, claim, drain, enqueue
from handlers.kernel.ports import DeliveryOutcome, OutboxKind
from storage.models import Resident, ResidentIdentity, Staff, StaffIdentity
from storage.wechat_models import WeChatInbox, WeChatUser

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


async def resident(sessions: Sessions, channel: str, external_id: str, last: datetime | None = None) -> None:
    async with sessions.begin() as session:
        person = Resident(display_name=external_id)
        session.add(person)
        await session.flush()
        session.add(
            ResidentIdentity(
                channel=channel, external_id=external_id, resident_id=person.id, last_inbound_at=last
            )
        )


async def unreachable_since(sessions: Sessions, channel: str, external_id: str) -> datetime | None:
    async with sessions() as session:
        return await session.scalar(
            select(ResidentIdentity.unreachable_since).where(
                ResidentIdentity.channel == channel, ResidentIdentity.external_id == external_id
            )
        )


async def pending(sessions: Sessions, channel: str, recipient: str, text: str, kind: str = "reply") -> int:
    async with sessions.begin() as session:
        row = enqueue(session, Outbound(channel, recipient, text, kind=kind), NOW)
        await session.flush()
        return row.id


def item(row_id: int, recipient: str, kind: str = OutboxKind.REPLY.value) -> OutboxItem:
    return OutboxItem(id=row_id, channel="telegram", recipient=recipient, kind=kind, text="hi", payload={})


# -- reachability ---------------------------------------------------------------------------------------


async def test_a_blocked_outcome_marks_the_account_and_later_rows_go_without_a_request(
    sessions: Sessions,
) -> None:
    await resident(sessions, "telegram", "42")
    ran: list[str] = []
    with pytest.raises(DeliveryError):
        async with reachability.delivering(sessions, "telegram", item(1, "42"), lambda: NOW):
            ran.append("first")
            raise DeliveryError("403 Forbidden", outcome=DeliveryOutcome.BLOCKED)
    assert await unreachable_since(sessions, "telegram", "42") == NOW
    with pytest.raises(DeliveryError) as caught:
        async with reachability.delivering(sessions, "telegram", item(2, "42"), lambda: NOW):
            ran.append("second")
    assert caught.value.outcome == DeliveryOutcome.BLOCKED and caught.value.permanent
    assert caught.value.stored.startswith("blocked:")
    # A card update answers a click just made: tried even so.
    async with reachability.delivering(
        sessions, "telegram", item(3, "42", OutboxKind.CARD_UPDATE.value), lambda: NOW
    ):
        ran.append("card")
    assert ran == ["first", "card"]
    await reachability.reachable_again(sessions, "telegram", "42")
    assert await unreachable_since(sessions, "telegram", "42") is None


async def test_other_failures_leave_the_account_reachable(sessions: Sessions) -> None:
    await resident(sessions, "telegram", "7")
    for error in (
        DeliveryError("400 Bad Request", permanent=True, cause="bad_request"),
        DeliveryError("429", retry_after=3),
        DeliveryError("timeout"),
    ):
        with pytest.raises(DeliveryError):
            async with reachability.delivering(sessions, "telegram", item(1, "7"), lambda: NOW):
                raise error
    assert await unreachable_since(sessions, "telegram", "7") is None


async def test_the_drain_hands_senders_plain_items(sessions: Sessions) -> None:
    row_id = await pending(sessions, "telegram", "9", "你好")
    got: list[OutboxItem] = []

    class Recording:
        channel = "telegram"

        async def send(self, message: OutboxItem) -> None:
            got.append(message)

    assert await drain(sessions, Recording(), lambda: NOW) == 1
    (sent,) = got
    assert type(sent) is OutboxItem
    assert (sent.id, sent.recipient, sent.text, sent.kind, sent.attempts) == (row_id, "9", "你好", "reply", 1)
    assert sent.claimed_by is not None


# -- the WeChat channel's rows ----------------------------------------------------------------------------


async def test_touch_opens_windows_and_following_decides_reachability(sessions: Sessions) -> None:
    await resident(sessions, "wechat", "oA", last=NOW - timedelta(hours=1))
    state = await channel_state.touch(sessions, "wechat", "oA", NOW, window="message")
    assert (state.last_inbound_at, state.window_kind, state.cs_sent) == (NOW, "message", 0)
    # An event inside an open message window does not shorten it.
    later = NOW + timedelta(minutes=5)
    place = channel_state.Position(31.2, 121.4, "3号楼")
    state = await channel_state.touch(sessions, "wechat", "oA", later, window="event", position=place)
    assert (state.last_inbound_at, state.window_kind) == (NOW, "message")
    assert (state.latitude, state.longitude, state.location_label, state.located_at) == (
        31.2,
        121.4,
        "3号楼",
        later,
    )
    state = await channel_state.touch(sessions, "wechat", "oA", later, window=None, subscribed=False)
    assert state.unsubscribed_at == later
    assert await unreachable_since(sessions, "wechat", "oA") == later
    state = await channel_state.touch(sessions, "wechat", "oA", later, window="event", subscribed=True)
    assert state.unsubscribed_at is None and await unreachable_since(sessions, "wechat", "oA") is None
    user, resident_last = await channel_state.user_state(sessions, "wechat", "oA")
    assert user is not None and user.location_label == "3号楼"
    assert resident_last == NOW - timedelta(hours=1)
    assert await channel_state.user_state(sessions, "wechat", "nobody") == (None, None)


async def test_what_wechat_answers_is_kept_per_user(sessions: Sessions) -> None:
    await channel_state.count_cs_message(sessions, "wechat", "oB")
    await channel_state.count_cs_message(sessions, "wechat", "oB")
    user, _ = await channel_state.user_state(sessions, "wechat", "oB")
    assert user is not None and user.cs_sent == 2
    await channel_state.quota_spent(sessions, "wechat", "oB", 5)
    await channel_state.window_closed(sessions, "wechat", "oB", NOW)
    await channel_state.unsubscribed(sessions, "wechat", "oB", NOW)
    user, _ = await channel_state.user_state(sessions, "wechat", "oB")
    assert user is not None and (user.cs_sent, user.window_closed_at, user.unsubscribed_at) == (5, NOW, NOW)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WeChatUser)) == 1


async def test_subscriptions_and_the_unreached_record(sessions: Sessions) -> None:
    assert await channel_state.subscription(sessions, "oC", "tpl") is None
    await channel_state.record_subscription(sessions, "oC", "tpl", "accept", NOW)
    await channel_state.record_subscription(sessions, "oC", "tpl", "reject", NOW)  # the later answer wins
    assert await channel_state.subscription(sessions, "oC", "tpl") == "reject"
    first = OutboxItem(
        id=5, channel="wechat", recipient="oC", kind="status", text="案件 #3 已完成", payload={}, case_id=None
    )
    await channel_state.record_unreached(sessions, "wechat", first, "window_closed", NOW)
    await channel_state.record_unreached(sessions, "wechat", first, "x" * 80, NOW + timedelta(minutes=1))
    newest, oldest = await channel_state.unreached(sessions, 10)
    assert (oldest.openid, oldest.kind, oldest.reason, oldest.text) == (
        "oC",
        "status",
        "window_closed",
        first.text,
    )
    assert newest.reason == "x" * 64  # the column's width
    assert await channel_state.unreached(sessions, 1) == [newest]


# -- the callback inbox's rows ----------------------------------------------------------------------------


def message(key: str, inline: bool = False) -> NewMessage:
    return NewMessage(key, "oD", f"<xml>{key}</xml>", NOW, NOW + timedelta(seconds=30) if inline else None)


async def test_inbox_store_turns_retries_and_replayed_seals_away(sessions: Sessions) -> None:
    store = InboxStore(sessions, "wechat", lambda: NOW)
    seal = Seal("sig", 1_790_000_000, "n1", "body-a")
    other_body = Seal("sig", 1_790_000_000, "n1", "body-b")
    results = await store.store(
        [Entry(message("m1"), seal), Entry(message("m1"), None), Entry(message("m2"), other_body)]
    )
    assert isinstance(results[0], int) and results[1] is None and isinstance(results[2], Replayed)
    # Another process later: the same body under the seal is a retry, another body is refused.
    again = InboxStore(sessions, "wechat", lambda: NOW)
    later = await again.store(
        [Entry(message("m1"), seal), Entry(None, other_body), Entry(message("m3"), None)]
    )
    assert later[0] is None and isinstance(later[1], Replayed) and isinstance(later[2], int)
    async with sessions() as session:
        keys = (await session.scalars(select(WeChatInbox.key).order_by(WeChatInbox.id))).all()
    assert keys == ["m1", "m3"]


async def test_inbox_store_leases_settles_gives_up_and_prunes(sessions: Sessions) -> None:
    now = [NOW]
    store = InboxStore(sessions, "wechat", lambda: now[0])
    (inline_id, queued_id) = await store.store(
        [Entry(message("a", inline=True), None), Entry(message("b"), None)]
    )
    fresh, spent = await store.claim()
    assert [i.id for i in fresh] == [queued_id] and spent == []  # the inline one is its caller's
    assert await store.claim() == ([], [])  # leased
    await store.done(queued_id)
    for _ in range(MAX_ATTEMPTS):
        now[0] += timedelta(minutes=2)  # each lease lapses: the inline message was never settled
        fresh, spent = await store.claim()
        assert [i.id for i in fresh] == [inline_id] and spent == []
    now[0] += timedelta(minutes=2)
    fresh, spent = await store.claim()
    assert fresh == [] and [i.key for i in spent] == ["a"]
    await store.done(inline_id, "failed")
    await store.prune(NOW + timedelta(days=3))  # handled rows go; a failed one is kept to look at
    async with sessions() as session:
        left = (await session.execute(select(WeChatInbox.key, WeChatInbox.status))).all()
    assert [tuple(r) for r in left] == [("a", "failed")]


# -- passive replies and the staff list ---------------------------------------------------------------


async def test_a_passive_reply_is_taken_once_and_can_be_given_back(sessions: Sessions) -> None:
    status = await pending(sessions, "wechat", "oE", "状态", kind=OutboxKind.STATUS.value)
    reply = await pending(sessions, "wechat", "oE", "收到")
    long = await pending(sessions, "wechat", "oF", "长" * 1000)
    ids = [status, reply, long]
    kinds = (OutboxKind.REPLY.value, OutboxKind.ACK.value)

    async def take(openid: str, late: bool = False) -> tuple[int, str] | None:
        return await channel_services.take_passive_reply(
            sessions, ids, "wechat", openid, kinds, 2000, NOW, lambda: late
        )

    assert await take("oE", late=True) is None
    assert await take("oE") == (reply, "收到")
    assert await take("oE") is None  # taken: marked sent, the drain skips it
    assert await take("oF") is None  # 3000 bytes: too long for a passive reply
    await channel_services.give_back(sessions, reply)
    rows = await claim(sessions, "wechat", NOW, limit=10)
    assert sorted(r.id for r in rows) == sorted(ids)


async def test_active_staff_for_a_channel_to_show(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        session.add_all(
            [
                Staff(id="wang", name="王芳", role="worker", active=True),
                Staff(id="chen", name="陈静", role="admin", active=True),
                Staff(id="gone", name="离职", role="worker", active=False),
            ]
        )
        await session.flush()
        session.add(StaffIdentity(channel="wecom", external_id="WangFang", staff_id="wang"))
    cards = await channel_services.active_staff(sessions)
    assert [(c.id, c.role) for c in cards] == [("chen", "admin"), ("wang", "worker")]
    assert await channel_services.active_staff(sessions, "gone") == []
    assert await channel_services.active_staff(sessions, "wang") == [
        channel_services.StaffCard("wang", "王芳", "worker")
    ]
