"""Places and buildings the way residents name them: everyday names and parts of names, the community's
own aliases, traditional characters, building numbers in pinyin and English; and the numbers that are
never buildings (floors, rooms, dates, counts). Unit tests on the locator, then chat transcripts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.cases.models import Case
from handlers.community.location import GridArea, Locator, find_buildings
from handlers.community.model import CommunityConfigError, load_community, parse_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from tests.support.chat import Chat, Clock, RecordingSender

LOCATOR = Locator(
    [
        GridArea.from_config(
            "G1",
            ["1-6", "A座"],
            ["东门", "幸福路", "农贸市场", "北区停车场"],
            [("大菜场", "农贸市场"), ("东大门", "东门"), ("小区正门", "东门")],
        ),
        GridArea.from_config("G2", ["7-12"], ["阳光幼儿园", "老年活动室", "健身广场", "南区垃圾站"]),
        GridArea.from_config("G3", ["13-20", "C座"], ["社区卫生服务站", "和平街", "星光小学", "公厕"]),
    ]
)


@pytest.mark.parametrize(
    ("text", "place", "grid"),
    [
        # everyday names of a place listed under its full name
        ("菜市场门口垃圾好多", "农贸市场", "G1"),
        ("菜场旁边老鼠窜来窜去", "农贸市场", "G1"),
        ("去市场的路上全是小广告", "农贸市场", "G1"),
        ("集市散了以后满地垃圾", "农贸市场", "G1"),
        ("幼儿园门口有积水", "阳光幼儿园", "G2"),
        ("幼稚园旁边的垃圾没人清", "阳光幼儿园", "G2"),
        ("托儿所后面有老鼠", "阳光幼儿园", "G2"),
        ("活动中心门口贴满小广告", "老年活动室", "G2"),
        ("老年活动中心里面蟑螂很多", "老年活动室", "G2"),
        ("活动室外面下水道堵了", "老年活动室", "G2"),
        ("老年之家门口积水", "老年活动室", "G2"),
        ("卫生站旁边下水道堵了", "社区卫生服务站", "G3"),
        ("社区医院门口垃圾", "社区卫生服务站", "G3"),
        ("学校门口好多小广告", "星光小学", "G3"),
        ("小学围墙上乱贴广告", "星光小学", "G3"),
        ("垃圾房满了好臭", "南区垃圾站", "G2"),
        ("垃圾中转站苍蝇很多", "南区垃圾站", "G2"),
        ("停车场积水好多蚊子", "北区停车场", "G1"),
        ("公共厕所堵了", "公厕", "G3"),
        ("厕所门口污水横流", "公厕", "G3"),
        ("广场上全是垃圾", "健身广场", "G2"),
        # parts of the name
        ("卫生服务站后面有死老鼠", "社区卫生服务站", "G3"),
        ("服务站门口积水", "社区卫生服务站", "G3"),
        ("活动室门口", "老年活动室", "G2"),
        # the community's own aliases
        ("大菜场后面积水", "农贸市场", "G1"),
        ("东大门口垃圾堆着", "东门", "G1"),
        ("小区正门那边小广告", "东门", "G1"),
        # traditional characters
        ("東門有垃圾", "东门", "G1"),
        ("陽光幼兒園门口积水", "阳光幼儿园", "G2"),
        ("衛生服務站旁邊", "社区卫生服务站", "G3"),
        ("農貿市場裡面老鼠多", "农贸市场", "G1"),
        ("老年活動室门口", "老年活动室", "G2"),
        ("健身廣場上的垃圾", "健身广场", "G2"),
        ("公廁好臭", "公厕", "G3"),
    ],
)
def test_places_by_everyday_name_part_alias_or_traditional_characters(
    text: str, place: str, grid: str
) -> None:
    found = LOCATOR.locate(text)
    assert found is not None and (found.place, found.grid, found.building) == (place, grid, None)


def test_a_name_two_places_share_points_at_neither() -> None:
    two_markets = Locator(
        [
            GridArea.from_config("G1", [], ["农贸市场", "北幼儿园"]),
            GridArea.from_config("G2", [], ["菜市场", "南幼儿园"]),
        ]
    )
    assert two_markets.locate("菜场门口好脏") is None
    assert two_markets.locate("幼儿园门口积水") is None
    exact = two_markets.locate("菜市场门口好脏")  # the exact name still wins
    assert exact is not None and exact.place == "菜市场" and exact.grid == "G2"
    market = two_markets.locate("农贸市场门口好脏")
    assert market is not None and market.grid == "G1"


@pytest.mark.parametrize(
    "text", ["幸福社区的垃圾没人管", "小区门口好脏", "社区里老鼠多", "门口有垃圾", "路边积水"]
)
def test_common_words_are_no_place(text: str) -> None:
    assert LOCATOR.locate(text) is None


@pytest.mark.parametrize(
    ("text", "building", "grid"),
    [
        ("3 hao lou lou dao li you xiao guang gao", "3", "G1"),
        ("3hao lou men kou la ji", "3", "G1"),
        ("san hao lou lou dao", "3", "G1"),
        ("qi hao lou xia mian", "7", "G2"),
        ("shi hao lou", "10", "G2"),
        ("8 dong lou xia you lao shu", "8", "G2"),
        ("15 hao dong", "15", "G3"),
        ("building 3 stairwell is full of ads", "3", "G1"),
        ("Building 7 has rats", "7", "G2"),
        ("bldg 5 garbage", "5", "G1"),
        ("Bldg. 5 垃圾没人清", "5", "G1"),
        ("BLDG 12 water on the ground", "12", "G2"),
        ("Block 9 sewage", "9", "G2"),
        ("block A rubbish", "A", "G1"),
        ("tower C corridor", "C", "G3"),
        ("building A lobby", "A", "G1"),
        ("building no. 16", "16", "G3"),
        ("Building #4", "4", "G1"),
        ("No. 7 building, east side", "7", "G2"),
        ("No.15 building", "15", "G3"),
        ("#3 building", "3", "G1"),
        ("number 18 building", "18", "G3"),
        ("the 3rd building from the gate", "3", "G1"),
        ("the 12th building", "12", "G2"),
        ("2nd bldg", "2", "G1"),
    ],
)
def test_buildings_in_pinyin_and_english(text: str, building: str, grid: str) -> None:
    found = LOCATOR.locate(text)
    assert found is not None and (found.building, found.grid) == (building, grid)


@pytest.mark.parametrize(
    "text",
    [
        # floors
        "我住3楼，楼道里有垃圾",
        "3楼楼道好脏",
        "五楼的邻居乱扔垃圾",
        "住在12楼的张阿姨说有老鼠",
        "3层走廊",
        "5th floor corridor",
        "floor 3 is dirty",
        # rooms and units
        "301室门口堆了垃圾",
        "302房的下水道堵了",
        "1202室",
        "3单元门口",
        # dates and times
        "5月3号楼下有垃圾",
        "12月3号栋",
        "3号那天就报过",
        "下午3点以后",
        "周三号楼道里",
        "2024-3-15",
        # counts and other numbers
        "3个垃圾桶满了",
        "两栋楼之间",
        "好几栋楼",
        "有一栋楼",
        "3座桥",
        "3岁小孩",
        "3号线地铁口",
        "138-1234-5678",
        "2 buildings have garbage",
        "building a fence",
        "a building",
        "yi hao",
    ],
)
def test_floors_rooms_dates_and_counts_are_never_buildings(text: str) -> None:
    assert find_buildings(text) == []
    assert LOCATOR.locate(text) is None


@pytest.mark.parametrize(
    ("text", "building"),
    [
        ("我住3楼，5号楼门口垃圾没人清", "5"),
        ("5月3号，8号楼下垃圾", "8"),
        ("3个垃圾桶都在6栋门口", "6"),
        ("7号楼301室门口", "7"),
        ("3号楼3楼楼道", "3"),
        ("住12楼，但是是9栋的事", "9"),
        ("floor 3 of building 11", "11"),
    ],
)
def test_the_building_among_floors_dates_and_counts(text: str, building: str) -> None:
    found = LOCATOR.locate(text)
    assert found is not None and found.building == building


# -------------------------------------------------------------------------- from the resident's side


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_english_building_number_routes_the_report(chat: Chat) -> None:
    out = await chat.send("小王", "Bldg 5 楼道里贴满了小广告")
    stored = await case(chat, 1)
    assert (stored.building, stored.grid_code, stored.assignee_id) == ("5", "G1", "zhang")
    assert any("张伟" in t for t in chat.to(out, "小王"))


async def test_pinyin_building_routes_the_report(chat: Chat) -> None:
    await chat.send("小王", "9 hao lou 垃圾堆了好几天")
    stored = await case(chat, 1)
    assert (stored.building, stored.grid_code) == ("9", "G2")


async def test_everyday_place_name_routes_the_report(chat: Chat) -> None:
    await chat.send("小王", "停车场那边积水好多蚊子")
    stored = await case(chat, 1)
    assert (stored.place, stored.grid_code, stored.assignee_id) == ("北区停车场", "G1", "wang")


async def test_a_floor_is_not_a_building_so_the_bot_asks_where(chat: Chat) -> None:
    out = await chat.send("小李", "我住3楼，楼道里的垃圾好几天没人清")
    assert any("哪里" in t for t in chat.to(out, "小李"))
    assert (await case(chat, 1)).grid_code is None
    await chat.send("小李", "4号楼")
    stored = await case(chat, 1)
    assert (stored.building, stored.assignee_id) == ("4", "zhang")


async def test_a_date_is_not_a_building(chat: Chat) -> None:
    out = await chat.send("小李", "11月3号楼下的垃圾到现在还没清")
    assert any("哪里" in t for t in chat.to(out, "小李"))


async def test_place_aliases_from_the_community_file(services: Services, clock: Clock) -> None:
    data = load_community(None).config.model_dump(mode="json", exclude_defaults=True)
    data["grids"][2]["place_aliases"] = {"老菜场": "菜市场", "卫生院": "社区卫生服务站"}
    own = parse_community(data)
    chat_services = Services(services.sessions, own, services.channels, clock)
    chat = Chat(chat_services, conversation(chat_services), RecordingSender("console"), clock)
    await chat.send("小王", "老菜场门口的垃圾堆成山了")
    stored = await case(chat, 1)
    assert (stored.place, stored.grid_code, stored.assignee_id) == ("菜市场", "G3", "wu")
    async with chat.services.sessions() as session:
        assert (await session.scalars(select(Case.location_text))).all() == ["老菜场"]


def test_alias_of_an_unknown_place_is_a_config_problem() -> None:
    data = load_community(None).config.model_dump(mode="json", exclude_defaults=True)
    data["grids"][0]["place_aliases"] = {"菜场": "大市场"}
    with pytest.raises(CommunityConfigError) as error:
        parse_community(data)
    assert [p.key for p in error.value.problems] == ["grids[0].place_aliases.菜场"]
