"""Personal data seen from the user's side: what a grid worker's case card, a worker's and an admin's
``查看``, the ``tickets`` and Open311 exports, and the process's own log show of a resident's phone
number, ID number and health condition."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.channels.wechat.client import DatabaseTokenStore
from tests.community.test_community import BASE
from tests.support.chat import Chat
from tests.support.cli import run

PHONE = "13812345678"
ID_NUMBER = "110101199003071234"
REPORT = f"3号楼垃圾没人收 电话{PHONE} 我是孕妇"
MASKED_PHONE = "138****5678"


class Captured(logging.Handler):
    """Every record of every logger, formatted with its arguments, as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def all_logs() -> Iterator[Captured]:
    root = logging.getLogger()
    handler, level = Captured(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# -- logs ------------------------------------------------------------------------------------------------


async def test_a_turn_at_debug_logs_no_phone_id_number_or_token(chat: Chat, all_logs: Captured) -> None:
    out = await chat.send("小王", f"3号楼垃圾没人收 电话{PHONE} 身份证{ID_NUMBER}")
    assert chat.to(out, "zhang"), "the report reached the worker"
    await chat.send("zhang", "查看 1")
    token = "ACCESS_TOKEN_6d1f0e3a9b2c4d5e8f7a"
    store = DatabaseTokenStore(chat.services.sessions)
    now = chat.clock()
    assert await store.try_lock("wx", now)
    await store.put("wx", token, now + timedelta(hours=2), now)
    assert (await store.get("wx")) is not None

    logging.getLogger("handlers").debug("probe: DEBUG records are captured")
    logged = "\n".join(all_logs.lines)
    assert "probe: DEBUG records are captured" in logged, "DEBUG logging was on"
    for secret in (PHONE, ID_NUMBER, token, "12345678", "199003071234"):
        assert secret not in logged


# -- chat ------------------------------------------------------------------------------------------------


async def test_worker_card_masks_phone_and_health_words(chat: Chat) -> None:
    out = await chat.send("小王", REPORT)
    card = chat.to(out, "zhang")
    assert len(card) == 1
    assert MASKED_PHONE in card[0] and "垃圾没人收" in card[0]
    assert PHONE not in card[0] and "孕妇" not in card[0] and "【健康信息】" in card[0]


async def test_reopened_card_masks_the_residents_reason(chat: Chat) -> None:
    await chat.send("小王", "3号楼垃圾没人收")
    await chat.send("zhang", "完成 1 已清运")
    out = await chat.send("小王", f"不满意 1 还是很臭 我有哮喘 打{PHONE}")
    card = chat.to(out, "zhang")
    assert card and "重新打开" in card[0]
    assert MASKED_PHONE in card[0] and PHONE not in card[0] and "哮喘" not in card[0]


async def test_worker_view_is_masked_and_admin_view_is_full(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    await chat.send("小王", REPORT)
    worker = chat.to(await chat.send("zhang", "查看 1"), "zhang")
    assert MASKED_PHONE in worker[0] and PHONE not in worker[0] and "孕妇" not in worker[0]
    leader = chat.to(await chat.send("li", "查看 1"), "li")
    assert MASKED_PHONE in leader[0] and PHONE not in leader[0] and "孕妇" not in leader[0]

    with caplog.at_level(logging.INFO, logger="handlers.cases.staff_chat"):
        admin = chat.to(await chat.send("chen", "查看 1"), "chen")
    assert PHONE in admin[0] and "孕妇" in admin[0]
    assert any("chen" in r.getMessage() and "#1" in r.getMessage() for r in caplog.records)
    own = chat.to(await chat.send("小王", "查看 1"), "小王")  # the reporter reads their own words
    assert PHONE in own[0] and "孕妇" in own[0]


async def test_admins_triage_card_and_list_are_masked(chat: Chat) -> None:
    out = await chat.send("小王", f"88号楼路灯坏了 电话{PHONE} 家里有孕妇")  # in no grid: triage
    card = chat.to(out, "chen")
    assert card and "待分拣" in card[0]
    assert MASKED_PHONE in card[0] and PHONE not in card[0] and "孕妇" not in card[0]
    listing = chat.to(await chat.send("chen", "待分拣"), "chen")
    assert "#1" in listing[0] and PHONE not in listing[0] and "孕妇" not in listing[0]


# -- exports ---------------------------------------------------------------------------------------------


@pytest.fixture
def reported(write_yaml: Callable[[str], Path], db_env: dict[str, str]) -> dict[str, str]:
    assert run(["config", "load", str(write_yaml(BASE))], env=db_env).returncode == 0
    script = f"{REPORT} 身份证{ID_NUMBER}\n/as zhang\n完成 1 已清运，回访电话{PHONE}\n"
    demo = run(["demo"], script, env=db_env)
    assert demo.returncode == 0, demo.stderr.decode()
    return db_env


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'exports.db'}"}


def test_tickets_csv_and_json_are_masked(reported: dict[str, str]) -> None:
    result = run(["tickets", "--format", "csv"], env=reported)
    assert result.returncode == 0, result.stderr.decode()
    shown = result.stdout.decode("utf-8")
    row = next(csv.DictReader(io.StringIO(shown)))
    assert MASKED_PHONE in row["内容"] and "110***********1234" in row["内容"]
    assert "【健康信息】" in row["内容"] and MASKED_PHONE in row["处理说明"]
    assert PHONE not in shown and ID_NUMBER not in shown and "孕妇" not in shown

    as_json = run(["tickets"], env=reported).stdout.decode("utf-8")
    assert MASKED_PHONE in as_json
    assert PHONE not in as_json and ID_NUMBER not in as_json and "孕妇" not in as_json


def test_tickets_full_text_only_when_asked_and_says_so(reported: dict[str, str]) -> None:
    result = run(["tickets", "--format", "csv", "--full-text"], env=reported)
    assert result.returncode == 0, result.stderr.decode()
    row = next(csv.DictReader(io.StringIO(result.stdout.decode("utf-8"))))
    assert PHONE in row["内容"] and ID_NUMBER in row["内容"] and "孕妇" in row["内容"]
    assert "--full-text" in result.stderr.decode("utf-8")  # a warning line, not silence
    assert "Traceback" not in result.stderr.decode("utf-8")


def test_open311_export_is_masked(reported: dict[str, str]) -> None:
    result = run(["export", "--format", "open311"], env=reported)
    assert result.returncode == 0, result.stderr.decode()
    shown = result.stdout.decode("utf-8")
    request = json.loads(shown)[0]
    assert MASKED_PHONE in request["description"] and "垃圾没人收" in request["description"]
    assert MASKED_PHONE in request["status_notes"]
    assert PHONE not in shown and ID_NUMBER not in shown and "孕妇" not in shown
