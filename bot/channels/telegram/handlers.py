"""The Telegram handlers: each turns an ``Update`` into an ``Inbound`` (or a button action) for the shared
conversation core, then wakes the outbox so the replies leave at once.

The core decides everything (who may do what, what to answer); these functions only translate. The
services come from ``application.bot_data["deps"]`` through ``BotContext.deps`` (PTB's custom
context, ``examples/contexttypesbot.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.channels.telegram import keyboards
from bot.channels.telegram.sender import CHANNEL
from handlers.cases.button_state import OPEN_STATUSES, CaseState
from handlers.cases.button_state import case_state as cases_case_state
from handlers.kernel.channel_services import (
    first_reply,
    inbound_seen,
    reachable_again,
    reply_unhandled,
)
from handlers.kernel.commands import COMMANDS as COMMAND_REGISTRY
from handlers.kernel.context import Services
from handlers.kernel.conversation import Conversation
from handlers.kernel.inbound import Inbound, start_scene
from handlers.kernel.privacy import mask_log
from messages import render

log = logging.getLogger(__name__)

TOAST_MAX = 200  # answerCallbackQuery text limit
REMEMBERED_KEYBOARDS = 20  # per chat: button messages watched until their case moves on

# The command menu (setMyCommands), from the command registry. The core reads these, and every other
# command ("/accept 12", "绑定 CODE"), as text.
COMMANDS = tuple(COMMAND_REGISTRY.menu())


@dataclass
class TelegramDeps:
    conversation: Conversation
    services: Services
    wake: Callable[[], None]
    # Held around every turn. On SQLite (one writer at a time) it is a lock, so concurrent updates
    # take turns here rather than sleeping and retrying in SQLite's busy handler.
    writes: contextlib.AbstractAsyncContextManager[Any] = field(default_factory=contextlib.nullcontext)
    # Update ids whose handler failed (``on_error``): the adapter then checks whether the update was
    # stored before it confirms the update to Telegram.
    failed_updates: set[int] = field(default_factory=set)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.services.sessions


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The callback context, with the shared services as ``context.deps``."""

    @property
    def deps(self) -> TelegramDeps:
        deps: TelegramDeps = self.bot_data["deps"]
        return deps


def bot_commands() -> list[BotCommand]:
    return [BotCommand(name, render(f"telegram.cmd.{name}")) for name in COMMANDS]


# -- Update → Inbound --------------------------------------------------------------------------------


def _strip_bot_name(text: str | None, username: str | None) -> str | None:
    """Strip the bot name from a command: "/my@shequ_bot" → "/my" (some clients add it)."""
    if not text or not text.startswith("/") or not username:
        return text
    head, sep, rest = text.partition(" ")
    command, at, name = head.partition("@")
    if at and name.lower() == username.lower():
        return command + sep + rest
    return text


def inbound_from(update: Update, username: str | None = None) -> Inbound:
    """The channel-neutral message: user id as sender, update_id as message id (redeliveries are
    recognised), the largest photo size, the caption as text, a location pin as coordinates."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    photo: str | None = None
    if message.photo:
        photo = message.photo[-1].file_id
    elif message.document is not None and (message.document.mime_type or "").startswith("image/"):
        photo = message.document.file_id
    location = message.location
    text = _strip_bot_name(message.text or message.caption, username)
    command, _, payload = (text or "").partition(" ")
    scene = start_scene(payload.strip()) if command == "/start" else None  # t.me/<bot>?start=<scene>
    return Inbound(
        channel=CHANNEL,
        sender=str(user.id),
        text=None if scene else text,
        scene=scene,
        photo=photo,
        latitude=location.latitude if location is not None else None,
        longitude=location.longitude if location is not None else None,
        message_id=str(update.update_id),
        sender_name=user.full_name,
    )


def one_line(exc: BaseException) -> str:
    """An error as operators see it: its type and first line, masked, never a traceback."""
    lines = str(exc).strip().splitlines()
    return mask_log(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)[:200]


class TurnFailed(Exception):
    """The core could not handle a message (it may or may not have kept it: see ``stored``)."""


# -- small database helpers --------------------------------------------------------------------------


async def stored(deps: TelegramDeps, update_id: int) -> bool:
    """Whether the update's inbound row is committed (False also when the database cannot say)."""
    try:
        return await inbound_seen(deps.sessions, CHANNEL, str(update_id))
    except Exception:
        return False


