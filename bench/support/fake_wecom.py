"""A fake WeCom (企业微信) on 127.0.0.1, both sides of it.

``FakeWeCom`` is the API, in a thread, so the real server process and in-process clients can both talk
to it. It checks what WeCom checks and records every call:

* ``GET /cgi-bin/gettoken``: the corp id and the app secret; while a token is valid the same one is
  handed out again (as WeCom does). Other endpoints refuse an unknown token (``40014``) and one that
  was revoked or expired (``42001``).
* ``POST /cgi-bin/message/send``: our ``agentid``; a ``touser`` that is a member of the directory
  (``81013`` when none is); ``text.content`` present and within 2048 bytes; a ``template_card`` of a
  known ``card_type``, and for ``button_interaction``: ``task_id`` present, within ``[A-Za-z0-9_-@]``,
  ≤128 bytes and never used before by the app, ``main_title.title`` (or ``sub_title_text``) present
  and within the documented lengths, 1–6 buttons, each with a text of ≤10 characters and a distinct
  key of ≤1024 bytes. A card is answered with a ``response_code``. Beyond 30 messages a minute to one
  member WeCom answers ``ok`` and drops the message: the fake does the same and counts the drop.
* ``POST /cgi-bin/message/update_template_card``: our ``agentid``, a ``response_code`` issued for a
  click of that member on that card and not used before, and a ``button.replace_name`` or a valid
  ``template_card``.

Errors are programmable per endpoint and member: ``fail(SEND, 81013, touser=…, times=…)``.

The other side is the callback: ``Callback`` builds what WeCom's servers POST to ``/wecom`` (message XML,
AES-encrypted with the real WXBizMsgCrypt scheme and corp id, ``msg_signature`` over token, timestamp,
nonce and Encrypt) and the ``GET`` URL verification with an encrypted ``echostr``. A click is built
with ``click``, which asks the fake API for the ``ResponseCode`` WeCom would attach.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from itertools import count
from typing import Any

from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.utils import to_text

from bench.support.fake_wechat import serve_json

CORP_ID = "ww0123456789abcdef"
AGENT_ID = 1000002
SECRET = "test-wecom-app-secret-0123456789"
TOKEN = "test-wecom-callback-token"
AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlk0"  # 43 characters, as the console issues it

GET_TOKEN = "/cgi-bin/gettoken"
SEND = "/cgi-bin/message/send"
UPDATE_CARD = "/cgi-bin/message/update_template_card"

CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
TASK_ID = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
INVALID = 40058  # 不合法的参数
PER_MEMBER_MINUTE = 30

ERRMSG = {
    40014: "invalid access_token",
    42001: "access_token expired",
    40056: "invalid agentid",
    81013: "user & party & tag all invalid",
    45033: "api concurrent out of limit",
    45009: "api freq out of limit",
    INVALID: "invalid parameter",
    -1: "system busy",
}


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    query: dict[str, str]
    answer: dict[str, Any]
    dropped: bool = False

    @property
    def touser(self) -> str | None:
        return self.body.get("touser")

    @property
    def ok(self) -> bool:
        return self.answer.get("errcode", 0) == 0

    @property
    def card(self) -> dict[str, Any]:
        return self.body.get("template_card") or {}

    @property
    def text(self) -> str:
        """What the member reads: a text message, or a card's title and text."""
        if self.body.get("msgtype") == "text":
            return str((self.body.get("text") or {}).get("content", ""))
        card = self.card
        return f"{(card.get('main_title') or {}).get('title', '')}\n{card.get('sub_title_text', '')}"

    @property
    def keys(self) -> dict[str, str]:
        """A card's buttons, text → key."""
        return {b["text"]: b["key"] for b in self.card.get("button_list", [])}


@dataclass
class Rule:
    path: str
    errcode: int
    touser: str | None
    times: int | None


