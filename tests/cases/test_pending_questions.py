"""A question the bot waits on never swallows the next report or command (issue #12 points 1, 6, 7).

Transcripts through the real ``Conversation`` on SQLite and PostgreSQL. The rule (handlers/cases/pending.py):
a message that is itself a report of another problem, or a command, is handled as one, and the pending
question is closed with its consequence said in one line; 取消 cancels what is pending and says what;
staff words from a resident get "staff only" and leave the pending question as it was.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from handlers.broadcasts.models import Broadcast, BroadcastStatus
from handlers.cases import deadlines
from handlers.cases.models import Case, CaseEvent, CaseStatus
from handlers.reminders.models import Child, Consent
from storage.models import Dialog
from tests.support.chat import Chat


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def cases(chat: Chat) -> list[Case]:
    async with chat.services.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def actions(chat: Chat, number: int) -> list[tuple[str, str | None]]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == number).order_by(CaseEvent.id)
        )
        return [(e.action, e.actor_type) for e in rows]


async def count(chat: Chat, model: type) -> int:
    async with chat.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def dialog_state(chat: Chat, who: str) -> str | None:
    async with chat.services.sessions() as session:
        dialog = await session.get(Dialog, ("console", who))
        return dialog.state if dialog is not None else None


async def resolved_and_rated_bad(chat: Chat) -> None:
    """Case #1 (a poster case, zhang's) resolved; the resident answers 2 and is asked why."""
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("zhang", "完成 1 已清理干净")
    out = await chat.send("小王", "2")
    assert any("原因" in t for t in chat.to(out, "小王"))


# -- 1. the next report is handled as a report --------------------------------------------------------


async def test_a_report_while_we_ask_where_is_a_new_case_and_the_first_goes_to_triage(chat: Chat) -> None:
    out = await chat.send("小王", "这里的垃圾桶满了好几天没人清")
    assert any("哪里" in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "对了，10号楼下水道堵了")
    first, second = await cases(chat)
    # The sewer report is its own case, at 10号楼, with zhao (G2's sewer worker) told.
    assert (second.category_code, second.building, second.grid_code, second.assignee_id) == (
        "sewage",
        "10",
        "G2",
        "zhao",
    )
    assert any("#2" in t and "下水道" in t for t in chat.to(out, "zhao"))
    # The first case did not get "10号楼" as its location: it went to triage, and the admins got its card.
    assert first.location_text is None and first.in_triage and first.status == CaseStatus.NEW
    assert any("【待分拣】#1" in t for t in chat.to(out, "chen"))
    told = "\n".join(chat.to(out, "小王"))
    assert "#1" in told and "分拣" in told and "#2" in told and "赵磊" in told
    assert await dialog_state(chat, "小王") is None


async def test_a_report_after_rating_2_is_a_new_case_and_the_first_is_reopened(chat: Chat) -> None:
    await resolved_and_rated_bad(chat)
    out = await chat.send("小王", "另外8号楼门口垃圾堆了好几天了")
    first, second = await cases(chat)
    assert (second.category_code, second.building, second.grid_code) == ("garbage", "8", "G2")
    assert second.text == "另外8号楼门口垃圾堆了好几天了"
    # 不满意 was said: the first case is reopened to zhang, without a reason rather than with this one.
    assert first.status == CaseStatus.ASSIGNED and first.reopen_count == 1
    async with chat.services.sessions() as session:
        note = await session.scalar(
            select(CaseEvent.note).where(CaseEvent.case_id == 1, CaseEvent.action == "reopened")
        )
    assert note == "（未说明原因）"
    assert any("#1" in t and "重新" in t for t in chat.to(out, "小王"))
    assert any("【新案件】#2" in t for t in chat.to(out, "zhao") + chat.to(out, "sun"))


async def test_a_reason_about_the_same_problem_is_the_reason(chat: Chat) -> None:
    await resolved_and_rated_bad(chat)
    await chat.send("小王", "小广告还在，根本没撕干净")
    assert [c.id for c in await cases(chat)] == [1]
    reopened = await case(chat, 1)
    assert reopened.status == CaseStatus.ASSIGNED
    async with chat.services.sessions() as session:
        note = await session.scalar(select(CaseEvent.note).where(CaseEvent.action == "reopened"))
    assert note == "小广告还在，根本没撕干净"


