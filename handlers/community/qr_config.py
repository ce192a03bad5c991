"""The ``qr`` section of the settings tree (prefix ``OUTREACH_QR_``): the building codes' secret and
names. Kept apart from ``scenes`` so that reading the settings imports nothing heavy."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from handlers.kernel.settings_section import SettingsSection

DEFAULT_COMMUNITY_CODE = "C1"  # a file without `community.code` (as the community model says)
CODE_RE = re.compile(r"[A-Za-z0-9-]{1,16}")


class QrSettings(BaseModel):
    """The ``qr`` section: ``OUTREACH_QR_SECRET`` (at least 16 characters; never logged),
    ``OUTREACH_QR_TELEGRAM_BOT`` (the bot's username for ``t.me`` links; else asked of ``getMe``),
    ``OUTREACH_QR_FONT`` (the posters' CJK font file; default: Noto Sans CJK found on the machine)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    secret: SecretStr | None = Field(default=None, min_length=16)
    telegram_bot: str | None = None
    font: Path | None = None  # a font file with Chinese glyphs for the posters (default: Noto CJK)


SECTION = SettingsSection("qr", QrSettings, "OUTREACH_QR_")
