"""The WeCom (企业微信) staff channel: the real ``outreach-bot serve`` process with the Official Account
(residents) and WeCom (staff) both on, against a fake WeChat API and a fake WeCom API on 127.0.0.1.

Residents report through the real ``/wechat`` callback; workers get case cards on WeCom, click 接单 /
已处理 (``template_card_event`` built, encrypted and signed exactly as WeCom sends it, with the
ResponseCode the fake issued for that click) or type the keywords. The card builder, the sender's
error handling and the per-member limit are tested in-process, the limit with an injected clock.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.support import fake_wechat as fw
from bench.support import fake_wecom as fc
from bench.support import wechat_payloads as wx
from bench.support.live_server import serve_process
from bench.support.waiting import wait_until
from bot.channels.wechat.client import DatabaseTokenStore
from bot.channels.wecom import cards
from bot.channels.wecom.client import WeComClient
from bot.channels.wecom.limits import MemberLimiter
from bot.channels.wecom.sender import WeComSender, message_body
from handlers.cases.models import Case
from handlers.kernel.outbox import DeliveryError, Outbound, claim, enqueue
from messages import catalog, render
from storage.database import create_engine, session_factory
from storage.models import Dialog, InboundMessage, OutboxMessage, Staff, StaffIdentity, utcnow
from storage.wechat_models import WeChatInbox
from tests.channels.test_wechat import server_env
from tests.support.db import database_of

ROOT = Path(__file__).resolve().parents[2]
ZHANG, WANG, LI, CHEN = "ZhangWei", "WangFang", "LiNa", "ChenJing"
NEWCOMER, OUTSIDER = "ZhaoLei", "Outsider01"

COMMUNITY = """\
community:
  name: 测试社区
  timezone: Asia/Shanghai
grids:
  - code: G1
    name: 第一网格
    buildings: ["1-6", "A座"]
    places: [东门, 幸福路]
    leader: li
    workers:
      - {staff: zhang, categories: [poster, garbage]}
      - {staff: wang, categories: [mosquito, pests, sewage]}
staff:
  - {id: zhang, name: 张伟, role: worker, wecom: ZhangWei}
  - {id: wang, name: 王芳, role: worker, wecom: WangFang}
  - {id: zhao, name: 赵磊, role: worker}
  - {id: li, name: 李娜, role: leader, wecom: LiNa}
  - {id: chen, name: 陈静, role: admin, wecom: ChenJing}
