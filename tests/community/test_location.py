"""handlers.community.location: building specs from config, building mentions in messages, grid lookup."""

from __future__ import annotations

import pytest

from handlers.community.location import (
    BuildingMention,
    BuildingSet,
    BuildingSpecError,
    GridArea,
    LocationMatch,
    Locator,
    find_buildings,
    normalise_building,
    parse_building_spec,
    parse_buildings,
)

# ---------------------------------------------------------------- config entries


@pytest.mark.parametrize(
    ("spec", "ranges", "names"),
    [
        ("3", ((3, 3),), set()),
        (3, ((3, 3),), set()),  # YAML reads an unquoted 3 as an int
        ("1-6", ((1, 6),), set()),
        ("1~6", ((1, 6),), set()),
        ("1至6", ((1, 6),), set()),
        ("1-6号楼", ((1, 6),), set()),
        ("1-6栋", ((1, 6),), set()),
        ("1号楼-6号楼", ((1, 6),), set()),
        ("１－６", ((1, 6),), set()),
        ("3-3", ((3, 3),), set()),
        ("3号楼", ((3, 3),), set()),
        ("3栋", ((3, 3),), set()),
        ("3幢", ((3, 3),), set()),
        ("三号楼", ((3, 3),), set()),
        ("七栋", ((7, 7),), set()),
        ("十二号楼", ((12, 12),), set()),
        ("3#楼", ((3, 3),), set()),
        ("3#", ((3, 3),), set()),
        ("3号", ((3, 3),), set()),
        ("3座", ((3, 3),), set()),
        ("12号楼", ((12, 12),), set()),
        (" 9999 ", ((9999, 9999),), set()),
        ("A座", (), {"A"}),
        ("B栋", (), {"B"}),
        ("A", (), {"A"}),
        ("c", (), {"C"}),
    ],
)
def test_parse_building_spec(spec: str | int, ranges: tuple[tuple[int, int], ...], names: set[str]) -> None:
    parsed = parse_building_spec(spec)
    assert parsed.ranges == ranges
    assert parsed.names == frozenset(names)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("6-1", "reversed_range"),
        ("六-一", "reversed_range"),
        ("1-", "malformed"),
        ("-3", "malformed"),
        ("abc-3", "malformed"),
        ("AB座", "malformed"),
        ("3楼3", "malformed"),
        ("两号楼", "malformed"),
        ("", "empty"),
        ("   ", "empty"),
        ("0", "out_of_range"),
        ("〇号楼", "out_of_range"),
        ("0-5", "out_of_range"),
        ("1-10000", "out_of_range"),
        ("10000", "out_of_range"),
        (True, "malformed"),
        (None, "malformed"),
    ],
)
def test_parse_building_spec_errors(spec: object, reason: str) -> None:
    with pytest.raises(BuildingSpecError) as info:
        parse_building_spec(spec)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert info.value.spec == str(spec)
    assert isinstance(info.value, ValueError)


def test_parse_buildings_is_the_union_merged() -> None:
    grid = parse_buildings(["1-6", "A座", "12号楼", "七栋", "5-8", "b"])
    assert grid.ranges == ((1, 8), (12, 12))
    assert grid.names == frozenset({"A", "B"})
    assert grid == parse_buildings(["b", "12", "A", "1-8"])
    assert not parse_buildings([])


def test_parse_buildings_refuses_a_bare_string() -> None:
    with pytest.raises(BuildingSpecError):
        parse_buildings("1-6")


def test_parse_buildings_reports_the_bad_entry() -> None:
    with pytest.raises(BuildingSpecError) as info:
        parse_buildings(["1-6", "9-7", "A"])
    assert (info.value.spec, info.value.reason) == ("9-7", "reversed_range")


def test_contains() -> None:
    grid = parse_buildings(["1-6", "A座", "12号楼", "20-30"])
    for key in ("1", "6", "12", "20", "25", "30", "A", "a", "03"):
        assert grid.contains(key), key
    for key in ("0", "7", "11", "13", "19", "31", "B", "", "三"):
        assert not grid.contains(key), key


