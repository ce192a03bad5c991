"""Broadcast settings: the ``broadcasts`` section of the settings tree (``bot/settings.py`` reads it
from the environment, prefix ``OUTREACH_BROADCAST_``).

``OUTREACH_BROADCAST_JOB_SECONDS=5`` (how often the server looks for due broadcasts, progress and
finished ones), ``OUTREACH_BROADCAST_PROGRESS_SECONDS=300`` (progress messages to the admin),
``OUTREACH_BROADCAST_BATCH_SIZE=1000`` (residents per expansion transaction),
``OUTREACH_BROADCAST_CALENDAR_DAYS_AHEAD=5`` (draft a calendar notice this many days before the day),
``OUTREACH_BROADCAST_WECHAT_MASS=true`` (the Official Account is a verified 服务号 that may mass-send:
WeChat users outside the 48-hour window get the notice by 群发, at most
``OUTREACH_BROADCAST_WECHAT_MASS_QUOTA=4`` a calendar month each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from handlers.kernel.outbox_settings import OutboxSettings
from handlers.kernel.settings_section import SettingsSection


class BroadcastSettings(BaseModel):
    # validate_default: defaults pass the validators too, as they did when this was a BaseSettings.
    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    job_seconds: float = Field(default=5, gt=0)
    progress_seconds: float = Field(default=300, gt=0)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    priority: int = -10  # outbox priority of broadcast rows: below replies (0)
    calendar_days_ahead: int = Field(default=5, ge=1, le=60)
    calendar_hour: int = Field(default=9, ge=0, le=23)  # local hour an approved calendar notice goes out
    wechat_mass: bool = False
    wechat_mass_quota: int = Field(default=4, ge=1)
    wechat_mass_batch: int = Field(default=10_000, ge=2, le=10_000)  # openids per message/mass/send call


DEFAULTS = BroadcastSettings()  # for callers the composition root did not configure (tests, benches)
SECTION = SettingsSection("broadcasts", BroadcastSettings, env_prefix="OUTREACH_BROADCAST_")


class CliSettings(Protocol):
    """What ``outreach-bot broadcast`` reads of the settings tree the composition root hands in."""

    database_url: str
    config: Path | None
    broadcasts: BroadcastSettings
    outbox: OutboxSettings