@pytest.mark.parametrize(
    "reason",
    ["楼梯上还有！（３楼到５楼）", "二楼三楼也有", "还是老样子，一点没变", "只弄了一半", "没看到有人来过啊"],
)
async def test_a_reason_in_no_problems_words_is_the_reason_not_a_new_case(chat: Chat, reason: str) -> None:
    # Why it is not fixed is said in words that name no problem; the classifier may read them as "other"
    # (something is wrong), but they answer the question asked.
    await resolved_and_rated_bad(chat)
    await chat.send("小王", reason)
    assert [c.id for c in await cases(chat)] == [1]
    async with chat.services.sessions() as session:
        note = await session.scalar(select(CaseEvent.note).where(CaseEvent.action == "reopened"))
    assert note == reason


@pytest.mark.parametrize(
    "report", ["另外路灯也坏了，晚上很黑", "对了，单元门的门禁坏了", "btw the lift is broken again"]
)
async def test_another_problem_in_other_words_after_rating_2_is_its_own_case(chat: Chat, report: str) -> None:
    await resolved_and_rated_bad(chat)
    await chat.send("小王", report)
    assert [c.id for c in await cases(chat)] == [1, 2]
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED  # reopened, without this as its reason


@pytest.mark.parametrize(
    ("report", "answer", "where"),
    [
        ("楼道里有老鼠窜来窜去", "3号楼垃圾房后面", "3"),  # problem words naming a place answer "where?"
        ("这边积水很多全是蚊子", "在南区垃圾站旁边", None),
        ("这里的垃圾桶满了", "5号楼门口的垃圾桶", "5"),  # the same problem again: it says where
    ],
)
async def test_an_answer_that_names_a_place_is_still_the_answer(
    chat: Chat, report: str, answer: str, where: str | None
) -> None:
    await chat.send("小李", report)
    await chat.send("小李", answer)
    only = await cases(chat)
    assert len(only) == 1 and only[0].assignee_id is not None and not only[0].in_triage
    assert only[0].building == where


@pytest.mark.parametrize(
    ("pending", "new", "category"),
    [
        ("这里的垃圾桶满了好几天没人清", "南门那边有一大片积水", "mosquito"),
        ("这里的垃圾桶满了好几天没人清", "还有8号楼门口的下水道堵了", "sewage"),
        ("楼道里有老鼠窜来窜去", "另外3号楼楼道里贴满了小广告", "poster"),
        ("这边积水很多全是蚊子", "东门垃圾堆了好几天了，臭死了", "garbage"),
        ("有小广告贴满了电线杆", "對了，10號樓下水道堵了", "sewage"),  # traditional characters
    ],
)
async def test_many_reports_while_asked_where_are_new_cases(
    chat: Chat, pending: str, new: str, category: str
) -> None:
    await chat.send("小李", pending)
    out = await chat.send("小李", new)
    first, second = await cases(chat)
    assert first.in_triage and first.location_text is None
    assert second.category_code == category and second.text == new and second.grid_code is not None
    assert any(f"#{second.id}" in t for t in chat.to(out, "小李"))


async def test_a_report_during_the_reminder_enrolment_is_not_taken_as_the_nickname(chat: Chat) -> None:
    await chat.send("小王", "疫苗提醒")
    await chat.send("小王", "同意")
    out = await chat.send("小王", "对了，10号楼下水道堵了")
    assert await count(chat, Child) == 0
    assert [(c.category_code, c.building) for c in await cases(chat)] == [("sewage", "10")]
    told = "\n".join(chat.to(out, "小王"))
    assert "疫苗提醒登记已中断" in told and "#1" in told
    assert await count(chat, Consent) == 1  # what was given stays, as the reply says


async def test_a_report_during_the_consent_question_is_not_a_refusal(chat: Chat) -> None:
    await chat.send("小王", "疫苗提醒")
    out = await chat.send("小王", "东门垃圾桶满了没人清")
    told = "\n".join(chat.to(out, "小王"))
    assert "没有保存任何信息" in told and "#1" in told and "张伟" in told
    assert await count(chat, Consent) == 0


async def test_a_command_while_we_ask_where_is_done_and_says_what_became_of_the_question(chat: Chat) -> None:
    await chat.send("小王", "有个地方积水很多全是蚊子")
    out = await chat.send("小王", "我的")
    told = chat.to(out, "小王")
    assert any("#1" in t and "分拣" in t for t in told)
    assert any("您反映的问题" in t for t in told)
    assert (await case(chat, 1)).in_triage
    # The next message is read on its own, not as the location.
    await chat.send("小王", "东门")
    assert len(await cases(chat)) == 1


