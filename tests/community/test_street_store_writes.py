"""Loading a 街道 file again: what the file says is written as a difference. An unchanged file writes
no staff account, grid or category; a config account the file no longer names goes, an account bound
by invite code stays (and is rebound, keeping its unreachable mark, when the file names it); a config
account is as if written anew (its unreachable mark cleared), as before the loading was batched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.community.store import sync_street
from handlers.community.street import load_street, parse_street
from handlers.kernel.yaml_text import load_yaml
from storage.models import StaffIdentity

STREET_FILE = Path(__file__).parents[1] / "data" / "street" / "heping_street.yaml"
MARK = datetime(2026, 11, 1, tzinfo=UTC)


async def accounts(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], tuple[Any, ...]]:
    async with sessions() as session:
        rows = await session.scalars(select(StaffIdentity))
        return {(r.channel, r.external_id): (r.staff_id, r.source, r.unreachable_since) for r in rows}


async def test_an_unchanged_file_loaded_again_writes_no_row(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    street = load_street(STREET_FILE)
    async with sessions.begin() as session:
        await sync_street(session, street)
    before = await accounts(sessions)
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().split(" ", 3)
        if head[0] in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(" ".join(head[:3]))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with sessions.begin() as session:
            await sync_street(session, load_street(STREET_FILE))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    touched = [w for w in writes if any(t in w for t in ("staff_identities", "grids", "categories"))]
    assert touched == [], writes
    assert await accounts(sessions) == before


async def test_accounts_follow_the_file(sessions: async_sessionmaker[AsyncSession]) -> None:
    street = load_street(STREET_FILE)
    async with sessions.begin() as session:
        await sync_street(session, street)
        # hzhang's config account was found unreachable; an invite code bound another account
        config = await session.get(StaffIdentity, ("telegram", "7001"))
        assert config is not None and config.source == "config"
        config.unreachable_since = MARK
        session.add(StaffIdentity(channel="telegram", external_id="4242", staff_id="hli", source="invite"))
    # jwang's telegram account (8001) is bound by invite to jli; the file names it for jwang again,
    # and hzhang's account leaves the file
    data = load_yaml(STREET_FILE.read_text(encoding="utf-8"))
    hpl = data["communities"][0]
    hpl["staff"][0] = {k: v for k, v in hpl["staff"][0].items() if k != "telegram"}
    async with sessions.begin() as session:
        config = await session.get(StaffIdentity, ("telegram", "8001"))
        assert config is not None
        await session.delete(config)
        await session.flush()
        session.add(
            StaffIdentity(
                channel="telegram",
                external_id="8001",
                staff_id="jli",
                source="invite",
                unreachable_since=MARK,
            )
        )
    async with sessions.begin() as session:
        await sync_street(session, parse_street(data, STREET_FILE.parent))
    found = await accounts(sessions)
    assert ("telegram", "7001") not in found  # a config account the file no longer names
    assert found[("telegram", "4242")] == ("hli", "invite", None)  # bound by invite: stays
    staff_id, source, mark = found[("telegram", "8001")]  # named by the file again: rebound, mark kept
    assert (staff_id, source) == ("jwang", "config") and mark is not None
    assert found[("console", "hzhang")] == ("hzhang", "config", None)


async def test_a_config_account_loaded_again_loses_its_unreachable_mark(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    street = load_street(STREET_FILE)
    async with sessions.begin() as session:
        await sync_street(session, street)
        config = await session.get(StaffIdentity, ("telegram", "7001"))
        assert config is not None
        config.unreachable_since = MARK
    async with sessions.begin() as session:
        await sync_street(session, load_street(STREET_FILE))
    assert (await accounts(sessions))[("telegram", "7001")] == ("hzhang", "config", None)
