"""The outbox's section of the settings tree (``OUTREACH_OUTBOX_*``; ``handlers/kernel/outbox.py`` says what
each one does). A module of its own so that building the settings does not import the database layer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from handlers.kernel.settings_section import SettingsSection


class OutboxSettings(BaseModel):
    # validate_default: defaults pass the validators too, as they did when this was a BaseSettings.
    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    lease_seconds: float = Field(default=60, ge=1, le=3600)
    retry_hours: float = Field(default=24, gt=0, le=24 * 30)  # replies, acknowledgements, notices
    bulk_retry_hours: float = Field(default=72, gt=0, le=24 * 30)  # reminders and broadcasts
    backoff_cap_seconds: float = Field(default=600, ge=1, le=24 * 3600)


DEFAULTS = OutboxSettings()  # for callers the composition root did not configure (tests, benches)
SECTION = SettingsSection("outbox", OutboxSettings, env_prefix="OUTREACH_OUTBOX_")
