"""The community YAML: validation that names the bad key, and syncing that never loses cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import Case
from handlers.community.model import CommunityConfigError, load_community
from handlers.community.store import stored_community, sync_community
from storage.models import Grid, GridWorker, Staff, StaffIdentity

BASE = """
community:
  name: 幸福社区
  timezone: Asia/Shanghai
grids:
  - code: G1
    name: 第一网格
    buildings: ["1-6", "A座"]
    places: [东门, 幸福路, 农贸市场]
    leader: li
    workers:
      - {staff: zhang, categories: [poster, garbage]}
      - {staff: wang, categories: [mosquito, pests, sewage]}
  - code: G2
    name: 第二网格
    buildings: ["7-9", "10号楼"]
    places: [南门]
    leader: li
    workers:
      - {staff: zhang, categories: [garbage]}
staff:
  - {id: zhang, name: 张伟, role: worker, telegram: 100001}
  - {id: wang, name: 王芳, role: worker, wechat: oAbC123}
  - {id: li, name: 李娜, role: leader}
  - {id: chen, name: 陈静, role: admin}
categories: []
"""


def problems(write_yaml: Callable[[str], Path], text: str) -> list[str]:
    with pytest.raises(CommunityConfigError) as info:
        load_community(write_yaml(text))
    return [str(p) for p in info.value.problems]


def test_the_issue_example_and_the_sample_are_valid(write_yaml: Callable[[str], Path]) -> None:
    community = load_community(write_yaml(BASE))
    assert community.name == "幸福社区"
    assert community.locator.locate("三号楼有小广告").grid == "G1"
    assert community.locator.locate("10号楼门口").grid == "G2"
    sample = load_community(None)
    assert len(sample.grids) >= 4 and sample.admins()


def test_unknown_staff_id_is_named(write_yaml: Callable[[str], Path]) -> None:
    found = problems(write_yaml, BASE.replace("{staff: wang,", "{staff: wong,"))
    assert len(found) == 1 and found[0].startswith("grids[0].workers[1].staff") and "wong" in found[0]
    found = problems(
        write_yaml,
        BASE.replace(
            "leader: li\n    workers:\n      - {staff: zhang, categories: [garbage]}",
            "leader: lee\n    workers:\n      - {staff: zhang, categories: [garbage]}",
        ),
    )
    assert found[0].startswith("grids[1].leader") and "lee" in found[0]


def test_building_in_two_grids_is_named(write_yaml: Callable[[str], Path]) -> None:
    found = problems(write_yaml, BASE.replace('["7-9", "10号楼"]', '["5-9"]'))
    assert len(found) == 1 and found[0].startswith("grids[1].buildings")
    assert "5-6" in found[0] and "G1" in found[0] and "G2" in found[0]


def test_unknown_category_code_is_named(write_yaml: Callable[[str], Path]) -> None:
    found = problems(write_yaml, BASE.replace("[poster, garbage]", "[poster, rubbish]"))
    assert found[0].startswith("grids[0].workers[0].categories[1]") and "rubbish" in found[0]


@pytest.mark.parametrize("bad", ['"6-1"', '"1-"', '"abc-3"'])
def test_malformed_range_is_named(write_yaml: Callable[[str], Path], bad: str) -> None:
    found = problems(write_yaml, BASE.replace('"A座"]', f'"A座", {bad}]'))
    assert found[0].startswith("grids[0].buildings[2]") and bad.strip('"') in found[0]


def test_unknown_key_and_bad_role_are_named(write_yaml: Callable[[str], Path]) -> None:
    found = problems(
        write_yaml,
        BASE.replace(
            "    leader: li\n    workers:\n      - {staff: zhang, categories: [poster",
            "    leadr: li\n    workers:\n      - {staff: zhang, categories: [poster",
        ),
    )
    assert any(p.startswith("grids[0].leadr") for p in found)
    found = problems(write_yaml, BASE.replace("role: admin", "role: boss"))
    assert any(p.startswith("staff[3].role") for p in found)


def test_place_in_two_grids_and_duplicate_ids(write_yaml: Callable[[str], Path]) -> None:
    found = problems(write_yaml, BASE.replace("places: [南门]", "places: [南门, 东门]"))
    assert found[0].startswith("grids[1].places[1]") and "东门" in found[0]
    found = problems(write_yaml, BASE.replace("{id: chen,", "{id: li,"))
    assert found[0].startswith("staff[3].id")


def test_category_overrides_add_a_category(write_yaml: Callable[[str], Path]) -> None:
    text = BASE.replace(
        "categories: []",
        "categories:\n  - {code: noise, name: 噪音扰民, keywords: [噪音, 扰民, 装修声], time_limit_hours: 8}",
    ).replace("[mosquito, pests, sewage]", "[mosquito, pests, sewage, noise]")
    community = load_community(write_yaml(text))
    assert community.classifier.classify("5号楼半夜装修声音太大扰民").category == "noise"


def test_unreadable_and_broken_yaml(write_yaml: Callable[[str], Path], tmp_path: Path) -> None:
    with pytest.raises(CommunityConfigError):
        load_community(tmp_path / "missing.yaml")
    assert problems(write_yaml, "community: [unclosed")
    assert problems(write_yaml, "- just a list")


async def test_reload_updates_and_never_deletes_cases(
    sessions: async_sessionmaker[AsyncSession], write_yaml: Callable[[str], Path]
) -> None:
    async with sessions.begin() as session:
        await sync_community(session, load_community(write_yaml(BASE)))
        session.add(Case(text="3号楼有小广告", channel="console", grid_code="G2", assignee_id="wang"))
    changed = (
        BASE.replace("name: 第二网格", "name: 第二网格（南区）")
        .replace("  - code: G2\n", "  - code: G2\n")
        .replace("  - {id: wang, name: 王芳, role: worker, wechat: oAbC123}\n", "")
        .replace("      - {staff: wang, categories: [mosquito, pests, sewage]}\n", "")
    )
    async with sessions.begin() as session:
        summary = await sync_community(session, load_community(write_yaml(changed)))
    assert summary.deactivated_staff == ("wang",)
    async with sessions() as session:
        assert (await session.get_one(Grid, (1, "G2"))).name == "第二网格（南区）"
        wang = await session.get_one(Staff, "wang")
        assert not wang.active
        kept = (await session.scalars(select(Case))).all()
        assert len(kept) == 1 and kept[0].assignee_id == "wang"
        workers = (
            await session.scalars(select(GridWorker.staff_id).where(GridWorker.grid_code == "G1"))
        ).all()
        assert workers == ["zhang"]
        identities = set(
            (await session.execute(select(StaffIdentity.channel, StaffIdentity.external_id))).all()
        )
        assert ("telegram", "100001") in identities and ("wechat", "oAbC123") not in identities
        assert (await stored_community(session)).grids["G2"].name == "第二网格（南区）"  # type: ignore[union-attr]


async def test_loading_twice_is_idempotent(
    sessions: async_sessionmaker[AsyncSession], write_yaml: Callable[[str], Path]
) -> None:
    community = load_community(write_yaml(BASE))
    for _ in range(2):
        async with sessions.begin() as session:
            await sync_community(session, community)
    async with sessions() as session:
        assert len((await session.scalars(select(Grid))).all()) == 2
        assert len((await session.scalars(select(GridWorker))).all()) == 3


def test_an_unquoted_phone_number_is_the_number_it_says(write_yaml: Callable[[str], Path]) -> None:
    with_phone = "{id: li, name: 李娜, role: leader, phone: 13800000000}"
    community = load_community(write_yaml(BASE.replace("{id: li, name: 李娜, role: leader}", with_phone)))
    assert community.staff["li"].phone == "13800000000"
