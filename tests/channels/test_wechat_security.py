"""The attacks an outside probe ran against ``/wechat`` (issue #11), replayed against the real
``outreach-bot serve`` process in safe mode (AES key and account id configured), on SQLite and
PostgreSQL. Each test is the attack as the probe made it, and what the server must answer now.

Callbacks are built exactly as WeChat sends them (``tests/wechat_payloads.py``); replies to residents
and staff go to the fake WeChat API (``tests/fake_wechat.py``), which records them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import to_text

from bench.support import fake_wechat as fw
from bench.support import wechat_payloads as wx
from bench.support.live_server import ServerProcess, serve_process
from bench.support.waiting import wait_until
from bot.channels.wechat.guards import Refused, SenderLimiter, check_xml_bytes
from bot.channels.wechat.inbox import Inbox, Item
from messages import render
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import InboundMessage, StaffInvite
from storage.wechat_models import WeChatCallbackSeal, WeChatInbox
from tests.channels.test_wechat import COMMUNITY, server_env
from tests.support.db import database_of

CHEN = "oChen0001"  # the admin
SLOW_TURN = "handled too slowly for a passive reply"  # the server's log line
WANG = "oWang0001"


def new_openid() -> str:
    return "oSec" + uuid.uuid4().hex[:20]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def encrypted_body(inner: bytes, *, nonce: str, timestamp: str, to_user: str = wx.ACCOUNT) -> wx.Signed:
    """A safe-mode callback carrying ``inner`` bytes as they are (any encoding), validly signed."""
    key = base64.b64decode(wx.AES_KEY + "=")
    encrypt = to_text(PrpCrypto(key).encrypt(inner, wx.APP_ID))
    params = {
        "signature": wx.sha1_sorted(wx.TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": wx.sha1_sorted(wx.TOKEN, timestamp, nonce, encrypt),
    }
    body = f"<xml><ToUserName>{wx.cdata(to_user)}</ToUserName><Encrypt>{wx.cdata(encrypt)}</Encrypt></xml>"
    return wx.Signed(params, body.encode("utf-8"), nonce, timestamp)


@dataclass
class Live:
    server: ServerProcess
    engine: AsyncEngine
    fake: fw.FakeWeChat
    env: dict[str, str]
    folder: Path

    @property
    def url(self) -> str:
        return self.server.url

    # A new connection for each request: the server closes idle ones after 5 s, and a pooled
    # connection reused at that moment would fail the request for a reason no test is about.
    http: httpx.AsyncClient

    async def send(self, signed: wx.Signed, url: str | None = None) -> httpx.Response:
        return await self.http.post((url or self.url) + "/wechat", params=signed.params, content=signed.body)

    async def post(self, xml: str, *, aes: bool = True, **sign: Any) -> httpx.Response:
        return await self.send(wx.sign(xml, aes=aes, **sign))

    async def count(self, model: Any, *where: Any) -> int:
        async with session_factory(self.engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def log(self, since: int = 0) -> str:
        """The server's log (from character ``since``: what one test made it write)."""
        return self.server.log.read_text(encoding="utf-8", errors="replace")[since:]


def reply_text(response: httpx.Response) -> str | None:
    """The passive reply's text (safe mode: decrypted as WeChat would), or None for ``success``."""
    if response.text == "success":
        return None
    return SafeET.fromstring(wx.decrypt_reply(response.text)).findtext("Content") or ""