categories: []
"""

_residents = iter(range(10**6))


def new_resident() -> str:
    return f"oWecomRes{next(_residents):06d}{int(time.time()) % 10**6}"


# -- the real server ------------------------------------------------------------------------------------


@dataclass
class Live:
    url: str
    engine: AsyncEngine
    wecom: fc.FakeWeCom
    wechat: fw.FakeWeChat
    log: Path
    http: httpx.AsyncClient

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return session_factory(self.engine)

    async def post(self, xml: str, **sign: Any) -> httpx.Response:
        signed = fc.sign(xml, **sign)
        return await self.http.post(self.url + "/wecom", params=signed.params, content=signed.body)

    async def staff_says(self, userid: str, content: str) -> None:
        response = await self.post(fc.text(userid, content))
        assert response.status_code == 200 and response.text == ""

    async def click(self, userid: str, card: fc.Call, label: str) -> str:
        xml = fc.click(self.wecom, userid, card, label)
        response = await self.post(xml)
        assert response.status_code == 200 and response.text == ""
        return xml

    async def report(self, resident: str, text: str) -> int:
        """A resident's report through the Official Account callback; the new case's number."""
        signed = wx.sign(wx.text(resident, text), aes=True)  # the account is in safe mode
        response = await self.http.post(self.url + "/wechat", params=signed.params, content=signed.body)
        assert response.status_code == 200

        async def stored() -> int | None:
            async with self.sessions() as session:
                return await session.scalar(
                    select(Case.id)
                    .where(Case.reporter_external == resident)
                    .order_by(Case.id.desc())
                    .limit(1)
                )

        return await self.wait(stored, f"the case {resident} reported")

    async def wait(self, check: Any, what: str) -> Any:
        try:
            return await wait_until(check, what)
        except AssertionError as exc:
            recent = [(c.path, c.touser, c.answer.get("errcode"), c.text[:40]) for c in self.wecom.calls[-8:]]
            tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise AssertionError(f"{exc}; recent WeCom calls: {recent}\nserver log:\n{tail}") from None

    async def card(self, userid: str, number: int) -> fc.Call:
        def find() -> fc.Call | None:
            return next((c for c in self.wecom.sent(to=userid) if c.card and f"#{number}" in c.text), None)

        return await self.wait(find, f"the card of #{number} to {userid}")

    async def text_to(self, userid: str, needle: str, after: int = 0) -> fc.Call:
        def find() -> fc.Call | None:
            messages = [c for c in self.wecom.sent(to=userid) if c.body.get("msgtype") == "text"]
            return next((c for c in messages[after:] if needle in c.text), None)

        return await self.wait(find, f"a WeCom text to {userid} containing {needle!r}")

    def texts_to(self, userid: str) -> int:
        return len([c for c in self.wecom.sent(to=userid) if c.body.get("msgtype") == "text"])

    async def updates(self, userid: str, count: int) -> list[fc.Call]:
        def find() -> list[fc.Call] | None:
            done = self.wecom.sent(fc.UPDATE_CARD, to=userid)
            return done if len(done) >= count else None

        return await self.wait(find, f"{count} card update(s) for {userid}")

    async def resident_told(self, openid: str, needle: str) -> str:
        def find() -> str | None:
            texts = [c.text or "" for c in self.wechat.sent(fw.CUSTOM, to=openid)]
            return next((t for t in texts if needle in t), None)

        return await self.wait(find, f"a message to resident {openid} containing {needle!r}")

    async def case(self, number: int) -> Case:
        async with self.sessions() as session:
            return await session.get_one(Case, number)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture(scope="module")
async def live_db(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with database_of(backend, tmp_path_factory.mktemp("wecom"), "outreach_wecom") as url:
        yield url


@pytest.fixture(scope="module")
async def live(live_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    folder = tmp_path_factory.mktemp("wecom-live")
    config = folder / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    wechat = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    wecom = fc.FakeWeCom({ZHANG, WANG, LI, CHEN, NEWCOMER, OUTSIDER}).start()
    env = server_env(
        live_db,
        config,
        wechat.url,
        OUTREACH_WECOM_CORP_ID=fc.CORP_ID,
        OUTREACH_WECOM_AGENT_ID=str(fc.AGENT_ID),
        OUTREACH_WECOM_SECRET=fc.SECRET,
        OUTREACH_WECOM_TOKEN=fc.TOKEN,
        OUTREACH_WECOM_AES_KEY=fc.AES_KEY,
        OUTREACH_WECOM_API_URL=wecom.url,
    )
    engine = create_engine(live_db)
    try:
        async with serve_process(folder, env, ready=lambda health: "wecom" in health["channels"]) as server:
            yield Live(server.url, engine, wecom, wechat, server.log, server.http)
    finally:
        await engine.dispose()
        wecom.stop()
        wechat.stop()


async def test_url_verification_answers_the_decrypted_echostr(live: Live) -> None:
    good = await live.http.get(live.url + "/wecom", params=fc.verification("5927384610247"))
    assert good.status_code == 200 and good.text == "5927384610247"
    forged = fc.verification("5927384610247", token="someone-elses-token")
    assert (await live.http.get(live.url + "/wecom", params=forged)).status_code == 403
    stale = fc.verification("5927384610247", timestamp=int(time.time()) - 3600)
    assert (await live.http.get(live.url + "/wecom", params=stale)).status_code == 403
    other_corp = fc.verification("5927384610247", corp_id="wwSomebodyElse0000")
    assert (await live.http.get(live.url + "/wecom", params=other_corp)).status_code == 403
    assert (await live.http.get(live.url + "/wecom")).status_code == 403


async def test_refused_requests_do_nothing(live: Live) -> None:
    inbound, inbox, calls = (
        await live.count(InboundMessage),
        await live.count(WeChatInbox),
        len(live.wecom.calls),
    )
    xml = fc.text(ZHANG, "任务")
    assert (await live.post(xml, token="not-our-token")).status_code == 403  # forged signature
    assert (await live.http.post(live.url + "/wecom", content=fc.sign(xml).body)).status_code == 403
    assert (await live.post(xml, timestamp=int(time.time()) - 3600)).status_code == 403
    assert (await live.post(xml, timestamp=int(time.time()) + 3600)).status_code == 403
    assert (await live.post(xml, corp_id="wwSomebodyElse0000")).status_code == 403
    assert (await live.post(fc.text(ZHANG, "任务", agent_id=1000999))).status_code == 403
    for hostile in (wx.BILLION_LAUGHS, wx.EXTERNAL_ENTITY):
        assert (await live.post(hostile)).status_code == 400  # hostile inside the envelope
        outside = await live.http.post(live.url + "/wecom", params=fc.sign(xml).params, content=hostile)
        assert outside.status_code == 400
    assert (await live.post(fc.text(ZHANG, "垃圾" * 30000))).status_code == 413
    signed = fc.sign(xml)
    tampered = {**signed.params, "msg_signature": "f" * 40}
    assert (
        await live.http.post(live.url + "/wecom", params=tampered, content=signed.body)
    ).status_code == 403
    assert (await live.post("<xml><MsgType>text</MsgType>")).status_code == 400

    await asyncio.sleep(0.5)
    assert await live.count(InboundMessage) == inbound
    assert await live.count(WeChatInbox) == inbox
    assert len(live.wecom.calls) == calls


async def test_report_card_click_accept_then_resolve_by_keyword(live: Live) -> None:
    resident = new_resident()
    number = await live.report(resident, "3号楼楼道里贴满了小广告")
    card = await live.card(ZHANG, number)
    template = card.card
    assert template["card_type"] == "button_interaction"
    assert "【新案件】" in template["main_title"]["title"] and "3号楼" in template["sub_title_text"]
    assert re.fullmatch(r"[A-Za-z0-9_\-@]{1,128}", template["task_id"])
    assert card.keys[render("button.accept")] == f"accept:{number}"
    assert card.keys[render("button.resolve")] == f"resolve:{number}"
    assert card.body["agentid"] == fc.AGENT_ID

    # 接单: the case is accepted, the resident told, and the card redrawn without 接单.
    texts = live.texts_to(ZHANG)
    await live.click(ZHANG, card, render("button.accept"))

    async def accepted() -> bool:
        case = await live.case(number)
        return case.status == "accepted" and case.assignee_id == "zhang"

    await live.wait(accepted, f"#{number} to be accepted")
    await live.resident_told(
        resident, render("resident.accepted", number=number, role="网格员", handler="张伟")
    )
    await live.text_to(ZHANG, render("staff.accepted_ok", number=number), after=texts)
    (update,) = await live.updates(ZHANG, 1)
    redrawn = update.body["template_card"]
    assert render("button.accept") not in {b["text"] for b in redrawn["button_list"]}
    assert f"resolve:{number}" in {b["key"] for b in redrawn["button_list"]}
    assert render("status.accepted") in redrawn["main_title"]["desc"]

    # 完成 N 说明, typed: resolved, the resident hears of it and is asked to rate.
    await live.staff_says(ZHANG, f"完成 {number} 已清理干净")

    async def resolved() -> bool:
        return (await live.case(number)).status == "resolved"

    await live.wait(resolved, f"#{number} to be resolved")
    told = await live.resident_told(resident, "已清理干净")
    assert f"#{number}" in told and "满意" in told
    async with live.sessions() as session:
        dialog = await session.get(Dialog, ("wechat", resident))
    assert dialog is not None and dialog.state == "await_rating" and dialog.data["case"] == number

    # A click on the old card now greys it out with the outcome; nothing else happens.
    await live.click(ZHANG, card, render("button.resolve"))
    updates = await live.updates(ZHANG, 2)
    assert updates[-1].body["button"]["replace_name"] == render("wecom.card.resolved")
    assert (await live.case(number)).status == "resolved"


async def test_click_resolve_asks_for_the_note_then_greys_the_card(live: Live) -> None:
    resident = new_resident()
    number = await live.report(resident, "5号楼门口垃圾堆满了没人清理")
    card = await live.card(ZHANG, number)
    texts = live.texts_to(ZHANG)
    before = len(live.wecom.sent(fc.UPDATE_CARD, to=ZHANG))
    await live.click(ZHANG, card, render("button.resolve"))
    await live.text_to(ZHANG, render("staff.ask_note", number=number), after=texts)
    assert (await live.case(number)).status == "assigned"  # only asked: the card stays as it is
    await live.staff_says(ZHANG, "垃圾已清运")
    await live.resident_told(resident, "垃圾已清运")
    assert (await live.case(number)).status == "resolved"
    assert len(live.wecom.sent(fc.UPDATE_CARD, to=ZHANG)) == before


async def test_a_retried_message_or_click_is_processed_once(live: Live) -> None:
    resident = new_resident()
    number = await live.report(resident, "4号楼地下室有很多蟑螂")
    card = await live.card(WANG, number)
    click = fc.click(live.wecom, WANG, card, render("button.accept"))
    for _ in range(3):  # WeCom retries a callback it got no answer to, signing it anew each time
        response = await live.post(click)
        assert response.status_code == 200 and response.text == ""
    await live.resident_told(resident, f"#{number} 已由")
    updates = await live.updates(WANG, 1)
    typed = fc.text(WANG, "任务")
    texts = live.texts_to(WANG)
    for _ in range(3):
        assert (await live.post(typed)).status_code == 200
    await live.text_to(WANG, f"#{number}", after=texts)
    await asyncio.sleep(1.0)

    accepted = [
        c for c in live.wechat.sent(fw.CUSTOM, to=resident) if render("button.accept") in (c.text or "")
    ]
    assert len(accepted) == 1
    assert len(live.wecom.sent(fc.UPDATE_CARD, to=WANG)) == len(updates) == 1
    assert live.texts_to(WANG) == texts + 1  # one answer to the three copies of 任务
    assert (
        await live.count(InboundMessage, InboundMessage.channel == "wecom", InboundMessage.sender == WANG)
        == 2
    )


async def test_staff_bind_with_an_invite_code_on_wecom(live: Live) -> None:
    # An org member with no staff account is told how to bind, and reaches no one.
    cases = await live.count(Case)
    await live.staff_says(NEWCOMER, "5号楼有垃圾")
    await live.text_to(NEWCOMER, render("wecom.not_bound"))
    assert await live.count(Case) == cases

    texts = live.texts_to(CHEN)
    await live.staff_says(CHEN, "邀请 zhao")
    invite = await live.text_to(CHEN, "邀请码", after=texts)
    code = re.search(r"绑定 ([A-Z0-9]{8})", invite.text)
    assert code, invite.text
    await live.staff_says(NEWCOMER, f"绑定 {code.group(1)}")
    await live.text_to(NEWCOMER, "绑定成功")
    async with live.sessions() as session:
        bound = await session.get(StaffIdentity, ("wecom", NEWCOMER))
    assert bound is not None and bound.staff_id == "zhao" and bound.source == "invite"
    await live.staff_says(NEWCOMER, "任务")
    await live.text_to(NEWCOMER, render("staff.no_cases"))
    # The code works once.
    await live.staff_says(OUTSIDER, f"绑定 {code.group(1)}")
    await live.text_to(OUTSIDER, render("binding.failed"))


async def test_pictures_get_a_passive_answer_and_nothing_is_stored(live: Live) -> None:
    inbox = await live.count(WeChatInbox)
    picture = fc.message_xml(
        ZHANG, "image", PicUrl="http://wework.qpic.cn/p/1", MediaId="MEDIA1", MsgId=1234567
    )
    response = await live.post(picture)
    assert response.status_code == 200
    reply = fc.open_reply(response.text)
    assert render("wecom.unsupported") in reply and f"<ToUserName><![CDATA[{ZHANG}]]>" in reply
    assert await live.count(WeChatInbox) == inbox


async def test_no_message_went_beyond_the_member_limit_and_no_secret_reached_the_log(live: Live) -> None:
    assert live.wecom.dropped == 0
    text = live.log.read_text(encoding="utf-8", errors="replace")
    assert "wecom" in text
    tokens = {c.answer.get("access_token") for c in live.wecom.calls if c.answer.get("access_token")}
    assert tokens
    for secret in [fc.SECRET, fc.TOKEN, fc.AES_KEY, *tokens]:
        assert secret not in text


# -- in process: the sender, the limit, the cards ------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_api() -> Iterator[fc.FakeWeCom]:
    fake = fc.FakeWeCom({ZHANG, WANG}).start()
    yield fake
    fake.stop()


def row(row_id: int, recipient: str, text: str, buttons: list[dict[str, str]] | None = None) -> OutboxMessage:
    return OutboxMessage(
        id=row_id,
        channel="wecom",
        recipient=recipient,
        kind="notify",
        text=text,
        payload={"buttons": buttons} if buttons else {},
        attempts=1,
    )


async def claimed(
    sessions: async_sessionmaker[AsyncSession], messages: list[tuple[str, str]]
) -> list[OutboxMessage]:
    """Outbox rows (recipient, text), claimed as the drain loop claims them before sending."""
    async with sessions.begin() as session:
        for recipient, text in messages:
            enqueue(session, Outbound("wecom", recipient, text), utcnow())
    rows = await claim(sessions, "wecom", utcnow(), limit=len(messages))
    assert len(rows) == len(messages)
    return rows


async def test_the_31st_message_in_a_minute_is_rescheduled_not_sent(
    sessions: async_sessionmaker[AsyncSession], fake_api: fc.FakeWeCom
) -> None:
    ticks = Ticks()
    fake_api.clock = ticks  # WeCom's own count of the minute runs on the same clock
    client = WeComClient(fc.CORP_ID, fc.AGENT_ID, fc.SECRET, fake_api.url, DatabaseTokenStore(sessions))
    sender = WeComSender(client, sessions, MemberLimiter(clock=ticks))
    rows = await claimed(sessions, [(ZHANG, f"第{n + 1}条") for n in range(31)] + [(WANG, "别人不受影响")])
    try:
        for n in range(30):
            ticks.now += 1.0
            await sender.send(rows[n])
        ticks.now += 1.0
        with pytest.raises(DeliveryError) as caught:
            await sender.send(rows[30])
        assert not caught.value.permanent and caught.value.retry_after == pytest.approx(30.0)
        assert len(fake_api.sent(to=ZHANG)) == 30 and fake_api.dropped == 0
        await sender.send(rows[31])
        ticks.now += 30.0
        await sender.send(rows[30])
        assert len(fake_api.sent(to=ZHANG)) == 31 and fake_api.dropped == 0
        assert fake_api.count(fc.GET_TOKEN) == 1  # one token for all of them, cached
    finally:
        await client.close()


def test_the_hourly_limit_and_worker_processes_share_it() -> None:
    ticks = Ticks()
    limiter = MemberLimiter(clock=ticks)
    for _ in range(1000):
        assert limiter.take(ZHANG) == 0
        ticks.now += 2.5  # under 30 a minute, so only the hour can fill
    assert limiter.take(ZHANG) == pytest.approx(3600 - 2500)
    shared = MemberLimiter.shared_by(2, clock=ticks)
    assert shared.windows == ((60.0, 15), (3600.0, 500))


async def test_sender_maps_wecom_answers(
    sessions: async_sessionmaker[AsyncSession], fake_api: fc.FakeWeCom
) -> None:
    async with sessions.begin() as session:
        session.add(Staff(id="zhang", name="张伟", role="worker", active=True))
        await session.flush()
        session.add(StaffIdentity(channel="wecom", external_id=ZHANG, staff_id="zhang", source="config"))
    client = WeComClient(fc.CORP_ID, fc.AGENT_ID, fc.SECRET, fake_api.url, DatabaseTokenStore(sessions))
    sender = WeComSender(client, sessions)
    texts = ["你好", "再次你好", "稍后", "离职了", "还在吗"]
    rows = await claimed(sessions, [(ZHANG, t) for t in texts] + [(WANG, "网络")])
    try:
        # A revoked token (42001) is refreshed once and the send retried.
        await sender.send(rows[0])
        fake_api.revoke_tokens()
        await sender.send(rows[1])
        assert fake_api.count(fc.GET_TOKEN) == 2 and len(fake_api.sent(to=ZHANG)) == 2
        # Frequency limits reschedule.
        fake_api.fail(fc.SEND, 45033, touser=ZHANG)
        with pytest.raises(DeliveryError) as caught:
            await sender.send(rows[2])
        assert caught.value.retry_after and not caught.value.permanent
        # A member who left: failed for good, marked, and later rows fail without a request.
        fake_api.fail(fc.SEND, 81013, touser=ZHANG)
        with pytest.raises(DeliveryError) as caught:
            await sender.send(rows[3])
        assert caught.value.permanent
        async with sessions() as session:
            identity = await session.get_one(StaffIdentity, ("wecom", ZHANG))
            assert identity.unreachable_since is not None
        calls = len(fake_api.calls)
        with pytest.raises(DeliveryError) as caught:
            await sender.send(rows[4])
        assert caught.value.permanent and len(fake_api.calls) == calls
    finally:
        await client.close()
    # Transport errors are retried with back-off (not permanent).
    fake_api.stop()
    client = WeComClient(fc.CORP_ID, fc.AGENT_ID, fc.SECRET, fake_api.url, DatabaseTokenStore(sessions))
    try:
        with pytest.raises(DeliveryError) as caught:
            await WeComSender(client, sessions).send(rows[5])
        assert not caught.value.permanent and caught.value.retry_after is None
    finally:
        await client.close()


async def test_a_row_claimed_again_elsewhere_is_not_sent(
    sessions: async_sessionmaker[AsyncSession], fake_api: fc.FakeWeCom
) -> None:
    from sqlalchemy import update

    from handlers.kernel.outbox import Reclaimed

    client = WeComClient(fc.CORP_ID, fc.AGENT_ID, fc.SECRET, fake_api.url, DatabaseTokenStore(sessions))
    (mine,) = await claimed(sessions, [(ZHANG, "只发一次")])
    async with sessions.begin() as session:  # our lease lapsed and another process claimed the row
        await session.execute(update(OutboxMessage).values(claimed_by="another-process"))
    try:
        with pytest.raises(Reclaimed):
            await WeComSender(client, sessions).send(mine)
        assert fake_api.sent(to=ZHANG) == []
    finally:
        await client.close()


def test_cards_fit_wecom_limits() -> None:
    long_text = "【新案件】#12 垃圾（紧急）\n位置：3号楼\n内容：" + "很多垃圾" * 60
    buttons = [{"label": f"按钮{n}", "action": f"transfer:12:s{n}"} for n in range(9)]
    body = message_body(row(77, ZHANG, long_text, buttons))
    card = body["template_card"]
    assert fc._card_problem(card) is None
    assert len(card["button_list"]) == 6 and card["sub_title_text"].endswith("…")
    assert cards.row_of_task(card["task_id"]) == 77
    again = message_body(row(77, ZHANG, long_text, buttons))["template_card"]
    assert again["task_id"] != card["task_id"]  # unique per card, even for the same row
    one_line = message_body(row(78, ZHANG, "请选择要转派给的员工" * 5, buttons[:2]))["template_card"]
    assert fc._card_problem(one_line) is None and one_line["sub_title_text"].startswith("请选择")
    plain = message_body(row(79, ZHANG, "字" * 3000))
    assert plain["msgtype"] == "text" and len(plain["text"]["content"].encode()) <= 2048
    photo = OutboxMessage(
        id=80,
        channel="wecom",
        recipient=ZHANG,
        kind="notify",
        text="新案件",
        payload={"photo": "MEDIA|http://mmbiz.qpic.cn/x"},
    )
    assert "http://mmbiz.qpic.cn/x" in message_body(photo)["text"]["content"]


def test_what_a_click_does_to_the_card() -> None:
    original = [
        {"label": render("button.accept"), "action": "accept:12"},
        {"label": render("button.resolve"), "action": "resolve:12"},
    ]
    common: dict[str, Any] = {"clicker": "zhang", "original_text": "【新案件】#12\n内容", "task_id": "ob1_ab"}
    accepted = cards.update_after_click(
        pressed="accept:12",
        before=("assigned", "zhang"),
        after=("accepted", "zhang"),
        original_buttons=original,
        **common,
    )
    assert accepted is not None and [b["key"] for b in accepted["template_card"]["button_list"]] == [
        "resolve:12"
    ]
    asked = cards.update_after_click(
        pressed="resolve:12",
        before=("assigned", "zhang"),
        after=("assigned", "zhang"),
        original_buttons=original,
        **common,
    )
    assert asked is None
    done = cards.update_after_click(
        pressed="resolve:12",
        before=("accepted", "zhang"),
        after=("resolved", "zhang"),
        original_buttons=original,
        **common,
    )
    assert done == {"button": {"replace_name": render("wecom.card.resolved")}}
    moved = cards.update_after_click(
        pressed="transfer:12:wang",
        before=("accepted", "zhang"),
        after=("assigned", "wang"),
        original_buttons=original,
        **common,
    )
    assert moved == {"button": {"replace_name": render("wecom.card.reassigned")}}


def test_messages_used_by_the_wecom_package_exist() -> None:
    used: set[str] = set()
    for path in (ROOT / "bot" / "channels" / "wecom").glob("*.py"):
        used |= set(re.findall(r'render\(\s*f?"([a-z_.]+)', path.read_text(encoding="utf-8")))
    assert used and not sorted(k for k in used if k not in catalog() and not k.endswith("."))
    for status in ("resolved", "closed", "confirmed"):
        assert f"wecom.card.{status}" in catalog()


def _signed_bytes(inner: bytes, *, to_user: str = fc.CORP_ID) -> fc.Signed:
    """A WeCom callback carrying ``inner`` as it is (any encoding), validly encrypted and signed."""
    ts, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**10)
    encrypted = fc.encrypt(inner)  # type: ignore[arg-type]  # wechatpy takes bytes as they are
    body = (
        f"<xml><ToUserName>{fc.cdata(to_user)}</ToUserName><AgentID>{fc.cdata(str(fc.AGENT_ID))}</AgentID>"
        f"<Encrypt>{fc.cdata(encrypted)}</Encrypt></xml>"
    )
    signature = fc.sha1_sorted(fc.TOKEN, ts, nonce, encrypted)
    params = {"msg_signature": signature, "timestamp": ts, "nonce": nonce}
    return fc.Signed(params, body.encode("utf-8"))


async def test_the_probes_callbacks_are_refused_cleanly_and_a_signature_serves_one_body(live: Live) -> None:
    inbox = await live.count(WeChatInbox)

    async def send(signed: fc.Signed, body: bytes | None = None) -> httpx.Response:
        return await live.http.post(live.url + "/wecom", params=signed.params, content=body or signed.body)

    # Another encoding inside the envelope: 400, never a 500.
    for encoding in ("gbk", "utf-16", "iso-8859-1"):
        xml = f'<?xml version="1.0" encoding="{encoding}"?>' + fc.text(ZHANG, "5号楼有垃圾 café")
        assert (await send(_signed_bytes(xml.encode(encoding, errors="replace")))).status_code == 400
    # A DTD hidden by UTF-16: refused by the byte check.
    assert (await send(_signed_bytes(wx.BILLION_LAUGHS.encode("utf-16")))).status_code == 400
    # An oversize userid cannot reach the group commit.
    assert (await live.post(fc.text("U" * 201, "任务"))).status_code == 400
    # The inner ToUserName must be the outer one, and our corp.
    other = fc.text(ZHANG, "任务").replace(fc.CORP_ID, "wwSomebodyElse0000", 1)
    assert (await send(_signed_bytes(other.encode()))).status_code == 403
    assert await live.count(WeChatInbox) == inbox

    # WeCom's retry of one request is answered as usual and stored once; the same signature with
    # another body (the envelope changed around the same Encrypt) is refused.
    signed = fc.sign(fc.text(ZHANG, "任务"))
    for _ in range(2):
        retry = await send(signed)
        assert retry.status_code == 200 and retry.text == ""
    assert await live.count(WeChatInbox) == inbox + 1
    changed = signed.body.replace(b"<xml>", b"<xml><Note>x</Note>", 1)
    assert (await send(signed, changed)).status_code == 403

    # The access log shows the requests without their query strings.
    text = live.log.read_text(encoding="utf-8", errors="replace")
    assert '"POST /wecom HTTP/1.1" 403' in text
    assert signed.params["msg_signature"] not in text and "/wecom?" not in text
    assert "Exception in ASGI application" not in text  # no request ended in a 500