@dataclass
class FakeWeCom:
    members: set[str]
    corp_id: str = CORP_ID
    agent_id: int = AGENT_ID
    secret: str = SECRET
    expires_in: int = 7200
    calls: list[Call] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    dropped: int = 0
    # The clock of the per-member window (tests that inject a clock into our limiter share it here).
    clock: Callable[[], float] = time.monotonic
    _token: str | None = None
    _valid: dict[str, float] = field(default_factory=dict)  # token → expiry (monotonic)
    _revoked: set[str] = field(default_factory=set)
    _task_ids: set[str] = field(default_factory=set)
    _cards: dict[str, str] = field(default_factory=dict)  # task_id → member it was sent to
    _codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # response code → (member, task)
    _recent: dict[str, list[float]] = field(default_factory=dict)
    _serial: count[int] = field(default_factory=lambda: count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- control --------------------------------------------------------------------------------------

    def start(self) -> FakeWeCom:
        self._server = serve_json(self.handle, "wecom")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, path: str, errcode: int, *, touser: str | None = None, times: int | None = 1) -> None:
        with self._lock:
            self.rules.append(Rule(path, errcode, touser, times))

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (``42001``); the next gettoken issues a new one."""
        with self._lock:
            self._revoked |= set(self._valid)
            self._valid.clear()
            self._token = None

    def sent(self, path: str = SEND, *, to: str | None = None, ok: bool = True) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.path == path
                and (to is None or c.touser == to or to in c.body.get("userids", ()))
                and (not ok or (c.ok and not c.dropped))
            ]

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.path == path)

    def issue_response_code(self, member: str, task_id: str) -> str:
        """What WeCom attaches to a click on a card: a code to update that card once."""
        with self._lock:
            assert self._cards.get(task_id) == member, f"no card {task_id} was sent to {member}"
            code = "RC_" + secrets.token_urlsafe(24)
            self._codes[code] = (member, task_id)
            return code

    # -- behaviour ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            answer, dropped = self._handle(method, path, query, body)
            self.calls.append(Call(path, body, query, answer, dropped))
            return answer

    def _rule(self, path: str, body: dict[str, Any]) -> int | None:
        for rule in self.rules:
            if rule.path == path and (rule.touser is None or rule.touser == body.get("touser")):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                return rule.errcode
        return None

    def _token_error(self, token: str | None) -> int | None:
        expiry = self._valid.get(token or "")
        if expiry is not None and expiry > time.monotonic():
            return None
        return 42001 if token in self._revoked or expiry is not None else 40014

    def _handle(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        if path == GET_TOKEN and method == "GET":
            if query.get("corpid") != self.corp_id or query.get("corpsecret") != self.secret:
                return _error(40013 if query.get("corpid") != self.corp_id else 40001), False
            if self._token is None or self._token_error(self._token) is not None:
                self._token = f"WECOM_TOKEN_{next(self._serial)}_{secrets.token_hex(8)}"
                self._valid[self._token] = time.monotonic() + self.expires_in
            remaining = int(self._valid[self._token] - time.monotonic())
            return {"errcode": 0, "errmsg": "ok", "access_token": self._token, "expires_in": remaining}, False
        if path not in (SEND, UPDATE_CARD) or method != "POST":
            return {"errcode": 404, "errmsg": f"no such endpoint {path}"}, False
        token_error = self._token_error(query.get("access_token"))
        if token_error is not None:
            return _error(token_error), False
        if body.get("agentid") != self.agent_id:
            return _error(40056), False
        programmed = self._rule(path, body)
        if programmed is not None:
            return _error(programmed), False
        if path == UPDATE_CARD:
            return self._update(body), False
        return self._send(body)

    def _send(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        member = str(body.get("touser") or "")
        if member not in self.members:
            return _error(81013), False
        problem = _message_problem(body)
        if problem is not None:
            return {"errcode": INVALID, "errmsg": f"invalid parameter: {problem}"}, False
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "",
            "msgid": secrets.token_hex(8),
        }
        if body["msgtype"] == "template_card":
            task_id = body["template_card"].get("task_id")
            if task_id in self._task_ids:
                return {"errcode": INVALID, "errmsg": "invalid parameter: task_id used before"}, False
            if task_id:
                self._task_ids.add(task_id)
                self._cards[task_id] = member
            answer["response_code"] = "RC_SEND_" + secrets.token_hex(8)
        now = self.clock()
        recent = [t for t in self._recent.get(member, []) if t > now - 60]
        recent.append(now)
        self._recent[member] = recent
        if len(recent) > PER_MEMBER_MINUTE:  # WeCom says ok and never delivers it
            self.dropped += 1
            return answer, True
        return answer, False

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        code = str(body.get("response_code") or "")
        issued = self._codes.pop(code, None)
        if issued is None:
            return {"errcode": INVALID, "errmsg": "invalid parameter: response_code unknown or used"}
        member, task_id = issued
        if body.get("userids") != [member]:
            return {"errcode": INVALID, "errmsg": "invalid parameter: userids"}
        if "button" in body:
            name = (body.get("button") or {}).get("replace_name")
            if not isinstance(name, str) or not name or len(name) > 10:
                return {"errcode": INVALID, "errmsg": "invalid parameter: button.replace_name"}
            return {"errcode": 0, "errmsg": "ok"}
        card = body.get("template_card")
        problem = _card_problem(card) if isinstance(card, dict) else "template_card missing"
        if problem is not None:
            return {"errcode": INVALID, "errmsg": f"invalid parameter: {problem}"}
        if card.get("task_id") != task_id:  # type: ignore[union-attr]
            return {"errcode": INVALID, "errmsg": "invalid parameter: task_id of another card"}
        return {"errcode": 0, "errmsg": "ok"}


def _error(code: int) -> dict[str, Any]:
    return {"errcode": code, "errmsg": ERRMSG.get(code, "error")}


def _message_problem(body: dict[str, Any]) -> str | None:
    kind = body.get("msgtype")
    if kind == "text":
        content = (body.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return "text.content"
        return "text.content too long" if len(content.encode("utf-8")) > 2048 else None
    if kind == "template_card":
        card = body.get("template_card")
        return _card_problem(card) if isinstance(card, dict) else "template_card"
    return f"msgtype {kind!r}"


def _card_problem(card: dict[str, Any]) -> str | None:
    if card.get("card_type") not in CARD_TYPES:
        return "card_type"
    title = (card.get("main_title") or {}).get("title")
    sub = card.get("sub_title_text")
    if not title and not sub:
        return "main_title.title or sub_title_text"
    if title is not None and (not isinstance(title, str) or len(title) > 26):
        return "main_title.title"
    if len(str((card.get("main_title") or {}).get("desc", ""))) > 30:
        return "main_title.desc"
    if sub is not None and (not isinstance(sub, str) or len(sub) > 112):
        return "sub_title_text"
    if card["card_type"] != "button_interaction":
        return None
    task_id = card.get("task_id")
    if not isinstance(task_id, str) or not TASK_ID.match(task_id) or len(task_id.encode()) > 128:
        return "task_id"
    buttons = card.get("button_list")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
        return "button_list"
    keys = [b.get("key") for b in buttons]
    for button in buttons:
        text, key = button.get("text"), button.get("key")
        if not isinstance(text, str) or not text or len(text) > 10:
            return "button_list.text"
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > 1024:
            return "button_list.key"
    return "button_list.key repeated" if len(set(keys)) != len(keys) else None


# -- the callback side --------------------------------------------------------------------------------


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def encrypt(plain: str, aes_key: str = AES_KEY, corp_id: str = CORP_ID) -> str:
    return to_text(PrpCrypto(base64.b64decode(aes_key + "=")).encrypt(plain, corp_id))


def decrypt(encrypted: str, aes_key: str = AES_KEY, corp_id: str = CORP_ID) -> str:
    return to_text(PrpCrypto(base64.b64decode(aes_key + "=")).decrypt(encrypted, corp_id))


_msg_ids = count(int(time.time() * 1000) % 10**9 * 1000)


@dataclass
class Signed:
    params: dict[str, str]
    body: bytes


def message_xml(
    userid: str,
    msg_type: str,
    *,
    agent_id: int = AGENT_ID,
    create_time: int | None = None,
    **fields: str | int,
) -> str:
    """The plaintext XML of a message or event, as WeCom writes it (numbers bare, strings in CDATA)."""
    base: dict[str, str | int] = {
        "ToUserName": CORP_ID,
        "FromUserName": userid,
        "CreateTime": create_time if create_time is not None else int(time.time()),
        "MsgType": msg_type,
        **fields,
        "AgentID": agent_id,
    }
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{cdata(str(v))}</{k}>" for k, v in base.items()
    )
    return f"<xml>{inner}</xml>"


def text(userid: str, content: str, *, msg_id: int | None = None, **extra: Any) -> str:
    return message_xml(
        userid, "text", Content=content, MsgId=msg_id if msg_id is not None else next(_msg_ids), **extra
    )


def click(fake: FakeWeCom, userid: str, card: Call, label: str, *, create_time: int | None = None) -> str:
    """The ``template_card_event`` WeCom sends when ``userid`` taps the button ``label`` of ``card``."""
    task_id = card.card["task_id"]
    return message_xml(
        userid,
        "event",
        create_time=create_time,
        Event="template_card_event",
        EventKey=card.keys[label],
        TaskId=task_id,
        CardType=card.card["card_type"],
        ResponseCode=fake.issue_response_code(userid, task_id),
    )


def sign(
    xml: str,
    *,
    token: str = TOKEN,
    aes_key: str = AES_KEY,
    corp_id: str = CORP_ID,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> Signed:
    """A POST to the callback URL: the envelope with the encrypted message, and its query."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypted = encrypt(xml, aes_key, corp_id)
    body = (
        f"<xml><ToUserName>{cdata(CORP_ID)}</ToUserName><AgentID>{cdata(str(AGENT_ID))}</AgentID>"
        f"<Encrypt>{cdata(encrypted)}</Encrypt></xml>"
    )
    params = {"msg_signature": sha1_sorted(token, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    return Signed(params, body.encode("utf-8"))


def verification(
    echo: str, *, token: str = TOKEN, corp_id: str = CORP_ID, timestamp: int | None = None
) -> dict[str, str]:
    """The query of WeCom's URL verification GET (``echostr`` encrypted, and signed)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = str(secrets.randbelow(10**10))
    echostr = encrypt(echo, corp_id=corp_id)
    return {
        "msg_signature": sha1_sorted(token, ts, nonce, echostr),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": echostr,
    }


def open_reply(body: str, token: str = TOKEN) -> str:
    """A passive reply opened as WeCom would (its MsgSignature checked)."""
    import defusedxml.ElementTree as ET

    root = ET.fromstring(body)
    encrypted = root.findtext("Encrypt") or ""
    expected = sha1_sorted(token, root.findtext("TimeStamp") or "", root.findtext("Nonce") or "", encrypted)
    assert expected == root.findtext("MsgSignature"), "reply signature does not verify"
    return decrypt(encrypted)