@pytest.fixture(scope="module")
async def live_db(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with database_of(backend, tmp_path_factory.mktemp("wechat-sec"), "outreach_wsec") as url:
        yield url


@pytest.fixture(scope="module")
async def live(live_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    folder = tmp_path_factory.mktemp("wechat-sec-live")
    config = folder / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    env = server_env(live_db, config, fake.url, OUTREACH_WECHAT_ACCOUNT_ID=wx.ACCOUNT)
    engine = create_engine(live_db)
    try:
        async with serve_process(folder, env) as server:
            limits = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(timeout=30, limits=limits) as http:
                yield Live(server, engine, fake, env, folder, http)
    finally:
        await engine.dispose()
        fake.stop()


# -- 1. admin takeover through a logged signature ---------------------------------------------------


async def test_plaintext_is_refused_in_safe_mode_even_with_a_valid_signature(live: Live) -> None:
    # The probe's attack: a signature, timestamp and nonce from one log line, a plaintext body of its
    # own as the admin asking for an invite code.
    inbound, invites = await live.count(InboundMessage), await live.count(StaffInvite)
    forged = await live.post(wx.text(CHEN, "邀请 zhang"), aes=False, openid=CHEN)
    assert forged.status_code == 403 and "邀请码" not in forged.text
    await asyncio.sleep(0.3)  # nothing may happen later either
    assert await live.count(InboundMessage) == inbound
    assert await live.count(StaffInvite) == invites
    assert "plaintext callback in safe mode" in live.log()


async def test_a_signature_is_bound_to_its_first_body_across_processes(live: Live) -> None:
    # A second process on the same database, in 兼容模式 (plaintext accepted as well): what one
    # process saw, the other refuses. Its start-up warns about the mode.
    folder = live.folder / "second"
    folder.mkdir(exist_ok=True)
    env = {**live.env, "OUTREACH_WECHAT_COMPAT_MODE": "1"}
    async with serve_process(folder, env) as second:
        assert "compatible mode" in second.log.read_text(encoding="utf-8", errors="replace")
        ts, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**10)
        first = wx.sign(wx.text(new_openid(), "帮助"), aes=True, timestamp=int(ts), nonce=nonce)
        assert (await live.send(first, second.url)).status_code == 200
        # WeChat's retry of the same body, to the other process: its normal answer.
        retry = await live.send(first)
        assert retry.status_code == 200 and retry.text == "success"
        # Another body under the same signature, timestamp and nonce: refused by both processes,
        # encrypted or (the probe's way, in compatible mode) in plaintext.
        other = wx.sign(wx.text(CHEN, "邀请 zhang"), aes=True, timestamp=int(ts), nonce=nonce)
        assert (await live.send(other)).status_code == 403
        assert (await live.send(other, second.url)).status_code == 403
        plain = wx.sign(wx.text(CHEN, "邀请 zhang"), timestamp=int(ts), nonce=nonce)
        assert plain.params["signature"] == first.params["signature"]
        assert (await live.send(plain, second.url)).status_code == 403
        # Plaintext with a fresh signature is accepted by the compatible process, not by the safe one.
        fresh = wx.sign(wx.text(new_openid(), "帮助"))
        assert (await live.send(fresh, second.url)).status_code == 200
        assert (await live.send(fresh)).status_code == 403
    seals = await live.count(
        WeChatCallbackSeal, WeChatCallbackSeal.nonce == nonce, WeChatCallbackSeal.timestamp == int(ts)
    )
    assert seals == 1


async def test_an_invite_code_is_never_a_passive_reply(live: Live) -> None:
    # The admin asks for an invite code: the HTTP answer (which goes to whoever made the request)
    # does not carry it; the admin's own account gets it as a customer-service message.
    answer = await live.post(wx.text(CHEN, "邀请 zhang"))
    assert answer.status_code == 200
    passive = reply_text(answer) or ""
    assert "邀请码" not in passive

    async def pushed() -> str | None:
        texts = [c.text or "" for c in live.fake.sent(fw.CUSTOM, to=CHEN)]
        return next((t for t in texts if "邀请码" in t), None)

    message = await wait_until(pushed, "the invite code pushed to the admin")
    code = re.search(r"绑定 (\S+?)”", message)
    assert code is not None and code.group(1) not in answer.text and code.group(1) not in passive


async def test_the_access_log_shows_no_query_string(live: Live) -> None:
    signed = wx.sign(wx.text(new_openid(), "帮助"), aes=True, openid=CHEN)
    assert (await live.send(signed)).status_code == 200
    refused = wx.sign(wx.text(CHEN, "帮助"), openid=CHEN)  # plaintext: refused, and logged as such
    assert (await live.send(refused)).status_code == 403

    def logged() -> bool:
        return live.log().count('"POST /wechat HTTP/1.1" 403') >= 1

    await wait_until(_sync(logged), "the access log line")
    text = live.log()
    assert '"POST /wechat HTTP/1.1" 200' in text  # the access log is on, without the query
    for signed_request in (signed, refused):
        for name in ("signature", "msg_signature", "nonce"):
            if name in signed_request.params:
                assert signed_request.params[name] not in text
    assert "openid=" not in text and "/wechat?" not in text


def _sync(check: Any) -> Any:
    async def wrapped() -> Any:
        return check()

    return wrapped


# -- 6. costly refusals and stalls ------------------------------------------------------------------


async def test_hostile_documents_are_refused_without_parsing_them(live: Live) -> None:
    # Validly signed and encrypted, as the probe sent them: each was refused, but cost ~100 ms of CPU.
    before = cpu_seconds(live.server.process.pid)
    bodies = [wx.BILLION_LAUGHS] * 150 + [wx.EXTERNAL_ENTITY] * 50
    for start in range(0, len(bodies), 25):
        answers = await asyncio.gather(*(live.post(b) for b in bodies[start : start + 25]))
        assert [a.status_code for a in answers] == [400] * len(answers)
    spent = cpu_seconds(live.server.process.pid) - before
    assert spent < 5.0, f"200 hostile documents cost {spent:.1f} s of CPU"
    # A DOCTYPE hidden by UTF-16 is refused too.
    utf16 = wx.BILLION_LAUGHS.replace('<?xml version="1.0"?>', "").encode("utf-16")
    hidden = encrypted_body(utf16, nonce="77", timestamp=str(int(time.time())))
    assert (await live.send(hidden)).status_code == 400


async def inline_reply(live: Live) -> bool:
    """A resident's message was handled inline (passive reply, or a late one the server logged)."""
    late = live.log().count(SLOW_TURN)
    answer = await live.post(wx.text(new_openid(), "帮助"))
    assert answer.status_code == 200
    return bool(reply_text(answer)) or live.log().count(SLOW_TURN) > late


async def test_a_slow_body_is_dropped_and_does_not_stop_inline_replies(live: Live) -> None:
    # The server is quiet (what earlier tests queued is handled): a message is handled inline.
    for _ in range(40):
        if await inline_reply(live):
            break
        await asyncio.sleep(0.5)  # each try queues one more message: let the worker catch up
    else:
        raise AssertionError("the server never answered inline")
    host, port = live.url.removeprefix("http://").split(":")
    signed = wx.sign(wx.text(new_openid(), "帮助"), aes=True)
    query = "&".join(f"{k}={v}" for k, v in signed.params.items())
    streams = []
    for _ in range(3):  # three slow-loris bodies with a valid signature
        reader, writer = await asyncio.open_connection(host, int(port))
        head = f"POST /wechat?{query} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(signed.body)}\r\n\r\n"
        writer.write(head.encode() + signed.body[:10])
        await writer.drain()
        streams.append((reader, writer))
    # Meanwhile a resident writes: still handled inline, for a passive reply (not "success" and
    # later; on a busy machine the turn may outlast the passive deadline, which the server logs).
    assert await inline_reply(live), live.log()[-3000:]
    for reader, writer in streams:  # each slow body is given up on (408) after a few seconds
        head = await asyncio.wait_for(reader.read(200), 30)
        assert head.startswith(b"HTTP/1.1 408"), head
        writer.close()


async def test_a_flooding_sender_is_refused_without_storing(live: Live) -> None:
    flooder, other = new_openid(), new_openid()
    answers = await asyncio.gather(*(live.post(wx.text(flooder, "帮助")) for _ in range(40)))
    assert all(a.status_code == 200 for a in answers)
    replies = [reply_text(a) for a in answers]
    assert render("wechat.too_fast") in replies
    stored = await live.count(WeChatInbox, WeChatInbox.openid == flooder)
    assert stored < 30  # a burst of 20, then one every two seconds
    assert (await live.post(wx.text(other, "帮助"))).status_code == 200  # everyone else is served
    assert await live.count(WeChatInbox, WeChatInbox.openid == other) == 1


# -- 7. encodings, field lengths, the account -----------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "declared"),
    [("gbk", "GBK"), ("utf-16", "UTF-16"), ("iso-8859-1", "ISO-8859-1"), ("utf-8", "GB2312")],
)
async def test_a_body_not_in_utf8_gets_400_not_500(live: Live, encoding: str, declared: str) -> None:
    start = len(live.log())
    xml = wx.text(new_openid(), "3号楼楼道有积水 café")
    document = f'<?xml version="1.0" encoding="{declared}"?>{xml}'.encode(encoding, errors="replace")
    inner = encrypted_body(document, nonce=str(uuid.uuid4().int % 10**9), timestamp=str(int(time.time())))
    assert (await live.send(inner)).status_code == 400
    outer = wx.sign(xml, aes=True)
    envelope = f'<?xml version="1.0" encoding="{declared}"?>' + outer.body.decode("utf-8")
    outer.body = envelope.encode(encoding)
    assert (await live.send(outer)).status_code == 400
    assert "Exception in ASGI application" not in live.log(start)


