"""Cheap checks shared by the WeChat and WeCom callbacks, run before anything costly (a parser, a
decryption, a database write): the body read with a deadline, the bytes of an XML body, the length of
the fields we store, and a per-sender rate limit kept in memory.

Each refusal costs microseconds: a flood of hostile documents or of one sender's messages must not
take the CPU or the database from legitimate callbacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from xml.etree.ElementTree import Element

BODY_TIMEOUT = 5.0  # seconds to receive a whole body (WeChat sends it at once; a slow-loris does not)
MAX_ELEMENTS = 200  # elements in one callback document (a message has about a dozen)
# Characters of the fields that end up in short columns: an openid (28 characters) or WeCom userid
# (at most 64) is stored alone (128) and inside message ids (``openid:CreateTime:event``, 128).
SHORT_FIELDS = {"FromUserName": 64, "ToUserName": 64, "MsgType": 32, "Event": 64, "MsgId": 64, "AgentID": 16}

_DECLARED = re.compile(rb"\A\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_UTF8 = frozenset({b"utf-8", b"utf8"})


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_xml_bytes(body: bytes) -> None:
    """Refuse, before any parser sees it, a document that declares a DTD or an entity (billion laughs,
    external entities: WeChat never sends one) or that is not UTF-8 (WeChat always sends UTF-8; a
    UTF-16 body would hide ``<!DOCTYPE`` from a byte check, and its NUL bytes give it away)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise Refused(400, "hostile xml (DTD)")
    if b"\x00" in body:
        raise Refused(400, "not UTF-8 (NUL bytes)")
    declared = _DECLARED.match(body)
    if declared is not None and declared.group(1).lower() not in _UTF8:
        raise Refused(400, "not UTF-8 (declared encoding)")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "not UTF-8") from None


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def read_body(
    chunks: AsyncIterator[bytes], headers: list[tuple[bytes, bytes]] | None, limit: int
) -> bytes:
    """The whole body, at most ``limit`` bytes, within ``BODY_TIMEOUT`` seconds (a body trickling in
    is dropped rather than holding a connection and a place in the queue)."""
    for name, value in headers or ():
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            raise Refused(413, "body too large")
    parts: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise Refused(413, "body too large")
            parts.append(chunk)

    try:
        await asyncio.wait_for(collect(), BODY_TIMEOUT)
    except TimeoutError:
        raise Refused(408, "body too slow") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks from a bare ASGI ``receive``."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Refused(400, "client went away")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def check_fields(root: Element) -> None:
    """The fields stored in bounded columns fit them, so that no row can fail a group commit: the
    sender is present, short and has no spaces or control characters; CreateTime is a number."""
    for name, limit in SHORT_FIELDS.items():
        found = root.find(name)
        value = (found.text or "").strip() if found is not None else ""
        if len(value) > limit:
            raise Refused(400, f"{name} too long")
    sender = (root.findtext("FromUserName") or "").strip()
    if not sender or not sender.isprintable() or any(c.isspace() for c in sender):
        raise Refused(400, "bad FromUserName")
    created = (root.findtext("CreateTime") or "").strip()
    if created and not (created.isascii() and created.isdigit() and len(created) <= 12):
        raise Refused(400, "bad CreateTime")


class SenderLimiter:
    """A token bucket per sender, in memory: a sender flooding the callback is refused without a
    query or a write. ``burst`` messages at once, then ``rate`` a second; the oldest idle senders are
    forgotten beyond ``size`` (a forgotten sender starts with a full bucket)."""

    def __init__(
        self,
        burst: float = 20,
        rate: float = 0.5,
        size: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.size = size
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # sender → (tokens, at)

    def allow(self, sender: str) -> bool:
        now = self.clock()
        tokens, at = self._buckets.get(sender, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1
        self._buckets[sender] = (tokens - 1 if allowed else tokens, now)
        self._buckets.move_to_end(sender)
        while len(self._buckets) > self.size:
            self._buckets.popitem(last=False)
        return allowed
