"""The local console as the registry sees it: no settings, no key in the community file (every staff
member uses it under their own id), no server adapter: ``outreach-bot console`` runs it in the
terminal and prints its outbox rows there."""

from __future__ import annotations

from pydantic import BaseModel

from bot.channels.spec import ChannelSpec


class ConsoleSettings(BaseModel):
    pass


def configured(_settings: ConsoleSettings) -> bool:
    return False  # never served: it runs in the terminal of `outreach-bot console`


SPEC = ChannelSpec(name="console", settings=ConsoleSettings, identity_key=None, configured=configured)