def test_overlaps_reports_shared_buildings() -> None:
    g1 = parse_buildings(["1-5", "A座", "9"])
    g2 = parse_buildings(["3-4", "7-12", "A", "B"])
    assert g1.overlaps(g2) == ["3-4", "9", "A"]
    assert g2.overlaps(g1) == ["3-4", "9", "A"]
    assert parse_buildings(["3"]).overlaps(parse_buildings(["1-6"])) == ["3"]
    assert parse_buildings(["1-3"]).overlaps(parse_buildings(["4-6", "C"])) == []


def test_normalise_building() -> None:
    assert normalise_building("三号楼") == "3"
    assert normalise_building("3栋") == "3"
    assert normalise_building("b座") == "B"
    assert normalise_building("1-6") is None
    assert normalise_building("东门") is None


# ---------------------------------------------------------------- mentions in messages


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("3号楼", "3", "3号楼"),
        ("3栋", "3", "3栋"),
        ("3幢", "3", "3幢"),
        ("3座", "3", "3座"),
        ("3#楼", "3", "3#楼"),
        ("3#", "3", "3#"),
        ("3号楼2单元301室", "3", "3号楼2单元301室"),
        ("3栋2单元", "3", "3栋2单元"),
        ("3号楼二单元门口", "3", "3号楼二单元"),
        ("3号2单元", "3", "3号2单元"),
        ("3号门洞", "3", "3号门洞"),
        ("12号楼", "12", "12号楼"),
        ("十栋", "10", "十栋"),
        ("十二栋", "12", "十二栋"),
        ("二十三号楼", "23", "二十三号楼"),
        ("一百零三号楼", "103", "一百零三号楼"),
        ("一百二十栋", "120", "一百二十栋"),
        ("九十九幢", "99", "九十九幢"),
        ("二号楼", "2", "二号楼"),
        ("一〇号楼", "10", "一〇号楼"),
        ("3 号楼", "3", "3 号楼"),
        ("03号楼", "3", "03号楼"),
        ("３号楼", "3", "３号楼"),
        ("３＃", "3", "３＃"),
        ("A座", "A", "A座"),
        ("b座", "B", "b座"),
        ("A栋", "A", "A栋"),
        ("Ａ座", "A", "Ａ座"),
        ("C楼", "C", "C楼"),
        ("3-2-301", "3", "3-2-301"),
        ("3號樓", "3", "3號樓"),
        ("3棟", "3", "3棟"),
        ("第一栋", "1", "一栋"),
    ],
)
def test_find_building_forms(text: str, key: str, words: str) -> None:
    assert find_buildings(text) == [BuildingMention(key, words, text.index(words))]


def test_find_buildings_inside_unpunctuated_sentences() -> None:
    assert find_buildings("3号楼楼道里全是小广告") == [BuildingMention("3", "3号楼", 0)]
    assert find_buildings("我家住在十二栋2单元楼下垃圾桶满了") == [BuildingMention("12", "十二栋2单元", 4)]
    assert find_buildings("11月3号下午看到3号楼门口有积水") == [BuildingMention("3", "3号楼", 9)]


def test_find_buildings_in_order_of_appearance() -> None:
    found = find_buildings("5栋和A座之间，还有3-1-502")
    assert [(m.key, m.start) for m in found] == [("5", 0), ("A", 3), ("3", 10)]


@pytest.mark.parametrize(
    "text",
    [
        "3号下午来清理",  # date
        "11月3号",  # date
        "11月3号楼下有垃圾",  # date, then 楼下 (downstairs)
        "下周三号楼道要消杀",  # Wednesday
        "3点以后",  # time
        "2024-3-15",  # date in dashes
        "3个垃圾桶满了",  # quantity
        "好几栋都有小广告",  # no number
        "两栋楼之间",  # 两 counts, it does not name
        "两号楼",
        "有一栋楼没人管",  # a count of one
        "这3栋楼都没人扫",  # a count after a demonstrative
        "13812345678",  # phone
        "138-1234-5678",  # phone in dashes
        "301室",  # room only
        "1号线地铁站",  # metro line
        "3号门",  # a gate, not a building
        "3号",  # bare 3号 is a date as often as an address
        "3号单元",  # read as unit 3 of some building
        "3楼",  # a floor
        "3座位",  # seats
        "0号楼",
        "零号楼",
        "一百三号楼",  # 130 or 103? not said: better nothing than a guess, and never 3
        "",
    ],
)
def test_not_buildings(text: str) -> None:
    assert find_buildings(text) == []


