"""What residents really write, through the real conversation: each problem gets a case number, never
the canned "we mainly handle sanitation" answer; a keyword used as an insult gets no case."""

from __future__ import annotations

from sqlalchemy import select

from handlers.cases.models import Case
from tests.support.chat import Chat


async def cases(chat: Chat) -> list[Case]:
    async with chat.services.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def test_problems_written_every_way_get_a_case(chat: Chat) -> None:
    messages = [
        ("小王", "3 hao lou lou dao li quan shi xiao guang gao", "poster"),  # toneless pinyin
        ("小李", "The bins at building 5 are overflowing, rubbish everywhere", "garbage"),  # English
        ("小张", "5号楼厨房成日有曱甴爬来爬去", "pests"),  # Cantonese
        ("小赵", "9号楼门口下水到堵了臭死了", "sewage"),  # homophone typo
        ("小陈", "3号楼楼道里一股很浓的煤气味", "other"),  # danger, no sanitation category
        ("小刘", "4号楼门口的路灯坏了一个星期", "other"),  # outside the five categories
    ]
    for who, text, _ in messages:
        replies = chat.to(await chat.send(who, text), who)
        assert replies and not any("主要受理" in r for r in replies), (text, replies)
        assert any("#" in r for r in replies) or any("哪" in r for r in replies), (text, replies)
    stored = await cases(chat)
    assert [c.category_code for c in stored] == [category for _, _, category in messages]


async def test_an_insult_with_a_keyword_is_no_report(chat: Chat) -> None:
    replies = chat.to(await chat.send("小王", "你这个机器人真垃圾"), "小王")
    assert len(replies) == 1
    assert await cases(chat) == []
