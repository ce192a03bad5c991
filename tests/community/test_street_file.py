"""A 街道 file: several communities in one deployment; a single-community file is a street of one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from handlers.community.model import DEFAULT_CODE, CommunityConfigError
from handlers.community.street import load_street, parse_street

ROUTE = Path(__file__).parents[1] / "data" / "route_community.yaml"


def _community(name: str, worker: str, leader: str) -> dict:
    return {
        "name": name,
        "grids": [
            {
                "code": "G1",
                "name": "一网格",
                "buildings": ["1-6"],
                "leader": leader,
                "workers": [{"staff": worker, "categories": ["poster", "garbage"]}],
            }
        ],
        "staff": [
            {"id": worker, "name": "工作人员", "role": "worker"},
            {"id": leader, "name": "网格长", "role": "leader"},
        ],
    }


def _street() -> dict:
    return {
        "street": {"name": "和平街道", "timezone": "Asia/Shanghai"},
        "admins": [{"id": "zhao", "name": "赵强", "role": "admin", "telegram": 1001}],
        "communities": [
            {"code": "HPL", "aliases": ["和平里", "和平里小区"], **_community("和平里社区", "w1", "l1")},
            {"code": "JXY", **_community("锦绣园社区", "w2", "l2")},
        ],
    }


def test_single_community_file_is_a_street_of_one() -> None:
    street = load_street(ROUTE)
    assert street.single_file and len(street) == 1
    assert street.only is not None and street.only.code == DEFAULT_CODE
    assert street.name == street.only.name


def test_street_file_lists_communities_each_with_its_own_grids() -> None:
    street = parse_street(_street())
    assert street.codes == ("HPL", "JXY") and street.name == "和平街道"
    hpl, jxy = street.get("hpl"), street.get("JXY")
    assert hpl is not None and jxy is not None
    assert hpl.config.community.aliases == ["和平里", "和平里小区"]
    # the same grid code in two communities is no clash
    assert set(hpl.grids) == set(jxy.grids) == {"G1"}
    assert hpl.locator.locate("3号楼垃圾").grid == "G1"
    # the 街道 admin is staff of every community; the others of their own
    assert street.admins == ("zhao",)
    assert [c.code for c in street.of_staff("zhao")] == ["HPL", "JXY"]
    assert [c.code for c in street.of_staff("w2")] == ["JXY"]
    assert street.only is None


def test_a_community_kept_in_its_own_file(tmp_path: Path) -> None:
    data = _street()
    (tmp_path / "communities").mkdir()
    (tmp_path / "communities" / "route.yaml").write_text(ROUTE.read_text(encoding="utf-8"), encoding="utf-8")
    data["communities"][1] = {"code": "LZ", "file": "communities/route.yaml"}
    (tmp_path / "street.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    street = load_street(tmp_path / "street.yaml")
    oasis = street.get("LZ")
    assert oasis is not None and oasis.name == "绿洲社区" and "N1" in oasis.grids


def test_every_problem_is_reported_with_its_community() -> None:
    data = _street()
    data["communities"][1]["code"] = "HPL"
    data["communities"][0]["grids"][0]["leader"] = "nobody"
    with pytest.raises(CommunityConfigError) as caught:
        parse_street(data)
    keys = {p.key for p in caught.value.problems}
    assert "communities[1].code" in keys
    assert any(k.startswith("communities[0].grids[0].leader") for k in keys)


def test_a_community_without_code_in_a_street_file_is_refused() -> None:
    data = _street()
    del data["communities"][0]["code"]
    with pytest.raises(CommunityConfigError) as caught:
        parse_street(data)
    assert any(p.key == "communities[0].code" for p in caught.value.problems)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("和平里小区3号楼门口全是小广告", "HPL"),
        ("和平里那边垃圾没人收", "HPL"),
        ("锦绣园5号楼楼道堆满杂物", "JXY"),
        ("錦繡園社區 下水道堵了", "JXY"),  # traditional characters
        ("3号楼垃圾没人收", None),  # names no community
        ("和平里和锦绣园都有小广告", None),  # names two: the bot asks
    ],
)
def test_the_community_a_message_names(text: str, code: str | None) -> None:
    found = parse_street(_street()).named_in(text)
    assert (found.code if found else None) == code


SAMPLE_STREET = Path(__file__).parents[2] / "bot" / "data" / "sample_street.yaml"


def _problems(data: dict, base: Path | None = None) -> dict[str, str]:
    with pytest.raises(CommunityConfigError) as caught:
        parse_street(data, base)
    return {p.key: p.message for p in caught.value.problems}


def test_the_sample_street_file_loads_with_a_community_kept_in_its_own_file() -> None:
    street = load_street(SAMPLE_STREET)
    assert street.codes == ("XF", "HPL", "JXY") and street.name == "和平街道"
    xf = street.get("xf")
    assert xf is not None and xf.name == "幸福社区" and xf.config.community.aliases == ["幸福里"]
    # 吴强 works in two communities; the 街道 admin in all three
    assert [c.code for c in street.of_staff("wu")] == ["XF", "HPL"]
    assert [c.code for c in street.of_staff("gao")] == ["XF", "HPL", "JXY"]


def test_a_staff_id_in_two_communities_must_be_the_same_person() -> None:
    data = _street()
    data["communities"][1]["staff"].append({"id": "w1", "name": "另一个人", "role": "worker"})
    data["communities"][1]["grids"][0]["workers"].append({"staff": "w1", "categories": ["sewage"]})
    problems = _problems(data)
    assert list(problems) == ["communities[1].staff[2].name"]
    assert "communities[0].staff[0]" in problems["communities[1].staff[2].name"]
    # the same person (same name and role) in two communities is fine
    data["communities"][1]["staff"][2]["name"] = "工作人员"
    assert [c.code for c in parse_street(data).of_staff("w1")] == ["HPL", "JXY"]


def test_a_street_admin_listed_again_with_another_role_is_refused() -> None:
    data = _street()
    data["communities"][0]["staff"].append({"id": "zhao", "name": "赵强", "role": "worker"})
    assert list(_problems(data)) == ["communities[0].staff[2].role"]


def test_a_chat_account_bound_to_two_staff_ids_is_refused_without_showing_it() -> None:
    data = _street()
    data["communities"][1]["staff"][0]["telegram"] = 1001  # the 街道 admin's account
    problems = _problems(data)
    assert list(problems) == ["communities[1].staff[0].telegram"]
    assert "zhao" in problems["communities[1].staff[0].telegram"]
    assert "1001" not in problems["communities[1].staff[0].telegram"]


def test_a_chat_account_bound_to_two_staff_ids_in_one_community_file_is_refused() -> None:
    from handlers.community.model import parse_community

    data = yaml.safe_load(ROUTE.read_text(encoding="utf-8"))
    data["staff"][1]["wechat"] = "oSame"
    data["staff"][2]["wechat"] = "oSame"
    with pytest.raises(CommunityConfigError) as caught:
        parse_community(data)
    assert [p.key for p in caught.value.problems] == ["staff[2].wechat"]


def test_one_person_with_two_accounts_of_a_channel_is_refused() -> None:
    data = _street()
    data["communities"][1]["staff"].append({"id": "zhao", "name": "赵强", "role": "admin", "telegram": 1002})
    assert list(_problems(data)) == ["communities[1].staff[2].telegram"]


def test_a_missing_community_file_is_one_problem_naming_it(tmp_path: Path) -> None:
    data = _street()
    data["communities"][1] = {"code": "LZ", "file": "communities/none.yaml"}
    problems = _problems(data, tmp_path)
    assert (
        list(problems) == ["communities[1].file"]
        and "communities/none.yaml" in problems["communities[1].file"]
    )


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("grids: [unclosed\n", "YAML"),
        ("- a\n- b\n", "键值"),
        ("street: {name: 套娃}\ncommunities: []\n", "街道"),
    ],
)
def test_a_community_file_that_is_no_community_file_is_one_problem(
    tmp_path: Path, text: str, word: str
) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    data = _street()
    data["communities"][1] = {"code": "LZ", "file": "bad.yaml"}
    problems = _problems(data, tmp_path)
    assert list(problems) == ["communities[1].file"] and word in problems["communities[1].file"]


def test_a_problem_inside_a_community_file_names_the_file(tmp_path: Path) -> None:
    route = yaml.safe_load(ROUTE.read_text(encoding="utf-8"))
    route["grids"][0]["leader"] = "nobody"
    (tmp_path / "route.yaml").write_text(yaml.safe_dump(route, allow_unicode=True), encoding="utf-8")
    data = _street()
    data["communities"][1] = {"code": "LZ", "file": "route.yaml"}
    assert list(_problems(data, tmp_path)) == ["communities[1](route.yaml).grids[0].leader"]


def test_codes_are_unique_whatever_their_letter_case() -> None:
    data = _street()
    data["communities"][1]["code"] = "hpl"
    assert list(_problems(data)) == ["communities[1].code"]


def test_a_name_or_alias_of_two_communities_is_reported() -> None:
    data = _street()
    data["communities"][1]["aliases"] = ["锦绣园", "和平里"]
    problems = _problems(data)
    assert list(problems) == ["communities[1].aliases[1]"] and "HPL" in problems["communities[1].aliases[1]"]


def test_the_street_itself_is_checked_once() -> None:
    data = _street()
    data["street"]["timezone"] = "Mars/Olympus"
    data["admins"][0]["role"] = "boss"
    data["streets"] = []
    problems = _problems(data)
    # the bad time zone is the street's problem, not repeated for each community
    assert set(problems) == {"street.timezone", "admins[0].role", "streets"}
    assert "Mars/Olympus" in problems["street.timezone"]


def test_a_street_file_without_name_or_communities() -> None:
    assert set(_problems({"street": {"timezone": "Asia/Shanghai"}})) == {"street.name", "communities"}
    assert set(_problems({"communities": [_street()["communities"][0]]})) == {"street.name"}
    misspelt = {"streets": {"name": "和平街道"}, "communities": [_street()["communities"][0]]}
    assert set(_problems(misspelt)) == {"streets", "street.name"}


def test_communities_with_the_same_categories_share_one_classifier() -> None:
    data = _street()
    data["communities"].append(
        {
            "code": "ZY",
            **_community("钟楼社区", "w3", "l3"),
            "categories": [{"code": "noise", "name": "噪音", "keywords": ["噪音"]}],
        }
    )
    hpl, jxy, zy = parse_street(data)
    assert hpl.classifier is jxy.classifier  # built once, not per community
    assert zy.classifier is not hpl.classifier and zy.classifier.classify("楼下噪音太大").category == "noise"
    assert hpl.classifier.classify("楼下噪音太大").category != "noise"


def test_a_community_keeps_its_own_time_zone_else_the_streets() -> None:
    data = _street()
    data["street"]["timezone"] = "Asia/Urumqi"
    data["communities"][1]["timezone"] = "Asia/Shanghai"
    street = parse_street(data)
    assert street.timezone == "Asia/Urumqi"
    assert [c.config.community.timezone for c in street] == ["Asia/Urumqi", "Asia/Shanghai"]
