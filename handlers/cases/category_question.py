"""When the classifier is unsure (``Classification.ask``) the bot asks the resident which kind of problem
it is instead of guessing: the candidate categories, 其他问题 and 不是反映问题, as numbered choices (a
digit answers on WeChat and the console) and as buttons (Telegram). The answer opens the case in that
category, or none, and the (text, chosen category) pair is kept as a labelled example.

A message that is not an answer (a new report, a command) is handled as such: the question is
dropped, never the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from handlers.cases.classify_models import ExampleSource
from handlers.cases.corrections import record_example
from handlers.community.classify import OTHER, Classification
from handlers.kernel.commands import Cmd, action
from handlers.kernel.features import ChatContext
from handlers.kernel.outbox import Button
from handlers.kernel.textnorm import fold
from messages import render

STATE = "question_category"
NOT_A_REPORT = "none"
MAX_CANDIDATES = 4
# A question left unanswered this long is forgotten: a bare "1" next week is not an answer to it.
QUESTION_LIFETIME = timedelta(hours=24)
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7}


def _digit(reply: str) -> int | None:
    """ "2", "２", "第2个", "二", "选3" → the number; None when the reply is not a choice."""
    core = reply.removeprefix("选").removeprefix("第").removesuffix("个").removesuffix("项").strip()
    if core.isdigit() and core.isascii():
        return int(core)
    return _CN_DIGITS.get(core)


# What opens a case once the resident has chosen: the report path (``resident_chat.report``), which
# asks the question in the first place, so it is handed in rather than imported.
Report = Callable[[ChatContext, Classification], Awaitable[None]]


@dataclass
class CategoryQuestion:
    """The chat feature answering the question; ``ask`` (called from the report path) poses it."""

    report: Report
    name: str = "question"

    async def handle(self, ctx: ChatContext) -> bool:
        if ctx.actor.resident is None:
            return False
        command, dialog = ctx.command, ctx.dialog
        pending = dialog is not None and dialog.state == STATE
        if pending and dialog.updated_at + QUESTION_LIFETIME < ctx.turn.now:  # type: ignore[union-attr]
            await ctx.clear_dialog()
            pending, dialog = False, None
        if command is not None and command.kind == Cmd.CHOOSE:
            token, _, digit = (command.arg or "").partition(":")
            if dialog is None or not pending or str(dialog.data.get("token")) != token or not digit.isdigit():
                ctx.reply(render("question.expired"))
                return True
            return await _answer(self.report, ctx, int(digit))
        if dialog is None or not pending:
            return False
        if command is not None and command.kind == Cmd.DONT_KNOW and OTHER in dialog.data["choices"]:
            # The resident cannot say which kind: the problem still goes to the admins' triage as
            # "other", and no labelled example is kept (not knowing is no label).
            return await _answer(self.report, ctx, dialog.data["choices"].index(OTHER) + 1, labelled=False)
        reply = fold(ctx.text).strip().rstrip("。.!！").strip()
        digit_given = _digit(reply)
        if command is None and digit_given is not None:
            return await _answer(self.report, ctx, digit_given)
        if command is None and reply:
            labels = [_label(ctx, code) for code in dialog.data["choices"]]
            if reply in labels:
                return await _answer(self.report, ctx, labels.index(reply) + 1)
        await ctx.clear_dialog()  # not an answer: the resident moved on; read the message as it is
        return False


def _label(ctx: ChatContext, code: str) -> str:
    if code == OTHER:
        return render("question.other")
    if code == NOT_A_REPORT:
        return render("question.not_a_report")
    return ctx.turn.community.category_names.get(code, code)


async def ask(ctx: ChatContext, classification: Classification) -> None:
    enabled = ctx.turn.community.category_names
    candidates = [c for c in classification.candidates or classification.categories if c in enabled]
    choices = [*dict.fromkeys(candidates[:MAX_CANDIDATES]), OTHER, NOT_A_REPORT]
    message = ctx.message
    token = ctx.row.id
    await ctx.set_dialog(
        STATE,
        {
            "token": token,
            "text": message.text or "",
            "choices": choices,
            "photo": message.photo,
            "latitude": message.latitude,
            "longitude": message.longitude,
        },
    )
    lines = [render("question.choice", digit=i, label=_label(ctx, c)) for i, c in enumerate(choices, 1)]
    ctx.reply(
        render("question.ask", choices="\n".join(lines)),
        buttons=[
            Button(_label(ctx, c), action(Cmd.CHOOSE, None, f"{token}:{i}")) for i, c in enumerate(choices, 1)
        ],
    )


async def _answer(report: Report, ctx: ChatContext, digit: int, *, labelled: bool = True) -> bool:
    dialog = ctx.dialog
    assert dialog is not None and ctx.actor.resident is not None
    choices: list[str] = dialog.data["choices"]
    if not 1 <= digit <= len(choices):
        ctx.reply(render("question.again", count=len(choices)))
        return True
    data = dict(dialog.data)
    await ctx.clear_dialog()
    chosen = choices[digit - 1]
    category = None if chosen == NOT_A_REPORT else chosen
    if labelled:
        await record_example(
            ctx.turn,
            source=ExampleSource.RESIDENT,
            text=data["text"],
            category=category,
            actor_id=str(ctx.actor.resident.id),
        )
    if category is None:
        ctx.reply(render("question.not_a_report_ok"))
        return True
    ctx.message = replace(
        ctx.message,
        text=data["text"],
        photo=ctx.message.photo or data.get("photo"),
        latitude=ctx.message.latitude or data.get("latitude"),
        longitude=ctx.message.longitude or data.get("longitude"),
    )
    ctx.command = None
    chosen_by_resident = Classification(data["text"], category, (category,), confidence=1.0)
    await report(ctx, chosen_by_resident)
    return True
