"""Loading a 街道 file: every community in one transaction, grid codes per community, staff in several
communities, deactivation per community; ``config load`` prints a line per community."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.community.store import stored_street, sync_street
from handlers.community.street import load_street, parse_street
from handlers.kernel.yaml_text import load_yaml
from storage.models import Community as CommunityRow
from storage.models import Grid, GridWorker, Staff, StaffMembership
from tests.support.cli import run

STREET_FILE = Path(__file__).parents[1] / "data" / "street" / "heping_street.yaml"


async def test_a_street_loads_every_community_with_its_own_grids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    street = load_street(STREET_FILE)
    async with sessions.begin() as session:
        summary = await sync_street(session, street)
    assert [(s.code, s.grids) for s in summary.communities] == [("HPL", 1), ("JXY", 1)]
    async with sessions() as session:
        ids = dict((await session.execute(select(CommunityRow.code, CommunityRow.id))).all())
        grids = set((await session.execute(select(Grid.community_id, Grid.code, Grid.name))).all())
        assert grids == {(ids["HPL"], "G1", "和平里一网格"), (ids["JXY"], "G1", "锦绣园一网格")}
        workers = set((await session.execute(select(GridWorker.community_id, GridWorker.staff_id))).all())
        assert workers == {(ids["HPL"], "hzhang"), (ids["JXY"], "jwang")}
        memberships = set(
            (await session.execute(select(StaffMembership.staff_id, StaffMembership.community_id))).all()
        )
        assert {
            ("roam", ids["HPL"]),
            ("roam", ids["JXY"]),
            ("zhao", ids["HPL"]),
            ("zhao", ids["JXY"]),
        } <= memberships
        stored = await stored_street(session)
    assert stored is not None and stored.codes == ("HPL", "JXY") and stored.admins == ("zhao",)
    assert stored.get("jxy").grids["G1"].name == "锦绣园一网格"  # type: ignore[union-attr]


async def test_leaving_one_community_keeps_the_other(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await sync_street(session, load_street(STREET_FILE))
    data = load_yaml(STREET_FILE.read_text(encoding="utf-8"))
    data["communities"][0]["staff"] = [s for s in data["communities"][0]["staff"] if s["id"] != "roam"]
    async with sessions.begin() as session:
        summary = await sync_street(session, parse_street(data, STREET_FILE.parent))
    assert summary.communities[0].deactivated_staff == ("roam",)
    assert summary.communities[1].deactivated_staff == ()
    async with sessions() as session:
        assert (await session.get_one(Staff, "roam")).active  # still works in 锦绣园
    # a community that leaves the file is no longer served; its rows stay
    data["communities"] = data["communities"][1:]
    async with sessions.begin() as session:
        summary = await sync_street(session, parse_street(data, STREET_FILE.parent))
    assert summary.deactivated_communities == ("HPL",)
    async with sessions() as session:
        assert (await stored_street(session)).codes == ("JXY",)  # type: ignore[union-attr]
        assert not (await session.get_one(Staff, "hzhang")).active


def test_config_load_prints_a_line_per_community(tmp_path: Path) -> None:
    db_env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    result = run(["config", "load", str(STREET_FILE)], env=db_env)
    assert result.returncode == 0, result.stderr.decode()
    shown = result.stdout.decode("utf-8").splitlines()
    assert len(shown) == 2 and "HPL 和平里社区" in shown[0] and "JXY 锦绣园社区" in shown[1]
