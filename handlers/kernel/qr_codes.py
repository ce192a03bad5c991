"""The permanent WeChat QR codes made for building scenes (``wechat_qrcodes``), kept so that each scene
is created once per account: the channel's ``qr`` helper asks here first and records what WeChat gave."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.upserts import insert_ignore
from storage.wechat_models import WeChatQrCode


@dataclass(frozen=True)
class StoredCode:
    ticket: str
    url: str  # what the code encodes


class QrCodeStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, app_id: str, scene: str) -> StoredCode | None:
        async with self.sessions() as session:
            row = await session.get(WeChatQrCode, (app_id, scene))
            return None if row is None else StoredCode(row.ticket, row.url)

    async def put(self, app_id: str, scene: str, code: StoredCode, now: datetime) -> StoredCode:
        """Keep ``code``; when another process kept one first, that one is the answer."""
        async with self.sessions.begin() as session:
            values = {
                "app_id": app_id,
                "scene": scene,
                "ticket": code.ticket,
                "url": code.url,
                "created_at": now,
            }
            await session.execute(insert_ignore(session, WeChatQrCode, values))
            row = await session.get(WeChatQrCode, (app_id, scene), populate_existing=True)
            assert row is not None
            return StoredCode(row.ticket, row.url)
