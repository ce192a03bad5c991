"""A feature's part of the one settings tree: the feature declares its model and the flat environment
prefix its variables have always had; the composition root (``bot/settings.py``) assembles the
sections under one ``Settings``, the way channel settings come from the channel registry.

Sections are plain pydantic models, not ``BaseSettings``: the environment and the ``.env`` file are
read once, by the root, and each feature is handed its validated section (``Services.section``)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class SettingsSection:
    name: str  # its attribute on the tree (``settings.reminders``) and its nested environment names
    model: type[BaseModel]
    # The flat names documented and deployed so far: "OUTREACH_REMINDER_" reads
    # OUTREACH_REMINDER_DAYS_BEFORE into ``days_before``. OUTREACH_<NAME>__<FIELD> works as well.
    env_prefix: str
