"""Broadcasts end to end: the real ``outreach-bot serve`` process against the fake Telegram Bot API and
the fake WeChat API on 127.0.0.1, with twelve hundred residents, on SQLite and on PostgreSQL.

An admin drafts a broadcast in Telegram ("广播 …"), presses 确认发送, and the server sends it to 450
Telegram and 750 WeChat residents. Half-way through (at a random number of Telegram deliveries) the
server is killed with SIGKILL at the worst moment: the fake Telegram has just received a message and
the bot has not heard back. Then it is started again and must finish the broadcast: every resident
reached exactly once, none skipped. Checked on the fakes' side: Telegram's observed rate (any
one-second window, every chat's spacing), 429s honoured (the retry comes no sooner than
``retry_after``), blocked users marked and counted, WeChat users outside the 48-hour window reached by
template message or counted as unreachable, progress messages and the final report in the admin's
chat, ``outreach-bot broadcasts``.

The message in flight at the kill cannot be known delivered or not (neither API takes an idempotency
key): the outbox gives it up as ``uncertain`` rather than send it twice, and the report counts and
lists it. Here the fake did receive it, so its resident has it once; the other rows the dead process
had claimed are sent after the restart. Every wait polls a condition until a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bench.support import fake_wechat as fw
from bench.support import wechat_payloads as wx
from bench.support.fake_telegram import SEND_METHODS, TOKEN, Call, FakeTelegram
from bench.support.live_server import command, free_port
from bench.support.waiting import wait_until
from handlers.broadcasts import wechat_mass
from handlers.broadcasts.models import Broadcast, ResidentTag, WeChatMassReceipt
from handlers.community.model import load_community
from handlers.community.store import sync_community
from handlers.kernel.outbox import UNCERTAIN
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import OutboxMessage, Resident, ResidentIdentity, utcnow
from tests.support.db import database_of

ROOT = Path(__file__).resolve().parents[2]
# Enough that the broadcast runs at Telegram's limit for many seconds, with progress messages on the
# way and a kill half-way through; more would only make the test longer.
TELEGRAM_RESIDENTS = 450
WECHAT_RESIDENTS = 750
OUT_OF_WINDOW = 30  # WeChat residents who last wrote 5 days ago: a template message reaches them
UNSUBSCRIBED = 3  # … of whom these unfollowed the account (the template is refused with 43004)
BLOCKED = 3  # Telegram residents who blocked the bot (403)
RATE_LIMITED = 5  # Telegram residents whose first send gets 429 retry_after=2
VOLUNTEERS = 20
EAST_GATE = 60  # WeChat residents tagged east_gate: the first OUT_OF_WINDOW of them by 群发
CHEN = 100009  # the admin's Telegram id
NOTICE = "本周六上午9点社区卫生服务站免费测血压"
JITTER = 0.1  # seconds of arrival jitter tolerated between our limiter and the fake's clock (a thread)

COMMUNITY = """
community:
  name: 幸福社区
  timezone: Asia/Shanghai
grids:
  - code: G1
    name: 第一网格
    buildings: ["1-6"]
    places: [东门]
    leader: li
    workers:
      - {staff: zhang, categories: [poster, garbage, mosquito, pests, sewage]}
staff:
  - {id: zhang, name: 张伟, role: worker}
  - {id: li, name: 李娜, role: leader}
  - {id: chen, name: 陈静, role: admin, telegram: 100009}
