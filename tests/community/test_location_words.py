"""Buildings and places the way residents abroad, tenants and voice input write them: whole numbers in
pinyin ("er shi san hao lou" is 23, never 3) and English words ("building twenty-three"), English names
of the community's places ("the basketball court", "north gate"); a number read only in part locates
nothing. Unit tests on tests/data's own community, then chat transcripts and the route CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import Case
from handlers.community.location import GridArea, Locator, cn_number, find_buildings
from handlers.community.model import Community, load_community
from tests.support.chat import Chat, Clock, chat_in
from tests.support.cli import lines, run

OWN = Path(__file__).parents[1] / "data" / "route_community.yaml"
LOCATOR = load_community(OWN).locator


@pytest.mark.parametrize(
    ("text", "building", "grid"),
    [
        ("er shi san hao lou la ji dui man le", "23", "S2"),
        ("ershisan hao lou men kou la ji", "23", "S2"),
        ("Er Shi San Hao Lou", "23", "S2"),
        ("shi si hao lou lou dao li you lao shu", "14", "S2"),
        ("shi hao lou la ji", "10", "N1"),
        ("san shi wu hao lou xia shui dao du le", "35", "W3"),
        ("si shi hao lou", "40", "W3"),
        ("er shi yi hao dong", "21", "S2"),
        ("san hao lou la ji", "3", "N1"),
        ("zhe shi san hao lou de la ji", "3", "N1"),  # 这是三号楼: shi is 是 after zhe
        ("zhe shi san shi hao lou", "30", "W3"),
        ("23 hao lou", "23", "S2"),
        ("twenty three hao lou la ji", "23", "S2"),
        ("er shi san dong lou xia", "23", "S2"),
        ("di yi dong lou", "1", "N1"),
        ("jiu shi san hao lou de la ji", "3", "N1"),  # 就是三号楼
        ("building-12 stairwell ads", "12", "N1"),
        ("Bld. 23 garbage", "23", "S2"),
        ("Building 23's trash bins are full", "23", "S2"),
        ("building twenty-three garbage", "23", "S2"),
        ("building twenty three has rats", "23", "S2"),
        ("Building Fourteen", "14", "S2"),
        ("twenty-three building has rubbish", "23", "S2"),
        ("no. twenty three building", "23", "S2"),
        ("the twenty-third building", "23", "S2"),
        ("the third building", "3", "N1"),
        ("building thirty-nine", "39", "W3"),
        ("building 23", "23", "S2"),
        ("no. 23 building", "23", "S2"),
        ("building no. 23", "23", "S2"),
        ("building #23", "23", "S2"),
        ("#23 building", "23", "S2"),
        ("Bldg no.36", "36", "W3"),
        # the Chinese forms keep working
        ("十四号楼楼道堆满杂物", "14", "S2"),
        ("二十三号楼门口", "23", "S2"),
        ("三十栋地下室", "30", "W3"),
        ("3#楼下垃圾", "3", "N1"),
        ("3#", "3", "N1"),
        ("5號樓下水道", "5", "N1"),
        ("c座电梯口", "C", "W3"),
        ("B座大堂", "B", "S2"),
        ("2-1-502门口", "2", "N1"),
        ("第二十六栋楼下", "26", "W3"),
    ],
)
def test_whole_building_numbers_in_pinyin_english_and_chinese(text: str, building: str, grid: str) -> None:
    found = LOCATOR.locate(text)
    assert found is not None and (found.building, found.grid) == (building, grid), found


@pytest.mark.parametrize(
    "text",
    [
        "yi bai er hao lou la ji",  # 一百二: 120 or 102, not said
        "one building has rats",  # a count
        "twenty buildings",
        "the 23rd floor",
        "floor twenty three",
        "apartment 23",
        "room 23",
        "#23 rubbish",
        "er shi san lou",  # 23楼: a floor
        "si lao shu",  # 死老鼠
        "you yi dong lou",  # 有一栋楼: a count
        "yi jing san tian le",  # 已经三天了
        "一百三号楼",
    ],
)
def test_numbers_read_in_part_or_not_naming_a_building_locate_nothing(text: str) -> None:
    assert find_buildings(text) == []
    assert LOCATOR.locate(text) is None


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("二十三", 23), ("十四", 14), ("一百零二", 102), ("一百二十", 120), ("一〇", 10), ("一千零二", 1002)],
)
def test_chinese_numerals_are_read_whole(numeral: str, value: int) -> None:
    assert cn_number(numeral) == value


@pytest.mark.parametrize("numeral", ["一百二", "二三十", "百", "十十", "一百零二十"])
def test_what_is_no_whole_numeral_is_none(numeral: str) -> None:
    assert cn_number(numeral) is None


@pytest.mark.parametrize(
    ("text", "place", "grid"),
    [
        ("the basketball court has lots of garbage", "篮球场", "N1"),
        ("rats at the north gate", "北门", "N1"),
        ("Lots of flyers at the North-Gate", "北门", "N1"),
        ("north gates bins overflowing", "北门", "N1"),
        ("trash everywhere in the park", "滨河公园", "W3"),  # the only park
        ("the riverside park has dog poop", "滨河公园", "W3"),
        ("near the kindergarten there are many mosquitoes", "星星幼儿园", "S2"),
        ("stagnant water in the underground garage", "地下车库", "N1"),
        ("the swimming pool smells bad", "游泳池", "W3"),
        ("garbage near the property management office", "物业服务中心", "W3"),
        ("the tennis court is dirty", "网球场", "W3"),
        ("cockroaches in the senior center", "老年活动中心", "S2"),
        ("the parcel station has boxes everywhere", "快递驿站", "N1"),
        ("the central garden is full of litter", "中心花园", "S2"),
        ("South Gate rubbish bags", "南门", "S2"),
        ("在north gate有垃圾", "北门", "N1"),
        ("garbage in the garden", "中心花园", "S2"),  # the only place with 花园 in its name
    ],
)
def test_english_names_of_the_communitys_places(text: str, place: str, grid: str) -> None:
    found = LOCATOR.locate(text)
    assert found is not None and (found.place, found.grid, found.building) == (place, grid, None), found


@pytest.mark.parametrize(
    "text",
    [
        "parking is a mess",  # "park" is not in "parking"
        "people park on the grass",  # a verb, not the park
        "the courts have rats",  # 篮球场 or 网球场: not said
        "the market is dirty",  # this community has no market
        "garbage at the gate",  # which gate?
    ],
)
def test_english_words_that_point_at_no_single_place(text: str) -> None:
    assert LOCATOR.locate(text) is None


def test_an_english_name_fits_only_when_its_chinese_word_fits_one_place() -> None:
    two_parks = Locator(
        [GridArea.from_config("G1", [], ["东湖公园"]), GridArea.from_config("G2", [], ["西山公园"])]
    )
    assert two_parks.locate("trash in the park") is None
    one = Locator(
        [GridArea.from_config("G1", [], ["东湖公园", "北门"]), GridArea.from_config("G2", [], ["篮球场"])]
    )
    found = one.locate("the park near the north gate")
    assert found is not None and (found.place, found.grid) == ("东湖公园", "G1")


@pytest.mark.parametrize(
    ("text", "place", "grid"),
    [
        ("bei men you la ji", "北门", "N1"),
        ("beimen kou lao shu", "北门", "N1"),
        ("lan qiu chang la ji hen duo", "篮球场", "N1"),
        ("xing xing you er yuan men kou ji shui", "星星幼儿园", "S2"),
        ("you er yuan men kou ji shui", "星星幼儿园", "S2"),  # an everyday name of three characters
        ("di xia che ku wu shui", "地下车库", "N1"),
        ("wu ye ban men kou la ji", "物业服务中心", "W3"),  # the community's alias 物业办
    ],
)
def test_places_named_in_toneless_pinyin(text: str, place: str, grid: str) -> None:
    found = LOCATOR.locate(text)
    assert found is not None and (found.place, found.grid) == (place, grid), found


@pytest.mark.parametrize("text", ["wo shi chang kan dao la ji", "wu ye hen chao", "gong yuan li la ji"])
def test_two_syllables_that_are_also_common_words_are_no_place(text: str) -> None:
    # 时常 is not 市场; 午夜 is not the alias 物业; 公园 is an everyday name of two characters
    assert LOCATOR.locate(text) is None


def test_an_english_name_fits_a_place_that_has_its_word_inside() -> None:
    locator = Locator(
        [
            GridArea.from_config("A", [], ["小区北门", "物业办公室", "健身器材区"]),
            GridArea.from_config("B", [], ["南门停车场", "儿童游乐区"]),
        ]
    )
    for text, place in [
        ("rats at the north gate", "小区北门"),
        ("the property office door has flyers", "物业办公室"),
        ("the fitness equipment is dirty", "健身器材区"),
        ("the parking lot is flooded", "南门停车场"),
        ("the playground has dog poop", "儿童游乐区"),
    ]:
        found = locator.locate(text)
        assert found is not None and found.place == place, text


def test_the_earliest_mention_wins_in_english_too() -> None:
    found = LOCATOR.locate("people park their cars on the grass near building 5")
    assert found is not None and found.building == "5"
    found = LOCATOR.locate("building 30, next to the north gate")
    assert found is not None and (found.building, found.grid) == ("30", "W3")


# -------------------------------------------------------------------------- from the resident's side


@pytest.fixture(scope="module")
def own() -> Community:
    return load_community(OWN)


@pytest.fixture
async def own_chat(sessions: async_sessionmaker[AsyncSession], own: Community, clock: Clock) -> Chat:
    return await chat_in(sessions, own, clock)


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_english_place_routes_the_report_to_that_grid(own_chat: Chat) -> None:
    out = await own_chat.send("tom", "the basketball court has lots of garbage")
    stored = await case(own_chat, 1)
    assert (stored.place, stored.grid_code, stored.assignee_id) == ("篮球场", "N1", "lin")
    assert any("#1" in t for t in own_chat.to(out, "lin"))


async def test_pinyin_building_number_is_read_whole_in_the_chat(own_chat: Chat) -> None:
    out = await own_chat.send("xiaoli", "er shi san hao lou la ji dui man le")
    stored = await case(own_chat, 1)
    assert (stored.building, stored.grid_code, stored.assignee_id) == ("23", "S2", "he")
    assert any("#1" in t for t in own_chat.to(out, "he")) and own_chat.to(out, "lin") == []


def test_route_cli_reads_english_and_pinyin_locations() -> None:
    messages = [
        "near the kindergarten there are many mosquitoes",
        "er shi san hao lou la ji dui man le",
        "building twenty-three garbage not collected",
        "rats running around at the north gate",
        "yi bai er hao lou la ji",
    ]
    out = lines(run(["route", "--config", str(OWN)], "\n".join(messages) + "\n"))
    assert [(o["category"], o["grid"], o["assignee"]) for o in out] == [
        ("mosquito", "S2", "he"),
        ("garbage", "S2", "he"),
        ("garbage", "S2", "he"),
        ("pests", "N1", "guo"),
        ("garbage", None, None),
    ]
