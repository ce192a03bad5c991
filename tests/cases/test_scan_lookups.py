"""The escalation scan looks up the accounts of everyone a batch's rungs may tell in one query, not one
per rung (each look-up also flushed the batch's pending rows): its cost in statements does not grow
with the number of staff a district has, and everyone is still told."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.cases.deadlines import scan
from handlers.community.store import sync_street
from handlers.community.street import load_street
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from tests.support.chat import Chat, Clock, RecordingSender

STREET_FILE = Path(__file__).parents[1] / "data" / "street" / "heping_street.yaml"


async def test_one_lookup_of_staff_accounts_per_batch(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    street = load_street(STREET_FILE)
    async with sessions.begin() as session:
        await sync_street(session, street)
    services = Services(
        sessions=sessions,
        community=street.communities[0],
        street=street,
        channels=frozenset({"console", "telegram"}),
        clock=clock,
    )
    chat = Chat(services, conversation(services), RecordingSender("console"), clock)
    await chat.send("甲", "和平里3号楼楼道里全是小广告")
    await chat.send("乙", "和平里5号楼门口垃圾桶满了")
    await chat.send("丙", "锦绣园3号楼楼道里全是小广告")
    await chat.send("丁", "锦绣园2号楼下水道堵了")
    await chat.flush()
    clock.advance(days=3)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await scan(services) == 4
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    lookups = [s for s in statements if s.startswith("SELECT") and "FROM staff_identities" in s]
    assert len(lookups) == 1, lookups
    out = await chat.flush()
    assert len([t for t in chat.to(out, "hli") if "HPL-" in t]) == 2  # each community's own leader
    assert len([t for t in chat.to(out, "jli") if "JXY-" in t]) == 2
    assert not [t for t in chat.to(out, "hli") if "JXY-" in t]
