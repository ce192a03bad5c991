"""One-time codes from the user's side (SQLite and PostgreSQL): guessing guardian join codes and staff
invite codes locks the guesser out for an hour (even the right code is refused meanwhile) without
touching the real code; the lockout is counted in the database, so a second process sees it; 我的孩子
shows the code already handed out, 新邀请码 replaces it; a malformed code gets a clear answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from handlers.feature_set import conversation
from handlers.kernel import code_guard
from handlers.kernel.context import Services
from handlers.kernel.conversation import Conversation
from handlers.kernel.inbound import Inbound
from handlers.reminders.models import Child
from storage.database import create_engine, session_factory
from tests.reminders.test_reminders_chat import enrol
from tests.support.chat import Chat, Clock

WRONG = ["ABCD2345", "ZZZZ9999", "QWER7777", "HJKL3456", "MNPQ8888", "RSTU2222"]
CODE = re.compile(r"[A-Z0-9]{8}")


def locked(reply: str) -> bool:
    return "错误次数过多" in reply


async def guardian_code(chat: Chat) -> str:
    _, code = await enrol(chat, "小王", "豆豆", "2026-11-16")
    assert code is not None
    return code


async def invite_code(chat: Chat, staff_id: str = "wang") -> str:
    reply = chat.to(await chat.send("chen", f"邀请 {staff_id}"), "chen")[0]
    found = re.search(r"绑定 ([A-Z0-9]{8})", reply)
    assert found, reply
    return found.group(1)


# -- code shape --------------------------------------------------------------------------------------


async def test_join_and_invite_codes_are_eight_unambiguous_characters(chat: Chat) -> None:
    codes = [await guardian_code(chat), await invite_code(chat)]
    for code in codes:
        assert len(code) == 8 and set(code) <= set(code_guard.ALPHABET)
        assert not set(code) & set("01OI") and any(c.isalpha() for c in code)


# -- join codes --------------------------------------------------------------------------------------


async def test_guessing_join_codes_locks_the_guesser_for_an_hour(chat: Chat, clock: Clock) -> None:
    code = await guardian_code(chat)
    for guess in WRONG[:4]:
        reply = chat.to(await chat.send("小李", f"加入 {guess}"), "小李")[0]
        assert "邀请码无效或已过期" in reply and not locked(reply)
    fifth = chat.to(await chat.send("小李", f"加入 {WRONG[4]}"), "小李")[0]
    assert "邀请码无效或已过期" in fifth and locked(fifth)
    assert "11月23日 10:" in fifth  # when to try again: an hour after 09:3x, in local time

    clock.advance(minutes=30)
    refused = chat.to(await chat.send("小李", f"加入 {code}"), "小李")[0]
    assert locked(refused) and "豆豆" not in refused  # the right code tells nothing while locked

    # The real code was not harmed by the guessing: someone else joins with it.
    out = chat.to(await chat.send("小张", f"加入 {code}"), "小张")[0]
    assert "豆豆" in out and "同意" in out


async def test_join_lockout_lifts_after_the_hour(chat: Chat, clock: Clock) -> None:
    code = await guardian_code(chat)
    for guess in WRONG[:5]:
        await chat.send("小李", f"加入 {guess}")
    clock.advance(minutes=59)
    assert locked(chat.to(await chat.send("小李", f"加入 {code}"), "小李")[0])
    clock.advance(minutes=2)
    out = chat.to(await chat.send("小李", f"加入 {code.lower()}"), "小李")[0]
    assert "豆豆" in out and "回复“同意”" in out
    assert "已加入" in chat.to(await chat.send("小李", "同意"), "小李")[0]


async def test_wrong_codes_spread_over_more_than_an_hour_do_not_lock(chat: Chat, clock: Clock) -> None:
    await guardian_code(chat)
    for guess in WRONG[:4]:
        await chat.send("小李", f"加入 {guess}")
    clock.advance(minutes=61)
    for guess in WRONG[:4]:
        reply = chat.to(await chat.send("小李", f"加入 {guess}"), "小李")[0]
        assert not locked(reply)
    assert locked(chat.to(await chat.send("小李", f"加入 {WRONG[5]}"), "小李")[0])


async def test_my_children_repeats_the_valid_code_and_new_code_replaces_it(chat: Chat, clock: Clock) -> None:
    code = await guardian_code(chat)
    again = chat.to(await chat.send("小王", "我的孩子"), "小王")[0]
    assert f"加入 {code}" in again and "11月30日" in again  # valid 7 days from enrolment
    clock.advance(days=1)
    assert f"加入 {code}" in chat.to(await chat.send("小王", "我的孩子"), "小王")[0]
    assert "新邀请码" in again  # the help line names the word

    renewed = chat.to(await chat.send("小王", "新邀请码"), "小王")[0]
    found = re.search(r"加入 ([A-Z0-9]{8})", renewed)
    assert found and found.group(1) != code and "作废" in renewed
    assert "无效或已过期" in chat.to(await chat.send("小李", f"加入 {code}"), "小李")[0]
    assert "豆豆" in chat.to(await chat.send("小张", f"加入 {found.group(1)}"), "小张")[0]


async def test_expired_code_is_replaced_on_my_children(chat: Chat, clock: Clock) -> None:
    code = await guardian_code(chat)
    clock.advance(days=8)
    shown = chat.to(await chat.send("小王", "我的孩子"), "小王")[0]
    fresh = re.search(r"加入 ([A-Z0-9]{8})", shown)
    assert fresh and fresh.group(1) != code


async def test_a_short_code_gets_a_clear_answer(chat: Chat) -> None:
    await guardian_code(chat)
    assert "邀请码无效或已过期" in chat.to(await chat.send("小李", "加入 ABC"), "小李")[0]
    assert "邀请码无效" in chat.to(await chat.send("小赵", "绑定 ABC"), "小赵")[0]
    asked = chat.to(await chat.send("小赵", "绑定"), "小赵")[0]
    assert "绑定 邀请码" in asked


# -- invite codes ------------------------------------------------------------------------------------


async def test_guessing_invite_codes_locks_the_guesser(chat: Chat, clock: Clock) -> None:
    code = await invite_code(chat)
    for guess in WRONG[:4]:
        reply = chat.to(await chat.send("新手机", f"绑定 {guess}"), "新手机")[0]
        assert "邀请码无效" in reply and not locked(reply)
    assert locked(chat.to(await chat.send("新手机", f"绑定 {WRONG[4]}"), "新手机")[0])
    refused = chat.to(await chat.send("新手机", f"绑定 {code}"), "新手机")[0]
    assert locked(refused) and "绑定成功" not in refused
    assert "目前没有" not in chat.to(await chat.send("新手机", "任务"), "新手机")[0]  # still no staff

    clock.advance(hours=1, minutes=1)
    assert "绑定成功" in chat.to(await chat.send("新手机", f"绑定 {code}"), "新手机")[0]


async def test_join_and_invite_guesses_share_one_budget(chat: Chat) -> None:
    await guardian_code(chat)
    for guess in WRONG[:3]:
        await chat.send("小李", f"加入 {guess}")
    assert not locked(chat.to(await chat.send("小李", f"绑定 {WRONG[3]}"), "小李")[0])
    assert locked(chat.to(await chat.send("小李", f"绑定 {WRONG[4]}"), "小李")[0])
    assert locked(chat.to(await chat.send("小李", f"加入 {WRONG[5]}"), "小李")[0])


# -- several processes -------------------------------------------------------------------------------


@pytest.fixture
async def second_process(chat: Chat, db_url: str) -> AsyncIterator[Conversation]:
    """Another server process on the same database: its own engine and conversation."""
    engine = create_engine(db_url)
    services = chat.services
    other = Services(
        sessions=session_factory(engine),
        community=services.community,
        channels=services.channels,
        clock=services.clock,
    )
    yield conversation(other)
    await engine.dispose()


async def test_the_count_is_shared_by_processes(chat: Chat, second_process: Conversation) -> None:
    code = await guardian_code(chat)
    for guess in WRONG[:3]:
        await chat.send("小李", f"加入 {guess}")
    for guess in WRONG[3:5]:
        await second_process.handle(Inbound(channel="console", sender="小李", text=f"加入 {guess}"))
    replies = chat.to(await chat.flush(), "小李")
    assert locked(replies[-1])
    await second_process.handle(Inbound(channel="console", sender="小李", text=f"加入 {code}"))
    assert locked(chat.to(await chat.flush(), "小李")[-1])


async def test_parallel_guesses_are_counted_one_after_the_other(
    chat: Chat, second_process: Conversation
) -> None:
    await guardian_code(chat)
    await chat.send("小李", "我的编号")  # known already: a first message's identity row is another race
    guesses = [f"WXYZ{n:04d}".replace("0", "2").replace("1", "3") for n in range(8)]
    await asyncio.gather(
        *(
            (second_process if i % 2 else chat.conversation).handle(
                Inbound(channel="console", sender="小李", text=f"加入 {guess}")
            )
            for i, guess in enumerate(guesses)
        )
    )
    replies = chat.to(await chat.flush(), "小李")
    assert len(replies) == 8, replies
    # Exactly five codes were checked: four plain refusals, the fifth starts the lockout, the rest
    # were not looked at.
    assert sum(not locked(r) for r in replies) == 4, replies
    assert sum("无效或已过期" in r and locked(r) for r in replies) == 1
    assert sum("无效" not in r and locked(r) for r in replies) == 3


async def test_an_all_digit_code_handed_out_before_the_change_still_works(chat: Chat) -> None:
    await guardian_code(chat)
    async with chat.services.sessions.begin() as session:
        child = (await session.scalars(select(Child))).one()
        child.join_code = "12345678"  # the old format, as an upgraded database holds it
    out = chat.to(await chat.send("小李", "关注 12345678"), "小李")[0]
    assert "豆豆" in out and "回复“同意”" in out
