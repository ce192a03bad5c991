"""What people see of a case and of the bot (issue #12 points 10 and 11).

Text is stored and shown exactly as written (full-width punctuation kept; folding is for matching
only); a reopened case no longer shows its old resolution note; 查看 offers only the actions valid in
the case's state for this staff member; each role's 帮助 lists what that role may do; a vaccination
question points to the clinic and to the reminder feature. Kernel transcripts on SQLite and
PostgreSQL, and the command line as a user runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.cases.models import Case, CaseEvent, CaseStatus
from handlers.kernel.inbound import Inbound
from tests.support.chat import Chat
from tests.support.cli import lines, run

WRITTEN = "３号楼楼道里贴满了小广告！（很多，还有“办证”的电话）"
NOTE = "已清理干净，共撕下２０张；谢谢！"


async def get_case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


def buttons(out: list, who: str) -> list[str]:  # type: ignore[type-arg]
    found = [m.payload.get("buttons") or [] for m in out if m.recipient == who]
    return [b["action"].split(":")[0] for b in found[-1]] if found else []


# -- 10. as written ---------------------------------------------------------------------------------


async def test_case_text_and_note_are_stored_and_shown_as_written(chat: Chat) -> None:
    out = await chat.send("小王", WRITTEN)
    stored = await get_case(chat, 1)
    assert stored.text == WRITTEN and stored.building == "3" and stored.assignee_id == "zhang"
    assert any(WRITTEN in t for t in chat.to(out, "zhang"))
    # Commands typed with full-width digits and colons still work; the note keeps its punctuation.
    await chat.send("zhang", "接单 １")
    out = await chat.send("zhang", f"完成 １：{NOTE}")
    assert (await get_case(chat, 1)).resolution_note == NOTE
    assert any(NOTE in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "查询 １")
    detail = chat.to(out, "小王")[0]
    assert WRITTEN in detail and NOTE in detail
    # A rating typed full-width is read as the digit it is.
    await chat.send("小王", "２")
    out = await chat.send("小王", "还有一张没撕！")
    assert any("重新交给" in t for t in chat.to(out, "小王"))
    assert (await get_case(chat, 1)).status == CaseStatus.ASSIGNED


async def test_a_reason_and_a_note_asked_for_are_kept_as_written(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("zhang", "完成 1")
    await chat.send("zhang", NOTE)
    assert (await get_case(chat, 1)).resolution_note == NOTE
    await chat.send("小王", "2")
    reason = "楼梯上还有！（３楼到５楼）"
    out = await chat.send("小王", reason)
    assert any(reason in t for t in chat.to(out, "zhang"))
    async with chat.services.sessions() as session:
        note = await session.scalar(select(CaseEvent.note).where(CaseEvent.action == "reopened"))
    assert note == reason


def test_tickets_export_keeps_what_people_wrote(tmp_path: Path) -> None:
    env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'written.db'}"}
    demo = run(["demo"], f"{WRITTEN}\n/as zhang\n接单 １\n完成 １ {NOTE}\n", env=env)
    assert demo.returncode == 0, demo.stderr.decode()
    (ticket,) = lines(run(["tickets"], env=env))
    assert ticket["text"] == WRITTEN and ticket["resolution_note"] == NOTE
    csv_out = run(["tickets", "--format", "csv"], env=env).stdout.decode("utf-8")
    assert "！（很多，还有“办证”的电话）" in csv_out


# -- 11. a reopened case, state-valid actions, help, vaccination question ----------------------------


async def test_a_reopened_case_no_longer_shows_the_old_resolution_note(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("zhang", "完成 1 已清理干净")
    await chat.send("小王", "不满意 1 还是很多")
    reopened = await get_case(chat, 1)
    assert reopened.status == CaseStatus.ASSIGNED and reopened.resolution_note is None
    out = await chat.send("zhang", "查看 1")
    assert "已清理干净" not in chat.to(out, "zhang")[0]
    out = await chat.send("小王", "查询 1")
    assert "已清理干净" not in chat.to(out, "小王")[0]


def test_tickets_show_no_old_note_for_a_reopened_case(tmp_path: Path) -> None:
    env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'reopen.db'}"}
    script = "3号楼楼道里贴满了小广告\n/as zhang\n完成 1 已清理干净\n/as 小王\n不满意 1 还是很多\n"
    assert run(["demo"], script, env=env).returncode == 0
    (ticket,) = lines(run(["tickets"], env=env))
    assert ticket["status"] == "assigned" and not ticket["resolution_note"]


async def test_view_offers_only_the_actions_valid_now_for_this_staff_member(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    out = await chat.send("zhang", "查看 1")
    assert buttons(out, "zhang") == ["accept", "resolve", "transfer", "duplicate"]
    await chat.send("zhang", "接单 1")
    out = await chat.send("zhang", "查看 1")
    assert buttons(out, "zhang") == ["resolve", "transfer", "duplicate"]  # no 接单 once accepted
    out = await chat.send("chen", "查看 1")
    assert "accept" not in buttons(out, "chen")
    await chat.send("zhang", "完成 1 已清理")
    out = await chat.send("zhang", "查看 1")
    assert buttons(out, "zhang") == ["reopen"]
    await chat.send("小王", "满意")
    out = await chat.send("zhang", "查看 1")
    assert buttons(out, "zhang") == []
    # The reopen button does what 重开 does.
    await chat.send("小李", "5号楼有小广告")
    await chat.send("zhang", "无效 2 已核实没有")
    await chat.conversation.act(Inbound(channel="console", sender="zhang"), "reopen:2")
    await chat.flush()
    assert (await get_case(chat, 2)).status == CaseStatus.ASSIGNED


@pytest.mark.parametrize(
    ("who", "has", "lacks"),
    [
        ("chen", ("广播", "待分拣", "分派", "拉黑", "邀请"), ()),
        ("li", ("分派", "统计"), ("广播", "拉黑", "邀请", "待分拣")),
        ("zhang", ("接单", "完成", "转派"), ("广播", "分派", "拉黑", "统计", "待分拣")),
    ],
)
async def test_help_lists_what_the_role_may_do(
    chat: Chat, who: str, has: tuple[str, ...], lacks: tuple[str, ...]
) -> None:
    text = chat.to(await chat.send(who, "帮助"), who)[0]
    assert all(word in text for word in has), text
    assert not any(word in text for word in lacks), text


@pytest.mark.parametrize("question", ["打疫苗要带什么", "孩子接种需要带什么证件", "打预防针几点开门"])
async def test_a_vaccination_question_points_to_the_clinic_and_the_reminders(
    chat: Chat, question: str
) -> None:
    out = chat.to(await chat.send("小李", question), "小李")
    assert len(out) == 1
    assert "卫生服务站" in out[0] and "回复“疫苗提醒”" in out[0]
    assert "小广告" not in out[0]  # not the generic "we handle sanitation" answer
