"""The one settings tree, read from the environment (prefix ``OUTREACH_``) and a ``.env`` file in the
working directory, typed and validated once at start-up by the composition root (``bot/cli.py``,
``bot/server.py``), which hands each part to the code that needs it.

* the core settings (``settings.database_url`` …);
* every registered channel's settings (``bot/channels/*/spec.py``, listed by the registry), mixed in at
  the top so their variables keep their names: ``OUTREACH_TELEGRAM_TOKEN`` is ``settings.telegram_token``;
* one nested section per feature, declared by the feature (its ``SECTION``) and listed in ``SECTIONS``:
  ``settings.reminders``, ``settings.broadcasts``, ``settings.outbox``. Their variables keep their flat
  names (``OUTREACH_REMINDER_DAYS_BEFORE``) and may also be written nested
  (``OUTREACH_REMINDERS__DAYS_BEFORE``; the nested name wins when both are set).

A new channel or feature needs no edit here beyond its line in the registry or in ``SECTIONS``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bot.channels.registry import CHANNELS
from handlers.broadcasts.config import SECTION as BROADCASTS
from handlers.broadcasts.config import BroadcastSettings
from handlers.community.qr_config import SECTION as QR
from handlers.community.qr_config import QrSettings
from handlers.kernel.outbox_settings import SECTION as OUTBOX
from handlers.kernel.outbox_settings import OutboxSettings
from handlers.kernel.settings_section import SettingsSection
from handlers.reminders.config import SECTION as REMINDERS
from handlers.reminders.config import ReminderSettings
from storage import DEFAULT_DATABASE_URL

ENV_PREFIX = "OUTREACH_"
SECTIONS: tuple[SettingsSection, ...] = (OUTBOX, REMINDERS, BROADCASTS, QR)


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://…",
    )
    config: Path | None = Field(default=None, description="community YAML file; the sample one if unset")
    log_level: str = "INFO"
    # How many server processes share the work (set by `serve --workers N`): per-process rate limits
    # are divided by it so that together they stay within a platform's limits.
    serve_workers: int = Field(default=1, ge=1)
    # HTTP limits per process (bot/http_guard.py). Reverse proxies whose X-Forwarded-For is believed,
    # comma-separated addresses or networks ("127.0.0.1,10.0.0.0/8"); none by default.
    trusted_proxies: str = ""
    max_connections: int = Field(default=500, ge=1)
    max_connections_per_client: int = Field(default=64, ge=1)
    max_requests_per_client: int = Field(default=64, ge=1)
    redis_url: str | None = None  # shares the WeChat/WeCom access token through Redis instead of the database


class Settings(CoreSettings, *(channel.settings for channel in CHANNELS)):  # type: ignore[misc]
    """The core settings, every channel's (``bot.channels.registry``) and the features' sections."""

    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)
    broadcasts: BroadcastSettings = Field(default_factory=BroadcastSettings)
    qr: QrSettings = Field(default_factory=QrSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The same sources in the same order (arguments, environment, .env, secrets), the environment
        # and the .env file also read under the sections' flat names. Without a .env file its source
        # is left out: it would find nothing, yet pydantic-settings would still inspect every field.
        dotenv = (_FlatNames(dotenv_settings),) if _has_env_file(dotenv_settings) else ()
        return (init_settings, _FlatNames(env_settings), *dotenv, file_secret_settings)

    def sections(self) -> dict[type, Any]:
        """The features' sections by model, for ``handlers.kernel.context.Services``."""
        return {section.model: getattr(self, section.name) for section in SECTIONS}


for _section in SECTIONS:  # each declared section is a field of the tree, of the section's model
    if Settings.model_fields[_section.name].annotation is not _section.model:
        raise RuntimeError(f"settings section {_section.name} is not a field of Settings")


class _FlatNames(PydanticBaseSettingsSource):
    """An environment (or .env) source that also reads each section's flat names: with the prefix
    ``OUTREACH_REMINDER_``, ``OUTREACH_REMINDER_DAYS_BEFORE='[7, 1]'`` becomes
    ``{"reminders": {"days_before": [7, 1]}}``. It reuses the wrapped source's variables and decoding,
    so the environment is read once."""

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)  # not called: __call__ is the whole source

    def _set_current_state(self, state: dict[str, Any]) -> None:
        super()._set_current_state(state)
        self.inner._set_current_state(state)

    def _set_settings_sources_data(self, states: dict[str, dict[str, Any]]) -> None:
        super()._set_settings_sources_data(states)
        self.inner._set_settings_sources_data(states)

    def __call__(self) -> dict[str, Any]:
        data = self.inner()
        if not isinstance(self.inner, EnvSettingsSource):
            return data
        for section in SECTIONS:
            flat = _read_flat(self.inner, section)
            nested = data.get(section.name)
            if flat and (nested is None or isinstance(nested, dict)):
                data[section.name] = {**flat, **(nested or {})}  # the nested names win
        return data


def _has_env_file(source: PydanticBaseSettingsSource) -> bool:
    files = getattr(source, "env_file", None)
    if files is None:
        return False
    return any(Path(f).expanduser().is_file() for f in ([files] if isinstance(files, str | Path) else files))


def _read_flat(source: EnvSettingsSource, section: SettingsSection) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, field in section.model.model_fields.items():
        env_name = section.env_prefix + name
        value = source.env_vars.get(env_name if source.case_sensitive else env_name.lower())
        if value is None:
            continue
        is_complex, _ = source._field_is_complex(field)
        try:
            found[name] = source.prepare_field_value(name, field, value, is_complex)
        except ValueError as error:  # a list or a mapping that is not JSON
            raise SettingsError(f"{env_name.upper()}: {error}") from error
    return found


def env_name(location: tuple[int | str, ...]) -> str:
    """The documented variable of a field of the tree: ("reminders", "days_before") →
    OUTREACH_REMINDER_DAYS_BEFORE, ("database_url",) → OUTREACH_DATABASE_URL."""
    head = str(location[0]) if location else "?"
    for section in SECTIONS:
        if head == section.name and len(location) > 1:
            return (section.env_prefix + str(location[1])).upper()
    return (ENV_PREFIX + head).upper()


def problems(error: ValidationError) -> list[str]:
    """One short phrase per invalid setting, naming its variable and never its value (it may be a
    secret): "OUTREACH_SERVE_WORKERS: Input should be greater than or equal to 1"."""
    return [f"{env_name(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)]


def load_settings(**values: Any) -> Settings:
    """Build the tree (the composition root calls this once per process)."""
    return Settings(**values)