async def reply_directly(deps: TelegramDeps, update: Update, text: str) -> None:
    """Answer an update the core cannot read (a sticker, a voice message) through the outbox, once
    even when Telegram delivers the update again."""
    user, message = update.effective_user, update.effective_message
    assert user is not None
    async with deps.writes:
        answered = await reply_unhandled(
            deps.sessions,
            CHANNEL,
            str(update.update_id),
            str(user.id),
            message.text if message is not None else None,
            text,
            deps.services.clock(),
        )
    if answered:
        deps.wake()


# -- keyboards of messages whose case moved on ---------------------------------------------------------


async def case_state(deps: TelegramDeps, number: int | None) -> CaseState:
    return await cases_case_state(deps.sessions, number)


def _remembered(context: BotContext) -> dict[tuple[int, int], tuple[int, CaseState]]:
    """(case number, message id) → (chat id, case state then) of button messages in this chat."""
    assert context.chat_data is not None
    return context.chat_data.setdefault("keyboards", {})


def _remember(context: BotContext, number: int, chat_id: int, message_id: int, state: CaseState) -> None:
    remembered = _remembered(context)
    remembered.pop((number, message_id), None)
    remembered[(number, message_id)] = (chat_id, state)
    while len(remembered) > REMEMBERED_KEYBOARDS:
        del remembered[next(iter(remembered))]


async def _set_keyboard(context: BotContext, chat_id: int, message_id: int, markup: Any) -> None:
    with contextlib.suppress(TelegramError):  # "message is not modified", message too old …
        await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=markup)


async def clear_stale_keyboards(context: BotContext) -> None:
    """Remove the buttons of remembered messages whose case has moved on since (resolved after the
    已处理 button asked for a note, transferred from the 转派 choice, …)."""
    if context.chat_data is None or not context.chat_data.get("keyboards"):
        return
    remembered = _remembered(context)
    for (number, message_id), (chat_id, then) in list(remembered.items()):
        if await case_state(context.deps, number) != then:
            await _set_keyboard(context, chat_id, message_id, None)
            del remembered[(number, message_id)]


async def after_press(context: BotContext, query: Any, number: int, before: CaseState) -> None:
    """A press that moved its case on spends the button; one that finished the case, or gave it to
    someone else, spends them all. A press that only asked something (已处理 → "the note?") leaves
    the buttons until the case moves."""
    message = query.message
    if message is None or not hasattr(message, "reply_markup"):
        return  # too old to edit
    after = await case_state(context.deps, number)
    chat_id, message_id = message.chat.id, message.message_id
    if after != before:
        done = after is None or after[0] not in OPEN_STATUSES or before is None or after[1] != before[1]
        markup = None if done else keyboards.without(message.reply_markup, query.data)
        await _set_keyboard(context, chat_id, message_id, markup)
        if markup is None:
            _remembered(context).pop((number, message_id), None)
            return
    _remember(context, number, chat_id, message_id, after)


# -- handlers ------------------------------------------------------------------------------------------


def malformed(update: Update) -> bool:
    """An update without the sender or chat every handler needs: logged and dropped (acknowledged),
    since a redelivery would be just as malformed."""
    if update.effective_user is not None and update.effective_chat is not None:
        return False
    log.warning("telegram update %s dropped: no sender or chat", update.update_id)
    return True


