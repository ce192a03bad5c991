"""One list of channels (bot/channels/registry.py): what the server runs is what a broadcast from the
command line counts as running, and the community file's account keys are the registry's."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels import registry
from bot.settings import Settings
from handlers.broadcasts import jobs
from handlers.community.model import StaffConfig, load_community
from handlers.community.store import sync_community
from handlers.feature_set import conversation as compose_conversation
from handlers.kernel.channel_keys import IDENTITY_KEYS
from handlers.kernel.context import Services
from handlers.kernel.inbound import Inbound
from storage.database import create_engine, session_factory
from storage.models import OutboxMessage
from tests.app.test_cli import run
from tests.conftest import Clock

SAMPLE = Path(__file__).resolve().parents[2] / "bot" / "data" / "sample_community.yaml"
WECOM_ONLY = ("zhao", "zhaolei")  # a worker whose only chat account is WeCom (企业微信)
TELEGRAM_AND_WECOM = {
    "OUTREACH_TELEGRAM_TOKEN": "123456:TEST",
    "OUTREACH_WECOM_CORP_ID": "ww-test",
    "OUTREACH_WECOM_AGENT_ID": "1000002",
    "OUTREACH_WECOM_SECRET": "secret",
    "OUTREACH_WECOM_TOKEN": "token",
    "OUTREACH_WECOM_AES_KEY": "a" * 43,
}


def community_file(tmp_path: Path) -> Path:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    for member in data["staff"]:
        if member["id"] == WECOM_ONLY[0]:
            member["wecom"] = WECOM_ONLY[1]
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def staff_rows(sessions: async_sessionmaker[AsyncSession], text: str) -> dict[str, tuple[str, str]]:
    """recipient → (channel, status) of the broadcast's outbox rows."""
    async with sessions() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.text.contains(text)))
        return {r.recipient: (r.channel, r.status) for r in rows}


async def test_a_cli_broadcast_to_staff_reaches_wecom_only_staff(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    config = str(community_file(tmp_path))
    env = {"OUTREACH_DATABASE_URL": url, "OUTREACH_CONFIG": config, **TELEGRAM_AND_WECOM}
    sent = run(["broadcast", "--text", "下午三点开会", "--tag", "staff", "--yes", "--no-wait"], env=env)
    assert sent.returncode == 0, sent.stderr.decode()
    engine = create_engine(url)
    try:
        rows = await staff_rows(session_factory(engine), "下午三点开会")
    finally:
        await engine.dispose()
    assert rows[WECOM_ONLY[1]] == ("wecom", "pending")  # not failed as "no channel"
    assert rows["100001"] == ("telegram", "pending")  # zhang, on Telegram


async def test_a_chat_broadcast_to_staff_reaches_wecom_only_staff(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, tmp_path: Path
) -> None:
    community = load_community(community_file(tmp_path))
    async with sessions.begin() as session:
        await sync_community(session, community)
    # The server with Telegram and WeCom configured runs the registry's configured channels (the
    # admin types on the console here, which the server does not run: it is not among them).
    running = registry.configured_channels(Settings(_env_file=None, **_fields(TELEGRAM_AND_WECOM)))
    services = Services(sessions, community, running, clock)
    conversation = compose_conversation(services)
    await conversation.handle(Inbound(channel="console", sender="chen", text="广播 #staff 下午三点开会"))
    await conversation.handle(Inbound(channel="console", sender="chen", text="确认发送 1"))
    await jobs.run(services)
    rows = await staff_rows(sessions, "下午三点开会")
    assert rows[WECOM_ONLY[1]] == ("wecom", "pending")
    assert rows["100001"] == ("telegram", "pending")


def _fields(env: dict[str, str]) -> dict[str, str]:
    return {key.removeprefix("OUTREACH_").lower(): value for key, value in env.items()}


def test_every_channel_is_declared_once_with_its_settings_and_community_key() -> None:
    names = [spec.name for spec in registry.CHANNELS]
    assert sorted(names) == sorted(set(names)) == ["console", "telegram", "wechat", "wecom"]
    keys = {spec.identity_key for spec in registry.CHANNELS if spec.identity_key}
    assert keys == set(IDENTITY_KEYS) <= set(StaffConfig.model_fields)
    for spec in registry.CHANNELS:
        assert set(spec.settings.model_fields) <= set(Settings.model_fields), spec.name
    settings = Settings(_env_file=None, **_fields(TELEGRAM_AND_WECOM))
    assert registry.configured_channels(settings) == {"telegram", "wecom"}
    assert registry.configured_channels(Settings(_env_file=None)) == frozenset()