async def test_an_oversize_sender_cannot_fail_the_others(live: Live) -> None:
    # The probe's batch: thirty legitimate callbacks and one with a 201-character FromUserName.
    start = len(live.log())
    good = [wx.text(new_openid(), f"{n % 6 + 1}号楼门口有很多垃圾") for n in range(30)]
    bad = wx.text("o" + "x" * 200, "1号楼有垃圾")
    answers = await asyncio.gather(*(live.post(xml) for xml in [*good[:15], bad, *good[15:]]))
    codes = [a.status_code for a in answers]
    assert codes[15] == 400 and codes[:15] + codes[16:] == [200] * 30
    assert await live.count(WeChatInbox, WeChatInbox.openid.like("oSec%")) >= 30
    assert "Exception in ASGI application" not in live.log(start)


async def test_a_message_for_another_account_is_refused(live: Live) -> None:
    inbox = await live.count(WeChatInbox)
    ts = str(int(time.time()))
    other = wx.text(new_openid(), "帮助").replace(wx.ACCOUNT, "gh_somebodyelse")
    # The inner ToUserName differs from the outer one.
    assert (await live.send(encrypted_body(other.encode(), nonce="901", timestamp=ts))).status_code == 403
    # Both say another account (not the configured OUTREACH_WECHAT_ACCOUNT_ID).
    both = encrypted_body(other.encode(), nonce="902", timestamp=ts, to_user="gh_somebodyelse")
    assert (await live.send(both)).status_code == 403
    assert await live.count(WeChatInbox) == inbox


