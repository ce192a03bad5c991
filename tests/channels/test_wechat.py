"""The WeChat Official Account channel: callback defences, the AES scheme, delivery paths, the shared
access token, and end to end with the real ``outreach-bot serve`` process against a fake WeChat API.

Every callback is built exactly as WeChat sends it (``tests/wechat_payloads.py``); the fake API
(``tests/fake_wechat.py``) runs on 127.0.0.1 and records what the bot sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.support import fake_wechat as fw
from bench.support import wechat_payloads as wx
from bench.support.live_server import command, serve_process
from bench.support.scratch_db import IN_CI
from bench.support.waiting import wait_until
from bot.channels.wechat.callback import Refused, signature
from bot.channels.wechat.client import DatabaseTokenStore, WeChatClient
from bot.channels.wechat.safe_xml import safe_parse
from bot.channels.wechat.sender import BEIJING, Window, seconds_to_quota_reset, summary, window_state
from handlers.cases.models import Case
from messages import catalog, render
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import InboundMessage, OutboxMessage
from storage.wechat_models import WeChatUnreached, WeChatUser
from tests.support.db import database_of

ROOT = Path(__file__).resolve().parents[2]

COMMUNITY = """\
community:
  name: 测试社区
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
staff:
  - {id: zhang, name: 张伟, role: worker, wechat: oZhang0001}
  - {id: wang, name: 王芳, role: worker, wechat: oWang0001}
  - {id: li, name: 李娜, role: leader}
  - {id: chen, name: 陈静, role: admin, wechat: oChen0001}
