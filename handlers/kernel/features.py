"""Chat features beyond reporting (reminders, broadcasts, staff binding …) plug into the conversation
here, so each lives in its own module and the core stays small.

A feature sees every message first, in the order ``handlers.feature_set`` lists them (like
python-telegram-bot handler groups),
after bad input has been answered and before the built-in report and case commands. It returns True
when it handled the message. Dialog states a feature sets are prefixed with its name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from handlers.kernel.commands import Command
from handlers.kernel.context import Turn
from handlers.kernel.inbound import Inbound, match_form
from handlers.kernel.people import Actor
from storage.models import Dialog, InboundMessage


@dataclass
class ChatContext:
    turn: Turn
    actor: Actor
    message: Inbound
    command: Command | None
    dialog: Dialog | None
    row: InboundMessage

    @property
    def text(self) -> str:
        """The text for matching words and commands (full-width forms folded). What is stored or
        shown to people is ``message.text``, exactly as written."""
        return match_form(self.message.text or "")

    def reply(self, text: str, **kwargs: Any) -> None:
        self.turn.say(self.actor.address, text, **kwargs)

    async def set_dialog(self, state: str, data: dict[str, Any]) -> None:
        dialog = self.dialog or await self.turn.session.get(
            Dialog, (self.message.channel, self.message.sender)
        )
        if dialog is None:
            dialog = Dialog(channel=self.message.channel, external_id=self.message.sender, state=state)
            self.turn.session.add(dialog)
        dialog.state = state
        dialog.data = data
        dialog.updated_at = self.turn.now
        self.dialog = dialog

    async def clear_dialog(self) -> None:
        if self.dialog is not None:
            await self.turn.session.delete(self.dialog)
            # Flush now: a new dialog with the same key may follow in this turn, and the unit of work
            # would otherwise insert it before deleting this one.
            await self.turn.session.flush()
            self.dialog = None


class ChatFeature(Protocol):
    name: str

    async def handle(self, ctx: ChatContext) -> bool: ...


class QuestionPolicy(Protocol):
    """How the pending questions (dialogs) of a deployment's features meet a new message: whether a
    resident typed a staff-only command, whether the message interrupts the question it was asked, and
    closing that question with its consequence said after the new message's reply."""

    def staff_only(self, ctx: ChatContext) -> bool: ...

    async def interrupts(self, ctx: ChatContext, features: Sequence[ChatFeature]) -> bool: ...

    async def close(self, ctx: ChatContext) -> Callable[[], Awaitable[None]]: ...


Place = Callable[[Turn, Actor, Inbound], Awaitable[Inbound]]


@dataclass(frozen=True)
class ChatComposition:
    """What the conversation is built with, handed in by the composition (``handlers.feature_set``):
    the kernel names no feature. ``features`` are offered each message in order; what none takes goes
    to ``staff`` or ``resident`` (the case flows); ``questions`` keeps pending questions from
    swallowing messages."""

    features: Sequence[ChatFeature]
    resident: Callable[[ChatContext], Awaitable[None]]
    staff: Callable[[ChatContext], Awaitable[None]]
    questions: QuestionPolicy
    # Which community the turn is about (sets ``Turn.community``), before the message is read as a
    # command; it may hand back the message reworded ("接单 HPL-12" → "接单 12", scope HPL).
    place: Place | None = None
