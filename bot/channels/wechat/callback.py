"""The Official Account callback, ``GET``/``POST /wechat``.

Every request is checked before anything is parsed or stored: the signature (SHA-1 of the sorted token,
timestamp and nonce, compared in constant time), a timestamp within ``MAX_SKEW`` seconds, the mode (with
an AES key, 安全模式: only ``encrypt_type=aes`` bodies, whose ``msg_signature`` covers the encrypted
message; plaintext too only in 兼容模式, ``OUTREACH_WECHAT_COMPAT_MODE``), a body of at most ``MAX_BODY``
bytes received within ``guards.BODY_TIMEOUT`` seconds, UTF-8 XML without any DTD or entity (a byte check
first, then ``safe_parse``: expat stops at any DTD, defusedxml names the refusal), the AES envelope
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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import select, update
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

from bot.channels.wechat.db import insert_ignore
from bot.channels.wechat.guards import (
    MAX_ELEMENTS,
    Refused,
    SenderLimiter,
    asgi_chunks,
    body_sha256,
    check_fields,
    check_xml_bytes,
    read_body,
)
from bot.channels.wechat.inbox import Inbox, Item, Replayed, Seal
from bot.channels.wechat.sender import record_subscription
from handlers.kernel.channel_services import set_unreachable
from handlers.kernel.inbound import Inbound
from handlers.kernel.ports import OutboxKind
from messages import render
from storage.models import OutboxMessage, OutboxStatus, utcnow
from storage.wechat_models import WeChatUser

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
POSITION_TTL = timedelta(minutes=30)  # a remembered position is used for reports this fresh
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


class _HasDoctype(Exception):
    pass


class _TooBig(Exception):
    pass


class _NoDoctype(TreeBuilder):
    """expat (C) builds the tree; a document type declaration of any kind stops it at its first
    line, before an entity could be declared or anything external named. A callback has a dozen
    elements: past ``MAX_ELEMENTS`` the document is refused (parse time stays bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _HasDoctype

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _TooBig
        return super().start(tag, attrs)


def safe_parse(data: bytes | str) -> Element:
    """Parse untrusted XML: any DTD, entity declaration or external reference is refused.

    Entities (and so entity expansion and external entities) can only be declared inside a DTD, so a
    document without one is parsed by the C parser directly (callbacks are the hot path: this costs
    less than half of defusedxml's pure-Python parser); a document with a DTD goes to defusedxml,
    which refuses it and names why. Before either, ``check_xml_bytes`` refuses a DTD or a body that
    is not UTF-8 by looking at the bytes: a hostile document costs microseconds, not a parse."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    check_xml_bytes(raw)
    parser = XMLParser(target=_NoDoctype())
    try:
        parser.feed(raw)
        return parser.close()
    except _HasDoctype:
        pass
    except _TooBig:
        raise Refused(400, "too many elements") from None
    except ParseError:
        raise Refused(400, "malformed xml") from None
    try:
        SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refused(400, f"hostile xml ({type(exc).__name__})") from None
    except SafeET.ParseError:
        raise Refused(400, "malformed xml") from None
    raise Refused(400, "hostile xml (DTDForbidden)")  # forbid_dtd never lets a DTD through


def _child(root: Element, name: str) -> str:
    found = root.find(name)
    return (found.text or "").strip() if found is not None else ""


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
        encrypt = _child(outer, "Encrypt")
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
        if _child(inner, "ToUserName") != _child(outer, "ToUserName"):
            raise Refused(403, "inner and outer ToUserName differ")
        self._check_account(inner)
        return inner, raw.decode("utf-8")

    def _check_account(self, root: Element) -> None:
        if self.account_id and _child(root, "ToUserName") != self.account_id:
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
            if not _child(root, "MsgType"):
                raise Refused(400, "no MsgType")
            check_fields(root)
        except Replayed:
            log.warning("wechat callback refused: signature reused for another body")
            return 403, b"refused", PLAIN
        except Refused as exc:
            log.warning("wechat callback refused: %s", exc.reason)
            return exc.status, b"refused", PLAIN
        openid = _child(root, "FromUserName")
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
        rendered = TextReply(source=_child(root, "ToUserName"), target=openid, content=reply).render()
        if encrypted and self.crypto is not None:
            rendered = self.crypto.encrypt_message(rendered, nonce, timestamp)
        return 200, rendered.encode("utf-8"), XML

    # -- messages --------------------------------------------------------------------------------------

    async def _accept(self, root: Element, openid: str, xml: str, seal: Seal | None = None) -> str | None:
        """Store the message (and its seal), then handle it now (while idle) or leave it to the inbox
        worker. Returns the passive reply text, or None for ``success``."""
        assert self.inbox is not None
        msg_type = _child(root, "MsgType").lower()
        if msg_type == "event":
            key = f"{openid}:{_child(root, 'CreateTime')}:{_child(root, 'Event').lower()}"
        elif msg_type in SUPPORTED or (msg_type == "voice" and _child(root, "Recognition")):
            key = _child(root, "MsgId") or f"{openid}:{_child(root, 'CreateTime')}:{msg_type}"
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
        kind = _child(root, "MsgType").lower()
        if kind == "event":
            inbound = await self._event(root, openid, now)
        elif kind == "text":
            user = await self._touch(openid, now, window="message")
            inbound = self._with_position(
                Inbound(CHANNEL, openid, text=_child(root, "Content"), message_id=item.key), user, now
            )
        elif kind == "image":
            await self._touch(openid, now, window="message")
            photo = f"{_child(root, 'MediaId')}|{_child(root, 'PicUrl')}"[:512]
            inbound = Inbound(CHANNEL, openid, photo=photo, message_id=item.key)
        elif kind == "location":
            lat, lon = _float(_child(root, "Location_X")), _float(_child(root, "Location_Y"))
            label = _child(root, "Label")[:200] or None
            await self._touch(openid, now, window="message", position=(lat, lon, label))
            inbound = Inbound(CHANNEL, openid, text=label, latitude=lat, longitude=lon, message_id=item.key)
        elif kind == "voice":
            user = await self._touch(openid, now, window="message")
            inbound = self._with_position(
                Inbound(CHANNEL, openid, text=_child(root, "Recognition"), message_id=item.key), user, now
            )
        else:
            return None
        if inbound is None:
            return None
        return await self._handle(inbound, turn)

    async def _event(self, root: Element, openid: str, now: datetime) -> Inbound | None:
        """Events: some become a message for the core, the others only update what we know."""
        event = _event_type(root)
        message_id = f"{openid}:{_child(root, 'CreateTime')}:{event}"
        if event in ("subscribe", "subscribe_scan"):
            await self._touch(openid, now, window="event", subscribed=True)
            return Inbound(CHANNEL, openid, text="帮助", message_id=message_id)
        if event == "unsubscribe":
            await self._touch(openid, now, window=None, subscribed=False)
            return None
        if event == "location":
            lat, lon = _float(_child(root, "Latitude")), _float(_child(root, "Longitude"))
            await self._touch(openid, now, window=None, position=(lat, lon, None))
            return None
        if event in ("click", "scan"):
            await self._touch(openid, now, window="event")
            key = _child(root, "EventKey") if event == "click" else ""
            return Inbound(CHANNEL, openid, text=key, message_id=message_id) if key else None
        if event in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
            for entry in root.iter("List"):
                template_id, status = _child(entry, "TemplateId"), _child(entry, "SubscribeStatusString")
                if template_id and len(template_id) <= 128 and status in ("accept", "reject"):
                    await record_subscription(
                        self._context.services.sessions, openid, template_id, status, now
                    )
            return None
        return None  # view, templatesendjobfinish, subscribe_msg_sent_event …: nothing to do

    def _with_position(self, inbound: Inbound, user: WeChatUser | None, now: datetime) -> Inbound:
        """A report that names no place gets the user's position from the last half hour (a LOCATION
        event, or a location message whose label names a place the community knows)."""
        if user is None or user.located_at is None or now - user.located_at > POSITION_TTL:
            return inbound
        community = self._context.services.community
        text = (inbound.text or "").strip()
        if not text or community.classifier.classify(text).is_report is False:
            return inbound
        if community.locator.locate(text) is not None:
            return inbound
        label = user.location_label
        if label and community.locator.locate(label) is not None:
            text = f"{text}（{label}）"
        return Inbound(
            CHANNEL,
            inbound.sender,
            text=text,
            latitude=user.latitude,
            longitude=user.longitude,
            message_id=inbound.message_id,
        )

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
        async with sessions.begin() as session:
            row = await session.scalar(
                select(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.channel == CHANNEL,
                    OutboxMessage.recipient == openid,
                    OutboxMessage.kind.in_(PASSIVE_KINDS),
                    OutboxMessage.status == OutboxStatus.PENDING,
                )
                .order_by(OutboxMessage.id)
                .limit(1)
            )
            if row is None or len(row.text.encode("utf-8")) > PASSIVE_LIMIT or turn.late:
                return None
            text, row_id = row.text, row.id
            taken = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENT, sent_at=self.clock())
                .execution_options(synchronize_session=False)
            )
            if getattr(taken, "rowcount", 0) != 1:
                return None  # the drain loop took it first
        if turn.late:  # too late for the passive reply after all: give the row back to the outbox
            async with sessions.begin() as session:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id)
                    .values(status=OutboxStatus.PENDING, sent_at=None)
                    .execution_options(synchronize_session=False)
                )
            return None
        return text

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
    ) -> WeChatUser | None:
        """Record what this inbound tells us about the user (window, position, following)."""
        async with self._context.services.sessions.begin() as session:
            await session.execute(
                insert_ignore(session, WeChatUser, {"channel": CHANNEL, "openid": openid, "cs_sent": 0})
            )
            user = await session.get_one(WeChatUser, (CHANNEL, openid))
            message_open = (
                user.last_inbound_at is not None
                and user.window_kind == "message"
                and now - user.last_inbound_at < timedelta(hours=48)
                and (user.window_closed_at is None or user.window_closed_at < user.last_inbound_at)
            )
            if window == "message" or (window == "event" and not message_open):
                user.last_inbound_at = now
                user.window_kind = window
                user.cs_sent = 0
            if position is not None and position[0] is not None and position[1] is not None:
                user.latitude, user.longitude = position[0], position[1]
                user.location_label = position[2]
                user.located_at = now
            if subscribed is True:
                user.unsubscribed_at = None
                await set_unreachable(session, CHANNEL, openid, None)
            elif subscribed is False:
                user.unsubscribed_at = now
                await set_unreachable(session, CHANNEL, openid, now)
            await session.flush()
            session.expunge(user)
            return user


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


def _event_type(root: Element) -> str:
    """The event's type as wechatpy names it: a subscription by scanning a product code or a QR code
    with a scene is ``subscribe_scan_product`` / ``subscribe_scan``."""
    event = _child(root, "Event").lower()
    if event == "subscribe":
        key = _child(root, "EventKey")
        if key.startswith(("scanbarcode|", "scanimage|")):
            return "subscribe_scan_product"
        if key.startswith("qrscene_"):
            return "subscribe_scan"
    return event


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if -180.0 <= number <= 180.0 else None
