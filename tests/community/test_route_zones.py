"""Through the conversation on 梧桐里社区 (tests/data/route_community_2.yaml: phases with their own 3号楼,
A区, 紫荆苑, a building split between grids by unit): a resident's message reaches the worker of the
building it names, however the building is written; a number several zones have gets the location
question, and the answer "二期" settles it; a number no building has reaches no worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import Case
from handlers.community.model import Community, load_community
from tests.support.chat import Chat, Clock, chat_in
from tests.support.cli import lines, run

WUTONG = Path(__file__).parents[1] / "data" / "route_community_2.yaml"
WORKERS = ("zhou", "wu", "zheng", "pan", "yan", "song", "qin")


@pytest.fixture(scope="module")
def wutong() -> Community:
    return load_community(WUTONG)


@pytest.fixture
async def chat(sessions: async_sessionmaker[AsyncSession], wutong: Community, clock: Clock) -> Chat:
    return await chat_in(sessions, wutong, clock)


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


@pytest.mark.parametrize(
    ("text", "worker", "building"),
    [
        ("二期3号楼楼下垃圾堆了好几天", "wu", "二期3"),
        ("一期三号楼门口垃圾桶满了没人清", "zhou", "一期3"),
        ("3号楼（二期）的下水道堵了", "zheng", "二期3"),
        ("A区5号楼门口垃圾成堆", "pan", "A区5"),
        ("紫荆苑8号楼垃圾桶满了", "yan", "紫荆苑8"),
        ("15栋3单元楼下垃圾没人收", "qin", "15栋3单元"),
        ("15栋2单元门口垃圾堆着", "song", "15栋2单元"),
        ("幺幺号楼门口垃圾成堆", "zhou", "一期11"),
        ("廿二号楼下面垃圾一大堆", "song", "22"),
    ],
)
async def test_the_worker_of_the_building_named_gets_the_card(
    chat: Chat, text: str, worker: str, building: str
) -> None:
    out = await chat.send("小王", text)
    stored = await case(chat, 1)
    assert (stored.assignee_id, stored.building) == (worker, building)
    assert any("#1" in t for t in chat.to(out, worker))
    assert [w for w in WORKERS if w != worker and chat.to(out, w)] == []


async def test_a_place_by_its_everyday_name_reaches_its_grid(chat: Chat) -> None:
    out = await chat.send("小王", "菜市场门口垃圾堆成山")
    stored = await case(chat, 1)
    assert (stored.grid_code, stored.assignee_id, stored.place) == ("P1", "zhou", "梧桐农贸市场")
    assert any("#1" in t for t in chat.to(out, "zhou"))


async def test_a_number_two_phases_have_gets_the_location_question_then_the_answer_routes(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼楼下垃圾堆了好几天")
    assert any("哪里" in t for t in chat.to(out, "小王"))
    assert [w for w in WORKERS if chat.to(out, w)] == []  # no guess
    stored = await case(chat, 1)
    assert stored.assignee_id is None and not stored.in_triage

    out = await chat.send("小王", "二期的")
    stored = await case(chat, 1)
    assert (stored.grid_code, stored.building, stored.assignee_id) == ("P2", "二期3", "wu")
    assert any("#1" in t for t in chat.to(out, "wu"))
    assert [w for w in WORKERS if w != "wu" and chat.to(out, w)] == []


@pytest.mark.parametrize("text", ["13号楼楼下垃圾没人清", "一期13号楼下水道堵了", "25号楼门口垃圾堆了一周"])
async def test_a_number_no_building_has_reaches_no_worker(chat: Chat, text: str) -> None:
    out = await chat.send("小王", text)
    stored = await case(chat, 1)
    assert stored.assignee_id is None and stored.in_triage
    assert [w for w in WORKERS if chat.to(out, w)] == []
    assert any("待分拣" in t for t in chat.to(out, "bai"))


def test_config_check_accepts_the_compound_building_names() -> None:
    result = run(["config", "check", str(WUTONG)])
    assert result.returncode == 0, result.stderr.decode()


def test_route_cli_on_the_zoned_community() -> None:
    text = (
        "二期3号楼楼下垃圾\n3号楼楼下垃圾\n13号楼楼下垃圾\ner qi 3 hao lou la ji 垃圾\n15-1-302厨房蟑螂很多\n"
    )
    rows = lines(run(["route", "--config", str(WUTONG)], text))
    assert [(r["grid"], r["assignee"]) for r in rows] == [
        ("P2", "wu"),
        (None, None),
        (None, None),
        ("P2", "wu"),
        ("T5", "song"),
    ]
