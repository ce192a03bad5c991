"""The Official Account callback, ``GET``/``POST /wechat``.

Every request is checked before anything is parsed or stored: the signature (SHA-1 of the sorted token,
timestamp and nonce, compared in constant time), a timestamp within ``MAX_SKEW`` seconds, a body of at
most ``MAX_BODY`` bytes, XML without any DTD, entity or external reference (defusedxml, before
wechatpy's parser ever sees it), and in safe mode (``encrypt_type=aes``) the ``msg_signature`` and the
AES envelope (wechatpy's ``WeChatCrypto``, the real WXBizMsgCrypt scheme).

Then the message is stored in the inbox (``bot/wechat/inbox.py``, group-committed) before anything else;
a retry of a message already stored (same MsgId; FromUserName+CreateTime+Event for events) answers
``success`` and does nothing. When the server is quiet the message is handled at once: it becomes an
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import select, update
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.crypto import WeChatCrypto
from wechatpy.parser import parse_message
from wechatpy.replies import TextReply

from bot.wechat.db import insert_ignore
from bot.wechat.inbox import Inbox, Item
from bot.wechat.sender import record_subscription
from handlers.inbound import Inbound
from messages import render
from storage.models import OutboxMessage, OutboxStatus, ResidentIdentity, StaffIdentity, utcnow
from storage.wechat_models import WeChatUser

if TYPE_CHECKING:
    from bot.server import Server

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_BODY = 64 * 1024
MAX_SKEW = 300  # seconds between WeChat's timestamp and our clock
PASSIVE_DEADLINE = 3.0  # seconds of handling; WeChat gives up at 5
PASSIVE_LIMIT = 2000  # bytes of reply text WeChat shows in a passive reply
POSITION_TTL = timedelta(minutes=30)  # a remembered position is used for reports this fresh
SUPPORTED = frozenset({"text", "image", "location"})  # and voice with Recognition (speech to text)
INLINE_MAX = 4  # messages handled inline at once; beyond that (or with a queue) the worker takes them

SUCCESS = "success"


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def safe_parse(data: bytes | str) -> Element:
    """Parse untrusted XML: any DTD, entity declaration or external reference is refused."""
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refused(400, f"hostile xml ({type(exc).__name__})") from None
    except SafeET.ParseError:
        raise Refused(400, "malformed xml") from None


def _child(root: Element, name: str) -> str:
    found = root.find(name)
    return (found.text or "").strip() if found is not None else ""


@dataclass
class _Turn:
    late: bool = False


class WeChatCallback:
    """The routes' handlers; ``server`` is set when the adapter starts."""

    def __init__(
        self,
        token: str,
        app_id: str,
        aes_key: str | None,
        *,
        clock: Callable[[], datetime] = utcnow,
        wake_channels: tuple[str, ...] = (CHANNEL,),
    ) -> None:
        self._token = token
        self.app_id = app_id
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self.clock = clock
        self.wake_channels = wake_channels
        self.server: Server | None = None
        self.inbox: Inbox | None = None
        self._serial: Any = None
        self.active = 0  # callbacks being answered right now (the inbox worker lets them go first)

    # -- checks ----------------------------------------------------------------------------------------

    def _check_query(self, request: Request) -> tuple[str, str]:
        q = request.query_params
        sig, timestamp, nonce = q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not (sig and timestamp and nonce) or not timestamp.isdigit() or len(nonce) > 64:
            raise Refused(403, "missing signature")
        if not _same(signature(self._token, timestamp, nonce), sig):
            raise Refused(403, "bad signature")
        if abs(time.time() - int(timestamp)) > MAX_SKEW:
            raise Refused(403, "stale timestamp")
        return timestamp, nonce

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise Refused(413, "body too large")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise Refused(413, "body too large")
                chunks.append(chunk)
        except ClientDisconnect:
            raise Refused(400, "client went away") from None
        return b"".join(chunks)

    def _open(self, request: Request, body: bytes, timestamp: str, nonce: str) -> tuple[Element, str]:
        """The message XML (decrypted in safe mode), checked, as an element and as text."""
        outer = safe_parse(body)
        if request.query_params.get("encrypt_type", "raw").lower() != "aes":
            return outer, body.decode("utf-8")
        if self.crypto is None:
            raise Refused(400, "encrypted message but no AES key configured")
        encrypt = _child(outer, "Encrypt")
        msg_signature = request.query_params.get("msg_signature", "")
        if not encrypt or not msg_signature:
            raise Refused(403, "missing msg_signature")
        if not _same(signature(self._token, timestamp, nonce, encrypt), msg_signature):
            raise Refused(403, "bad msg_signature")
        try:
            plain = self.crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce)
        except Exception as exc:  # InvalidAppIdException, padding, base64 …
            raise Refused(403, f"cannot decrypt ({type(exc).__name__})") from None
        text = plain if isinstance(plain, str) else plain.decode("utf-8")
        if len(text.encode("utf-8")) > MAX_BODY:
            raise Refused(413, "body too large")
        return safe_parse(text.encode("utf-8")), text

    # -- routes ----------------------------------------------------------------------------------------

    async def verify(self, request: Request) -> Response:
        """URL verification: echo ``echostr`` when the signature is ours."""
        try:
            self._check_query(request)
        except Refused as exc:
            log.warning("wechat verification refused: %s", exc.reason)
            return PlainTextResponse("forbidden", status_code=exc.status)
        echo = request.query_params.get("echostr", "")
        return PlainTextResponse(echo[:256])

    async def receive(self, request: Request) -> Response:
        self.active += 1
        try:
            return await self._receive(request)
        finally:
            self.active -= 1

    async def _receive(self, request: Request) -> Response:
        try:
            timestamp, nonce = self._check_query(request)
            body = await self._body(request)
            root, xml = self._open(request, body, timestamp, nonce)
        except Refused as exc:
            log.warning("wechat callback refused: %s", exc.reason)
            return PlainTextResponse("refused", status_code=exc.status)
        try:
            message = parse_message(xml)
        except Exception:
            log.warning("wechat callback: unreadable message")
            return PlainTextResponse("refused", status_code=400)
        if message is None or not message.source:
            return PlainTextResponse("refused", status_code=400)
        reply = await self._accept(message, root, xml)
        if reply is None:
            return PlainTextResponse(SUCCESS)
        rendered = TextReply(message=message, content=reply).render()
        if request.query_params.get("encrypt_type", "raw").lower() == "aes" and self.crypto is not None:
            rendered = self.crypto.encrypt_message(rendered, nonce, timestamp)
        return Response(rendered, media_type="application/xml")

    # -- messages --------------------------------------------------------------------------------------

    async def _accept(self, message: Any, root: Element, xml: str) -> str | None:
        """Store the message, then handle it now (while idle) or leave it to the inbox worker.
        Returns the passive reply text, or None for ``success``."""
        assert self.inbox is not None
        openid = str(message.source)
        msg_type = _child(root, "MsgType").lower()
        if msg_type == "event":
            key = f"{openid}:{_child(root, 'CreateTime')}:{_child(root, 'Event').lower()}"
        elif msg_type in SUPPORTED or (msg_type == "voice" and _child(root, "Recognition")):
            key = _child(root, "MsgId") or f"{openid}:{_child(root, 'CreateTime')}:{msg_type}"
        else:
            return render("wechat.unsupported")  # nothing to store: video, link, file, voice untranscribed
        # Inline (and a passive reply) only when the server is quiet: under a burst every message is
        # stored and answered at once, and the worker handles them in order afterwards.
        inline = self.inbox.idle and self.active <= INLINE_MAX and self.inbox.inline < INLINE_MAX
        item = await self.inbox.put(key, openid, xml, inline=inline)
        if item is None:
            return None  # WeChat's retry of a message already stored
        if not inline:
            return None
        self.inbox.inline += 1
        turn = _Turn()
        task = asyncio.ensure_future(self._inline(item, message, root, turn))
        try:
            return await asyncio.wait_for(asyncio.shield(task), PASSIVE_DEADLINE)
        except TimeoutError:
            turn.late = True  # the outbox delivers the reply instead
            log.warning("wechat message handled too slowly for a passive reply")
            return None

    async def _inline(self, item: Item, message: Any, root: Element, turn: _Turn) -> str | None:
        assert self.inbox is not None
        try:
            reply = await self._process(item, message, root, turn)
            await self.inbox.done(item)
            return reply
        finally:
            self.inbox.inline -= 1
            self._wake()

    async def handle_stored(self, item: Item) -> None:
        """The inbox worker's entry: a message stored earlier (already checked; parsed again)."""
        root = safe_parse(item.xml.encode("utf-8"))
        await self._process(item, parse_message(item.xml), root, None)
        self._wake()

    async def _process(self, item: Item, message: Any, root: Element, turn: _Turn | None) -> str | None:
        """Handle one stored message; the passive reply text when ``turn`` is given and there is one."""
        openid = item.openid
        now = item.received_at
        kind = message.type
        if _child(root, "MsgType").lower() == "event":  # wechatpy lacks some (subscribe_msg_*)
            inbound = await self._event(message, root, openid, now)
        elif kind == "text":
            user = await self._touch(openid, now, window="message")
            inbound = self._with_position(
                Inbound(CHANNEL, openid, text=message.content, message_id=item.key), user, now
            )
        elif kind == "image":
            await self._touch(openid, now, window="message")
            photo = f"{message.media_id or ''}|{message.image or ''}"[:512]
            inbound = Inbound(CHANNEL, openid, photo=photo, message_id=item.key)
        elif kind == "location":
            lat, lon = _float(message.location_x), _float(message.location_y)
            label = (message.label or "").strip()[:200] or None
            await self._touch(openid, now, window="message", position=(lat, lon, label))
            inbound = Inbound(CHANNEL, openid, text=label, latitude=lat, longitude=lon, message_id=item.key)
        elif kind == "voice":
            user = await self._touch(openid, now, window="message")
            inbound = self._with_position(
                Inbound(CHANNEL, openid, text=message.recognition, message_id=item.key), user, now
            )
        else:
            return None
        if inbound is None:
            return None
        return await self._handle(inbound, turn)

    async def _event(self, message: Any, root: Element, openid: str, now: datetime) -> Inbound | None:
        """Events: some become a message for the core, the others only update what we know."""
        event = str(getattr(message, "event", "") or _child(root, "Event")).lower()
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
            assert self.server is not None and self.server.app is not None
            for entry in root.iter("List"):
                template_id, status = _child(entry, "TemplateId"), _child(entry, "SubscribeStatusString")
                if template_id and status in ("accept", "reject"):
                    await record_subscription(
                        self.server.app.services.sessions, openid, template_id, status, now
                    )
            return None
        return None  # view, templatesendjobfinish, subscribe_msg_sent_event …: nothing to do

    def _with_position(self, inbound: Inbound, user: WeChatUser | None, now: datetime) -> Inbound:
        """A report that names no place gets the user's position from the last half hour (a LOCATION
        event, or a location message whose label names a place the community knows)."""
        if user is None or user.located_at is None or now - user.located_at > POSITION_TTL:
            return inbound
        assert self.server is not None and self.server.app is not None
        community = self.server.app.services.community
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
        assert self.server is not None and self.server.app is not None
        if self._serial is None:
            engine = self.server.app.engine
            self._serial = asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        async with self._serial:  # SQLite has one writer: queue here rather than in its busy loop
            handled = await self.server.app.conversation.handle(inbound)
        if turn is None or handled.duplicate or not handled.outbox_ids:
            return None
        return await self._take_passive(handled.outbox_ids, inbound.sender, turn)

    async def _take_passive(self, ids: list[int], openid: str, turn: _Turn) -> str | None:
        """The first reply to the sender produced by this turn, marked sent so the outbox skips it."""
        assert self.server is not None and self.server.app is not None
        sessions = self.server.app.services.sessions
        async with sessions.begin() as session:
            row = await session.scalar(
                select(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.channel == CHANNEL,
                    OutboxMessage.recipient == openid,
                    OutboxMessage.kind.in_(("reply", "ack")),
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
        if self.server is not None:
            for channel in self.wake_channels:
                self.server.wake(channel)

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
        assert self.server is not None and self.server.app is not None
        async with self.server.app.services.sessions.begin() as session:
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
                await self._reachable(session, openid, None)
            elif subscribed is False:
                user.unsubscribed_at = now
                await self._reachable(session, openid, now)
            await session.flush()
            session.expunge(user)
            return user

    @staticmethod
    async def _reachable(session: Any, openid: str, since: datetime | None) -> None:
        for model in (ResidentIdentity, StaffIdentity):
            await session.execute(
                update(model)
                .where(model.channel == CHANNEL, model.external_id == openid)
                .values(unreachable_since=since)
                .execution_options(synchronize_session=False)
            )


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if -180.0 <= number <= 180.0 else None