categories: []
"""

WANG = "oWang0001"
ZHANG = "oZhang0001"
STATUS_TEMPLATE = "TPL_CASE_STATUS"
SUBSCRIBE_TEMPLATE = "SUB_CASE_UPDATE"


def new_openid() -> str:
    return "oRes" + uuid.uuid4().hex[:20]


# -- pure parts ---------------------------------------------------------------------------------------


def test_signature_is_sha1_of_sorted_parts() -> None:
    import hashlib

    assert signature("b", "a", "c") == hashlib.sha1(b"abc").hexdigest()
    signed = wx.sign(wx.text("oX", "hi"), timestamp=1700000000, nonce="123")
    assert signed.params["signature"] == signature(wx.TOKEN, "1700000000", "123")


def test_aes_round_trip_with_wechatpy_scheme() -> None:
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.parser import parse_message

    xml = wx.location("oX", 31.23, 121.47, "某小区3号楼")
    signed = wx.sign(xml, aes=True, timestamp=1700000000, nonce="42")
    crypto = WeChatCrypto(wx.TOKEN, wx.AES_KEY, wx.APP_ID)
    plain = crypto.decrypt_message(signed.body, signed.params["msg_signature"], "1700000000", "42")
    message = parse_message(plain)
    assert message.type == "location" and message.label == "某小区3号楼"
    assert message.location == ("31.23", "121.47")


@pytest.mark.parametrize("hostile", [wx.BILLION_LAUGHS, wx.EXTERNAL_ENTITY])
def test_hostile_xml_is_refused_before_parsing(hostile: str) -> None:
    with pytest.raises(Refused) as caught:
        safe_parse(hostile.encode("utf-8"))
    assert caught.value.status == 400


def test_window_state() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    user = WeChatUser(channel="wechat", openid="o", last_inbound_at=now - timedelta(hours=1))
    user.window_kind, user.cs_sent = "message", 0
    assert window_state(user, None, now) == Window.OPEN
    user.cs_sent = 5
    assert window_state(user, None, now) == Window.QUOTA
    user.cs_sent = 0
    assert window_state(user, None, now + timedelta(hours=48)) == Window.CLOSED
    user.window_kind = "event"
    assert window_state(user, None, now) == Window.CLOSED  # an event opens one minute only
    user.window_closed_at = now
    user.window_kind = "message"
    assert window_state(user, None, now) == Window.CLOSED  # WeChat said 45015
    user.unsubscribed_at = now
    assert window_state(user, None, now) == Window.UNSUBSCRIBED
    assert window_state(None, None, now) == Window.UNKNOWN
    assert window_state(None, now - timedelta(hours=2), now) == Window.OPEN
    assert window_state(None, now - timedelta(hours=50), now) == Window.CLOSED


def test_quota_reset_is_after_beijing_midnight_and_fields_fit() -> None:
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Beijing
    assert seconds_to_quota_reset(now) == 65 * 60
    assert len(summary("【新案件】#12 积水/蚊虫 在3号楼楼道里面有很大一片积水\n第二行")) <= 20
    for key in ("wechat.unsupported", "wechat.photo_link", "wechat.template_remark"):
        assert key in catalog()


# -- the real server ------------------------------------------------------------------------------------


@dataclass
class Live:
    url: str
    db_url: str
    engine: AsyncEngine
    fake: fw.FakeWeChat
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    http: httpx.AsyncClient

    async def post(self, xml: str, *, aes: bool = True, **sign: Any) -> httpx.Response:
        """A callback as WeChat sends it to an account in safe mode (the server has the AES key)."""
        signed = wx.sign(xml, aes=aes, **sign)
        return await self.http.post(
            self.url + "/wechat",
            params=signed.params,
            content=signed.body,
            headers={"Content-Type": "text/xml"},
        )

    async def say(self, xml: str, *, aes: bool = True) -> str:
        """Post a callback and return the bot's reply: the passive reply, or, when the server answered
        ``success`` (busy, slow), the customer-service message that brings the reply instead."""
        openid = re.search(r"<FromUserName><!\[CDATA\[(.*?)\]\]>", xml)
        assert openid is not None
        # An earlier test's notice to the same person (a staff member's case notice) may still be on
        # its way: counted as "seen" only once it has gone, or it would be taken for this reply.
        await self.drained(openid.group(1))
        seen = len(self.fake.sent(fw.CUSTOM, to=openid.group(1), ok=False))
        response = await self.post(xml, aes=aes)
        assert response.status_code == 200, response.text
        if response.text != "success":
            body = wx.decrypt_reply(response.text) if aes else response.text
            return SafeET.fromstring(body).findtext("Content") or ""

        async def delivered() -> str | None:
            calls = self.fake.sent(fw.CUSTOM, to=openid.group(1), ok=False)[seen:]
            return calls[0].text if calls else None

        return str(await wait_until(delivered, f"the reply to {openid.group(1)}"))

    async def drained(self, openid: str) -> None:
        async def nothing_due() -> bool:
            async with session_factory(self.engine)() as session:
                due = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.recipient == openid,
                        OutboxMessage.status.in_(("pending", "sending")),
                        OutboxMessage.not_before <= datetime.now(UTC),
                    )
                )
            return not due

        await wait_until(nothing_due, f"the outbox to {openid} drained")

    async def count(self, model: Any) -> int:
        async with session_factory(self.engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def cases(self) -> list[Case]:
        async with session_factory(self.engine)() as session:
            return list((await session.scalars(select(Case).order_by(Case.id))).all())

    async def case(self, number: int) -> Case:
        async with session_factory(self.engine)() as session:
            return await session.get_one(Case, number)

    async def sent_to(self, openid: str, path: str = fw.CUSTOM) -> list[str]:
        return [json.dumps(c.body, ensure_ascii=False) for c in self.fake.sent(path, to=openid)]

    async def wait_sent(self, openid: str, needle: str, path: str = fw.CUSTOM) -> str:
        async def check() -> str | None:
            return next((t for t in await self.sent_to(openid, path) if needle in t), None)

        try:
            return await wait_until(check, f"{path} to {openid} containing {needle!r}")
        except AssertionError as exc:
            recent = [(c.path, c.touser, c.answer.get("errcode"), c.text) for c in self.fake.calls[-12:]]
            tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise AssertionError(f"{exc}; recent API calls: {recent}\nserver log:\n{tail}") from None


@pytest.fixture(scope="module")
async def live_db(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with database_of(backend, tmp_path_factory.mktemp("wechat"), "outreach_wechat") as url:
        yield url


def server_env(db_url: str, config: Path, api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATABASE_URL=db_url,
        OUTREACH_CONFIG=str(config),
        OUTREACH_LOG_LEVEL="INFO",
        OUTREACH_WECHAT_TOKEN=wx.TOKEN,
        OUTREACH_WECHAT_APP_ID=wx.APP_ID,
        OUTREACH_WECHAT_APP_SECRET=wx.APP_SECRET,
        OUTREACH_WECHAT_AES_KEY=wx.AES_KEY,
        OUTREACH_WECHAT_API_URL=api_url,
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.fixture(scope="module")
async def live(live_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    folder = tmp_path_factory.mktemp("wechat-live")
    config = folder / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    env = server_env(
        live_db,
        config,
        fake.url,
        OUTREACH_WECHAT_TEMPLATES=json.dumps({"status": STATUS_TEMPLATE}),
        OUTREACH_WECHAT_SUBSCRIBE_TEMPLATES=json.dumps({"ack": SUBSCRIBE_TEMPLATE}),
    )
    engine = create_engine(live_db)
    try:
        async with serve_process(folder, env) as server:
            yield Live(server.url, live_db, engine, fake, server.process, server.log, env, server.http)
    finally:
        await engine.dispose()
        fake.stop()


async def test_url_verification(live: Live) -> None:
    signed = wx.sign("")
    good = await live.http.get(live.url + "/wechat", params={**signed.params, "echostr": "8172635"})
    assert good.status_code == 200 and good.text == "8172635"
    forged = {**signed.params, "signature": "0" * 40, "echostr": "8172635"}
    assert (await live.http.get(live.url + "/wechat", params=forged)).status_code == 403


async def test_refused_requests_store_nothing(live: Live) -> None:
    before_in, before_calls = await live.count(InboundMessage), len(live.fake.calls)
    resident = new_openid()
    xml = wx.text(resident, "3号楼楼道里有积水，蚊子很多")

    forged = await live.post(xml, token="not-our-token")
    assert forged.status_code == 403
    missing = await live.http.post(live.url + "/wechat", content=xml.encode("utf-8"))
    assert missing.status_code == 403
    stale = await live.post(xml, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 403
    future = await live.post(xml, timestamp=int(time.time()) + 3600)
    assert future.status_code == 403
    for hostile in (wx.BILLION_LAUGHS, wx.EXTERNAL_ENTITY):
        assert (await live.post(hostile, aes=False)).status_code == 403  # plaintext in safe mode
        assert (await live.post(hostile)).status_code == 400  # hostile inside the envelope
    huge = wx.text(resident, "垃圾" * 40000)
    assert (await live.post(huge)).status_code == 413
    wrong_app = await live.post(xml, aes=True, app_id="wxSomebodyElse00")
    assert wrong_app.status_code == 403
    signed = wx.sign(xml, aes=True)
    tampered = await live.http.post(
        live.url + "/wechat",
        params={**signed.params, "msg_signature": "f" * 40},
        content=signed.body,
    )
    assert tampered.status_code == 403
    assert (await live.post("<xml><MsgType>text</MsgType>")).status_code == 400  # malformed

    await asyncio.sleep(0.3)
    assert await live.count(InboundMessage) == before_in
    assert len(live.fake.calls) == before_calls


async def test_resident_reports_worker_resolves_resident_rates(live: Live) -> None:
    resident = new_openid()
    # The worker follows the account and writes once, which opens their customer-service window.
    assert "王芳" in (await live.say(wx.subscribe(WANG)) or "")
    assert await live.say(wx.text(WANG, "任务")) is not None

    welcome = await live.say(wx.subscribe(resident), aes=True)
    assert welcome is not None and "测试社区" in welcome and "我的" in welcome

    # 1. By text.
    ack = await live.say(wx.text(resident, "3号楼楼道里有积水，蚊子很多"), aes=True)
    assert ack is not None and "#" in ack and "王芳" in ack
    first = (await live.cases())[-1]
    assert first.assignee_id == "wang" and first.channel == "wechat" and first.reporter_external == resident
    await live.wait_sent(WANG, f"#{first.id}")

    # 2. By picture, then the description it asks for.
    asked = await live.say(wx.image(resident, "MEDIA_ID_123", "http://mmbiz.qpic.cn/pic123"))
    assert asked is not None and "说明" in asked
    ack2 = await live.say(wx.text(resident, "5号楼下水道堵了，污水漫出来"))
    assert ack2 is not None and "王芳" in ack2
    second = (await live.cases())[-1]
    assert second.photo == "MEDIA_ID_123|http://mmbiz.qpic.cn/pic123"
    notice = await live.wait_sent(WANG, f"#{second.id}")
    assert "http://mmbiz.qpic.cn/pic123" in notice  # the worker can open the picture

    # 3. By location: the bot asks where, the resident sends their position.
    where = await live.say(wx.text(resident, "下水道反味很臭，还有老鼠"))
    assert where is not None and "哪里" in where
    ack3 = await live.say(wx.location(resident, 31.2304, 121.4737, "测试社区东门"))
    assert ack3 is not None and "王芳" in ack3, ack3
    third = (await live.cases())[-1]
    assert third.grid_code == "G1" and third.location_text == "东门"
    await live.wait_sent(WANG, f"#{third.id}")

    # 4. Position first, then the problem: the label names the place, the pin stays with the case.
    asked = await live.say(wx.location(resident, 31.2311, 121.4701, "测试社区幸福路"))
    assert asked is not None and "说明" in asked
    ack4 = await live.say(wx.text(resident, "这里有很多蚊子"))
    assert ack4 is not None and "王芳" in ack4, ack4
    fourth = (await live.cases())[-1]
    assert fourth.grid_code == "G1" and fourth.latitude == pytest.approx(31.2311)
    await live.wait_sent(WANG, f"#{fourth.id}")  # so the worker's next reply is not this notice

    # The worker accepts and resolves by keyword; the resident hears of each step.
    accepted = await live.say(wx.text(WANG, f"接单 {first.id}"))
    assert accepted is not None and f"#{first.id}" in accepted
    await live.wait_sent(resident, "接单")
    done = await live.say(wx.text(WANG, f"完成 {first.id} 已清理积水并喷洒药物"))
    assert done is not None and "已处理" in done
    resolved = await live.wait_sent(resident, "已清理积水并喷洒药物")
    assert f"#{first.id}" in resolved
    assert (await live.case(first.id)).status == "resolved"

    # The resident's rating goes through the core like any message (the core owns satisfaction).
    before = await live.count(InboundMessage)
    await live.post(wx.text(resident, "1"))
    assert await live.count(InboundMessage) == before + 1

    # Their case list, by keyword.
    mine = await live.say(wx.text(resident, "我的"))
    assert mine is not None and f"#{third.id}" in mine


async def test_a_retried_callback_does_nothing_twice(live: Live) -> None:
    resident = new_openid()
    await live.say(wx.text(WANG, "任务"))
    xml = wx.text(resident, "6号楼门口有很多老鼠", msg_id=wx.new_msg_id())
    assert "#" in await live.say(xml)
    cases = await live.count(Case)
    number = (await live.cases())[-1].id
    await live.wait_sent(WANG, f"#{number}")
    for _ in range(3):  # WeChat retries three times, signing each anew
        again = await live.post(xml)
        assert again.status_code == 200 and again.text == "success"
    event = wx.subscribe(resident, create_time=int(time.time()) - 10)
    assert "我的" in await live.say(event)
    assert (await live.post(event)).text == "success"
    await asyncio.sleep(0.5)
    assert await live.count(Case) == cases
    assert len([t for t in await live.sent_to(WANG) if f"#{number}" in t]) == 1


async def test_out_of_window_falls_back_to_template_or_is_recorded(live: Live) -> None:
    resident = new_openid()
    await live.say(wx.text(WANG, "任务"))
    await live.say(wx.text(ZHANG, "任务"))
    await live.say(wx.text(resident, "2号楼垃圾堆满了没人清理"))
    number = (await live.cases())[-1].id
    await live.wait_sent(ZHANG, f"#{number}")

    # The status update to the resident meets 45015: a template message goes instead ("status" has one).
    live.fake.fail(fw.CUSTOM, 45015, openid=resident, needle=f"#{number}")
    await live.say(wx.text(ZHANG, f"接单 {number}"))
    template = await live.wait_sent(resident, STATUS_TEMPLATE, fw.TEMPLATE)
    assert f"#{number}" in template

    # The notification to a worker meets 45015 and no template is configured for it: recorded.
    live.fake.fail(fw.CUSTOM, 45015, openid=WANG, needle="4号楼地下室有蟑螂")
    await live.say(wx.text(resident, "4号楼地下室有蟑螂"))
    pests = (await live.cases())[-1].id

    async def unreached() -> list[WeChatUnreached]:
        async with session_factory(live.engine)() as session:
            rows = await session.scalars(select(WeChatUnreached).where(WeChatUnreached.case_id == pests))
            return list(rows.all())

    rows = await wait_until(unreached, "the unreached record")
    assert rows[0].openid == WANG and rows[0].reason == "window_closed" and rows[0].kind == "notify"
    listing = subprocess.run(
        [*command(), "wechat", "unreached"],
        env=live.env,
        cwd=live.log.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert f"#{pests}" in listing.stdout and WANG in listing.stdout

    # Until the worker writes again, the bot knows the window is closed and does not try.
    customs = live.fake.count(fw.CUSTOM)
    await live.say(wx.text(resident, "1号楼楼下有很多蟑螂"))
    await wait_until(unreached_count_above(live, len(rows)), "a second record")
    assert not [c for c in live.fake.sent(fw.CUSTOM, ok=False)[customs:] if c.touser == WANG]


def unreached_count_above(live: Live, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await live.count(WeChatUnreached) > n

    return check


async def test_quota_errors(live: Live) -> None:
    resident = new_openid()
    await live.say(wx.text(ZHANG, "任务"))
    # 45047 (customer-service quota) on a status update: the template takes it.
    await live.say(wx.text(resident, "3号楼门口垃圾没人清"))
    number = (await live.cases())[-1].id
    live.fake.fail(fw.CUSTOM, 45047, openid=resident, needle=f"#{number}")
    await live.say(wx.text(ZHANG, f"接单 {number}"))
    await live.wait_sent(resident, f"#{number}", fw.TEMPLATE)

    # 45009 (the app's daily quota): the message waits for the quota to come back, hours later.
    live.fake.fail(fw.CUSTOM, 45009, openid=ZHANG, needle="A座电梯里贴了小广告")
    await live.say(wx.text(resident, "A座电梯里贴了小广告"))
    later = (await live.cases())[-1].id

    async def postponed() -> OutboxMessage | None:
        async with session_factory(live.engine)() as session:
            return await session.scalar(
                select(OutboxMessage).where(
                    OutboxMessage.case_id == later,
                    OutboxMessage.recipient == ZHANG,
                    OutboxMessage.status == "pending",
                    OutboxMessage.last_error.is_not(None),
                )
            )

    try:
        row = await wait_until(postponed, "the postponed notification")
    except AssertionError:
        async with session_factory(live.engine)() as session:
            rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.case_id == later))).all()
        state = [(r.recipient, r.kind, r.status, r.last_error, r.attempts) for r in rows]
        calls = [(c.path, c.touser, c.answer.get("errcode")) for c in live.fake.calls[-8:]]
        raise AssertionError(f"no postponed row for #{later}: {state}; calls {calls}") from None
    local = row.not_before.astimezone(BEIJING)
    assert (local.hour, local.minute) == (0, 5)  # after the quota resets at midnight, Beijing time
    assert "45009" in (row.last_error or "")


async def test_a_revoked_token_is_refreshed_once_and_the_send_retried(live: Live) -> None:
    resident = new_openid()
    await live.say(wx.text(WANG, "任务"))
    live.fake.revoke_tokens()
    fetches = live.fake.count(fw.STABLE_TOKEN)
    await live.say(wx.text(resident, "3号楼楼道里蚊子特别多"))
    number = (await live.cases())[-1].id
    await live.wait_sent(WANG, f"#{number}")
    assert live.fake.count(fw.STABLE_TOKEN) == fetches + 1
    refused = [c for c in live.fake.sent(fw.CUSTOM, ok=False) if c.answer.get("errcode") == 40001]
    assert refused  # the first try met 40001


async def test_subscription_message_and_remembered_position(live: Live) -> None:
    resident = new_openid()
    await live.say(wx.text("oChen0001", "待分拣"))
    assert (await live.post(wx.subscribe_popup(resident, SUBSCRIBE_TEMPLATE, "accept"))).text == "success"
    # A LOCATION event, then a report that names no place: the position is kept with the case.
    assert (await live.post(wx.location_event(resident, 31.2, 121.5))).text == "success"
    where = await live.say(wx.text(resident, "楼道里有一大片积水"))
    assert where is not None and "哪里" in where
    number = (await live.cases())[-1].id
    assert (await live.case(number)).latitude == pytest.approx(31.2)
    assert "#" in (await live.say(wx.text(resident, "不知道")) or "")  # to the admins' triage queue
    await live.wait_sent("oChen0001", f"#{number}")
    # The window closes; the acknowledgement of the admin's assignment goes as a subscription message.
    live.fake.fail(fw.CUSTOM, 45015, openid=resident, needle=f"#{number}")
    await live.say(wx.text("oChen0001", f"分派 {number} wang"))
    sent = await live.wait_sent(resident, SUBSCRIBE_TEMPLATE, fw.SUBSCRIBE)
    assert f"#{number}" in sent


async def test_a_burst_is_stored_at_once_and_handled_after(live: Live) -> None:
    # Last of the live tests: its thirty reports would be duplicates of later ones.
    before = await live.count(Case)
    payloads = [wx.text(new_openid(), f"{n % 6 + 1}号楼门口垃圾堆满了") for n in range(30)]
    answers = await asyncio.gather(*(live.post(xml) for xml in payloads))
    assert all(a.status_code == 200 for a in answers)
    assert any(a.text == "success" for a in answers)  # queued: the worker handles them after
    retried = await asyncio.gather(*(live.post(xml) for xml in payloads[:5]))
    assert all(a.text == "success" for a in retried)

    async def all_stored() -> bool:
        return await live.count(Case) >= before + 30

    await wait_until(all_stored, "every case of the burst")
    await asyncio.sleep(0.5)
    assert await live.count(Case) == before + 30


async def test_secrets_never_reach_the_log(live: Live) -> None:
    text = live.log.read_text(encoding="utf-8", errors="replace")
    assert "wechat" in text  # the server did log
    tokens = {c.answer.get("access_token") for c in live.fake.calls if c.answer.get("access_token")}
    for secret in [wx.APP_SECRET, wx.TOKEN, wx.AES_KEY, *tokens]:
        assert secret not in text


# -- the token, shared ----------------------------------------------------------------------------------


@pytest.fixture
async def token_db(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    yield url


@pytest.fixture
def fake_api() -> Iterator[fw.FakeWeChat]:
    fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    yield fake
    fake.stop()


async def test_two_processes_refresh_the_token_once(token_db: str, fake_api: fw.FakeWeChat) -> None:
    fake_api.delay = 0.3  # a slow token endpoint makes the race real
    engines = [create_engine(token_db) for _ in range(2)]
    clients = [
        WeChatClient(wx.APP_ID, wx.APP_SECRET, fake_api.url, DatabaseTokenStore(session_factory(e)))
        for e in engines
    ]
    try:
        tokens = await asyncio.gather(*(c.access_token() for c in clients for _ in range(3)))
        assert len(set(tokens)) == 1
        assert fake_api.count(fw.STABLE_TOKEN) == 1
        await clients[1].send_text("oSomeone", "你好")
        assert fake_api.count(fw.STABLE_TOKEN) == 1  # the second process used the shared token
        fake_api.revoke_tokens()
        await clients[0].send_text("oSomeone", "再次你好")
        await clients[1].send_text("oSomeone", "第三次")
        assert fake_api.count(fw.STABLE_TOKEN) == 2  # refreshed once after 40001, then shared
        assert all(fw.STABLE_TOKEN not in str(c.query) for c in fake_api.calls)
    finally:
        for client in clients:
            await client.close()
        for engine in engines:
            await engine.dispose()


async def test_token_shared_through_redis(fake_api: fw.FakeWeChat) -> None:
    redis = pytest.importorskip("redis.asyncio")
    url = os.environ.get("OUTREACH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    probe = redis.from_url(url)
    try:
        await probe.ping()
    except Exception as exc:
        await probe.aclose()
        if IN_CI:
            pytest.fail(f"Redis is expected in CI at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    prefix = f"outreach-test-{uuid.uuid4().hex[:8]}:"
    from bot.channels.wechat.client import RedisTokenStore

    fake_api.delay = 0.3
    stores = [RedisTokenStore(url, prefix=prefix) for _ in range(2)]
    clients = [WeChatClient(wx.APP_ID, wx.APP_SECRET, fake_api.url, s) for s in stores]
    try:
        tokens = await asyncio.gather(*(c.access_token() for c in clients for _ in range(3)))
        assert len(set(tokens)) == 1 and fake_api.count(fw.STABLE_TOKEN) == 1
    finally:
        for client in clients:
            await client.close()
            await client.store.close()
        keys = await probe.keys(prefix + "*")
        if keys:
            await probe.delete(*keys)
        await probe.aclose()


def test_messages_used_by_the_wechat_package_exist() -> None:
    import re

    used: set[str] = set()
    for path in (ROOT / "bot" / "channels" / "wechat").glob("*.py"):
        used |= set(re.findall(r'render\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
    assert used and not sorted(k for k in used if k not in catalog())
    assert render("wechat.photo_link", url="http://x").endswith("http://x")


# -- issue #12: a report while asked where, on the Official Account ------------------------------------


async def test_a_report_while_asked_where_gets_its_own_passive_acknowledgement(live: Live) -> None:
    resident = new_openid()
    asked = await live.say(wx.text(resident, "垃圾桶满了好几天没人清"))
    assert "哪里" in asked
    first = (await live.cases())[-1]
    # The passive reply answers the new report; the line about the first case follows as a message.
    ack = await live.say(wx.text(resident, "对了，A座下水道堵了"))
    second = (await live.cases())[-1]
    assert second.id != first.id and f"#{second.id}" in ack and "王芳" in ack
    assert (second.category_code, second.building) == ("sewage", "A")
    await live.wait_sent(resident, f"#{first.id} 还没有说明位置")
    assert (await live.case(first.id)).in_triage and (await live.case(first.id)).location_text is None


# -- building codes (一楼一码): subscribe with qrscene_<scene>, SCAN with <scene> ----------------------------


async def scene_of(live: Live, building: str | None = None, place: str | None = None) -> str:
    from handlers.community.model import parse_community
    from handlers.community.scenes import SECRET_KEY, community_code, find_target, sign
    from handlers.kernel.token_store import shared_secret
    from handlers.kernel.yaml_text import load_yaml

    async with session_factory(live.engine).begin() as session:
        secret = (await shared_secret(session, SECRET_KEY)).encode()
    community = parse_community(load_yaml(COMMUNITY))
    target = find_target(community, building, place)
    assert target is not None
    return sign(secret, community_code(community), target)


TICKET = "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw=="


async def test_scanning_a_building_code_greets_binds_and_places_the_next_report(live: Live) -> None:
    resident = new_openid()
    now = int(time.time())
    three, five = await scene_of(live, "3"), await scene_of(live, "5")
    # A new follower: subscribe, EventKey "qrscene_<scene>", with the code's Ticket (as WeChat sends it).
    follow = wx.event(resident, "subscribe", create_time=now - 30, EventKey=f"qrscene_{three}", Ticket=TICKET)
    greeting = await live.say(follow)
    assert greeting.startswith("您好，这里是测试社区3号楼"), greeting
    assert (await live.post(follow)).text == "success"  # WeChat's retry: FromUserName + CreateTime
    ack = await live.say(wx.text(resident, "楼道里有积水，蚊子很多"))
    placed = (await live.cases())[-1]
    assert "#" in ack and placed.reporter_external == resident
    assert (placed.building, placed.location_text, placed.grid_code) == ("3", "3号楼", "G1")
    # A follower scans another building's code: SCAN, EventKey "<scene>"; the binding moves.
    scan = wx.event(resident, "SCAN", create_time=now - 20, EventKey=five, Ticket=TICKET)
    assert "测试社区5号楼" in await live.say(scan)
    await live.say(wx.text(resident, "A座门口垃圾没人清"))  # a place named wins
    named = (await live.cases())[-1]
    assert named.building == "A"
    await live.say(wx.text(resident, "垃圾桶满了好几天没人清"))
    assert (await live.cases())[-1].building == "5"
    # A made-up or altered code: a plain answer, nothing changes.
    forged = five[:-1] + ("A" if five[-1] != "A" else "B")
    refused = await live.say(wx.event(resident, "SCAN", create_time=now - 10, EventKey=forged, Ticket=TICKET))
    assert "无法识别" in refused and "直接发文字" in refused
    await live.say(wx.text(resident, "楼道里好多蟑螂"))
    assert (await live.cases())[-1].building == "5"


async def test_a_staff_members_scan_binds_nothing(live: Live) -> None:
    scene = await scene_of(live, place="东门")
    said = await live.say(
        wx.event(ZHANG, "SCAN", create_time=int(time.time()) - 5, EventKey=scene, Ticket=TICKET)
    )
    assert "东门" in said and "不会改变" in said
