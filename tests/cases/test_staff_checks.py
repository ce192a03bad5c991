"""Staff commands from the staff's side (follow-up to issue #12/#13): a finished case is not silently
reactivated by 转派, unrelated cases are not merged, and "admins only" says who may. Transcripts
through the real ``Conversation`` on SQLite and PostgreSQL."""

from __future__ import annotations

from handlers.cases.models import Case, CaseStatus
from tests.support.chat import Chat


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_a_resolved_case_cannot_be_transferred_and_stays_resolved(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("zhang", "完成 1 已清理干净")
    out = await chat.send("zhang", "转派 1 wang")
    reply = "\n".join(chat.to(out, "zhang"))
    assert "#1" in reply and "已处理" in reply and "重开" in reply
    assert not chat.to(out, "wang")
    after = await case(chat, 1)
    assert after.status == CaseStatus.RESOLVED and after.assignee_id == "zhang"
    out = await chat.send("chen", "分派 1 zhao")
    assert "重开" in "\n".join(chat.to(out, "chen"))
    assert (await case(chat, 1)).status == CaseStatus.RESOLVED


async def test_an_open_case_can_still_be_transferred(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    out = await chat.send("zhang", "转派 1 wang")
    assert (await case(chat, 1)).assignee_id == "wang" and chat.to(out, "wang")


async def test_merging_cases_of_different_categories_is_refused(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("小李", "10号楼下水道堵了")
    out = await chat.send("chen", "重复 2 1")
    reply = "\n".join(chat.to(out, "chen"))
    assert "类别不同" in reply and "改类" in reply
    second = await case(chat, 2)
    assert second.duplicate_of is None and second.status != CaseStatus.CLOSED
    assert not chat.to(out, "小李")


async def test_merging_cases_in_different_places_warns(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("小李", "10号楼楼道里贴满了小广告")
    out = await chat.send("chen", "重复 2 1")
    reply = "\n".join(chat.to(out, "chen"))
    assert "合并" in reply and "位置不同" in reply and "10号楼" in reply and "3号楼" in reply
    assert (await case(chat, 2)).duplicate_of == 1


async def test_admin_only_commands_name_who_may_use_them(chat: Chat) -> None:
    out = await chat.send("li", "待分拣")
    reply = "\n".join(chat.to(out, "li"))
    assert "仅限社区管理员" in reply and "网格长" not in reply.split("使用")[0]
    out = await chat.send("chen", "待分拣")
    assert "仅限" not in "\n".join(chat.to(out, "chen"))


async def test_after_reclassify_the_worker_it_was_taken_from_is_told(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    assert (await case(chat, 1)).assignee_id == "zhang"
    out = await chat.send("chen", "改类 1 积水")
    assert (await case(chat, 1)).assignee_id == "wang"
    told = "\n".join(chat.to(out, "zhang"))
    assert "#1" in told and "王芳" in told and "无需再处理" in told
    assert any("#1" in t for t in chat.to(out, "wang"))


async def test_a_worker_transferring_their_own_case_is_not_told_twice(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    out = await chat.send("zhang", "转派 1 wang")
    assert not any("无需再处理" in t for t in chat.to(out, "zhang"))


async def test_an_invalid_case_notice_gives_the_reason_as_a_reason(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    out = await chat.send("zhang", "无效 1 现场查看没有小广告")
    told = "\n".join(chat.to(out, "小王"))
    assert "已关闭。原因：现场查看没有小广告" in told
