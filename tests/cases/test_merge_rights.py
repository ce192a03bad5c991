"""Merging a case into another (``重复 2 1``) moves its reporter and followers onto the original, so
the actor must be allowed to act on both cases: a worker cannot merge into another grid's case; an
admin can (SQLite and PostgreSQL, through the real conversation)."""

from __future__ import annotations

from handlers.cases.models import Case, CaseStatus
from tests.support.chat import Chat


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_worker_cannot_merge_into_another_grids_case(chat: Chat) -> None:
    await chat.send("小王", "3号楼门口垃圾没人收")  # #1, G1: zhang
    await chat.send("小李", "8号楼垃圾桶满了")  # #2, G2: zhao or sun
    assert (await case(chat, 2)).grid_code == "G2"

    refused = chat.to(await chat.send("zhang", "重复 1 2"), "zhang")
    assert refused and "无权" in refused[0] and "#2" in refused[0]
    kept = await case(chat, 1)
    assert kept.status != CaseStatus.CLOSED and kept.duplicate_of is None

    out = await chat.send("chen", "重复 1 2")
    assert any("合并" in t for t in chat.to(out, "chen"))
    merged = await case(chat, 1)
    assert merged.status == CaseStatus.CLOSED and merged.duplicate_of == 2


async def test_worker_may_merge_within_their_own_grid(chat: Chat) -> None:
    await chat.send("小王", "3号楼门口垃圾没人收")
    await chat.send("小李", "3号楼垃圾堆了好几天")
    out = await chat.send("zhang", "重复 2 1")
    assert any("合并" in t for t in chat.to(out, "zhang"))
    assert (await case(chat, 2)).duplicate_of == 1
