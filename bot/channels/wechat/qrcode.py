"""Permanent parametric QR codes for building scenes (``QR_LIMIT_STR_SCENE``, ``/cgi-bin/qrcode/create``):
created once per scene and account, kept through the kernel's ``QrCodeStore`` (a channel writes no
rows itself). Scanning one sends a ``subscribe`` event with ``qrscene_<scene>`` (a new follower) or
``SCAN`` with ``<scene>`` (a follower) to the callback."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from bot.channels.wechat.client import WeChatClient, WeChatTransportError
from handlers.kernel.clock import utcnow
from handlers.kernel.qr_codes import QrCodeStore, StoredCode

CREATE = "/cgi-bin/qrcode/create"
SHOW = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="


@dataclass(frozen=True)
class WeChatCode:
    ticket: str
    content: str  # the URL the code encodes: what a poster prints as its QR code
    created: bool  # made by this call (False: from the cache)

    @property
    def image_url(self) -> str:
        """WeChat's picture of the code (showqrcode needs no token; the ticket is URL-encoded)."""
        return SHOW + quote(self.ticket, safe="")


async def permanent_code(client: WeChatClient, store: QrCodeStore, scene: str) -> WeChatCode:
    cached = await store.get(client.app_id, scene)
    if cached is not None:
        return WeChatCode(cached.ticket, cached.url, created=False)
    data = await client.call(
        CREATE, {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
    )
    ticket, url = data.get("ticket"), data.get("url")
    if not isinstance(ticket, str) or not ticket or not isinstance(url, str) or not url:
        raise WeChatTransportError(f"{CREATE}: no ticket in the answer")
    kept = await store.put(client.app_id, scene, StoredCode(ticket, url), utcnow())
    return WeChatCode(kept.ticket, kept.url, created=kept.ticket == ticket)