# ---------------------------------------------------------------- the locator


@pytest.fixture
def locator() -> Locator:
    return Locator(
        [
            GridArea.from_config("G1", ["1-6", "A座"], ["东门", "幸福路"]),
            GridArea.from_config("G2", ["7-12", "B栋"], ["农贸市场", "东门菜市场"]),
            GridArea("G3", parse_buildings(["十三号楼"]), ("KFC", "A座大堂")),
        ]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号楼楼道里全是小广告", LocationMatch("G1", "3号楼", "3", None)),
        ("九号楼门口积水", LocationMatch("G2", "九号楼", "9", None)),
        ("b栋有老鼠", LocationMatch("G2", "b栋", "B", None)),
        ("13號樓垃圾", LocationMatch("G3", "13號樓", "13", None)),
        ("3-2-301下水道堵了", LocationMatch("G1", "3-2-301", "3", None)),
        ("东门小广告", LocationMatch("G1", "东门", None, "东门")),
        ("東門小廣告", LocationMatch("G1", "東門", None, "东门")),
        ("农贸市场门口", LocationMatch("G2", "农贸市场", None, "农贸市场")),
        ("kfc门口有垃圾", LocationMatch("G3", "kfc", None, "KFC")),
    ],
)
def test_locate(locator: Locator, text: str, expected: LocationMatch) -> None:
    assert locator.locate(text) == expected


def test_locate_place_longest_match(locator: Locator) -> None:
    assert locator.locate("东门菜市场积水") == LocationMatch("G2", "东门菜市场", None, "东门菜市场")


def test_locate_earliest_mention_wins(locator: Locator) -> None:
    assert locator.locate("3号楼东门旁边") == LocationMatch("G1", "3号楼", "3", None)
    assert locator.locate("农贸市场后面9号楼") == LocationMatch("G2", "农贸市场", None, "农贸市场")
    # same offset: the longer words win, so the place "A座大堂" beats the building "A座"
    assert locator.locate("A座大堂有蟑螂") == LocationMatch("G3", "A座大堂", None, "A座大堂")


def test_locate_skips_uncovered_building_for_a_covered_one(locator: Locator) -> None:
    assert locator.locate("50号楼对面的幸福路") == LocationMatch("G1", "幸福路", None, "幸福路")
    assert locator.locate("50号楼和5号楼之间") == LocationMatch("G1", "5号楼", "5", None)


def test_locate_uncovered_building_has_no_grid(locator: Locator) -> None:
    assert locator.locate("50号楼垃圾") == LocationMatch(None, "50号楼", "50", None)
    assert locator.locate("Z座小广告") == LocationMatch(None, "Z座", "Z", None)


@pytest.mark.parametrize("text", ["垃圾桶满了", "11月3号下午", "3个垃圾桶", "", "1号线"])
def test_locate_nothing_named(locator: Locator, text: str) -> None:
    assert locator.locate(text) is None


def test_locate_without_places() -> None:
    only = Locator([GridArea.from_config("G1", ["1-3"])])
    assert only.locate("2栋") == LocationMatch("G1", "2栋", "2", None)
    assert only.locate("东门") is None
    assert Locator([]).locate("2栋") == LocationMatch(None, "2栋", "2", None)


def test_first_grid_wins_when_config_overlaps() -> None:
    both = Locator([GridArea.from_config("G1", ["1-5"]), GridArea.from_config("G2", ["3-8"])])
    assert both.locate("4号楼").grid == "G1"  # type: ignore[union-attr]


def test_building_set_is_hashable_and_normalised() -> None:
    assert BuildingSet(((4, 6), (1, 3)), frozenset({"a"})) == BuildingSet(((1, 6),), frozenset({"A"}))
    assert len({parse_buildings(["1-3", "4-6"]), parse_buildings(["1-6"])}) == 1
