"""The one settings tree (bot/settings.py): every documented OUTREACH_* variable lands in its field,
feature sections also take nested names, a .env file is read, invalid settings are one line in the
CLI, and the features get their sections from the composition root (no getter of their own)."""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import SECTIONS, Settings, env_name
from handlers.broadcasts.config import BroadcastSettings
from handlers.community.qr_config import QrSettings
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from handlers.kernel.outbox import Outbound, claim, enqueue, mark_dispatched
from handlers.kernel.outbox_settings import OutboxSettings
from handlers.reminders.chat import ReminderFeature
from handlers.reminders.config import ReminderSettings
from storage.models import OutboxMessage
from tests.support.chat import Clock
from tests.support.cli import run

ROOT = Path(__file__).resolve().parents[2]

# Every variable the README, docs/ and the settings modules document: its value here, and where the
# tree must put it (a field path) with what value.
DOCUMENTED: dict[str, tuple[str, str, Any]] = {
    "OUTREACH_DATABASE_URL": ("sqlite+aiosqlite:///x.db", "database_url", "sqlite+aiosqlite:///x.db"),
    "OUTREACH_CONFIG": ("/srv/community.yaml", "config", Path("/srv/community.yaml")),
    "OUTREACH_LOG_LEVEL": ("DEBUG", "log_level", "DEBUG"),
    "OUTREACH_SERVE_WORKERS": ("3", "serve_workers", 3),
    "OUTREACH_TRUSTED_PROXIES": ("10.0.0.0/8", "trusted_proxies", "10.0.0.0/8"),
    "OUTREACH_MAX_CONNECTIONS": ("900", "max_connections", 900),
    "OUTREACH_MAX_CONNECTIONS_PER_CLIENT": ("9", "max_connections_per_client", 9),
    "OUTREACH_MAX_REQUESTS_PER_CLIENT": ("8", "max_requests_per_client", 8),
    "OUTREACH_REDIS_URL": ("redis://r:6379/1", "redis_url", "redis://r:6379/1"),
    "OUTREACH_TELEGRAM_TOKEN": ("123:ABC", "telegram_token", SecretStr("123:ABC")),
    "OUTREACH_TELEGRAM_API_URL": ("http://h:8081", "telegram_api_url", "http://h:8081/bot"),
    "OUTREACH_TELEGRAM_WEBHOOK_URL": ("https://h/tg", "telegram_webhook_url", "https://h/tg"),
    "OUTREACH_TELEGRAM_WEBHOOK_SECRET": ("s3", "telegram_webhook_secret", SecretStr("s3")),
    "OUTREACH_WECHAT_TOKEN": ("wt", "wechat_token", SecretStr("wt")),
    "OUTREACH_WECHAT_APP_ID": ("wx1", "wechat_app_id", "wx1"),
    "OUTREACH_WECHAT_APP_SECRET": ("ws", "wechat_app_secret", SecretStr("ws")),
    "OUTREACH_WECHAT_AES_KEY": ("k" * 43, "wechat_aes_key", SecretStr("k" * 43)),
    "OUTREACH_WECHAT_API_URL": ("http://w", "wechat_api_url", "http://w"),
    "OUTREACH_WECHAT_COMPAT_MODE": ("1", "wechat_compat_mode", True),
    "OUTREACH_WECHAT_ACCOUNT_ID": ("gh_1", "wechat_account_id", "gh_1"),
    "OUTREACH_WECHAT_TEMPLATES": ('{"status": "T1"}', "wechat_templates", {"status": "T1"}),
    "OUTREACH_WECHAT_SUBSCRIBE_TEMPLATES": ('{"ack": "T2"}', "wechat_subscribe_templates", {"ack": "T2"}),
    "OUTREACH_WECOM_CORP_ID": ("ww1", "wecom_corp_id", "ww1"),
    "OUTREACH_WECOM_AGENT_ID": ("1000002", "wecom_agent_id", 1000002),
    "OUTREACH_WECOM_SECRET": ("cs", "wecom_secret", SecretStr("cs")),
    "OUTREACH_WECOM_TOKEN": ("ct", "wecom_token", SecretStr("ct")),
    "OUTREACH_WECOM_AES_KEY": ("a" * 43, "wecom_aes_key", SecretStr("a" * 43)),
    "OUTREACH_WECOM_API_URL": ("http://q", "wecom_api_url", "http://q"),
    "OUTREACH_OUTBOX_LEASE_SECONDS": ("5", "outbox.lease_seconds", 5.0),
    "OUTREACH_OUTBOX_RETRY_HOURS": ("12", "outbox.retry_hours", 12.0),
    "OUTREACH_OUTBOX_BULK_RETRY_HOURS": ("48", "outbox.bulk_retry_hours", 48.0),
    "OUTREACH_OUTBOX_BACKOFF_CAP_SECONDS": ("30", "outbox.backoff_cap_seconds", 30.0),
    "OUTREACH_REMINDER_DAYS_BEFORE": ("[1, 7, 3]", "reminders.days_before", [1, 3, 7]),
    "OUTREACH_REMINDER_OVERDUE_DAYS": ("[14]", "reminders.overdue_days", [14]),
    "OUTREACH_REMINDER_QUIET_START": ("22:00", "reminders.quiet_start", time(22, 0)),
    "OUTREACH_REMINDER_QUIET_END": ("07:30", "reminders.quiet_end", time(7, 30)),
    "OUTREACH_REMINDER_SEND_TIME": ("10:00", "reminders.send_time", time(10, 0)),
    "OUTREACH_REMINDER_MENTAL_INTERVAL_DAYS": ("14", "reminders.mental_interval_days", 14),
    "OUTREACH_REMINDER_SCHEDULE": ("cn-nip-2021", "reminders.schedule", "cn-nip-2021"),
    "OUTREACH_BROADCAST_JOB_SECONDS": ("1", "broadcasts.job_seconds", 1.0),
    "OUTREACH_BROADCAST_PROGRESS_SECONDS": ("60", "broadcasts.progress_seconds", 60.0),
    "OUTREACH_BROADCAST_BATCH_SIZE": ("200", "broadcasts.batch_size", 200),
    "OUTREACH_BROADCAST_CALENDAR_DAYS_AHEAD": ("3", "broadcasts.calendar_days_ahead", 3),
    "OUTREACH_BROADCAST_WECHAT_MASS": ("true", "broadcasts.wechat_mass", True),
    "OUTREACH_BROADCAST_WECHAT_MASS_QUOTA": ("2", "broadcasts.wechat_mass_quota", 2),
    "OUTREACH_QR_SECRET": ("s" * 32, "qr.secret", SecretStr("s" * 32)),
    "OUTREACH_QR_TELEGRAM_BOT": ("hpl_bot", "qr.telegram_bot", "hpl_bot"),
    "OUTREACH_QR_FONT": ("/f/noto.ttc", "qr.font", Path("/f/noto.ttc")),
    # A section's nested names, as the docs show them.
    "OUTREACH_REMINDERS__DAYS_BEFORE": ("[2]", "reminders.days_before", [2]),
}
# Named in the docs but not settings of the tree: a family's prefix (OUTREACH_BROADCAST_…, the guide's
# OUTREACH_DINGTALK_…) and the test suite's own database.
NOT_SETTINGS = {"OUTREACH_REMINDER", "OUTREACH_TEST_PG_URL"}
# The modules whose docstrings document variables.
DOCUMENTING = (
    "README.md",
    "docs",
    "handlers/reminders/config.py",
    "handlers/broadcasts/config.py",
    "handlers/community/qr_config.py",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment without OUTREACH_* variables, in a directory without a .env file."""
    for key in [k for k in os.environ if k.startswith("OUTREACH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _at(settings: BaseModel, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _documented_names() -> set[str]:
    found: set[str] = set()
    for entry in DOCUMENTING:
        path = ROOT / entry
        for file in sorted(path.rglob("*.md")) if path.is_dir() else [path]:
            found |= set(re.findall(r"OUTREACH_[A-Z0-9_]+", file.read_text(encoding="utf-8")))
    return {name for name in found - NOT_SETTINGS if not name.endswith("_")}


def test_every_documented_variable_is_checked_here() -> None:
    assert _documented_names() <= set(DOCUMENTED), sorted(_documented_names() - set(DOCUMENTED))


@pytest.mark.parametrize("variable", sorted(DOCUMENTED))
def test_a_documented_variable_lands_in_its_field(variable: str, env: pytest.MonkeyPatch) -> None:
    value, path, expected = DOCUMENTED[variable]
    env.setenv(variable, value)
    settings = Settings()
    assert _at(settings, path) == expected
    if "__" not in variable:  # an error about it names it so
        assert env_name(tuple(path.split("."))) == variable


def test_defaults_are_each_models_defaults(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.outbox == OutboxSettings() and settings.outbox.lease_seconds == 60
    assert settings.reminders == ReminderSettings() and settings.reminders.days_before == [1, 7]
    assert settings.broadcasts == BroadcastSettings() and settings.broadcasts.wechat_mass is False
    assert settings.telegram_token is None and settings.serve_workers == 1
    assert settings.sections() == {
        OutboxSettings: settings.outbox,
        ReminderSettings: settings.reminders,
        BroadcastSettings: settings.broadcasts,
        QrSettings: settings.qr,  # issue 15 point 3: the building codes' section
    }


def test_sections_also_take_nested_names_and_those_win(env: pytest.MonkeyPatch) -> None:
    env.setenv("OUTREACH_REMINDERS__BATCH_SIZE", "9")
    env.setenv("OUTREACH_REMINDER_QUIET_START", "20:00")  # flat and nested names mix
    env.setenv("OUTREACH_OUTBOX_LEASE_SECONDS", "5")
    env.setenv("OUTREACH_OUTBOX__LEASE_SECONDS", "7")  # both given: the nested one
    settings = Settings()
    assert settings.reminders.batch_size == 9 and settings.reminders.quiet_start == time(20, 0)
    assert settings.outbox.lease_seconds == 7


def test_a_dotenv_file_is_read_and_the_environment_wins(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "OUTREACH_DATABASE_URL=sqlite+aiosqlite:///from-dotenv.db\n"
        "OUTREACH_REMINDER_DAYS_BEFORE=[2]\n"
        "OUTREACH_BROADCAST_BATCH_SIZE=300\n"
        "OUTREACH_TELEGRAM_TOKEN=1:DOTENV\n",
        encoding="utf-8",
    )
    env.setenv("OUTREACH_BROADCAST_BATCH_SIZE", "400")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///from-dotenv.db"
    assert settings.reminders.days_before == [2]
    assert settings.broadcasts.batch_size == 400
    assert settings.telegram_token == SecretStr("1:DOTENV")
    assert Settings(_env_file=None).reminders.days_before == [1, 7]  # tests can leave the file out


def test_the_environment_is_read_by_the_root_alone() -> None:
    """Sections are plain models: pydantic-settings reads the environment once per tree, not once
    per feature, and no feature can read it behind the root's back."""
    import bot.cli  # noqa: F401  everything a command may import
    import handlers.feature_set  # noqa: F401

    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}

    ours = {c for c in subclasses(BaseSettings) if c.__module__.split(".")[0] in ("bot", "handlers")}
    assert {c.__qualname__ for c in ours} == {"CoreSettings", "Settings"}
    for section in SECTIONS:
        assert not issubclass(section.model, BaseSettings), section.name
        assert Settings.model_fields[section.name].annotation is section.model


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OUTREACH_REMINDER_MENTAL_INTERVAL_DAYS": "3"}, ["OUTREACH_REMINDER_MENTAL_INTERVAL_DAYS"]),
        (
            {"OUTREACH_SERVE_WORKERS": "0", "OUTREACH_OUTBOX__LEASE_SECONDS": "0"},
            ["OUTREACH_SERVE_WORKERS", "OUTREACH_OUTBOX_LEASE_SECONDS"],
        ),
        ({"OUTREACH_WECOM_AGENT_ID": "hunter2-not-a-number"}, ["OUTREACH_WECOM_AGENT_ID"]),
        ({"OUTREACH_REMINDER_DAYS_BEFORE": "hunter2 not json"}, ["OUTREACH_REMINDER_DAYS_BEFORE"]),
        ({"OUTREACH_WECHAT_TEMPLATES": "hunter2 not json"}, ["OUTREACH_WECHAT_TEMPLATES"]),
    ],
)
def test_invalid_settings_are_one_line_naming_the_variable(
    variables: dict[str, str], named: list[str], tmp_path: Path
) -> None:
    env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never.db'}", **variables}
    result = run(["tickets"], env=env)
    err = result.stderr.decode("utf-8")
    assert result.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "设置有误" in err and all(name in err for name in named), err
    assert "hunter2" not in err  # a value is never echoed: it may be a secret
    assert not (tmp_path / "never.db").exists()  # refused before any work


