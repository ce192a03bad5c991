"""Scanning a building's code through the core: greeting, binding, the next unlocated report placed
there, a named place winning, staff scans and bad codes (the channels' part: tests/channels)."""

from __future__ import annotations

from handlers.cases.models import Case
from handlers.community.scenes import SECRET_KEY, community_code, find_target, sign
from handlers.kernel.token_store import shared_secret
from storage.models import Resident
from tests.cases.test_category_question import unsure_chat
from tests.support.chat import Chat

__all__ = ["unsure_chat"]


async def scene_for(chat: Chat, building: str | None = None, place: str | None = None) -> str:
    async with chat.services.sessions.begin() as session:
        secret = (await shared_secret(session, SECRET_KEY)).encode()
    target = find_target(chat.services.community, building, place)
    assert target is not None
    return sign(secret, community_code(chat.services.community), target)


async def resident(chat: Chat, number: int = 1) -> Resident:
    async with chat.services.sessions() as session:
        return await session.get_one(Resident, number)


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_a_scan_greets_binds_and_places_the_next_unlocated_report(chat: Chat) -> None:
    scene = await scene_for(chat, "3")
    out = chat.to(await chat.send("小王", scene=scene), "小王")
    assert len(out) == 1 and out[0].startswith("您好，这里是幸福社区3号楼")
    who = await resident(chat)
    assert (who.home_building, who.home_grid) == ("3号楼", "G1")
    await chat.send("小王", "楼道里贴满了小广告")
    first = await case(chat, 1)
    assert (first.building, first.grid_code, first.assignee_id) == ("3", "G1", "zhang")
    await chat.send("小王", "10号楼门口垃圾没人清")  # a place named in the message wins
    second = await case(chat, 2)
    assert (second.building, second.grid_code) == ("10", "G2")


async def test_a_new_scan_changes_the_binding_and_a_place_code_works(chat: Chat) -> None:
    await chat.send("小王", scene=await scene_for(chat, "3"))
    out = chat.to(await chat.send("小王", scene=await scene_for(chat, place="南门")), "小王")
    assert "幸福社区南门" in out[0]
    assert (await resident(chat)).home_grid == "G2"
    await chat.send("小王", "这里积水好多蚊子")
    placed = await case(chat, 1)
    assert (placed.grid_code, placed.location_text) == ("G2", "南门")


async def test_without_a_scan_an_unlocated_report_is_still_asked_where(chat: Chat) -> None:
    out = chat.to(await chat.send("小王", "楼道里贴满了小广告"), "小王")
    assert any("在哪" in t or "位置" in t or "地点" in t for t in out)
    assert (await case(chat, 1)).grid_code is None


async def test_a_staff_scan_binds_nothing_and_is_no_error(chat: Chat) -> None:
    from handlers.kernel.binding import create_invite
    from storage.models import Resident as R

    async with chat.services.sessions.begin() as session:
        code = await create_invite(session, "zhang", chat.clock())
    await chat.send("张", f"绑定 {code}")
    out = chat.to(await chat.send("张", scene=await scene_for(chat, "3")), "张")
    assert len(out) == 1 and "3号楼" in out[0] and "不会改变" in out[0]
    async with chat.services.sessions() as session:
        assert await session.get(R, 1) is None or (await session.get_one(R, 1)).home_building is None


async def test_bad_forged_and_stale_codes_get_a_plain_answer_and_reports_still_work(chat: Chat) -> None:
    good = await scene_for(chat, "3")
    for scene, words in [
        ("hello", "无法识别"),
        (good[:-1] + ("A" if good[-1] != "A" else "B"), "无法识别"),
        ("x" * 300, "无法识别"),
        ("JXY" + good[len(community_code(chat.services.community)) :], "无法识别"),  # the code is signed too
    ]:
        out = chat.to(await chat.send("小王", scene=scene), "小王")
        assert len(out) == 1 and words in out[0] and "直接发文字" in out[0]
    assert (await resident(chat)).home_building is None
    out = chat.to(await chat.send("小王", "3号楼楼道里贴满了小广告"), "小王")
    assert (await case(chat, 1)).grid_code == "G1" and "#1" in out[0]


async def test_a_redelivered_scan_is_handled_once(chat: Chat) -> None:
    scene = await scene_for(chat, "3")
    first = await chat.send("小王", scene=scene, message_id="openid:1700000000:scan")
    again = await chat.send("小王", scene=scene, message_id="openid:1700000000:scan")
    assert len(chat.to(first, "小王")) == 1 and chat.to(again, "小王") == []


async def test_a_scan_while_the_category_question_waits_keeps_the_question(unsure_chat: Chat) -> None:
    chat = unsure_chat
    out = chat.to(await chat.send("小王", "3号楼后面那块地方又脏又臭"), "小王")
    assert "1. 垃圾/乱堆放" in out[0]
    out = chat.to(await chat.send("小王", scene=await scene_for(chat, "5")), "小王")
    assert out[0].startswith("您好，这里是幸福社区5号楼") and "还在等您回答" in out[-1]
    await chat.send("小王", "1")  # the question still answers: the report is not lost
    first = await case(chat, 1)
    assert (first.category_code, first.building, first.assignee_id) == ("garbage", "3", "zhang")
    await chat.send("小王", "楼道里贴满了小广告")  # the next one without a place: the scanned 5号楼
    assert (await case(chat, 2)).building == "5"


async def test_a_scan_answers_where_is_it(chat: Chat) -> None:
    out = chat.to(await chat.send("小王", "楼道里贴满了小广告"), "小王")
    assert (await case(chat, 1)).grid_code is None
    out = chat.to(await chat.send("小王", scene=await scene_for(chat, "3")), "小王")
    assert out[0].startswith("您好，这里是幸福社区3号楼") and len(out) == 2 and "#1" in out[1]
    placed = await case(chat, 1)
    assert (placed.building, placed.grid_code, placed.assignee_id) == ("3", "G1", "zhang")
