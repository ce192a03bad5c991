"""Reminder settings: the ``reminders`` section of the settings tree (``bot/settings.py`` reads it from
the environment, prefix ``OUTREACH_REMINDER_``), with the issue's defaults.

``OUTREACH_REMINDER_DAYS_BEFORE='[7, 1]'``, ``OUTREACH_REMINDER_OVERDUE_DAYS='[7, 30]'``,
``OUTREACH_REMINDER_QUIET_START=21:00``, ``OUTREACH_REMINDER_QUIET_END=08:00`` (community time zone),
``OUTREACH_REMINDER_SEND_TIME=09:00``, ``OUTREACH_REMINDER_MENTAL_INTERVAL_DAYS=30``,
``OUTREACH_REMINDER_SCHEDULE=cn-nip-2021`` (pin a schedule version; default: the one in force).
"""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handlers.kernel.settings_section import SettingsSection


class ReminderSettings(BaseModel):
    # validate_default: defaults pass the validators too, as they did when this was a BaseSettings.
    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    days_before: list[int] = Field(default_factory=lambda: [7, 1])  # vaccinations: days before the due day
    on_due_day: bool = True
    overdue_days: list[int] = Field(default_factory=lambda: [7, 30])  # nudges after the due day
    send_time: time = time(9, 0)  # local time a day's reminders go out
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    mental_interval_days: int = Field(default=30, ge=7, le=91)  # national floor: 4 a year
    schedule: str | None = None
    stale_after_days: int = Field(default=3, ge=1)  # a reminder the job could not send by then is dropped
    join_code_days: int = Field(default=7, ge=1)
    max_postpone_days: int = Field(default=60, ge=1)
    batch_size: int = Field(default=200, ge=1)
    job_seconds: float = Field(default=60, gt=0)

    @field_validator("days_before", "overdue_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value):
            raise ValueError("days must be positive")
        return sorted(set(value))


SECTION = SettingsSection("reminders", ReminderSettings, env_prefix="OUTREACH_REMINDER_")
