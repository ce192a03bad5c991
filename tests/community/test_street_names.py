"""Which community a message names (``Street.named_in``) or is about (``Street.locate``), the way
residents write it, and the traps: a name inside a longer word, a road, a loose form two communities fit."""

from __future__ import annotations

import pytest

from handlers.community.street import Street, parse_street


def _community(
    code: str, name: str, aliases: list[str] | None = None, places: list[str] | None = None
) -> dict:
    worker, leader = f"{code.lower()}w", f"{code.lower()}l"
    return {
        "code": code,
        "name": name,
        "aliases": aliases or [],
        "grids": [
            {
                "code": "G1",
                "name": "一网格",
                "buildings": ["1-6"],
                "places": places or [],
                "leader": leader,
                "workers": [{"staff": worker, "categories": ["poster", "garbage"]}],
            }
        ],
        "staff": [
            {"id": worker, "name": "工作人员", "role": "worker"},
            {"id": leader, "name": "网格长", "role": "leader"},
        ],
    }


def _street(*communities: dict) -> Street:
    return parse_street({"street": {"name": "和平街道"}, "communities": list(communities)})


STREET = _street(
    _community("HPL", "和平里社区", ["和平里小区"], ["东门", "星星幼儿园", "菜场"]),
    _community("JXY", "锦绣园社区", [], ["东门", "菜场", "紫藤长廊"]),
    _community("XF", "幸福社区", [], ["幸福路", "北区停车场"]),
    _community("XC", "新村社区"),
    _community("CY", "曹杨新村"),
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("和平里小区3号楼门口全是小广告", "HPL"),  # an alias
        ("和平里那边垃圾没人收", "HPL"),  # the name without 社区
        ("和平里居委会门口有垃圾", "HPL"),  # another suffix
        ("和平小区5号楼垃圾桶满了", "HPL"),  # loose: 和平里 without 里, with 小区 (only HPL fits)
        ("錦繡園社區 下水道堵了", "JXY"),  # traditional characters
        ("锦秀园5号楼楼道堆满杂物", "JXY"),  # a typo of the same sound
        ("幸福小区3号楼小广告", "XF"),  # 幸福 with a suffix
        ("曹杨新村12号楼有老鼠", "CY"),  # a name that ends in 新村 is still a name
        ("jinxiuyuan 5 hao lou you laji", "JXY"),  # toneless pinyin, syllables together
        ("he ping li xiao qu 3号楼有垃圾", "HPL"),  # or apart
    ],
)
def test_the_community_a_message_names(text: str, code: str) -> None:
    found = STREET.named_in(text)
    assert found is not None and found.code == code


@pytest.mark.parametrize(
    "text",
    [
        "最近幸福感很强，谢谢你们",  # 幸福 inside a longer word (and bare 幸福 is an everyday word)
        "生活很幸福",  # bare 幸福 names nothing: 幸福社区 needs its suffix
        "新村路上垃圾没人收",  # a road
        "曹杨新村路口有积水",  # a road after a name
        "和平里站出口有小广告",  # a stop
        "3号楼垃圾没人收",  # names no community
        "锦绣前程，小区很干净",  # a word that shares characters, not the sound of a name
        "和平里和锦绣园都有小广告",  # names two: the bot asks
        "lajitong man le, heping",  # pinyin that spells no name (he ping alone is an everyday word)
    ],
)
def test_what_names_no_single_community(text: str) -> None:
    assert STREET.named_in(text) is None


def test_a_loose_form_two_communities_fit_names_neither() -> None:
    street = _street(_community("HPL", "和平里社区"), _community("HPY", "和平苑社区"))
    assert street.named_in("和平小区3号楼有垃圾") is None
    assert street.named_in("和平苑3号楼有垃圾").code == "HPY"  # type: ignore[union-attr]


def test_a_community_called_exactly_so_wins_over_a_loose_form() -> None:
    street = _street(_community("HPL", "和平里社区"), _community("HP", "和平社区"))
    assert street.named_in("和平社区3号楼有垃圾").code == "HP"  # type: ignore[union-attr]
    assert street.named_in("和平里社区3号楼有垃圾").code == "HPL"  # type: ignore[union-attr]


def test_locate_names_first_then_a_place_only_one_community_has() -> None:
    by_name = STREET.locate("和平里东门有垃圾")
    assert by_name.code == "HPL" and by_name.by == "name"
    by_place = STREET.locate("星星幼儿园门口垃圾堆了三天")
    assert by_place.code == "HPL" and by_place.by == "place" and by_place.matched == "星星幼儿园"
    assert STREET.locate("紫藤长廊那里有积水").code == "JXY"
    assert STREET.locate("幸福路上小广告").code == "XF"
    several = STREET.locate("和平里和锦绣园都有小广告")
    assert several.code is None and several.codes == ("HPL", "JXY")


@pytest.mark.parametrize(
    "text",
    [
        "东门有垃圾",  # a place two communities have
        "菜场门口污水横流",  # an everyday name
        "北区停车场有老鼠",  # only one community lists it, but any community may have one
        "3号楼楼道小广告",
    ],
)
def test_locate_does_not_guess_from_everyday_places(text: str) -> None:
    found = STREET.locate(text)
    assert found.codes == () and found.code is None


def test_a_named_estate_only_one_community_has_locates_it() -> None:
    zoned = _community("ZJ", "金桥社区")
    zoned["grids"][0]["buildings"] = ["紫荆苑1-8号楼"]
    street = _street(zoned, _community("HPL", "和平里社区"))
    assert street.locate("紫荆苑3号楼有老鼠").code == "ZJ"


def test_names_among_three_hundred_communities() -> None:
    from bench.street_scale import community_name, district

    street = parse_street(district(300))
    for i in (0, 7, 150, 299):
        name, alias = community_name(i)
        found = street.named_in(f"{alias}3号楼楼道里全是小广告")
        assert found is not None and found.name == name
