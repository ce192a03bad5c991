"""The chat features every deployment runs, in order: the composition of the conversation's features.

Features import the kernel (``handlers.kernel.features``, ``handlers.kernel.commands``), never the reverse;
this module sits above both and is what the conversation is built with. Importing it also registers the
features' commands in the one command registry, and the features' audience sources with broadcasts
(``handlers/audience_sources.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import cast

from handlers import audience_sources
from handlers.broadcasts.chat import BroadcastFeature
from handlers.cases import community_question, pending, resident_chat, staff_chat
from handlers.cases.case_status import CaseStatusFeature
from handlers.cases.category_question import CategoryQuestion
from handlers.cases.community_question import CommunityQuestion
from handlers.community.qr_config import QrSettings
from handlers.community.scan_chat import ScanFeature
from handlers.kernel.context import Services
from handlers.kernel.conversation import Conversation
from handlers.kernel.features import ChatComposition, ChatFeature, QuestionPolicy
from handlers.reminders.chat import ReminderFeature
from handlers.reminders.config import ReminderSettings

audience_sources.install()


def default_features(services: Services) -> Sequence[ChatFeature]:
    """The features every deployment runs, in order, each with its section of the settings."""
    community = CommunityQuestion(resident_chat.handle)  # which community the resident is in
    return (
        ScanFeature(services.section(QrSettings), community.scanned),  # a scan tells it too
        community,
        CaseStatusFeature(),
        CategoryQuestion(resident_chat.report),
        ReminderFeature(services.section(ReminderSettings)),
        BroadcastFeature(),
    )


def composition(services: Services, features: Sequence[ChatFeature] | None = None) -> ChatComposition:
    """The conversation's parts: the features (``default_features`` unless given), the case flows that
    take what no feature takes, and the case dialogs' pending-question policy."""
    questions: ModuleType = pending  # the module is the policy: staff_only, interrupts, close
    return ChatComposition(
        features=default_features(services) if features is None else features,
        resident=resident_chat.handle,
        staff=staff_chat.handle,
        questions=cast(QuestionPolicy, questions),
        place=community_question.place,
    )


def conversation(services: Services, features: Sequence[ChatFeature] | None = None) -> Conversation:
    """A conversation built with this deployment's composition (what the app, the demo and tests use)."""
    return Conversation(services, composition(services, features))