def test_help_works_whatever_the_settings_say() -> None:
    result = run(["--help"], env={"OUTREACH_SERVE_WORKERS": "0"})
    assert result.returncode == 0 and b"outreach-bot" in result.stdout


async def test_the_features_are_handed_their_sections(
    sessions: async_sessionmaker[AsyncSession], sample: Any, clock: Clock
) -> None:
    reminders = ReminderSettings(batch_size=3, max_postpone_days=10)
    tree = Settings(_env_file=None, reminders=reminders, broadcasts={"wechat_mass": True})
    services = Services(sessions, sample, frozenset({"console"}), clock, settings=tree.sections())
    assert services.section(ReminderSettings) is tree.reminders
    assert services.section(BroadcastSettings).wechat_mass is True
    feature = next(f for f in conversation(services).features if isinstance(f, ReminderFeature))
    assert feature.config is tree.reminders
    bare = Services(sessions, sample, frozenset({"console"}), clock)  # as tests build them: defaults
    assert bare.section(ReminderSettings) == ReminderSettings()


async def test_a_claim_and_its_dispatch_use_the_configured_lease(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    settings = OutboxSettings(lease_seconds=5)
    async with sessions.begin() as session:
        enqueue(session, Outbound("console", "u1", "hello"), clock())
    (row,) = await claim(sessions, "console", clock(), settings=settings)
    assert row.claimed_until == clock() + timedelta(seconds=5)
    clock.advance(seconds=2)
    await mark_dispatched(sessions, row, clock())  # a sender calls it without the settings
    async with sessions() as session:
        stored = await session.get(OutboxMessage, row.id)
    assert stored is not None and stored.claimed_until == clock() + timedelta(seconds=5)  # restarted