categories: []
"""


@dataclass
class TimedTelegram(FakeTelegram):
    """The fake Bot API, also noting when each send arrived (monotonic seconds); ``kill_at(n, …)`` runs
    a hook when the n-th notice arrives, before Telegram answers it."""

    stamps: list[tuple[float, Call]] = field(default_factory=list)
    notices: int = 0
    _kill: tuple[int, Callable[[Call], None]] | None = None

    def kill_at(self, n: int, hook: Callable[[Call], None]) -> None:
        with self._lock:
            self._kill = (n, hook)

    def _refusal(self, call: Call) -> Any:
        refused = super()._refusal(call)
        if call.method in SEND_METHODS:
            with self._lock:
                self.stamps.append((time.monotonic(), call))
                hook = None
                if NOTICE in call.text and refused is None:  # a notice Telegram accepts
                    self.notices += 1
                    if self._kill is not None and self.notices == self._kill[0]:
                        hook, self._kill = self._kill[1], None
            if hook is not None:
                hook(call)
        return refused

    def timeline(self) -> list[tuple[float, Call]]:
        with self._lock:
            return list(self.stamps)


def tg_chat(i: int) -> int:
    return 7_000_000 + i


def wx_openid(i: int) -> str:
    return f"oBC{i:06d}"


async def seed(db_url: str, config: Path) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            await sync_community(session, load_community(config))
        now = utcnow()
        async with sessions.begin() as session:
            residents = [
                Resident(display_name=f"居民{i}") for i in range(TELEGRAM_RESIDENTS + WECHAT_RESIDENTS)
            ]
            session.add_all(residents)
            await session.flush()
            for i, r in enumerate(residents[:TELEGRAM_RESIDENTS]):
                session.add(
                    ResidentIdentity(
                        channel="telegram",
                        external_id=str(tg_chat(i)),
                        resident_id=r.id,
                        last_inbound_at=now - timedelta(days=1),
                    )
                )
                if i < VOLUNTEERS:
                    session.add(ResidentTag(resident_id=r.id, tag="volunteers"))
            for i, r in enumerate(residents[TELEGRAM_RESIDENTS:]):
                if i < EAST_GATE:
                    session.add(ResidentTag(resident_id=r.id, tag="east_gate"))
                last = now - (timedelta(days=5) if i < OUT_OF_WINDOW else timedelta(hours=1))
                session.add(
                    ResidentIdentity(
                        channel="wechat", external_id=wx_openid(i), resident_id=r.id, last_inbound_at=last
                    )
                )
    finally:
        await engine.dispose()


@dataclass
class Deployment:
    folder: Path
    env: dict[str, str]
    telegram: TimedTelegram
    wechat: fw.FakeWeChat
    db_url: str
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    logs: list[Path] = field(default_factory=list)
    engine: Any = None

    async def start(self) -> None:
        self.port = free_port()
        log = self.folder / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.folder,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        async def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
            async with httpx.AsyncClient(timeout=5) as http:
                try:
                    return (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

        await wait_until(healthy, "the server to start", timeout=90)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    async def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "OUTREACH_LOG_LEVEL": "WARNING"}
        proc = await asyncio.create_subprocess_exec(
            *command(),
            *args,
            env=env,
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return subprocess.CompletedProcess(list(args), proc.returncode or 0, out, err)

    async def broadcast(self, broadcast_id: int) -> Broadcast | None:
        if self.engine is None:
            self.engine = create_engine(self.db_url)
        async with session_factory(self.engine)() as session:
            return await session.get(Broadcast, broadcast_id)

    async def uncertain(self, broadcast_id: int) -> dict[str, list[str]]:
        """The recipients of the broadcast's rows given up as uncertain, by channel."""
        if self.engine is None:
            self.engine = create_engine(self.db_url)
        found: dict[str, list[str]] = {"telegram": [], "wechat": []}
        async with session_factory(self.engine)() as session:
            rows = await session.execute(
                select(OutboxMessage.channel, OutboxMessage.recipient).where(
                    OutboxMessage.dedup_key.like(f"bc:{broadcast_id}:%"),
                    OutboxMessage.last_error == UNCERTAIN,
                )
            )
            for channel, recipient in rows:
                found.setdefault(channel, []).append(recipient)
        return found


