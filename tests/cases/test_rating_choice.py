"""A bare rating while two fixed cases wait for one: the bot asks which, rates that one and names it;
the older case is never rated by guess, whichever was fixed first."""

from __future__ import annotations

from handlers.cases.models import Case, CaseStatus
from handlers.kernel.inbound import Inbound
from tests.support.chat import Chat


async def status(chat: Chat, number: int) -> str:
    async with chat.services.sessions() as session:
        return (await session.get_one(Case, number)).status


async def two_fixed(chat: Chat, first: int, second: int) -> list[str]:
    """小王 reports #1 and #2; the worker fixes ``first`` then ``second``; what 小王 was told."""
    await chat.send("小王", "3号楼有小广告")
    await chat.send("小王", "2号楼门口垃圾堆成山了")
    await chat.send("zhang", f"完成 {first} 已清理")
    chat.clock.advance(minutes=20)
    out = await chat.send("zhang", f"完成 {second} 已清运")
    return chat.to(out, "小王")


async def test_a_bare_2_asks_which_case_and_the_chosen_one_is_reopened(chat: Chat) -> None:
    await two_fixed(chat, 1, 2)
    out = await chat.send("小王", "2")
    [asked] = chat.to(out, "小王")
    assert "2个" in asked and "不满意" in asked and "#1" in asked and "#2" in asked
    assert asked.index("#2") < asked.index("#1")  # the newest fix first
    assert await status(chat, 1) == await status(chat, 2) == CaseStatus.RESOLVED  # nothing rated yet

    out = await chat.send("小王", "1")
    assert any("#1" in t and "原因" in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "还是有好多没撕干净")
    assert any("#1" in t and "重新" in t for t in chat.to(out, "小王"))
    assert await status(chat, 1) == CaseStatus.ASSIGNED
    assert await status(chat, 2) == CaseStatus.RESOLVED


async def test_fixed_in_the_other_order_a_bare_satisfied_asks_too(chat: Chat) -> None:
    await two_fixed(chat, 2, 1)
    out = await chat.send("小王", "满意")
    [asked] = chat.to(out, "小王")
    assert "满意" in asked and asked.index("#1") < asked.index("#2")  # #1 was fixed last
    assert await status(chat, 1) == await status(chat, 2) == CaseStatus.RESOLVED

    out = await chat.send("小王", "#2")
    assert chat.to(out, "小王") == ["感谢您的评价！#2 已办结。"]
    assert await status(chat, 2) == CaseStatus.CONFIRMED
    assert await status(chat, 1) == CaseStatus.RESOLVED

    out = await chat.send("小王", "满意")  # one case waits now: rated at once, and named
    assert chat.to(out, "小王") == ["感谢您的评价！#1 已办结。"]
    assert await status(chat, 1) == CaseStatus.CONFIRMED


async def test_the_question_has_a_button_per_case_that_keeps_the_reason(chat: Chat) -> None:
    await two_fixed(chat, 1, 2)
    await chat.send("小王", "不满意 还是很脏")
    [asked] = [m for m in chat.sender.delivered if m.recipient == "小王"][-1:]
    actions = [b["action"] for b in asked.payload["buttons"]]  # type: ignore[union-attr]
    assert actions == ["bad:2", "bad:1"]
    await chat.conversation.act(Inbound(channel="console", sender="小王"), "bad:2")
    out = await chat.flush()
    assert any("#2" in t and "重新" in t for t in chat.to(out, "小王"))
    assert any("还是很脏" in t for t in chat.to(out, "zhang"))
    assert await status(chat, 2) == CaseStatus.ASSIGNED
    assert await status(chat, 1) == CaseStatus.RESOLVED


async def test_with_one_fixed_case_a_bare_rating_still_rates_it(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("zhang", "完成 1 已清理")
    out = await chat.send("小王", "1")
    assert chat.to(out, "小王") == ["感谢您的评价！#1 已办结。"]


async def test_a_report_instead_of_a_case_number_is_a_report(chat: Chat) -> None:
    await two_fixed(chat, 1, 2)
    await chat.send("小王", "满意")
    out = await chat.send("小王", "5号楼下水道堵了污水冒出来")
    assert any("#3" in t for t in chat.to(out, "小王"))
    assert await status(chat, 1) == await status(chat, 2) == CaseStatus.RESOLVED
