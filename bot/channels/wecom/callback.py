"""The WeCom callback, ``GET``/``POST /wecom``.

WeCom signs and encrypts everything (the WXBizMsgCrypt scheme, receive id = the corp id):

* ``GET`` is URL verification: ``msg_signature`` = SHA-1 of the sorted token, timestamp, nonce and
  ``echostr``; ``echostr`` is AES-encrypted and the answer is its plaintext.
* ``POST`` carries ``<xml><ToUserName/><AgentID/><Encrypt/></xml>``; ``msg_signature`` covers Encrypt.

Every request is checked before anything is parsed or stored, with the Official Account's helpers
(``bot/channels/wechat/callback.py``, ``guards.py``, ``safe_xml.py``): the signature (constant-time),
a timestamp within ``MAX_SKEW``, a body of at most ``MAX_BODY`` bytes received within ``BODY_TIMEOUT``
seconds, UTF-8 XML without DTD, entities or external references (a byte check before any parser), inside
and outside the envelope; the message must be for our corp (inner ToUserName = outer = corp id) and
agent, its fields must fit their columns, and a member flooding the app is refused in memory. The
signature, timestamp and nonce are bound to the body's SHA-256 across processes, with the stored message
(a retry of the same body is answered as usual, another body under them is refused). Then it is stored
in the inbox (``bot/channels/wechat/inbox.py``, channel ``wecom``) and WeCom gets its empty answer at
once; a retry (same MsgId; events: FromUserName + CreateTime + EventKey/TaskId) is turned away at the
door. The inbox worker hands each message to the conversation core afterwards, so WeCom's 5 seconds
never depend on how busy the core is, and everything the core answers goes out through the outbox.

Card clicks (``template_card_event``; wechatpy 1.8.18 does not know it, so its fields are read from
the XML) become ``Conversation.act`` with the button's key as the action. The card is then updated with
``message/update_template_card`` and the click's ``ResponseCode``, written to the outbox as a
``card_update`` row: WeCom also accepts an encrypted passive reply (``update_button``) within the 5
seconds, but the click is handled after the answer, and an outbox row is retried, limited and survives
a restart, while a passive reply lost in transit is lost. WeCom keeps a ResponseCode valid for 72 hours
and for one use; the row's dedup key makes sure it is used once.

Only staff use the app. A member not bound to a staff account may send ``绑定 邀请码`` (an invite code,
as on every channel); anything else gets a short explanation and reaches no one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.channels.wechat.callback import MAX_BODY, MAX_SKEW, Refused, _same, signature
from bot.channels.wechat.guards import SenderLimiter, body_sha256, check_fields, read_body
from bot.channels.wechat.inbox import Inbox, Item, Replayed, Seal
from bot.channels.wechat.safe_xml import safe_parse
from bot.channels.wecom import cards
from bot.channels.wecom.sender import CARD_UPDATE, CHANNEL
from handlers.cases.button_state import case_state
from handlers.kernel.channel_services import (
    active_staff_of,
    queue_once,
    reply_unhandled,
    sent_row,
)
from handlers.kernel.clock import utcnow
from handlers.kernel.commands import Cmd, parse_action, parse_command
from handlers.kernel.inbound import Inbound
from handlers.kernel.outbox import Outbound
from messages import render

if TYPE_CHECKING:
    from handlers.kernel.channel_ports import AdapterContext
    from handlers.kernel.outbox import OutboxItem

log = logging.getLogger(__name__)

CARD_EVENT = "template_card_event"
EVENTS = frozenset({"subscribe", "click", CARD_EVENT})  # the events that mean something to the core
ECHO_MAX = 1024  # characters of an encrypted echostr


def _child(root: Element, name: str) -> str:
    found = root.find(name)
    return (found.text or "").strip() if found is not None else ""


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]


def inbox_key(root: Element) -> str | None:
    """The key WeCom's retries share, or None for a message the bot does not read."""
    user, created = _child(root, "FromUserName"), _child(root, "CreateTime")
    msg_type = _child(root, "MsgType").lower()
    if msg_type == "text":
        return _child(root, "MsgId") or f"{user}:{created}:text"
    if msg_type == "event":
        event = _child(root, "Event").lower()
        if event not in EVENTS:
            return None
        # Two clicks in one second differ by key or card; the digest keeps the key within bounds.
        return f"{user}:{created}:{_digest(event, _child(root, 'EventKey'), _child(root, 'TaskId'))}"
    return None


