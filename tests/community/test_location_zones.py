"""Buildings named the way real 小区 name them (二期3号楼, A区5号楼, 紫荆苑8号楼, 15栋2单元, 12幢): the
community file accepts them, messages find them however residents write them, a number several zones
have is no building until the resident says which, and a number no building has never matches
another by the end of its name. On tests/data/route_community_2.yaml (梧桐里社区) and small inline files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from handlers.community.building_spec import (
    BuildingSpecError,
    building_label,
    normalise_building,
    parse_building_spec,
)
from handlers.community.location import GridArea, Locator
from handlers.community.model import CommunityConfigError, load_community

WUTONG = Path(__file__).parents[1] / "data" / "route_community_2.yaml"


@pytest.fixture(scope="module")
def wutong() -> Locator:
    return load_community(WUTONG).locator


# --- the file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("二期3号楼", "二期3"),
        ("2期3栋", "二期3"),
        ("第二期3号楼", "二期3"),
        ("一期12栋", "一期12"),
        ("A区5号楼", "A区5"),
        ("a区5号楼", "A区5"),
        ("南区3号楼", "南区3"),
        ("紫荆苑8号楼", "紫荆苑8"),
        ("7栋2单元", "7栋2单元"),
        ("7号楼2单元", "7栋2单元"),
        ("12幢", "12"),
        ("B座", "B"),
        ("3号楼（二期）", "二期3"),
        ("二期B座", "二期B"),
        ("7栋2单元（二期）", "二期7栋2单元"),
    ],
)
def test_the_file_accepts_phased_and_compound_building_names(spec: str, key: str) -> None:
    assert normalise_building(spec) == key


def test_a_zone_range_covers_its_zone_only() -> None:
    grid = parse_building_spec("一期1-12号楼")
    assert grid.contains("一期7") and grid.contains("一期12")
    assert not grid.contains("7") and not grid.contains("二期7") and not grid.contains("一期13")


@pytest.mark.parametrize("spec", ["二期", "二期号楼", "1-6栋2单元", "A区", "二期3号楼（一期）", "7栋100单元"])
def test_malformed_compound_names_are_refused(spec: str) -> None:
    with pytest.raises(BuildingSpecError):
        parse_building_spec(spec)


def test_keys_read_back_as_building_names() -> None:
    assert [building_label(k) for k in ("3", "A", "二期3", "15栋2单元")] == [
        "3号楼",
        "A座",
        "二期3号楼",
        "15号楼2单元",
    ]


FILE = """
community: {{name: 测试社区}}
grids:
  - {{code: G1, name: 一网格, buildings: [{first}], leader: li}}
  - {{code: G2, name: 二网格, buildings: [{second}], leader: li}}
staff:
  - {{id: li, name: 李娜, role: leader}}
