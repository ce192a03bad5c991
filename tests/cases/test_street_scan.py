"""A scan in a 街道 of two communities (tests/data/street/heping_street.yaml: HPL and JXY, each with its
own "3号楼"): the scan binds the community and the building, answers "which community?" and "where is
it?", a named community still wins, a scan elsewhere moves the resident, and codes of a community that
left the file, of a building removed or of another deployment are refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from handlers.community.scenes import SECRET_KEY, find_target, sign
from handlers.community.street import load_street
from handlers.feature_set import conversation
from handlers.kernel.token_store import shared_secret
from storage.models import Resident, ResidentIdentity
from tests.cases.test_street_chat import STREET_FILE, cases_of, chat, remembered, street
from tests.support.chat import Chat

__all__ = ["chat", "street"]


async def scene_in(chat: Chat, code: str, building: str | None = None, place: str | None = None) -> str:
    community = chat.services.street.get(code)
    assert community is not None
    async with chat.services.sessions.begin() as session:
        secret = (await shared_secret(session, SECRET_KEY)).encode()
    target = find_target(community, building, place)
    assert target is not None
    return sign(secret, code, target)


async def home(chat: Chat, who: str) -> tuple[str | None, str | None]:
    async with chat.services.sessions() as session:
        identity = await session.get_one(ResidentIdentity, ("console", who))
        resident = await session.get_one(Resident, identity.resident_id)
    return resident.home_building, resident.home_grid


async def test_a_scan_binds_community_and_building_and_the_next_report_is_filed_there(chat: Chat) -> None:
    out = chat.to(await chat.send("小王", scene=await scene_in(chat, "HPL", "3")), "小王")
    assert len(out) == 1 and out[0].startswith("您好，这里是和平里社区3号楼")
    assert await remembered(chat, "小王") == "HPL" and await home(chat, "小王") == ("3号楼", "G1")
    out = chat.to(await chat.send("小王", "垃圾没人收"), "小王")
    assert not any("哪个社区" in t for t in out)  # never asked after a scan
    assert any("#HPL-1" in t for t in out)
    assert await cases_of(chat) == [("HPL", 1, "G1", "hzhang")]


async def test_a_scan_in_another_community_moves_the_resident(chat: Chat) -> None:
    await chat.send("小王", scene=await scene_in(chat, "HPL", "3"))
    out = chat.to(await chat.send("小王", scene=await scene_in(chat, "JXY", place="北门")), "小王")
    assert out[0].startswith("您好，这里是锦绣园社区北门")
    assert await remembered(chat, "小王") == "JXY" and await home(chat, "小王") == ("北门", "G1")
    await chat.send("小王", "垃圾没人收")
    assert await cases_of(chat) == [("JXY", 1, "G1", "jwang")]


async def test_a_report_naming_another_community_wins_and_drops_the_old_home(chat: Chat) -> None:
    await chat.send("小王", scene=await scene_in(chat, "HPL", "3"))
    out = chat.to(await chat.send("小王", "锦绣园那边垃圾没人收"), "小王")
    assert any("#JXY-1" in t for t in out)
    assert await remembered(chat, "小王") == "JXY"
    assert await home(chat, "小王") == (None, None)  # HPL's 3号楼 is not JXY's
    assert (await cases_of(chat))[0][:3] == ("JXY", 1, None)  # asked where, not placed at JXY's 3号楼
    await chat.send("小王", "5号楼")  # the answer is JXY's 5号楼
    assert await cases_of(chat) == [("JXY", 1, "G1", "jwang")]


async def test_a_scan_answers_the_community_question(chat: Chat) -> None:
    out = chat.to(await chat.send("小赵", "垃圾没人收"), "小赵")
    assert any("哪个社区" in t for t in out)
    assert await cases_of(chat) == []
    out = chat.to(await chat.send("小赵", scene=await scene_in(chat, "JXY", "3")), "小赵")
    assert out[0].startswith("您好，这里是锦绣园社区3号楼")
    assert any("#JXY-1" in t for t in out)  # the waiting report, filed at the scanned building
    assert await cases_of(chat) == [("JXY", 1, "G1", "jwang")]
    out = chat.to(await chat.send("小赵", "1"), "小赵")  # the question is gone: "1" answers nothing
    assert not any("JXY-2" in t or "HPL" in t for t in out)


async def test_a_scan_answers_where_is_it_with_the_scanned_building(chat: Chat) -> None:
    await chat.send("小钱", "换小区 和平里")
    out = chat.to(await chat.send("小钱", "楼道里贴满了小广告"), "小钱")
    assert any("#HPL-1" in t for t in out)
    assert (await cases_of(chat))[0][2] is None  # asked where
    out = chat.to(await chat.send("小钱", scene=await scene_in(chat, "HPL", "3")), "小钱")
    assert out[0].startswith("您好，这里是和平里社区3号楼") and len(out) >= 2
    assert await cases_of(chat) == [("HPL", 1, "G1", "hzhang")]


async def test_a_scan_of_another_community_leaves_where_is_it_waiting(chat: Chat) -> None:
    await chat.send("小钱", "换小区 和平里")
    await chat.send("小钱", "楼道里贴满了小广告")
    out = chat.to(await chat.send("小钱", scene=await scene_in(chat, "JXY", "3")), "小钱")
    assert out[0].startswith("您好，这里是锦绣园社区3号楼") and "还在等您回答" in out[-1]
    assert (await cases_of(chat))[0][:3] == ("HPL", 1, None)  # not placed at JXY's 3号楼, not triaged


async def test_codes_of_a_community_gone_of_a_building_removed_or_another_deployment(
    chat: Chat, tmp_path: Path
) -> None:
    jxy = await scene_in(chat, "JXY", "3")
    hpl6 = await scene_in(chat, "HPL", "6")
    hpl = chat.services.street.get("HPL")
    assert hpl is not None
    other = sign(b"another deployment's secret", "HPL", find_target(hpl, "3"))  # type: ignore[arg-type]
    # the 街道 file now lists HPL and a new community; JXY has left it and HPL's 6号楼 is gone
    text = STREET_FILE.read_text(encoding="utf-8").replace('"1-6"', '"1-5"')
    text = text.replace("code: JXY", "code: XXY").replace("file: jinxiu.yaml", "file: xin.yaml")
    (tmp_path / "street.yaml").write_text(text, encoding="utf-8")
    xin = (STREET_FILE.parent / "jinxiu.yaml").read_text(encoding="utf-8")
    (tmp_path / "xin.yaml").write_text(xin.replace("锦绣园", "新星苑"), encoding="utf-8")
    smaller = load_street(tmp_path / "street.yaml")
    services = replace(chat.services, street=smaller, community=smaller.communities[0])
    chat.services, chat.conversation = services, conversation(services)
    for scene, words in [(jxy, "不属于"), (hpl6, "已失效"), (other, "无法识别")]:
        out = chat.to(await chat.send("小孙", scene=scene), "小孙")
        assert len(out) == 1 and words in out[0], (words, out)
    assert await home(chat, "小孙") == (None, None)
    assert await remembered(chat, "小孙") is None
