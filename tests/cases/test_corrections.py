"""Staff corrections teach the classifier: 改类 in the chat, and the corpus export on the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.classify_models import LabelledExample
from handlers.cases.models import Case, CaseEvent
from handlers.community.model import Community, parse_community
from handlers.community.store import sync_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from tests.community.test_community import BASE
from tests.support.chat import Chat, Clock, RecordingSender
from tests.support.cli import run


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def examples(chat: Chat) -> list[tuple[str, str | None, str | None, int | None]]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(select(LabelledExample).order_by(LabelledExample.id))
        return [(e.source, e.previous, e.category, e.case_id) for e in rows]


async def test_admin_reclassifies_and_the_case_goes_to_the_right_worker(chat: Chat) -> None:
    await chat.send("小王", "2号楼门口垃圾堆成山了")
    assert (await case(chat, 1)).assignee_id == "zhang"
    out = await chat.send("chen", "改类 1 下水道")
    assert any(
        "#1" in t and "垃圾/乱堆放" in t and "下水道/污水" in t and "王芳" in t for t in chat.to(out, "chen")
    )
    assert any("【新案件】#1" in t for t in chat.to(out, "wang"))
    assert any("#1" in t and "王芳" in t for t in chat.to(out, "小王"))  # the handler changed: told
    stored = await case(chat, 1)
    assert (stored.category_code, stored.assignee_id) == ("sewage", "wang")
    async with chat.services.sessions() as session:
        event = await session.scalar(
            select(CaseEvent).where(CaseEvent.case_id == 1, CaseEvent.action == "reclassified")
        )
    assert (
        event is not None and event.actor_id == "chen" and event.data == {"from": "garbage", "to": "sewage"}
    )
    assert await examples(chat) == [("reclassify", "garbage", "sewage", 1)]


@pytest.mark.parametrize(
    ("word", "code"),
    [("pests", "pests"), ("病媒生物", "pests"), ("鼠蟑蝇", "pests"), ("老鼠", "pests"), ("小广告", "poster"),
     ("乱张贴/小广告", "poster"), ("积水", "mosquito"), ("污水", "sewage"), ("其他", "other")],
)  # fmt: skip
async def test_category_by_code_name_part_of_name_or_keyword(chat: Chat, word: str, code: str) -> None:
    await chat.send("小王", "8号楼门口垃圾桶满了")
    await chat.send("chen", f"改类 1 {word}")
    assert (await case(chat, 1)).category_code == code


async def test_category_by_code_and_same_worker_means_no_message_to_the_resident(chat: Chat) -> None:
    await chat.send("小王", "8号楼门口垃圾桶满了")  # G2: zhao handles every category
    out = await chat.send("chen", "改类 1 pests")
    assert (await case(chat, 1)).category_code == "pests"
    assert any("处理人不变" in t for t in chat.to(out, "chen"))
    assert chat.to(out, "小王") == []


async def test_triaged_case_named_by_category_is_dispatched(
    sessions: async_sessionmaker[AsyncSession], sample: Community, clock: Clock
) -> None:
    data = sample.config.model_dump(mode="json", exclude_defaults=True)
    del data["grids"][1]["leader"]  # G2 without a leader: nobody there takes a report of no category
    community = parse_community(data)
    async with sessions.begin() as session:
        await sync_community(session, community)
    services = Services(sessions=sessions, community=community, channels=frozenset({"console"}), clock=clock)
    chat = Chat(services, conversation(services), RecordingSender("console"), clock)
    out = await chat.send("小王", "8号楼的路灯坏了好几天了晚上很黑")
    assert (await case(chat, 1)).in_triage
    out = await chat.send("chen", "改类 1 垃圾")
    stored = await case(chat, 1)
    assert (stored.category_code, stored.in_triage, stored.assignee_id) == ("garbage", False, "zhao")
    assert any("#1" in t and "赵磊" in t for t in chat.to(out, "小王"))
    assert await examples(chat) == [("triage", "other", "garbage", 1)]


async def test_leader_may_reclassify_in_own_grid_only_and_workers_not_at_all(chat: Chat) -> None:
    await chat.send("小王", "2号楼门口垃圾堆成山了")
    out = await chat.send("zhang", "改类 1 下水道")
    assert chat.to(out, "zhang") and (await case(chat, 1)).category_code == "garbage"
    out = await chat.send("zhou", "改类 1 下水道")  # G3/G4's leader; the case is in G1
    assert (await case(chat, 1)).category_code == "garbage"
    out = await chat.send("li", "改类 1 下水道")
    assert (await case(chat, 1)).category_code == "sewage"
    assert any("王芳" in t for t in chat.to(out, "li"))


async def test_bad_input_gets_a_clear_reply(chat: Chat) -> None:
    await chat.send("小王", "2号楼门口垃圾堆成山了")
    out = await chat.send("chen", "改类 1 噪音")
    assert any("没有“噪音”这个类别" in t and "垃圾/乱堆放" in t for t in chat.to(out, "chen"))
    out = await chat.send("chen", "改类")
    assert any("用法" in t for t in chat.to(out, "chen"))
    out = await chat.send("chen", "改类 99 垃圾")
    assert any("#99" in t for t in chat.to(out, "chen"))
    out = await chat.send("chen", "改类 1 垃圾")
    assert any("已经是" in t for t in chat.to(out, "chen"))
    out = await chat.send("小王", "改类 1 下水道")
    assert any("工作人员" in t for t in chat.to(out, "小王"))
    assert (await case(chat, 1)).category_code == "garbage"
    assert await examples(chat) == []


def test_corrections_export_in_corpus_format_with_masked_text(
    write_yaml: Callable[[str], Path], db_env: dict[str, str]
) -> None:
    assert run(["config", "load", str(write_yaml(BASE))], env=db_env).returncode == 0
    empty = run(["classify", "corrections", "--format", "tsv"], env=db_env)
    assert empty.returncode == 0 and empty.stdout == b"" and "更正" in empty.stderr.decode()
    script = (
        "2号楼门口垃圾堆成山了,有事打我电话13812345678\n"
        "/as chen\n改类 1 下水道\n"
        "/as 小李\n3号楼楼道里煤气味很重\n"
        "/as chen\n改类 2 垃圾\n"
    )
    demo = run(["demo"], script, env=db_env)
    assert demo.returncode == 0, demo.stderr.decode()
    result = run(["classify", "corrections", "--format", "tsv"], env=db_env)
    assert result.returncode == 0, result.stderr.decode()
    rows = [line.split("\t") for line in result.stdout.decode("utf-8").splitlines()]
    assert rows == [
        ["sewage", "correction", "-", "2号楼门口垃圾堆成山了,有事打我电话138****5678"],
        ["garbage", "correction", "u", "3号楼楼道里煤气味很重"],
    ]
    assert "13812345678" not in result.stdout.decode("utf-8")


async def test_triaged_case_without_a_grid_stays_in_triage_with_a_hint(chat: Chat) -> None:
    await chat.send("小王", "88号楼后面有一大片积水")
    out = await chat.send("chen", "改类 1 垃圾")
    stored = await case(chat, 1)
    assert (stored.category_code, stored.in_triage, stored.assignee_id) == ("garbage", True, None)
    assert any("分派 1" in t for t in chat.to(out, "chen"))
    assert await examples(chat) == [("triage", "mosquito", "garbage", 1)]