"""


def _problems(write_yaml: Callable[[str], Path], first: str, second: str) -> list[str]:
    with pytest.raises(CommunityConfigError) as info:
        load_community(write_yaml(FILE.format(first=first, second=second)))
    return [str(p) for p in info.value.problems]


def test_the_same_number_in_two_phases_is_two_buildings(write_yaml: Callable[[str], Path]) -> None:
    community = load_community(write_yaml(FILE.format(first='"一期1-12号楼"', second='"二期1-9号楼"')))
    assert community.locator.locate("一期3号楼有垃圾").grid == "G1"  # type: ignore[union-attr]
    assert community.locator.locate("二期3号楼有垃圾").grid == "G2"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ('"二期1-5号楼"', '"二期3号楼"', "二期3"),
        ('"15"', '"15栋2单元"', "15栋2单元"),
        ('"15栋2单元"', '"15号楼2单元"', "15栋2单元"),
        ('"紫荆苑8号楼"', '"紫荆苑1-8"', "紫荆苑8"),
    ],
)
def test_a_building_or_unit_in_two_grids_is_one_line_in_chinese(
    write_yaml: Callable[[str], Path], first: str, second: str, shared: str
) -> None:
    found = _problems(write_yaml, first, second)
    assert len(found) == 1 and "\n" not in found[0]
    assert found[0].startswith("grids[1].buildings") and shared in found[0] and "同时属于网格" in found[0]


def test_a_malformed_compound_name_is_one_line_in_chinese(write_yaml: Callable[[str], Path]) -> None:
    found = _problems(write_yaml, '"二期"', '"5"')
    assert len(found) == 1 and "\n" not in found[0]
    assert (
        found[0].startswith("grids[0].buildings[0]")
        and "楼栋写法不正确" in found[0]
        and "二期3号楼" in found[0]
    )


# --- messages: phases, zones, estates, units ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "building", "grid"),
    [
        ("二期3号楼楼下垃圾", "二期3", "P2"),
        ("二期三号楼有老鼠", "二期3", "P2"),
        ("2期3号楼垃圾", "二期3", "P2"),
        ("二期3栋门口", "二期3", "P2"),
        ("第二期三栋", "二期3", "P2"),
        ("二期的3号楼", "二期3", "P2"),
        ("3号楼（二期）垃圾", "二期3", "P2"),
        ("3号楼(二期)", "二期3", "P2"),
        ("二期 3号楼", "二期3", "P2"),
        ("二期叁号楼", None, None),  # 叁 is no numeral we read: never a guess
        ("er qi 3 hao lou la ji", "二期3", "P2"),
        ("erqi san hao lou", "二期3", "P2"),
        ("二期3號樓", "二期3", "P2"),
        ("我住二期，3号楼下面垃圾没人收", "二期3", "P2"),
        ("一期3号楼", "一期3", "P1"),
        ("1期三栋", "一期3", "P1"),
        ("A区5号楼", "A区5", "Q3"),
        ("a区五栋", "A区5", "Q3"),
        ("南区3号楼", "南区3", "S4"),
        ("nan qu 3 hao lou", "南区3", "S4"),
        ("紫荆苑8号楼", "紫荆苑8", "S4"),
        ("紫荆8号楼", "紫荆苑8", "S4"),
        ("zi jing yuan 8 hao lou", "紫荆苑8", "S4"),
        ("二期10幢门口", "二期10", "P2"),
        ("15栋2单元门口", "15栋2单元", "T5"),
        ("15号楼3单元", "15栋3单元", "T6"),
        ("15-1-302", "15栋1单元", "T5"),
        ("二期3号垃圾没人收", "二期3", "P2"),  # after a zone a bare 号 names the building (上海话 "二期3号")
        ("紫荆苑8号旁边", "紫荆苑8", "S4"),
        ("紫荆苑8号门", None, None),  # 8号门 is gate 8, no building
        ("二期3号401室门口", "二期3", "P2"),
        ("Phase 2 building 3 garbage", "二期3", "P2"),
        ("zone A building 5", "A区5", "Q3"),
        ("south area building 3", "南区3", "S4"),
        ("11号楼", "一期11", "P1"),  # only 一期 has an 11号楼
        ("31栋", "31", "T6"),
    ],
)
def test_a_zoned_building_is_found_however_written(
    wutong: Locator, text: str, building: str | None, grid: str | None
) -> None:
    found = wutong.locate(text)
    if building is None:
        assert found is None or found.grid is None, found
    else:
        assert found is not None and (found.building, found.grid) == (building, grid), found


@pytest.mark.parametrize(
    "text",
    ["3号楼楼下垃圾", "三栋有老鼠", "8号楼门口", "12幢门口垃圾", "15栋楼下", "2 hao lou la ji", "building 3"],
)
def test_a_number_several_zones_have_is_asked_about_never_guessed(wutong: Locator, text: str) -> None:
    assert wutong.locate(text) is None


def test_the_answer_names_the_zone_of_the_building_asked_about(wutong: Locator) -> None:
    found = wutong.locate_answer("二期的", "3号楼楼下垃圾堆了好几天")
    assert found is not None and (found.building, found.grid) == ("二期3", "P2")
    found = wutong.locate_answer("一期", "3号楼楼下垃圾堆了好几天")
    assert found is not None and (found.building, found.grid) == ("一期3", "P1")
    assert wutong.locate_answer("不知道", "3号楼楼下垃圾堆了好几天") is None
    found = wutong.locate_answer("B座", "3号楼楼下垃圾")
    assert found is not None and found.grid == "P2"


# --- a number no building has ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("13号楼楼下垃圾", "13"),
        ("25号楼门口", "25"),
        ("一期13号楼", "一期13"),
        ("二期12号楼", "二期12"),
        ("A区9号楼", "A区9"),
        ("紫荆苑9号楼", "紫荆苑9"),
        ("十三号楼", "13"),
        ("幺三号楼", "13"),
        ("廿五号楼", "25"),
        ("shi san hao lou", "13"),
    ],
)
def test_a_number_no_building_has_matches_no_other(wutong: Locator, text: str, key: str) -> None:
    found = wutong.locate(text)
    assert found is not None and (found.grid, found.building) == (None, key), found


@pytest.mark.parametrize(
    "text", ["101室门口垃圾", "3单元门口垃圾", "23层楼道垃圾", "住在12楼", "3号下午垃圾没人收"]
)
def test_rooms_units_floors_and_dates_are_no_buildings(wutong: Locator, text: str) -> None:
    assert wutong.locate(text) is None


def test_place_names_with_numbers_never_match_inside_a_number() -> None:
    """An evaluator's community listed phased buildings as places: "25号楼" was found as 5号楼 and
    "13号楼" as the tail of "二期13号楼"."""
    locator = Locator(
        [
            GridArea.from_config("G1", [], ["5号楼前广场", "二期13号楼", "1区菜场"]),
            GridArea.from_config("G2", ["20-30"], ["南门"]),
        ]
    )
    assert locator.locate("25号楼前广场有垃圾").grid == "G2"  # type: ignore[union-attr]
    assert locator.locate("5号楼前广场有垃圾").grid == "G1"  # type: ignore[union-attr]
    found = locator.locate("3号楼垃圾")
    assert found is not None and (found.grid, found.building) == (None, "3")
    found = locator.locate("11区菜场")  # the market by its everyday name, not "1区菜场" inside "11区"
    assert found is not None and found.matched == "菜场"
    assert locator.locate("二期13号楼垃圾").grid == "G1"  # type: ignore[union-attr]


# --- numerals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "grid"),
    [
        ("幺幺号楼门口", "P1"),  # 11, read out digit by digit
        ("廿一号楼", "T5"),
        ("卅二栋", "T6"),
        ("二十一号楼", "T5"),
        ("三十三幢", "T6"),
        ("sanshier hao lou", "T6"),
        ("er shi yi hao lou", "T5"),
        ("一期幺零号楼", "P1"),
    ],
)
def test_chinese_dialect_and_pinyin_numerals(wutong: Locator, text: str, grid: str) -> None:
    found = wutong.locate(text)
    assert found is not None and found.grid == grid, found


# --- places by everyday name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("菜场门口垃圾", "梧桐农贸市场"),
        ("大菜场门口", "梧桐农贸市场"),
        ("快递柜旁边", "丰巢快递柜"),
        ("幼儿园门口积水", "小蜜蜂幼儿园"),
        ("车棚里垃圾", "非机动车棚"),
        ("活动室墙上", "党群活动室"),
        ("垃圾站太脏", "生活垃圾站"),
        ("停车场角落", "地下停车场"),
        ("二期北门", "二期北门"),
        ("电动车棚", "非机动车棚"),
        ("丰巢柜那里", "丰巢快递柜"),
        ("地下车库里", "地下停车场"),
        ("活动室", "党群活动室"),  # a part of its name beats 老年活动中心 being an 活动室 by its kind
    ],
)
def test_places_by_part_of_their_name(wutong: Locator, text: str, place: str) -> None:
    found = wutong.locate(text)
    assert found is not None and found.place == place, found


def test_an_everyday_name_of_two_places_locates_neither_nor_a_part_of_it(wutong: Locator) -> None:
    """ "老年活动室" fits 老年活动中心 and 党群活动室 alike: no guess, and not "活动室" inside it either."""
    assert wutong.locate("老年活动室门口垃圾") is None
    assert wutong.locate("3号401室") is None  # 3号 is a date without a zone; several zones have a 3号楼


def test_shanghai_new_villages_with_numerals_in_their_names() -> None:
    """曹杨一村 and 曹杨二村 each have a 12号: said "曹杨一村12号" (上海话), written 12号楼 in the file."""
    locator = Locator(
        [GridArea.from_config("G1", ["曹杨一村1-20号楼"]), GridArea.from_config("G2", ["曹杨二村1-20号楼"])]
    )
    for text, grid in [("曹杨一村12号楼下垃圾", "G1"), ("曹杨二村12号401室", "G2"), ("曹杨一村12号", "G1")]:
        found = locator.locate(text)
        assert found is not None and found.grid == grid, (text, found)
    assert locator.locate("12号楼垃圾") is None  # both villages have one
    assert locator.locate("曹杨一村12号楼").building == "曹杨一村12"  # type: ignore[union-attr]
    assert locator.locate("曹杨一12号楼") is None  # "曹杨一" is no short name of 曹杨一村


def test_yao_and_joined_pinyin_read_as_one_number() -> None:
    locator = Locator([GridArea.from_config("G1", ["1-5"]), GridArea.from_config("G2", ["11-15"])])
    for text, building in [
        ("幺栋楼下垃圾", "1"),
        ("幺幺栋", "11"),
        ("shiyihao lou", "11"),
        ("sanhao lou", "3"),
    ]:
        found = locator.locate(text)
        assert found is not None and found.building == building, (text, found)
