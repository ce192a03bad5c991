"""A resident asking how an earlier report is getting on is answered from their own cases (never a new
case), also while the bot waits for an answer to another question, which it then asks again."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.cases.models import Case, CaseStatus
from tests.support.chat import Chat


async def cases_count(chat: Chat) -> int:
    async with chat.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Case)) or 0)


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_a_status_question_lists_the_residents_cases_in_words(chat: Chat) -> None:
    await chat.send("小王", "2号楼门口垃圾堆成山了")  # #1 → 网格员张伟
    await chat.send("小李", "13号楼有蟑螂")  # #2, someone else's
    out = await chat.send("小王", "我上次反映的垃圾处理了吗")
    [answer] = chat.to(out, "小王")
    assert "#1" in answer and "垃圾" in answer and "2号楼" in answer
    assert "已派给网格员张伟" in answer and "等待接单" in answer and "预计11月23日" in answer
    assert "#2" not in answer and "蟑螂" not in answer
    assert chat.to(out, "zhang") == [] and await cases_count(chat) == 2  # a question opens nothing

    await chat.send("zhang", "接单 1")
    out = await chat.send("小王", "进度呢")
    [answer] = chat.to(out, "小王")
    assert "#1" in answer and "网格员张伟正在处理" in answer

    chat.clock.advance(days=2)  # past the deadline
    out = await chat.send("小王", "any update on my report?")
    [answer] = chat.to(out, "小王")
    assert "#1" in answer and "已超过预计时间" in answer
    assert await cases_count(chat) == 2


async def test_a_named_case_is_answered_and_anothers_is_refused_without_a_trace(chat: Chat) -> None:
    await chat.send("小李", "13号楼有蟑螂 我电话13812345678")  # #1
    await chat.send("小王", "3号楼有小广告")  # #2
    out = await chat.send("小王", "2号案件怎么样了")
    [answer] = chat.to(out, "小王")
    assert answer.startswith("#2 乱张贴") and "网格员张伟" in answer

    out = await chat.send("小王", "1号案件怎么样了")
    [refused] = chat.to(out, "小王")
    out = await chat.send("小王", "99号案件怎么样了")
    [missing] = chat.to(out, "小王")
    assert refused == missing.replace("99", "1")  # someone else's case reads like no case at all
    for secret in ("13号楼", "蟑螂", "13812345678", "王芳", "处理"):
        assert secret not in refused.replace("查询", "")
    assert await cases_count(chat) == 2


async def test_no_cases_says_so_and_how_to_report(chat: Chat) -> None:
    out = await chat.send("小赵", "我报的事有人管吗")
    [answer] = chat.to(out, "小赵")
    assert "没有正在处理" in answer and "楼号或地点" in answer
    assert await cases_count(chat) == 0


async def test_finished_cases_are_mentioned_for_a_week(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("zhang", "完成 1 已清理")
    await chat.send("小王", "满意")
    out = await chat.send("小王", "12号楼垃圾处理了吗 我的投诉有回复吗")
    assert "#1" in chat.to(out, "小王")[0] and "已办结" in chat.to(out, "小王")[0]
    chat.clock.advance(days=8)
    out = await chat.send("小王", "进度呢")
    assert "没有正在处理" in chat.to(out, "小王")[0]


async def test_asked_while_the_bot_waits_for_a_location_it_answers_and_asks_again(chat: Chat) -> None:
    out = await chat.send("小李", "这里的垃圾桶满了好几天没人清")
    assert "哪里" in chat.to(out, "小李")[0]
    out = await chat.send("小李", "进度呢")
    answer, again = chat.to(out, "小李")
    assert "#1" in answer and "还在等您说明具体位置" in answer
    assert "#1 具体在哪里" in again
    stored = await case(chat, 1)
    assert stored.status == CaseStatus.NEW and not stored.in_triage  # the question is still open
    assert chat.to(out, "chen") == []

    out = await chat.send("小李", "在东门旁边")
    assert (await case(chat, 1)).assignee_id == "zhang"
    assert any("张伟" in t for t in chat.to(out, "小李"))


async def test_asked_while_a_rating_is_pending_the_rating_still_counts(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("zhang", "完成 1 已清理干净")
    out = await chat.send("小王", "我报的事有人管吗")
    answer, again = chat.to(out, "小王")
    assert "#1" in answer and "已处理完毕" in answer
    assert "#1" in again and "满意吗" in again
    assert (await case(chat, 1)).status == CaseStatus.RESOLVED
    out = await chat.send("小王", "1")
    assert any("#1 已办结" in t for t in chat.to(out, "小王"))
    assert (await case(chat, 1)).status == CaseStatus.CONFIRMED


async def test_asked_while_the_bot_asks_which_kind_the_choices_come_again(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")  # #1
    out = await chat.send("小王", "3号楼后面那块地方又脏又臭")
    assert any("1." in t for t in chat.to(out, "小王"))  # which kind of problem?
    out = await chat.send("小王", "#1 进展")
    answer, again = chat.to(out, "小王")
    assert answer.startswith("#1 乱张贴") and "哪一类" in again and "1." in again
    assert await cases_count(chat) == 1
    out = await chat.send("小王", "1")  # still answers the kind question
    assert await cases_count(chat) == 2
