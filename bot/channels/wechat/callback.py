"""The Official Account callback, ``GET``/``POST /wechat``.

Every request is checked before anything is parsed or stored: the signature (SHA-1 of the sorted token,
timestamp and nonce, compared in constant time), a timestamp within ``MAX_SKEW`` seconds, the mode (with
an AES key, 安全模式: only ``encrypt_type=aes`` bodies, whose ``msg_signature`` covers the encrypted
message; plaintext too only in 兼容模式, ``OUTREACH_WECHAT_COMPAT_MODE``), a body of at most ``MAX_BODY``
bytes received within ``guards.BODY_TIMEOUT`` seconds, UTF-8 XML without any DTD or entity (a byte check
first, then ``safe_xml.safe_parse``: expat stops at any DTD, defusedxml names the refusal), the AES envelope
(wechatpy's ``WeChatCrypto``, the real WXBizMsgCrypt scheme) whose inner ToUserName must be the outer
one (and the configured account's), field lengths, and a per-sender rate. The signature, timestamp and
nonce are bound to the body's SHA-256 across processes (``wechat_callback_seals``, written with the
message): a retry of the same body is answered as usual, another body under them is refused. The route
is a bare ASGI app: this is the hot path, and WeChat wants its answer within 5 seconds.

Then the message is stored in the inbox (``bot/channels/wechat/inbox.py``, group-committed) before
anything else; a retry of a message already stored (same MsgId; FromUserName+CreateTime+Event for events)
answers ``success`` and does nothing. When the server is quiet the message is handled at once: it becomes an
``Inbound`` for the conversation core (one transaction: the message, its case, every reply), and when
the core produced a reply for the sender within ``PASSIVE_DEADLINE`` it goes back as the passive reply
(its outbox row marked sent). Under a burst, or when handling is slow, the answer is ``success`` at
once and the inbox worker handles the message after; replies then go out through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

from bot.channels.wechat.guards import (
    Refused,
    SenderLimiter,
    asgi_chunks,
    body_sha256,
    check_fields,
    read_body,
)
from bot.channels.wechat.inbox import Inbox, Item, Replayed, Seal
from bot.channels.wechat.position import with_position
from bot.channels.wechat.safe_xml import child, coordinate, event_type, safe_parse
from handlers.kernel.channel_services import give_back, take_passive_reply
from handlers.kernel.channel_state import Position, WeChatUserState, record_subscription, touch
from handlers.kernel.clock import utcnow
from handlers.kernel.inbound import Inbound
from handlers.kernel.ports import OutboxKind
from messages import render

if TYPE_CHECKING:
    from handlers.kernel.channel_ports import AdapterContext

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CHANNEL = "wechat"
MAX_BODY = 64 * 1024
MAX_SKEW = 300  # seconds between WeChat's timestamp and our clock
PASSIVE_DEADLINE = 3.0  # seconds of handling; WeChat gives up at 5
PASSIVE_LIMIT = 2000  # bytes of reply text WeChat shows in a passive reply
SUPPORTED = frozenset({"text", "image", "location"})  # and voice with Recognition (speech to text)
INLINE_MAX = 4  # messages handled inline at once; beyond that (or with a queue) the worker takes them
# Outbox kinds that may go back as a passive reply. A passive reply goes to whoever made the HTTP
# request, so anything only the verified identity may read (an invite code: kind "push_only") is left
# to the outbox, which sends it to the openid as a customer-service message.
PASSIVE_KINDS = (OutboxKind.REPLY.value, OutboxKind.ACK.value)

SUCCESS = "success"
PLAIN = b"text/plain; charset=utf-8"
XML = b"application/xml"


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass
class _Turn:
    late: bool = False


class WeChatCallback:
    """The routes' handlers; ``context`` is set when the adapter starts."""

    def __init__(
        self,
        token: str,
        app_id: str,
        aes_key: str | None,
        *,
        compat: bool = False,
        account_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._token = token
        self.app_id = app_id
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        # Plaintext callbacks are accepted without an AES key (明文模式), or with one only in 兼容模式.
        self.plain_allowed = self.crypto is None or compat
        self.account_id = account_id
        self.limiter = SenderLimiter()
        self.clock = clock
        self.context: AdapterContext | None = None  # set by the adapter at start
        self.inbox: Inbox | None = None
        self._serial: Any = None
        self.active = 0  # callbacks being answered right now (the inbox worker lets them go first)

    @property
    def _context(self) -> AdapterContext:
        if self.context is None:
            raise RuntimeError("the WeChat callback was used before its adapter started")
        return self.context

    # -- checks ----------------------------------------------------------------------------------------

    def _check_query(self, query: dict[str, str]) -> tuple[str, str]:
        sig, timestamp, nonce = query.get("signature", ""), query.get("timestamp", ""), query.get("nonce", "")
        if not (sig and timestamp and nonce) or not (timestamp.isascii() and timestamp.isdigit()):
            raise Refused(403, "missing signature")
        if len(nonce) > 64 or len(sig) > 64 or len(timestamp) > 12:
            raise Refused(403, "bad signature")
        if not _same(signature(self._token, timestamp, nonce), sig):
            raise Refused(403, "bad signature")
        if abs(time.time() - int(timestamp)) > MAX_SKEW:
            raise Refused(403, "stale timestamp")
        return timestamp, nonce

    def _encrypted(self, query: dict[str, str]) -> bool:
        """Whether the body is encrypted; a plaintext one in safe mode is refused before it is read:
        its signature covers no part of the body."""
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if encrypted and self.crypto is None:
            raise Refused(400, "encrypted message but no AES key configured")
        if not encrypted and not self.plain_allowed:
            raise Refused(403, "plaintext callback in safe mode")
        return encrypted

    def _open(
        self, query: dict[str, str], body: bytes, timestamp: str, nonce: str, encrypted: bool
    ) -> tuple[Element, str]:
        """The message XML (decrypted in safe mode), checked, as an element and as text."""
        outer = safe_parse(body)
        if not encrypted:
            self._check_account(outer)
            return outer, body.decode("utf-8")
        assert self.crypto is not None
        encrypt = child(outer, "Encrypt")
        msg_signature = query.get("msg_signature", "")
        if not encrypt or not msg_signature:
            raise Refused(403, "missing msg_signature")
        if not _same(signature(self._token, timestamp, nonce, encrypt), msg_signature):
            raise Refused(403, "bad msg_signature")
        try:
            plain = self.crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce)
        except UnicodeDecodeError:  # decrypted fine, but not UTF-8 (GBK, UTF-16, Latin-1 …)
            raise Refused(400, "not UTF-8") from None
        except Exception as exc:  # InvalidAppIdException, padding, base64 …
            raise Refused(403, f"cannot decrypt ({type(exc).__name__})") from None
        try:
            raw = plain.encode("utf-8") if isinstance(plain, str) else bytes(plain)
        except UnicodeError:
            raise Refused(400, "not UTF-8") from None
        if len(raw) > MAX_BODY:
            raise Refused(413, "body too large")
        inner = safe_parse(raw)
        if child(inner, "ToUserName") != child(outer, "ToUserName"):
            raise Refused(403, "inner and outer ToUserName differ")
        self._check_account(inner)
        return inner, raw.decode("utf-8")

    def _check_account(self, root: Element) -> None:
        if self.account_id and child(root, "ToUserName") != self.account_id:
            raise Refused(403, "message for another account")

    # -- the route ---------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/wechat`` as a bare ASGI app (the callback is the hot path: no Request/Response objects).
        ``GET`` is URL verification, ``POST`` a message or event."""
        query = _query(scope["query_string"])
        method = scope["method"]
        if method == "GET":
            status, body, media = self.verify(query)
        elif method != "POST":
            status, body, media = 405, b"method not allowed", PLAIN
        else:
            status, body, media = await self.answer(query, scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def verify(self, query: dict[str, str]) -> tuple[int, bytes, bytes]:
        """URL verification: echo ``echostr`` when the signature is ours."""
        try:
            self._check_query(query)
        except Refused as exc:
            log.warning("wechat verification refused: %s", exc.reason)
            return exc.status, b"forbidden", PLAIN
        return 200, query.get("echostr", "")[:256].encode("utf-8"), PLAIN

    async def answer(self, query: dict[str, str], scope: Scope, receive: Receive) -> tuple[int, bytes, bytes]:
        """Check, store, answer: ``success``, a passive reply, or a refusal. A request counts as
        active (the inbox worker gives way to it) only once its body is in: a slow client must not
        hold back the handling of messages already stored."""
        try:
            timestamp, nonce = self._check_query(query)
            encrypted = self._encrypted(query)
            body = await read_body(asgi_chunks(receive), scope["headers"], MAX_BODY)
        except Refused as exc:
            log.warning("wechat callback refused: %s", exc.reason)
            return exc.status, b"refused", PLAIN
        self.active += 1
        try:
            return await self._answer(query, body, timestamp, nonce, encrypted)
        finally:
            self.active -= 1

    async def _answer(
        self, query: dict[str, str], body: bytes, timestamp: str, nonce: str, encrypted: bool
    ) -> tuple[int, bytes, bytes]:
        assert self.inbox is not None
        seal = Seal(query["signature"], int(timestamp), nonce, body_sha256(body))
        try:
            self.inbox.check_seen(seal)
            root, xml = self._open(query, body, timestamp, nonce, encrypted)
            if not child(root, "MsgType"):
                raise Refused(400, "no MsgType")
            check_fields(root)
        except Replayed:
            log.warning("wechat callback refused: signature reused for another body")
            return 403, b"refused", PLAIN
        except Refused as exc:
            log.warning("wechat callback refused: %s", exc.reason)
            return exc.status, b"refused", PLAIN
        openid = child(root, "FromUserName")
        if not self.limiter.allow(openid):
            self.inbox.remember(seal)  # nothing stored, nothing written: bound in this process only
            reply: str | None = render("wechat.too_fast")
        else:
            try:
                reply = await self._accept(root, openid, xml, seal)
            except Replayed:
                log.warning("wechat callback refused: signature reused for another body")
                return 403, b"refused", PLAIN
            except Exception as exc:  # the database, most likely: WeChat retries (same seal, let in)
                log.error("wechat callback failed: %s", type(exc).__name__)
                return 503, b"retry", PLAIN
        if reply is None:
            return 200, SUCCESS.encode(), PLAIN
        rendered = TextReply(source=child(root, "ToUserName"), target=openid, content=reply).render()
        if encrypted and self.crypto is not None:
            rendered = self.crypto.encrypt_message(rendered, nonce, timestamp)
        return 200, rendered.encode("utf-8"), XML

    # -- messages --------------------------------------------------------------------------------------

    async def _accept(self, root: Element, openid: str, xml: str, seal: Seal | None = None) -> str | None:
        """Store the message (and its seal), then handle it now (while idle) or leave it to the inbox
        worker. Returns the passive reply text, or None for ``success``."""
        assert self.inbox is not None
        msg_type = child(root, "MsgType").lower()
        if msg_type == "event":
            key = f"{openid}:{child(root, 'CreateTime')}:{child(root, 'Event').lower()}"
        elif msg_type in SUPPORTED or (msg_type == "voice" and child(root, "Recognition")):
            key = child(root, "MsgId") or f"{openid}:{child(root, 'CreateTime')}:{msg_type}"
        else:  # nothing to store: video, link, file, voice untranscribed (the seal is still recorded)
            if seal is not None:
                await self.inbox.seal(seal)
            return render("wechat.unsupported")
        # Inline (and a passive reply) only when the server is quiet: nothing queued and no other
        # callback being stored right now (those handled inline wait for their turn, not for us).
        # Under a burst every message is stored and answered at once, and the worker handles them in
        # order afterwards: a turn costs the CPU of dozens of callbacks (and on SQLite holds the one
        # write lock the group commit needs).
        inline = self.inbox.idle and self.active - self.inbox.inline <= 1 and self.inbox.inline < INLINE_MAX
        item = await self.inbox.put(key, openid, xml, inline=inline, seal=seal)
        if item is None:
            return None  # WeChat's retry of a message already stored
        if not inline:
            return None
        self.inbox.inline += 1
        turn = _Turn()
        task = asyncio.ensure_future(self._inline(item, root, turn))
        try:
            return await asyncio.wait_for(asyncio.shield(task), PASSIVE_DEADLINE)
        except TimeoutError:
            turn.late = True  # the outbox delivers the reply instead
            log.warning("wechat message handled too slowly for a passive reply")
            return None

    async def _inline(self, item: Item, root: Element, turn: _Turn) -> str | None:
        assert self.inbox is not None
        try:
            reply = await self._process(item, root, turn)
            await self.inbox.done(item)
            return reply
        finally:
            self.inbox.inline -= 1
            self._wake()

    async def handle_stored(self, item: Item) -> None:
        """The inbox worker's entry: a message stored earlier (already checked; parsed again)."""
        await self._process(item, safe_parse(item.xml.encode("utf-8")), None)
        self._wake()

    async def _process(self, item: Item, root: Element, turn: _Turn | None) -> str | None:
        """Handle one stored message; the passive reply text when ``turn`` is given and there is one.
        The fields are read from the checked XML as wechatpy's parser reads them (text stripped)."""
        openid = item.openid
        now = item.received_at
        kind = child(root, "MsgType").lower()
        if kind == "event":
            inbound = await self._event(root, openid, now)
        elif kind == "text":
            user = await self._touch(openid, now, window="message")
            inbound = Inbound(CHANNEL, openid, text=child(root, "Content"), message_id=item.key)
            inbound = with_position(inbound, user, now, self._context.services.community)
        elif kind == "image":
            await self._touch(openid, now, window="message")
            photo = f"{child(root, 'MediaId')}|{child(root, 'PicUrl')}"[:512]
            inbound = Inbound(CHANNEL, openid, photo=photo, message_id=item.key)
        elif kind == "location":
            lat, lon = coordinate(child(root, "Location_X")), coordinate(child(root, "Location_Y"))
            label = child(root, "Label")[:200] or None
            await self._touch(openid, now, window="message", position=(lat, lon, label))
            inbound = Inbound(CHANNEL, openid, text=label, latitude=lat, longitude=lon, message_id=item.key)
        elif kind == "voice":
            user = await self._touch(openid, now, window="message")
            inbound = Inbound(CHANNEL, openid, text=child(root, "Recognition"), message_id=item.key)
            inbound = with_position(inbound, user, now, self._context.services.community)
        else:
            return None
        if inbound is None:
            return None
        return await self._handle(inbound, turn)

    async def _event(self, root: Element, openid: str, now: datetime) -> Inbound | None:
        """Events: some become a message for the core, the others only update what we know."""
        event = event_type(root)
        message_id = f"{openid}:{child(root, 'CreateTime')}:{event}"
        if event in ("subscribe", "subscribe_scan"):
            await self._touch(openid, now, window="event", subscribed=True)
            if event == "subscribe_scan":  # followed by scanning a building's code: "qrscene_<scene>"
                scene = child(root, "EventKey").removeprefix("qrscene_")
                return Inbound(CHANNEL, openid, scene=scene, message_id=message_id)
            return Inbound(CHANNEL, openid, text="帮助", message_id=message_id)
        if event == "unsubscribe":
            await self._touch(openid, now, window=None, subscribed=False)
            return None
        if event == "location":
            lat, lon = coordinate(child(root, "Latitude")), coordinate(child(root, "Longitude"))
            await self._touch(openid, now, window=None, position=(lat, lon, None))
            return None
        if event == "scan":  # a follower scanned a building's code: EventKey is the scene
            await self._touch(openid, now, window="event")
            scene = child(root, "EventKey")
            return Inbound(CHANNEL, openid, scene=scene, message_id=message_id) if scene else None
        if event == "click":
            await self._touch(openid, now, window="event")
            key = child(root, "EventKey")
            return Inbound(CHANNEL, openid, text=key, message_id=message_id) if key else None
        if event in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
            for entry in root.iter("List"):
                template_id, status = child(entry, "TemplateId"), child(entry, "SubscribeStatusString")
                if template_id and len(template_id) <= 128 and status in ("accept", "reject"):
                    await record_subscription(
                        self._context.services.sessions, openid, template_id, status, now
                    )
            return None
        return None  # view, templatesendjobfinish, subscribe_msg_sent_event …: nothing to do

    # -- the core ----------------------------------------------------------------------------------------

    async def _handle(self, inbound: Inbound, turn: _Turn | None) -> str | None:
        if self._serial is None:
            engine = self._context.services.sessions.kw["bind"]
            self._serial = asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        async with self._serial:  # SQLite has one writer: queue here rather than in its busy loop
            handled = await self._context.conversation.handle(inbound)
        if turn is None or handled.duplicate or not handled.outbox_ids:
            return None
        return await self._take_passive(handled.outbox_ids, inbound.sender, turn)

    async def _take_passive(self, ids: list[int], openid: str, turn: _Turn) -> str | None:
        """The first reply to the sender produced by this turn, marked sent so the outbox skips it."""
        sessions = self._context.services.sessions

        def late() -> bool:  # read when the row is found, not now
            return turn.late

        taken = await take_passive_reply(
            sessions, ids, CHANNEL, openid, PASSIVE_KINDS, PASSIVE_LIMIT, self.clock(), late
        )
        if taken is None:
            return None
        if turn.late:  # too late for the passive reply after all: give the row back to the outbox
            await give_back(sessions, taken[0])
            return None
        return taken[1]

    def _wake(self) -> None:
        # Every channel: a staff action here (a worker on WeChat) notifies people on their own channels.
        if self.context is not None:
            self.context.wake_all()

    async def _touch(
        self,
        openid: str,
        now: datetime,
        *,
        window: str | None,
        position: tuple[float | None, float | None, str | None] | None = None,
        subscribed: bool | None = None,
    ) -> WeChatUserState:
        """Record what this inbound tells us about the user (window, position, following)."""
        where = Position(*position) if position is not None else None
        return await touch(
            self._context.services.sessions,
            CHANNEL,
            openid,
            now,
            window=window,
            position=where,
            subscribed=subscribed,
        )


def _query(raw: bytes) -> dict[str, str]:
    """The query string as ``parse_qsl`` reads it (last value wins), without its cost when nothing in
    it is escaped, as in WeChat's callbacks (hex signatures, digits, ``aes``, openids)."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    query: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            query[name] = value
    return query
