"""A question the bot is waiting on never swallows a message that is something else.

Every pending dialog (where is it? why not satisfied? the note for 完成, the reminder enrolment's
nickname and birth date …) expects an answer. A message that is itself a command, or a report of a
problem the question is not about, is handled as what it is; the pending question is **closed**, with
its consequence said in one line after the new message's reply:

* where is it?              the case goes to the admins' triage queue now (as after "不知道")
* why not satisfied?        the case is reopened as unsatisfied, reason not given
* a photo waiting for words nothing was registered
* reminder enrolment        stops; what was already stored stays
* staff: note / transfer / original case number   the case is left as it was

Not interrupting: the answers the question itself accepts (不知道, 关注 / 新报, 取消 …: the dialog's
owner handles them), a staff-only command typed by a resident (refused, nothing happened), and, for the
"where is it?" question, a report of the same problem or one whose problem words only name a place
("垃圾站旁边" answers where the rats are). The rating question (1 / 2) never swallows anything, so it is
left alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from handlers.cases import (
    case_status,
    cases,
    category_question,
    community_question,
    emergency,
    rating_choice,
    resident_chat,
    resident_questions,
    staff_chat,
)
from handlers.cases.models import Case, CaseStatus
from handlers.community.classify import OTHER
from handlers.kernel.commands import COMMANDS, Cmd
from handlers.kernel.features import ChatContext, ChatFeature
from handlers.kernel.inbound import match_form
from handlers.kernel.textnorm import fold
from messages import render

R = resident_chat
Q = resident_questions
S = staff_chat
REMINDER_PREFIX = "rem."

# Commands that answer the question rather than interrupt it.
ANSWERS: dict[str, frozenset[Cmd]] = {
    Q.AWAIT_LOCATION: frozenset({Cmd.DONT_KNOW, Cmd.CANCEL}),
    Q.AWAIT_DUPLICATE: frozenset({Cmd.FOLLOW, Cmd.NEW_REPORT, Cmd.CANCEL}),
    Q.AWAIT_REASON: frozenset({Cmd.RATE_BAD, Cmd.CANCEL}),
    Q.AWAIT_DESCRIPTION: frozenset({Cmd.CANCEL}),
    S.AWAIT_NOTE: frozenset({Cmd.CANCEL}),
    S.AWAIT_TRANSFER: frozenset({Cmd.CANCEL}),
    S.AWAIT_ORIGINAL: frozenset({Cmd.CANCEL}),
}
REMINDER_ANSWERS = frozenset({Cmd.CANCEL, Cmd.DONT_KNOW})  # "跳过" / "不知道" skip the doses step
# The category question's own feature tells an answer from a new message
# (handlers/cases/category_question.py).
NEVER_INTERRUPTED = frozenset(
    {Q.AWAIT_RATING, rating_choice.WHICH, category_question.STATE, community_question.STATE}
)
# Questions a report answers: a photo waiting for its description, "same as #N?" (the resident's
# own flow routes the pending report first, then reads the new one).
REPORTS_ANSWER = frozenset({Q.AWAIT_DESCRIPTION, Q.AWAIT_DUPLICATE})
_LEADS = ("在", "就在", "位置在", "地点在", "地址")
_NEW_TOPIC = (
    *("另外", "对了", "还有个", "还有一个", "还有件", "顺便", "再反映", "再说一个"),
    *("by the way", "btw", "also"),
)
# Words after which a resident says where something is ("垃圾站旁边", "8号楼门口"). Matching words,
# kept here rather than borrowed from the classifier's data, whose shape may change.
_PLACE_WORDS = (
    "旁边",
    "边上",
    "附近",
    "周围",
    "周边",
    "一带",
    "那边",
    "这边",
    "那里",
    "这里",
    "那儿",
    "这儿",
    "后面",
    "前面",
    "对面",
    "背后",
    "门口",
    "里面",
    "外面",
    "上面",
    "底下",
    "旁",
)


def _answers(state: str) -> frozenset[Cmd]:
    if state.startswith(REMINDER_PREFIX):
        return REMINDER_ANSWERS
    return ANSWERS.get(state, frozenset({Cmd.CANCEL}))


def after_the_place(text: str) -> str:
    """What the message says after its last place word: "3号楼垃圾房后面" → "", "8号楼门口垃圾堆了好几天"
    → "垃圾堆了好几天". Problem words before a place word say where, not what."""
    folded = fold(match_form(text))
    cut = max((folded.rfind(w) + len(w) for w in _PLACE_WORDS if w in folded), default=0)
    return text[cut:]


def _shifts(ctx: ChatContext) -> bool:
    """Whether the message opens a new topic ("另外…", "对了…", "还有个问题…")."""
    return fold(match_form(ctx.message.text or "")).strip().startswith(_NEW_TOPIC)


def _says_where(text: str) -> bool:
    return fold(match_form(text)).strip().startswith(_LEADS)


async def _case_categories(ctx: ChatContext, numbers: list[int]) -> set[str]:
    found: set[str] = set()
    for number in numbers:
        case = await ctx.turn.session.get(Case, number)
        if case is not None:
            found |= {c for c in [case.category_code, *case.categories] if c}
    return found


async def _is_other_report(ctx: ChatContext, state: str) -> bool:
    if ctx.actor.is_staff or state in REPORTS_ANSWER or not ctx.message.text:
        return False
    classification = ctx.turn.community.classifier.classify(ctx.message.text)
    if emergency.flag(classification).urgent:  # type: ignore[union-attr]
        return True  # a danger is its own urgent report, whatever was asked
    if classification.category is None or classification.ask:
        return False
    named_now = set(classification.categories) or {classification.category}
    data = ctx.dialog.data if ctx.dialog is not None else {}
    if state == Q.AWAIT_LOCATION:
        about = await _case_categories(ctx, Q.pending_cases(dict(data)))
        if about & named_now or _says_where(ctx.message.text):
            return False  # the same problem again, or "在…": it says where
        if classification.category == OTHER and after_the_place(ctx.message.text) == "":
            return False  # an "other" reading of a bare place ("3号楼东边") is an answer
        rest = after_the_place(ctx.message.text)
        if rest != ctx.message.text:
            # "垃圾站旁边" answers where the rats are; "南门那边有积水" is a new report.
            named = ctx.turn.community.classifier.classify(rest)
            named_rest = set(named.categories) or {named.category}
            return named.category is not None and not named.ask and not about & named_rest
        return True
    if state == Q.AWAIT_REASON:
        if classification.category == OTHER and not classification.keywords and not _shifts(ctx):
            return False  # "楼梯上还有！": why it is not fixed, in no problem's words
        about = await _case_categories(ctx, Q.pending_cases(dict(data)))
        return not about & named_now
    return True  # a reminder enrolment, a staff dialog or a feature's question: no report answers it


def _feature_claims(ctx: ChatContext, features: Sequence[ChatFeature]) -> bool:
    """Whether a feature would take the message as one of its commands (``claims`` is optional)."""
    for feature in features:
        claims = getattr(feature, "claims", None)
        if claims is not None and claims(ctx):
            return True
    return False


def staff_only(ctx: ChatContext) -> bool:
    """A resident typing a staff command, the core's or a feature's (the command registry says which)."""
    if ctx.actor.is_staff:
        return False
    if ctx.command is not None and not COMMANDS.of_kind(ctx.command.kind).allows(None):
        return True
    return COMMANDS.resident_may_not(ctx.text.strip())


async def interrupts(ctx: ChatContext, features: Sequence[ChatFeature]) -> bool:
    """Whether the message is something else than an answer to the pending question."""
    dialog = ctx.dialog
    if dialog is None or dialog.state in NEVER_INTERRUPTED:
        return False
    if ctx.message.scene is not None:
        return False  # a scan answers the question or leaves it waiting (community_question.scanned)
    if case_status.is_query(ctx):
        return False  # answered, then the question is asked again (handlers/cases/case_status.py)
    command = ctx.command
    if command is not None:
        return command.kind not in _answers(dialog.state)  # staff-only words were refused before
    if _feature_claims(ctx, features):
        return True
    if not ctx.actor.is_staff and dialog.state != Q.AWAIT_LOCATION and R.home_words(ctx) is not None:
        return True  # "住址 3号楼" (while asked where a problem is, it is taken as that answer)
    return await _is_other_report(ctx, dialog.state)


async def close(ctx: ChatContext) -> Callable[[], Awaitable[None]]:
    """Close the pending question now (so nothing reads the new message as its answer) and return
    what closing it means, to run once the new message is handled: its reply comes first, which on
    WeChat makes it the passive reply, and the line about the old question follows."""
    dialog = ctx.dialog
    assert dialog is not None
    state, data = dialog.state, dict(dialog.data or {})
    await ctx.clear_dialog()

    async def finish() -> None:
        await _consequence(ctx, state, data)

    return finish


async def _consequence(ctx: ChatContext, state: str, data: dict[str, Any]) -> None:
    turn = ctx.turn
    if state == Q.AWAIT_DUPLICATE:
        await Q.route_pending_report(ctx, data)  # not a follower: the pending report goes on as new
        return
    if state == Q.AWAIT_LOCATION:
        triaged = []
        for number in Q.pending_cases(data):
            case = await turn.session.get(Case, number)
            if case is not None and case.status == CaseStatus.NEW and not case.in_triage:
                await cases.send_to_triage(turn, case, "no_location", ack=False)
                triaged.append(case.id)
        if triaged:
            ctx.reply(render("pending.location_closed", numbers=Q.numbers_text(triaged)), case_id=triaged[0])
        return
    if state == Q.AWAIT_REASON:
        number = int(data["case"])
        case = await turn.session.get(Case, number)
        if case is not None and case.status == CaseStatus.RESOLVED:
            await R.rate(ctx, number, good=False, reason=render("feedback.no_reason"))
            ctx.reply(render("pending.reason_closed", number=number), case_id=number)
        return
    if state == Q.AWAIT_DESCRIPTION:
        ctx.reply(render("pending.photo_closed"))
        return
    if state.startswith(REMINDER_PREFIX):
        nothing_kept = state in {"rem.consent", "rem.join"}
        ctx.reply(render("pending.reminder_closed" if nothing_kept else "pending.reminder_closed_kept"))
        return
    keys = {
        S.AWAIT_NOTE: "pending.note_closed",
        S.AWAIT_TRANSFER: "pending.transfer_closed",
        S.AWAIT_ORIGINAL: "pending.original_closed",
    }
    if state in keys:
        ctx.reply(render(keys[state], number=data.get("case")))
        return
    ctx.reply(render("pending.other_closed"))