class WeComCallback:
    """The routes' handlers and the inbox worker's entry; ``context`` and ``inbox`` are set at start."""

    def __init__(
        self,
        token: str,
        aes_key: str,
        corp_id: str,
        agent_id: int,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._token = token
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.clock = clock
        self.context: AdapterContext | None = None  # set by the adapter at start
        self.inbox: Inbox | None = None
        self.active = 0  # callbacks being answered right now (the inbox worker lets them go first)
        self.limiter = SenderLimiter()

    @property
    def _context(self) -> AdapterContext:
        if self.context is None:
            raise RuntimeError("the WeCom callback was used before its adapter started")
        return self.context

    # -- checks ----------------------------------------------------------------------------------------

    def _check(self, request: Request, signed: str) -> tuple[str, str]:
        """The query's signature over ``signed`` (echostr or Encrypt) and its freshness."""
        q = request.query_params
        sig, timestamp, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not (sig and timestamp and nonce and signed) or not (timestamp.isascii() and timestamp.isdigit()):
            raise Refused(403, "missing signature")
        if len(nonce) > 64 or len(sig) > 64 or len(timestamp) > 12:
            raise Refused(403, "bad signature")
        if not _same(signature(self._token, timestamp, nonce, signed), sig):
            raise Refused(403, "bad signature")
        if abs(time.time() - int(timestamp)) > MAX_SKEW:
            raise Refused(403, "stale timestamp")
        return timestamp, nonce

    def _decrypt(self, encrypted: str) -> str:
        try:
            plain = open_envelope(self.crypto, encrypted)
        except UnicodeDecodeError:  # decrypted fine, but not UTF-8 (GBK, UTF-16, Latin-1 …)
            raise Refused(400, "not UTF-8") from None
        except Exception as exc:  # InvalidCorpIdException, padding, base64 …
            raise Refused(403, f"cannot decrypt ({type(exc).__name__})") from None
        if len(plain.encode("utf-8")) > MAX_BODY:
            raise Refused(413, "body too large")
        return plain

    async def _body(self, request: Request) -> bytes:
        try:
            return await read_body(request.stream(), request.scope["headers"], MAX_BODY)
        except ClientDisconnect:
            raise Refused(400, "client went away") from None

    # -- routes ----------------------------------------------------------------------------------------

    async def verify(self, request: Request) -> Response:
        """URL verification: answer the decrypted ``echostr`` when the signature is ours."""
        echo = request.query_params.get("echostr", "")
        try:
            if len(echo) > ECHO_MAX:
                raise Refused(403, "echostr too long")
            self._check(request, echo)
            plain = self._decrypt(echo)
        except Refused as exc:
            log.warning("wecom verification refused: %s", exc.reason)
            return PlainTextResponse("forbidden", status_code=exc.status)
        return PlainTextResponse(plain)

    async def receive(self, request: Request) -> Response:
        """Counted as active (the inbox worker gives way) only once the body is in: a slow client
        must not hold back the handling of messages already stored."""
        try:
            body = await self._body(request)
        except Refused as exc:
            log.warning("wecom callback refused: %s", exc.reason)
            return PlainTextResponse("refused", status_code=exc.status)
        self.active += 1
        try:
            return await self._receive(request, body)
        finally:
            self.active -= 1

    async def _receive(self, request: Request, body: bytes) -> Response:
        assert self.inbox is not None
        try:
            outer = safe_parse(body)
            encrypt = _child(outer, "Encrypt")
            timestamp, nonce = self._check(request, encrypt)
            seal = Seal(request.query_params["msg_signature"], int(timestamp), nonce, body_sha256(body))
            self.inbox.check_seen(seal)
            xml = self._decrypt(encrypt)
            root = safe_parse(xml.encode("utf-8"))
            agent = _child(root, "AgentID")
            if agent and agent != str(self.agent_id):
                raise Refused(403, "message for another agent")
            if _child(root, "ToUserName") != _child(outer, "ToUserName") or (
                _child(root, "ToUserName") != self.corp_id
            ):
                raise Refused(403, "message for another corp")
            check_fields(root)
        except Replayed:
            log.warning("wecom callback refused: signature reused for another body")
            return PlainTextResponse("refused", status_code=403)
        except Refused as exc:
            log.warning("wecom callback refused: %s", exc.reason)
            return PlainTextResponse("refused", status_code=exc.status)
        userid = _child(root, "FromUserName")
        if not self.limiter.allow(userid):
            self.inbox.remember(seal)  # nothing stored, nothing written: bound in this process only
            return self._passive_text(root, render("wechat.too_fast"), nonce, timestamp)
        key = inbox_key(root)
        try:
            if key is None:
                await self.inbox.seal(seal)
                if _child(root, "MsgType").lower() == "event":
                    return PlainTextResponse("")  # enter_agent, location …: nothing to do
                return self._passive_text(root, render("wecom.unsupported"), nonce, timestamp)
            await self.inbox.put(key, userid, xml, inline=False, seal=seal)
        except Replayed:
            log.warning("wecom callback refused: signature reused for another body")
            return PlainTextResponse("refused", status_code=403)
        except Exception as exc:  # the database: WeCom retries, the seal lets the retry in
            log.error("wecom callback not stored: %s", type(exc).__name__)
            return PlainTextResponse("retry", status_code=503)
        return PlainTextResponse("")  # a retry (put returned None) gets the same empty answer

    def _passive_text(self, root: Element, text: str, nonce: str, timestamp: str) -> Response:
        """An encrypted passive text reply (for what needs no storing: a picture, a voice note …)."""
        from wechatpy.replies import TextReply

        reply = TextReply(source=self.corp_id, target=_child(root, "FromUserName"), content=text)
        return Response(
            self.crypto.encrypt_message(reply.render(), nonce, timestamp), media_type="application/xml"
        )

    # -- handling (the inbox worker) -------------------------------------------------------------------

    async def handle_stored(self, item: Item) -> None:
        root = safe_parse(item.xml.encode("utf-8"))
        try:
            await self._process(item, root)
        finally:
            self._context.wake_all()  # a staff action notifies residents on their own channels

    async def _process(self, item: Item, root: Element) -> None:
        conversation = self._context.conversation
        userid = item.openid
        staff_id = await self._staff_of(userid)
        msg_type = _child(root, "MsgType").lower()
        event = _child(root, "Event").lower() if msg_type == "event" else ""
        if event == CARD_EVENT:
            if staff_id is None:
                await self._not_bound(item, "[card]")
                return
            await self._click(item, root, staff_id)
            return
        text = _child(root, "Content") if msg_type == "text" else ""
        if event == "subscribe":
            text = "/help"  # following the app: the help text, or how to bind
        elif event == "click":
            text = _child(root, "EventKey")
        if not text:
            return
        if staff_id is None and not _binds(text):
            await self._not_bound(item, text)
            return
        await conversation.handle(Inbound(CHANNEL, userid, text=text, message_id=item.key))

    async def _click(self, item: Item, root: Element, staff_id: str) -> None:
        action, task_id = _child(root, "EventKey"), _child(root, "TaskId")
        command = parse_action(action)
        number = command.number if command is not None else None
        before = await self._case_state(number)
        handled = await self._context.conversation.act(
            Inbound(CHANNEL, item.openid, message_id=item.key), action
        )
        code = _child(root, "ResponseCode")
        if handled.failed or number is None or not code:
            return
        original = await self._card_row(task_id, item.openid)
        update = cards.update_after_click(
            clicker=staff_id,
            pressed=action,
            before=before,
            after=await self._case_state(number),
            original_text=original.text if original is not None else None,
            original_buttons=(original.payload or {}).get("buttons") if original is not None else None,
            task_id=task_id,
        )
        if update is not None:
            await self._queue_card_update(item.openid, code, update, number)

    # -- database helpers ------------------------------------------------------------------------------

    async def _staff_of(self, userid: str) -> str | None:
        return await active_staff_of(self._context.services.sessions, CHANNEL, userid)

    async def _case_state(self, number: int | None) -> cards.CaseState:
        return await case_state(self._context.services.sessions, number)

    async def _card_row(self, task_id: str, userid: str) -> OutboxItem | None:
        """The outbox row a card was built from (only a card this member was sent)."""
        row_id = cards.row_of_task(task_id)
        if row_id is None:
            return None
        return await sent_row(self._context.services.sessions, row_id, CHANNEL, userid)

    async def _queue_card_update(
        self, userid: str, code: str, update: dict[str, object], number: int
    ) -> None:
        text = str((update.get("button") or {}).get("replace_name", ""))  # type: ignore[union-attr]
        out = Outbound(
            CHANNEL,
            userid,
            text,
            kind=CARD_UPDATE,
            case_id=number,
            dedup_key=f"wecom:card:{_digest(code)}",  # a ResponseCode works once
        )
        await queue_once(
            self._context.services.sessions, out, {"response_code": code, "update": update}, self.clock()
        )

    async def _not_bound(self, item: Item, text: str) -> None:
        """Log the message (so a retry is answered once) and explain how to bind, through the outbox."""
        await reply_unhandled(
            self._context.services.sessions,
            CHANNEL,
            item.key,
            item.openid,
            text,
            render("wecom.not_bound"),
            self.clock(),
        )


def _binds(text: str) -> bool:
    command = parse_command(text)
    return command is not None and (
        command.kind == Cmd.BIND or (command.kind == Cmd.START and command.arg is not None)
    )


def open_envelope(crypto: WeChatCrypto, encrypted: str) -> str:
    """Decrypt one Encrypt/echostr value (the signature was checked by the caller, in constant time)."""
    from wechatpy.enterprise.crypto import PrpCrypto

    plain = PrpCrypto(crypto.key).decrypt(encrypted, crypto.corp_id)
    return plain if isinstance(plain, str) else plain.decode("utf-8")
