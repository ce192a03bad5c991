"""The daily digest greets by the community's local hour and does not repeat in full a case whose card
the same person was sent within the hour (it names it on one line instead)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from handlers.cases.digest import send_digests
from tests.support.chat import Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(chat: Chat, day: int, hour: int, minute: int = 0) -> None:
    chat.clock.now = datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


async def digest_to(chat: Chat, who: str) -> str:
    await send_digests(chat.services)
    [text] = [t for t in chat.to(await chat.flush(), who) if "【每日待办】" in t]
    return text


async def test_the_greeting_follows_the_local_hour(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")  # Monday 09:30: zhang has an open case from now on
    at(chat, 24, 8, 30)  # 00:30 UTC: still morning where the community is
    assert (await digest_to(chat, "zhang")).startswith("【每日待办】张伟，早上好：")
    at(chat, 25, 14, 5)  # the server was down in the morning: the digest goes out after lunch
    assert (await digest_to(chat, "zhang")).startswith("【每日待办】张伟，下午好：")
    at(chat, 26, 19, 0)
    assert (await digest_to(chat, "zhang")).startswith("【每日待办】张伟，晚上好：")


async def test_a_card_sent_minutes_before_is_named_not_repeated(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")  # #1, Monday
    at(chat, 24, 8, 10)
    out = await chat.send("小李", "2号楼门口垃圾堆成山了")  # #2: its card reaches zhang at 08:10
    assert any("#2" in t for t in chat.to(out, "zhang"))
    at(chat, 24, 8, 30)
    await send_digests(chat.services)
    out = await chat.flush()
    [worker] = [t for t in chat.to(out, "zhang") if "【每日待办】" in t]
    assert "在办案件 2 件" in worker
    assert "#1 乱张贴/小广告 · 3号楼" in worker  # yesterday's card: listed in full
    assert "#2 垃圾" not in worker and "（#2 在60分钟内已单独发给您" in worker
    [leader] = [t for t in chat.to(out, "li") if "【每日待办】" in t]
    assert "#2 垃圾/乱堆放 · 2号楼" in leader  # the leader got no card for it: in full

    out = await chat.send("zhang", "任务")  # the digest itself is no card: tomorrow #2 is in full
    at(chat, 25, 8, 30)
    assert "#2 垃圾/乱堆放 · 2号楼" in await digest_to(chat, "zhang")
