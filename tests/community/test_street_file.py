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