async def on_message(update: Update, context: BotContext) -> None:
    """Text (commands included), a photo with its caption, or a location pin."""
    if malformed(update):
        return
    deps = context.deps
    inbound = inbound_from(update, context.bot.username)
    async with deps.writes:
        await reachable_again(deps.sessions, CHANNEL, inbound.sender)
        handled = await deps.conversation.handle(inbound)
    deps.wake()
    if handled.failed:
        raise TurnFailed(update.update_id)
    await clear_stale_keyboards(context)


async def on_button(update: Update, context: BotContext) -> None:
    """A press on an inline button: always answered (so the spinner stops), acted on only when the
    data is of the current version; the core refuses users without the right."""
    deps = context.deps
    query = update.callback_query
    if query is None or query.from_user is None:
        log.warning("telegram update %s dropped: a button press without its sender", update.update_id)
        return
    toast = render("telegram.button_failed")
    try:
        action = keyboards.decode(query.data)
        if action is None:
            toast = render("telegram.button_expired")
            return
        sender = str(query.from_user.id)
        number = keyboards.case_number(action)
        before = await case_state(deps, number)
        inbound = Inbound(
            channel=CHANNEL,
            sender=sender,
            message_id=str(update.update_id),
            sender_name=query.from_user.full_name,
        )
        async with deps.writes:
            await reachable_again(deps.sessions, CHANNEL, sender)
            handled = await deps.conversation.act(inbound, action)
        deps.wake()
        if handled.failed:
            raise TurnFailed(update.update_id)
        if handled.duplicate:
            toast = render("telegram.button_seen")
            return
        toast = await first_reply(deps.sessions, handled.outbox_ids, sender) or render("telegram.button_ok")
        if number is not None and not handled.failed:
            await after_press(context, query, number, before)
        await clear_stale_keyboards(context)
    finally:
        with contextlib.suppress(TelegramError):
            await query.answer(text=toast[:TOAST_MAX])


async def on_unsupported(update: Update, context: BotContext) -> None:
    """Stickers, voice, files …: say what the bot can read."""
    if malformed(update):
        return
    await reply_directly(context.deps, update, render("telegram.unsupported"))


async def on_error(update: object, context: BotContext) -> None:
    """One bad update never stops the bot. It is logged in one line (no message content, it may hold
    personal data; the traceback only at DEBUG) and marked, so that the adapter does not confirm it to
    Telegram unless it was stored."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    if update_id is not None and (isinstance(error, TurnFailed) or storage_trouble(error)):
        context.deps.failed_updates.add(update_id)
    if isinstance(error, TurnFailed):
        log.warning("telegram update %s: the conversation could not handle it", update_id)
        return
    assert error is not None
    debug = log.isEnabledFor(logging.DEBUG)
    outcome = "failed, to be fetched again" if storage_trouble(error) else "failed and dropped"
    log.error(
        "telegram update %s %s (%s)", update_id, outcome, one_line(error), exc_info=error if debug else None
    )


def storage_trouble(error: BaseException | None) -> bool:
    """Whether an error may pass (the database or the network away), so that the update is worth
    receiving again. Anything else (a bug, a forged value) fails the same way every time: the update
    is acknowledged and dropped rather than redelivered for ever."""
    if isinstance(error, TurnFailed):
        return True  # the adapter asks the database whether the core kept the message
    if isinstance(error, DataError | IntegrityError | ProgrammingError):
        return False  # the statement itself is wrong for this update: so it will be next time
    return isinstance(error, DBAPIError | PoolTimeout | OSError | TimeoutError)


def register(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    readable = filters.TEXT | filters.PHOTO | filters.LOCATION | filters.Document.IMAGE
    application.add_handler(CommandHandler(COMMANDS, on_message, filters=private))
    application.add_handler(MessageHandler(private & readable, on_message))
    application.add_handler(MessageHandler(private & ~readable, on_unsupported))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_error_handler(on_error)