async def test_a_staff_command_of_another_feature_closes_the_staff_question(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    out = await chat.send("chen", "完成 1")
    assert any("处理说明" in t for t in chat.to(out, "chen"))
    out = await chat.send("chen", "广播 全体 明天上午停水")
    told = "\n".join(chat.to(out, "chen"))
    assert "广播草稿" in told and "#1 还没有填写处理说明" in told
    await chat.send("chen", "好的谢谢")  # not the note any more
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED
    assert (await case(chat, 1)).resolution_note is None


# -- 7. staff words from a resident -------------------------------------------------------------------

STAFF_WORDS = [
    "接单 1",
    "处理中 1",
    "完成 1 好了",
    "转派 1 wang",
    "转网格 1 G2",
    "转交 1 城管执法中队",
    "重复 1 2",
    "无效 1 乱报",
    "重开 1",
    "待分拣",
    "分派 1 zhao",
    "拉黑 1",
    "解除拉黑 1",
    "邀请 zhang",
    "统计",
    "任务",
    "广播 明天停水",
    "广播 G1 明天停水",
    "确认发送 1",
    "确认发送",
    "定时发送 1 2026-12-01 09:00",
    "取消广播 1",
    "批准 1",
    "广播列表",
    "/assign 1 zhao",
    "/broadcast 明天停水",
]


async def test_every_staff_command_from_a_resident_gets_staff_only_and_the_question_stays(chat: Chat) -> None:
    await chat.send("小王", "这里的垃圾桶满了好几天没人清")
    for words in STAFF_WORDS:
        out = await chat.send("小王", words)
        assert chat.to(out, "小王") == [
            "这个指令仅供社区工作人员使用。如需反映问题，请直接描述问题和位置。"
        ], words
        assert [m for m in out if m.recipient != "小王"] == [], words
    only = await cases(chat)
    assert len(only) == 1 and only[0].status == CaseStatus.NEW and not only[0].in_triage
    assert await count(chat, Broadcast) == 0
    # The question is still open: the next answer places the case.
    await chat.send("小王", "东门")
    assert (await case(chat, 1)).assignee_id == "zhang"


async def test_a_residents_broadcast_is_no_case_and_the_next_assign_is_not_its_location(chat: Chat) -> None:
    out = await chat.send("小王", "广播 明天停水")
    assert any("仅供社区工作人员" in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "分派 3 zhao")
    assert any("仅供社区工作人员" in t for t in chat.to(out, "小王"))
    assert await cases(chat) == []
    # A report that merely begins with 广播 is still a report.
    await chat.send("小王", "广播站旁边垃圾很多")
    assert len(await cases(chat)) == 1


# -- 6. 取消 cancels what it says ----------------------------------------------------------------------


async def test_cancel_during_the_location_question_withdraws_the_case(chat: Chat) -> None:
    await chat.send("小王", "这里的垃圾桶满了好几天没人清")
    out = await chat.send("小王", "取消")
    assert any("已撤回" in t and "#1" in t for t in chat.to(out, "小王"))
    withdrawn = await case(chat, 1)
    assert (withdrawn.status, withdrawn.close_reason, withdrawn.in_triage) == (
        CaseStatus.CLOSED,
        "withdrawn",
        False,
    )
    assert ("withdrawn", "resident") in await actions(chat, 1)
    # Nothing wakes it later: no triage, no case number told to anyone.
    chat.clock.advance(hours=2)
    await deadlines.scan(chat.services)
    assert await chat.flush() == []
    assert not (await case(chat, 1)).in_triage


async def test_cancel_during_the_duplicate_offer_withdraws_the_new_report(chat: Chat) -> None:
    await chat.send("小李", "3号楼楼道里贴满了小广告")
    out = await chat.send("小王", "3号楼小广告又贴满了")
    assert any("已有人反映" in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "取消")
    assert any("已撤回" in t and "#2" in t for t in chat.to(out, "小王"))
    assert (await case(chat, 2)).close_reason == "withdrawn"
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED


async def test_cancel_with_nothing_pending_says_so(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    out = await chat.send("小王", "取消")
    assert any("没有需要取消" in t for t in chat.to(out, "小王"))
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED
    out = await chat.send("zhang", "取消")
    assert any("没有需要取消" in t for t in chat.to(out, "zhang"))


async def test_cancel_the_reason_keeps_the_case_resolved_and_says_how_to_rate(chat: Chat) -> None:
    await resolved_and_rated_bad(chat)
    out = await chat.send("小王", "取消")
    assert any("仍为“已处理”" in t for t in chat.to(out, "小王"))
    assert (await case(chat, 1)).status == CaseStatus.RESOLVED


async def test_cancel_after_a_broadcast_draft_cancels_the_draft(chat: Chat) -> None:
    await chat.send("小王", "你好")
    out = await chat.send("chen", "广播 全体 明天上午停水")
    assert any("广播草稿 #1" in t for t in chat.to(out, "chen"))
    out = await chat.send("chen", "取消")
    assert any("广播 #1 已取消" in t for t in chat.to(out, "chen"))
    async with chat.services.sessions() as session:
        assert (await session.get_one(Broadcast, 1)).status == BroadcastStatus.CANCELLED
    # Nothing is left to confirm.
    out = await chat.send("chen", "确认发送")
    assert any("请写明广播编号" in t for t in chat.to(out, "chen"))


async def test_cancel_with_two_drafts_cancels_the_latest_and_names_the_other(chat: Chat) -> None:
    await chat.send("小王", "你好")  # a draft needs someone to reach
    await chat.send("chen", "广播 全体 通知一")
    await chat.send("chen", "广播 全体 通知二")
    out = await chat.send("chen", "取消")
    told = "\n".join(chat.to(out, "chen"))
    assert "广播 #2 已取消" in told and "#1 仍未发送" in told


async def test_cancel_during_a_staff_step_leaves_the_case_as_it_was(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("zhang", "完成 1")
    out = await chat.send("zhang", "取消")
    assert any("#1 保持原状" in t for t in chat.to(out, "zhang"))
    await chat.send("zhang", "已经清理")
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED


async def test_saying_where_one_lives_while_asked_where_is_the_answer_not_a_new_home(chat: Chat) -> None:
    from storage.models import Resident

    await chat.send("小王", "这里的垃圾桶满了好几天没人清")
    await chat.send("小王", "我住3号楼")
    assert (await case(chat, 1)).building == "3"
    async with chat.services.sessions() as session:
        resident = await session.get_one(Resident, 1)
    assert resident.home_grid is None


# -- follow-up to #12/#13: a danger or an "other" problem while asked where is its own report ----------


@pytest.mark.parametrize(
    ("pending", "danger", "kind"),
    [
        ("楼下垃圾好多", "15号楼煤气味很重好像漏气了", "燃气"),
        ("楼道里有蟑螂", "5号楼电梯里有人被困住了", "电梯"),
        ("我家楼上漏水了", "六号楼的天台上好像有块广告牌快要掉下来了很危险", "紧急"),
    ],
)
async def test_a_danger_while_asked_where_is_its_own_urgent_case(
    chat: Chat, pending: str, danger: str, kind: str
) -> None:
    out = await chat.send("小李", pending)
    assert any("哪里" in t for t in chat.to(out, "小李"))
    out = await chat.send("小李", danger)
    first, second = await cases(chat)
    assert second.urgent and second.text == danger
    assert not first.urgent and first.location_text is None and first.in_triage
    told = "\n".join(chat.to(out, "小李"))
    assert f"#{second.id}" in told and "紧急" in told
    assert any("【紧急】" in t and f"#{second.id}" in t for t in chat.to(out, "chen"))


async def test_an_other_problem_while_asked_where_is_its_own_case(chat: Chat) -> None:
    await chat.send("小李", "楼下垃圾好多")
    out = await chat.send("小李", "小区门口的路灯坏了好几天了")
    first, second = await cases(chat)
    assert second.category_code == "other" and second.text == "小区门口的路灯坏了好几天了"
    assert first.in_triage and first.location_text is None
    assert any(f"#{second.id}" in t for t in chat.to(out, "小李"))


@pytest.mark.parametrize("answer", ["3号楼东边", "在南门"])
async def test_a_bare_place_still_answers_where(chat: Chat, answer: str) -> None:
    await chat.send("小李", "楼下垃圾好多")
    await chat.send("小李", answer)
    only = await cases(chat)
    assert len(only) == 1 and only[0].location_text is not None and not only[0].in_triage


async def test_a_same_problem_answer_keeps_its_words_for_the_worker(chat: Chat) -> None:
    await chat.send("小李", "这里的垃圾桶满了")
    out = await chat.send("小李", "5号楼门口的垃圾桶，已经臭了三天了")
    only = await cases(chat)
    assert len(only) == 1 and only[0].building == "5"
    assert "已经臭了三天了" in only[0].text
    assert any("已经臭了三天了" in t for t in chat.to(out, only[0].assignee_id or ""))