async def test_idle_connections_are_closed(live: Live) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))  # connects, never sends
    assert await asyncio.wait_for(reader.read(100), 30) == b""  # closed by the server
    writer.close()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    await reader.readexactly(length)
    assert await asyncio.wait_for(reader.read(100), 30) == b""  # an idle keep-alive connection too
    writer.close()


# -- the checks on their own ----------------------------------------------------------------------------


@pytest.mark.postgres
async def test_one_bad_row_does_not_fail_its_group_commit(tmp_path: Path) -> None:
    # PostgreSQL enforces VARCHAR lengths (SQLite does not): a row the callback's checks would not
    # let through, put straight into the inbox with thirty others in one batch.
    async with database_of("postgres", tmp_path, "outreach_wsec_batch") as url:
        engine = create_engine(url)
        await upgrade(engine)
        inbox = Inbox(session_factory(engine), "wechat")

        async def handle(_item: Item) -> None:
            return None

        inbox.start(handle)
        try:
            puts = [inbox.put(f"batch-{n}", f"oBatch{n}", "<xml/>", inline=True) for n in range(30)]
            puts.insert(15, inbox.put("batch-bad", "o" * 201, "<xml/>", inline=True))
            results = await asyncio.gather(*puts, return_exceptions=True)
        finally:
            await inbox.stop()
            await engine.dispose()
    assert isinstance(results[15], Exception)
    stored = [r for r in results[:15] + results[16:] if isinstance(r, Item)]
    assert len(stored) == 30


@pytest.mark.parametrize(
    "body",
    [
        wx.BILLION_LAUGHS.encode(),
        wx.EXTERNAL_ENTITY.encode(),
        "<xml><a>x</a></xml>".encode("utf-16"),
        "<xml><a>x</a></xml>".encode("utf-16-le"),
        '<?xml version="1.0" encoding="GBK"?><xml><a>垃圾</a></xml>'.encode("gbk"),
        "<xml><a>caf\xe9</a></xml>".encode("latin-1"),
    ],
)
def test_byte_checks_refuse_dtds_and_other_encodings(body: bytes) -> None:
    with pytest.raises(Refused) as caught:
        check_xml_bytes(body)
    assert caught.value.status == 400


def test_byte_checks_let_wechat_documents_through() -> None:
    check_xml_bytes(wx.text("oX", "3号楼楼道有积水").encode("utf-8"))
    check_xml_bytes(('<?xml version="1.0" encoding="UTF-8"?>' + wx.text("oX", "你好")).encode("utf-8"))


def test_sender_limiter_allows_a_burst_then_a_steady_rate() -> None:
    now = [0.0]
    limiter = SenderLimiter(burst=3, rate=0.5, size=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another sender is not affected
    now[0] = 2.0  # two seconds: one more message
    assert limiter.allow("a") and not limiter.allow("a")
