"""0103 (wechat branch): the table of permanent WeChat QR codes, added to a database at 0102 that holds
data; the data stays, the table works, and the downgrade takes it away again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from storage.database import create_engine, session_factory
from storage.migrate import downgrade, upgrade
from tests.support.db import database_of


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_qrcodes_table_added_to_a_database_with_data(kind: str, tmp_path: Any) -> None:
    from handlers.kernel.qr_codes import QrCodeStore, StoredCode

    now = datetime(2026, 12, 3, tzinfo=UTC)
    async with database_of(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, "0102", from_models=False)
            async with engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO wechat_tokens (key, access_token) VALUES ('wx:stable', 'TOKEN-1')")
                )
                await connection.execute(
                    text(
                        "INSERT INTO wechat_users (channel, openid, window_kind, cs_sent)"
                        " VALUES ('wechat', 'oUser1', 'message', 2)"
                    )
                )
            await upgrade(engine, from_models=False)
            async with engine.connect() as connection:
                kept = (await connection.execute(text("SELECT access_token FROM wechat_tokens"))).scalar()
                users = (await connection.execute(text("SELECT cs_sent FROM wechat_users"))).scalar()
            assert (kept, users) == ("TOKEN-1", 2)
            store = QrCodeStore(session_factory(engine))
            first = await store.put(
                "wx1", "SQ_bAAAAAAAA_BBBBBBBBBBBBBBBB", StoredCode("T1", "http://q/1"), now
            )
            second = await store.put(
                "wx1", "SQ_bAAAAAAAA_BBBBBBBBBBBBBBBB", StoredCode("T2", "http://q/2"), now
            )
            assert first == second == StoredCode("T1", "http://q/1")  # the first one kept stays
            assert await store.get("wx1", "SQ_bAAAAAAAA_BBBBBBBBBBBBBBBB") == first
            assert await store.get("wx2", "SQ_bAAAAAAAA_BBBBBBBBBBBBBBBB") is None  # per account
            await downgrade(engine, "0102")
            async with engine.connect() as connection:
                tables = await connection.run_sync(lambda c: c.dialect.get_table_names(c))
                kept = (await connection.execute(text("SELECT access_token FROM wechat_tokens"))).scalar()
            assert "wechat_qrcodes" not in tables and kept == "TOKEN-1"
        finally:
            await engine.dispose()
