"""The chat features every deployment runs, in order: the composition of the conversation's features.

Features import the kernel (``handlers.kernel.features``, ``handlers.kernel.commands``), never the reverse;
this module sits above both and is what the conversation is built with. Importing it also registers the
features' commands in the one command registry."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.broadcasts.chat import BroadcastFeature
from handlers.cases import resident_chat
from handlers.cases.case_status import CaseStatusFeature
from handlers.cases.category_question import CategoryQuestion
from handlers.kernel.context import Services
from handlers.kernel.features import ChatFeature
from handlers.reminders.chat import ReminderFeature
from handlers.reminders.config import ReminderSettings


def default_features(services: Services) -> Sequence[ChatFeature]:
    """The features every deployment runs, in order, each with its section of the settings."""
    return (
        CaseStatusFeature(),
        CategoryQuestion(resident_chat.report),
        ReminderFeature(services.section(ReminderSettings)),
        BroadcastFeature(),
    )