@pytest.fixture(scope="module")
async def deployment(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    folder = tmp_path_factory.mktemp("broadcast-e2e")
    config = folder / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    async with database_of(backend, folder, "outreach_bc") as db_url:
        async for d in _deploy(folder, config, db_url):
            yield d


async def _deploy(folder: Path, config: Path, db_url: str) -> AsyncIterator[Deployment]:
    await seed(db_url, config)
    telegram = TimedTelegram().start()
    wechat = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    for i in range(BLOCKED):
        telegram.block(tg_chat(100 + i))
    for i in range(RATE_LIMITED):
        telegram.rate_limit(tg_chat(200 + i), retry_after=2, times=1)
    for i in range(UNSUBSCRIBED):
        wechat.fail(fw.TEMPLATE, 43004, openid=wx_openid(i), times=None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATABASE_URL=db_url,
        OUTREACH_CONFIG=str(config),
        OUTREACH_LOG_LEVEL="INFO",
        OUTREACH_TELEGRAM_TOKEN=TOKEN,
        OUTREACH_TELEGRAM_API_URL=telegram.api_url,
        OUTREACH_WECHAT_TOKEN=wx.TOKEN,
        OUTREACH_WECHAT_APP_ID=wx.APP_ID,
        OUTREACH_WECHAT_APP_SECRET=wx.APP_SECRET,
        OUTREACH_WECHAT_AES_KEY=wx.AES_KEY,
        OUTREACH_WECHAT_API_URL=wechat.url,
        OUTREACH_WECHAT_TEMPLATES=json.dumps({"broadcast": "TPL_NOTICE"}),
        OUTREACH_BROADCAST_JOB_SECONDS="1",
        OUTREACH_BROADCAST_PROGRESS_SECONDS="5",
        OUTREACH_BROADCAST_BATCH_SIZE="200",
        OUTREACH_OUTBOX_LEASE_SECONDS="5",  # a killed process's claimed rows come back after 5 s
        PYTHONPATH=str(ROOT),
    )
    d = Deployment(folder, env, telegram, wechat, db_url)
    try:
        yield d
    finally:
        d.stop()
        if d.engine is not None:
            await d.engine.dispose()
        telegram.stop()
        wechat.stop()


def delivered_tg(telegram: TimedTelegram, needle: str) -> Counter[int | str | None]:
    """Residents who received a message containing ``needle`` (the admin's own drafts left out)."""
    return Counter(
        c.chat_id
        for c in telegram.all_calls("sendMessage")
        if c.ok and needle in c.text and c.chat_id != CHEN
    )


def delivered_wx(wechat: fw.FakeWeChat, needle: str) -> Counter[str | None]:
    custom = [c.touser for c in wechat.sent(fw.CUSTOM) if needle in (c.text or "")]
    template = [c.touser for c in wechat.sent(fw.TEMPLATE)]
    return Counter([*custom, *template])


def last_before(calls: list[Any]) -> Any:
    return calls[-1] if calls else None


async def test_broadcast_survives_kill_9_at_the_platforms_limits(deployment: Deployment) -> None:
    d = deployment
    tg, wxf = d.telegram, d.wechat
    await d.start()
    # The admin drafts in Telegram and confirms with the button.
    tg.push(tg.message(CHEN, f"广播 全体 {NOTICE}"))
    draft: Call = await wait_until(
        lambda: next((c for c in tg.sent(CHEN) if "广播草稿 #1" in c.text), None), "the draft"
    )
    assert f"共 {TELEGRAM_RESIDENTS + WECHAT_RESIDENTS} 人" in draft.text
    assert [b["text"] for b in draft.buttons] == ["确认发送", "取消"]
    assert not delivered_tg(tg, NOTICE)  # nothing before confirmation
    tg.push(tg.button(CHEN, draft.buttons[0]["callback_data"], draft.result))
    await wait_until(lambda: any("正在发送" in c.text for c in tg.sent(CHEN)), "the confirmation")

    # Kill -9 half-way, at the worst moment: Telegram has the message, the bot has not heard back.
    threshold = random.randint(120, TELEGRAM_RESIDENTS // 2)
    in_flight: list[Call] = []
    process = d.process
    assert process is not None

    def kill(call: Call) -> None:
        in_flight.append(call)
        os.kill(process.pid, signal.SIGKILL)

    tg.kill_at(threshold, kill)
    # Polled twice a second: the fake Telegram is a thread of this process and stamps arrivals, so the
    # test keeps its own work light while messages flow.
    await wait_until(lambda: process.poll() is not None, f"the kill at delivery {threshold}", 120, 0.5)
    killed_at = time.monotonic()
    at_kill = (sum(delivered_tg(tg, NOTICE).values()), sum(delivered_wx(wxf, NOTICE).values()))
    await d.start()

    async def done() -> Broadcast | None:
        b = await d.broadcast(1)
        return b if b is not None and b.status == "done" else None

    finished = await wait_until(done, "the broadcast to finish after the restart", 150, 0.5)
    uncertain = await d.uncertain(1)
    print(f"\nkill -9 after {at_kill[0]} Telegram / {at_kill[1]} WeChat deliveries; uncertain: {uncertain}")

    # Telegram: everyone exactly once (the blocked ones never), including the message in flight at the
    # kill, which is not sent again but reported as uncertain.
    tg_got = delivered_tg(tg, NOTICE)
    blocked = {tg_chat(100 + i) for i in range(BLOCKED)}
    expected_tg = {tg_chat(i) for i in range(TELEGRAM_RESIDENTS)} - blocked
    assert set(tg_got) == expected_tg, f"missing {sorted(expected_tg - set(tg_got))[:10]}"
    assert {chat: n for chat, n in tg_got.items() if n > 1} == {}
    assert [c.chat_id for c in in_flight] == [int(r) for r in uncertain["telegram"]]
    # WeChat: in-window residents by customer-service message, the others by template, unfollowed ones
    # not; exactly once. A WeChat request may have been in flight too: if WeChat got it, its resident has
    # it once; if the kill came first, that one resident is the one listed as uncertain.
    wx_got = delivered_wx(wxf, NOTICE)
    unsubscribed = {wx_openid(i) for i in range(UNSUBSCRIBED)}
    expected_wx = {wx_openid(i) for i in range(WECHAT_RESIDENTS)} - unsubscribed
    assert len(uncertain["wechat"]) <= 1
    assert expected_wx - set(wx_got) <= set(uncertain["wechat"]), sorted(expected_wx - set(wx_got))[:10]
    assert set(wx_got) <= expected_wx
    out_of_window = {wx_openid(i) for i in range(UNSUBSCRIBED, OUT_OF_WINDOW)}
    assert {c.touser for c in wxf.sent(fw.TEMPLATE)} <= out_of_window
    assert {openid: n for openid, n in wx_got.items() if n > 1} == {}

    timeline = tg.timeline()
    times = [t for t, _ in timeline]
    # Our limiter allows 30 in any second; arrival at the fake varies by up to JITTER, so any window of
    # 1 - JITTER seconds on the fake's clock must hold at most 30 (a full second may show one more).
    strict = max(sum(1 for u in times[i:] if u < t + 1.0 - JITTER) for i, t in enumerate(times))
    busiest = max(sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times))
    assert strict <= 30, strict
    per_chat: dict[Any, list[float]] = {}
    for t, call in timeline:
        per_chat.setdefault(call.chat_id, []).append(t)
    closest, chat = min(
        ((b - a, c) for c, ts in per_chat.items() for a, b in itertools.pairwise(ts)), default=(9.0, None)
    )
    assert closest >= 1.0 - JITTER, (closest, chat)
    # 429: the retry came no sooner than retry_after (2 s).
    for i in range(RATE_LIMITED):
        attempts = [(t, c) for t, c in timeline if c.chat_id == tg_chat(200 + i)]
        assert attempts[0][1].status == 429 and attempts[1][1].ok
        assert attempts[1][0] - attempts[0][0] >= 2.0 - JITTER
    sending = [t for t, c in timeline if NOTICE in c.text and c.ok and t < killed_at]
    print(
        f"\nTelegram: busiest second {busiest} messages; achieved "
        f"{len(sending) / max(sending[-1] - sending[0], 1e-9):.1f}/s before the kill"
    )

    # The report, in the database and in the admin's chat; progress messages on the way.
    report = finished.report
    n_uncertain = len(uncertain["telegram"]) + len(uncertain["wechat"])
    assert report["total"] == TELEGRAM_RESIDENTS + WECHAT_RESIDENTS
    assert report["sent"] == TELEGRAM_RESIDENTS + WECHAT_RESIDENTS - BLOCKED - UNSUBSCRIBED - n_uncertain
    assert report["by_reason"] == {"blocked": BLOCKED, "unsubscribed": UNSUBSCRIBED, "uncertain": n_uncertain}
    assert report["unreachable"] == BLOCKED + UNSUBSCRIBED + n_uncertain
    admin = [c.text for c in tg.sent(CHEN)]
    assert any("发送中" in t for t in admin), admin
    final = await wait_until(
        lambda: next((t for t in tg_texts(tg, CHEN) if "发送完毕" in t), None), "the report"
    )
    assert f"未送达 {BLOCKED + UNSUBSCRIBED + n_uncertain} 人" in final
    assert "无法确认是否收到" in final
    assert not re.search(r"居民\d", final + draft.text)  # counts, never names

    # The command line: the list, the report, who was not reached (numbers, never names).
    listed = await d.cli("broadcasts", "--format", "json")
    assert listed.returncode == 0, listed.stderr.decode()
    # (the outreach calendar may have drafted notices of its own, awaiting approval: not ours)
    item = next(i for i in map(json.loads, listed.stdout.decode().splitlines()) if i["id"] == 1)
    assert (item["id"], item["status"], item["source"], item["sent"]) == (1, "done", "chat", report["sent"])
    unreached = await d.cli("broadcasts", "--unreached", "1", "--format", "json")
    rows = [json.loads(line) for line in unreached.stdout.decode().splitlines()]
    assert sorted(r["reason"] for r in rows) == sorted(
        ["blocked"] * BLOCKED + ["unsubscribed"] * UNSUBSCRIBED + ["uncertain"] * n_uncertain
    )
    assert not any(re.search(r"居民\d", json.dumps(r, ensure_ascii=False)) for r in rows)


def tg_texts(tg: FakeTelegram, chat: int) -> list[str]:
    return [c.text for c in tg.sent(chat)]


async def test_cli_broadcast_follows_the_server_with_a_progress_bar(deployment: Deployment) -> None:
    d = deployment
    if d.process is None or d.process.poll() is not None:
        await d.start()
    result = await d.cli("broadcast", "--text", "志愿者周日上午8点东门集合", "--tag", "volunteers", "--yes")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    out, err = result.stdout.decode(), result.stderr.decode()
    assert f"共 {VOLUNTEERS} 人" in out and "发送完毕" in out and f"送达 {VOLUNTEERS} 人" in out
    number = re.search(r"#(\d+)", out)
    assert number, out
    assert f"#{number.group(1)}" in err and "100%" in err  # the progress line
    got = delivered_tg(d.telegram, "志愿者周日")
    assert got == Counter({tg_chat(i): 1 for i in range(VOLUNTEERS)})


async def test_wechat_mass_send_through_the_server_with_the_monthly_quota(deployment: Deployment) -> None:
    """A 服务号 that may mass-send: residents outside the 48-hour window get the notice by 群发 (one
    call, their openids), the others by customer-service message; the confirmation shows the monthly
    quota; a resident whose quota is spent is counted and listed, not sent to."""
    d = deployment
    d.stop()
    d.env["OUTREACH_BROADCAST_WECHAT_MASS"] = "true"
    await d.start()
    spent = wx_openid(5)
    if d.engine is None:
        d.engine = create_engine(d.db_url)
    async with session_factory(d.engine).begin() as session:
        session.add(WeChatMassReceipt(openid=spent, month=wechat_mass.month_of(utcnow()), count=4))
    text = "周三上午东门停水，请提前储水"
    result = await d.cli("broadcast", "--text", text, "--tag", "east_gate", "--yes")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    out = result.stdout.decode()
    assert f"共 {EAST_GATE} 人" in out and "将通过群发送达" in out and "1 人本月次数已用完" in out
    number = int(re.search(r"#(\d+)", out).group(1))  # type: ignore[union-attr]

    mass = [c for c in d.wechat.sent(fw.MASS) if text in c.body["text"]["content"]]
    by_mass = Counter(openid for c in mass for openid in c.body["touser"])
    by_cs = Counter(c.touser for c in d.wechat.sent(fw.CUSTOM) if text in (c.text or ""))
    templates = [json.dumps(c.body, ensure_ascii=False) for c in d.wechat.sent(fw.TEMPLATE)]
    by_template = [body for body in templates if text[:6] in body]
    assert by_template == []  # mass send took the place of template messages
    outside = {wx_openid(i) for i in range(OUT_OF_WINDOW)} - {spent}
    # (the first test may have found that the first few unfollowed the account: WeChat said so)
    assert outside - {wx_openid(i) for i in range(UNSUBSCRIBED)} <= set(by_mass) <= outside
    assert set(by_cs) == {wx_openid(i) for i in range(OUT_OF_WINDOW, EAST_GATE)}
    assert max([*by_mass.values(), *by_cs.values()]) == 1
    assert all(d.wechat.mass_received[o] >= 1 for o in by_mass)
    finished = await d.broadcast(number)
    assert finished is not None and finished.status == "done"
    assert finished.report["by_reason"].get("mass_quota") == 1
    unreached = await d.cli("broadcasts", "--unreached", str(number), "--format", "json")
    rows = [json.loads(line) for line in unreached.stdout.decode().splitlines()]
    assert [r["recipient"] for r in rows if r["reason"] == "mass_quota"] == [spent]
