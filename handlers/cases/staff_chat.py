"""What grid workers, grid leaders and admins do in the chat: list, accept, work on, resolve, transfer,
close (not ours / duplicate / invalid), reopen and assign cases; admins also triage, block senders and
issue invite codes. Every action is checked against the actor's rights on that case."""

from __future__ import annotations

import logging

from sqlalchemy import or_, select

from handlers.cases import case_actions, cases, corrections, duplicates, numbers, stats_summary
from handlers.cases.case_access import case_for_action
from handlers.cases.case_view import case_detail, case_line
from handlers.cases.lifecycle import can_move
from handlers.cases.models import OPEN_STATUSES, Case, CaseStatus
from handlers.community.building_spec import building_label
from handlers.kernel import binding
from handlers.kernel.commands import COMMANDS, Cmd, Command, action
from handlers.kernel.features import ChatContext
from handlers.kernel.inbound import match_form
from handlers.kernel.outbox import Button
from handlers.kernel.privacy import mask_text
from messages import render
from storage.models import Dialog, Resident, Role, Staff

AWAIT_NOTE = "await_note"
AWAIT_TRANSFER = "await_transfer"
AWAIT_ORIGINAL = "await_original"
LIST_LIMIT = 20

log = logging.getLogger(__name__)


def _staff(ctx: ChatContext) -> Staff:
    assert ctx.actor.staff is not None
    return ctx.actor.staff


def help_text(ctx: ChatContext) -> str:
    """Each role's help lists what that role may do (an admin's includes 广播; a worker's no 分派),
    generated from the command registry. Health staff never handle cases: theirs are the follow-ups."""
    staff = _staff(ctx)
    header = "staff.help_header_health" if staff.role == Role.HEALTH else "staff.help_header"
    return COMMANDS.help_text(staff.role, header, name=staff.name, role=cases.role_label(staff.role))


async def handle(ctx: ChatContext) -> None:
    command, dialog = ctx.command, ctx.dialog
    if dialog is not None and command is None and await continue_dialog(ctx):
        return
    if command is None or command.kind in {Cmd.START, Cmd.HELP}:
        if command is not None and command.kind == Cmd.START and command.arg:
            await rebind(ctx, command.arg)
            return
        await ctx.clear_dialog()
        ctx.reply(help_text(ctx))
        return
    spec = COMMANDS.of_kind(command.kind)
    if spec.handler is None:
        ctx.reply(help_text(ctx))
        return
    if not spec.allows(_staff(ctx).role):
        ctx.reply(render(spec.refusal) if spec.refusal else help_text(ctx))
        return
    await spec.handler(ctx, command)


async def continue_dialog(ctx: ChatContext) -> bool:
    dialog = ctx.dialog
    assert dialog is not None
    number = int(dialog.data["case"])
    if dialog.state == AWAIT_NOTE:
        await ctx.clear_dialog()
        await resolve(ctx, Command(Cmd.RESOLVE, number, (ctx.message.text or "").strip() or None))
        return True
    if dialog.state == AWAIT_TRANSFER:
        await ctx.clear_dialog()
        await transfer(ctx, Command(Cmd.TRANSFER, number, ctx.text.strip() or None))
        return True
    if dialog.state == AWAIT_ORIGINAL:
        await ctx.clear_dialog()
        await mark_duplicate(ctx, Command(Cmd.DUPLICATE, number, ctx.text.strip() or None))
        return True
    return False


def refuse_move(ctx: ChatContext, case: Case, to: CaseStatus) -> bool:
    """Refuse a staff command the case's state does not allow. The table lets a finished case go
    back to ASSIGNED only as a reopening (重开 or the resident's 不满意), never by 转派/分派 on the way."""
    finished = case.status in {CaseStatus.RESOLVED, CaseStatus.CLOSED, CaseStatus.CONFIRMED}
    if to == CaseStatus.ASSIGNED and finished:
        ctx.reply(
            render(
                "staff.finished", number=numbers.label(ctx.turn, case), status=render(f"status.{case.status}")
            )
        )
        return True
    if can_move(case, to):
        return False
    ctx.reply(
        render("staff.illegal", number=numbers.label(ctx.turn, case), status=render(f"status.{case.status}"))
    )
    return True


async def cancel(ctx: ChatContext, _command: Command) -> None:
    """取消 cancels the pending step and says which case it leaves as it was."""
    dialog = ctx.dialog
    if dialog is None:
        ctx.reply(render("staff.nothing_to_cancel"))
        return
    number = (dialog.data or {}).get("case")
    await ctx.clear_dialog()
    ctx.reply(render("staff.cancelled_case", number=number) if number else render("chat.cancelled"))


async def rebind(ctx: ChatContext, code: str) -> None:
    ctx.reply(await binding.answer(ctx.turn, code, ctx.actor.address))


async def bind(ctx: ChatContext, command: Command) -> None:
    await rebind(ctx, command.arg or "")


async def list_cases(ctx: ChatContext, _command: Command) -> None:
    staff = _staff(ctx)
    query = select(Case).where(Case.status.in_(OPEN_STATUSES))
    role = Role(staff.role)
    if role == Role.HEALTH:
        ctx.reply(help_text(ctx))
        return
    scope = await numbers.scope_of(ctx.turn, staff.id)
    if role == Role.WORKER:
        query = query.where(Case.assignee_id == staff.id)
    elif role == Role.LEADER and not ctx.turn.services.several:
        grids = [g.code for g in ctx.turn.community.grids.values() if g.leader == staff.id]
        query = query.where((Case.assignee_id == staff.id) | Case.grid_code.in_(grids))
    elif role == Role.LEADER:  # their grids in each of their communities (every one has its own G1)
        if scope is None:  # a 街道-level leader: every community's grids they lead
            scope = [(await numbers.row_id(ctx.turn, c), c) for c in ctx.turn.services.street]
        led = [
            (Case.community_id == row)
            & Case.grid_code.in_([g.code for g in c.grids.values() if g.leader == staff.id])
            for row, c in scope
        ]
        query = query.where(or_(Case.assignee_id == staff.id, *led))
    elif scope is not None:
        query = query.where(Case.community_id.in_([row for row, _ in scope]))
    rows = (await ctx.turn.session.scalars(query.order_by(Case.id).limit(LIST_LIMIT))).all()
    if not rows:
        ctx.reply(render("staff.no_cases"))
        return
    now = ctx.turn.now
    lines = [
        case_line(ctx, c) + (render("staff.overdue_mark") if c.due_at is not None and c.due_at <= now else "")
        for c in rows
    ]
    ctx.reply(render("staff.case_list", lines="\n".join(lines)))


async def show(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None:
        return
    # Only an admin reads the resident's words as written (phone, ID number, health); it is logged
    # because it is a look at personal data, not routine work.
    full_text = _staff(ctx).role == Role.ADMIN
    if full_text:
        log.info("admin %s viewed the full text of case #%s", _staff(ctx).id, case.id)
    buttons = cases.buttons_for(ctx.turn, case, _staff(ctx))
    ctx.reply(case_detail(ctx, case, full_text=full_text), case_id=case.id, buttons=buttons)


async def accept(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.ACCEPTED):
        return
    await case_actions.accept(ctx.turn, case, _staff(ctx))
    ctx.reply(render("staff.accepted_ok", number=numbers.label(ctx.turn, case)), case_id=case.id)


async def progress(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.IN_PROGRESS):
        return
    await case_actions.start_work(ctx.turn, case, _staff(ctx))
    ctx.reply(render("staff.progress_ok", number=numbers.label(ctx.turn, case)), case_id=case.id)


async def resolve(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.RESOLVED):
        return
    note = (command.arg or "").strip()
    if not note:
        await ctx.set_dialog(AWAIT_NOTE, {"case": case.id})
        ctx.reply(render("staff.ask_note", number=numbers.label(ctx.turn, case)))
        return
    await case_actions.resolve(ctx.turn, case, _staff(ctx), note, ctx.message.photo)
    await _ask_reporter_to_rate(ctx, case)
    ctx.reply(render("staff.resolved_ok", number=numbers.label(ctx.turn, case)), case_id=case.id)


async def _ask_reporter_to_rate(ctx: ChatContext, case: Case) -> None:
    """Let the reporter answer 1 / 2 without the case number, unless they are mid-way in another question."""
    if case.reporter_external is None:
        return
    key = (case.channel, case.reporter_external)
    if await ctx.turn.session.get(Dialog, key) is None:
        ctx.turn.session.add(
            Dialog(
                channel=case.channel,
                external_id=case.reporter_external,
                state="await_rating",
                data={"case": case.id},
                updated_at=ctx.turn.now,
            )
        )


def _transfer_targets(ctx: ChatContext, case: Case) -> list[Button]:
    grid = ctx.turn.community.grids.get(case.grid_code) if case.grid_code else None
    people = [w.staff for w in grid.workers] if grid else []
    if grid and grid.leader:
        people.append(grid.leader)
    staff = ctx.turn.community.staff
    return [
        Button(staff[p].name, action(Cmd.TRANSFER, case.id, p))
        for p in dict.fromkeys(people)
        if p != case.assignee_id and p in staff
    ]


async def transfer(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.ASSIGNED):
        return
    if not command.arg:
        await ctx.set_dialog(AWAIT_TRANSFER, {"case": case.id})
        ctx.reply(
            render("staff.ask_transfer", number=numbers.label(ctx.turn, case)),
            buttons=_transfer_targets(ctx, case),
        )
        return
    target_id, _, reason = command.arg.partition(" ")
    target_id = match_form(target_id)
    target = ctx.turn.community.staff.get(target_id)
    active = await ctx.turn.session.get(Staff, target_id)
    if target is None or active is None or not active.active or target.role == Role.ADMIN:
        ctx.reply(render("staff.unknown_staff", id=target_id))
        return
    reached = await cases.assign(
        ctx.turn, case, target.id, by=_staff(ctx), reason="transfer", note=reason.strip() or None
    )
    ctx.reply(
        render("staff.transferred_ok", number=numbers.label(ctx.turn, case), name=target.name),
        case_id=case.id,
    )
    if not reached:
        ctx.reply(
            render("staff.target_unreachable", number=numbers.label(ctx.turn, case), name=target.name),
            case_id=case.id,
        )


async def transfer_grid(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.ASSIGNED):
        return
    grid_code = (command.arg or "").upper()
    if grid_code not in ctx.turn.community.grids:
        ctx.reply(render("staff.unknown_grid", code=command.arg, known="、".join(ctx.turn.community.grids)))
        return
    await cases.transfer_to_grid(ctx.turn, case, grid_code, _staff(ctx))
    ctx.reply(
        render(
            "staff.transferred_grid_ok",
            number=numbers.label(ctx.turn, case),
            grid=ctx.turn.community.grids[grid_code].name,
        )
    )


async def refer(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.CLOSED):
        return
    if not command.arg:
        ctx.reply(render("staff.ask_referral", number=numbers.label(ctx.turn, case)))
        return
    await case_actions.close(ctx.turn, case, _staff(ctx), "not_ours", command.arg)
    ctx.reply(render("staff.closed_ok", number=numbers.label(ctx.turn, case)), case_id=case.id)


async def invalid(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.CLOSED):
        return
    await case_actions.close(ctx.turn, case, _staff(ctx), "invalid", command.arg)
    ctx.reply(render("staff.closed_ok", number=numbers.label(ctx.turn, case)), case_id=case.id)


async def mark_duplicate(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or refuse_move(ctx, case, CaseStatus.CLOSED):
        return
    original_text = (command.arg or "").lstrip("#＃").split(" ")[0]
    if not original_text.isdigit():
        await ctx.set_dialog(AWAIT_ORIGINAL, {"case": case.id})
        ctx.reply(render("staff.ask_original", number=numbers.label(ctx.turn, case)))
        return
    original = await ctx.turn.session.get(Case, int(original_text))
    if original is None or original.id == case.id or original.duplicate_of is not None:
        ctx.reply(render("staff.case_not_found", number=original_text))
        return
    if not cases.can_act(ctx.turn, _staff(ctx), original):
        # Merging moves this case's reporter and followers onto the original: the actor must be
        # allowed to act on both (a worker of another grid is not; admins are).
        ctx.reply(render("staff.not_allowed", number=original.id))
        return
    if case.category_code and original.category_code and case.category_code != original.category_code:
        # Different problems are not one case: correct the category first if it was misread.
        ctx.reply(
            render(
                "staff.merge_other_category",
                number=numbers.label(ctx.turn, case),
                original=original.id,
                category=cases.category_name(ctx.turn, case.category_code),
                original_category=cases.category_name(ctx.turn, original.category_code),
            )
        )
        return
    await duplicates.merge_followers(ctx.turn, case, original)
    await case_actions.close(ctx.turn, case, _staff(ctx), "duplicate", None, duplicate_of=original.id)
    ctx.reply(
        render("staff.merged_ok", number=numbers.label(ctx.turn, case), original=original.id), case_id=case.id
    )
    if (case.grid_code, case.building) != (original.grid_code, original.building):
        ctx.reply(
            render(
                "staff.merge_other_place",
                number=numbers.label(ctx.turn, case),
                original=original.id,
                where=_place(ctx, case),
                original_where=_place(ctx, original),
            ),
            case_id=case.id,
        )


def _place(ctx: ChatContext, case: Case) -> str:
    grid = ctx.turn.community.grids.get(case.grid_code) if case.grid_code else None
    where = building_label(case.building) if case.building else case.location_text or ""
    parts = [grid.name if grid else "", where]
    return " ".join(p for p in parts if p) or render("location.unknown")


async def reopen(ctx: ChatContext, command: Command) -> None:
    case = await case_for_action(ctx, command.number)
    if case is None or case.status not in {CaseStatus.RESOLVED, CaseStatus.CLOSED}:
        if case is not None:
            ctx.reply(
                render(
                    "staff.illegal",
                    number=numbers.label(ctx.turn, case),
                    status=render(f"status.{case.status}"),
                )
            )
        return
    await case_actions.reopen(
        ctx.turn,
        case,
        by_staff=_staff(ctx),
        by_resident=None,
        reason=command.arg or render("feedback.no_reason"),
    )
    ctx.reply(render("staff.reopened_ok", number=numbers.label(ctx.turn, case)), case_id=case.id)


async def triage(ctx: ChatContext, _command: Command) -> None:
    query = select(Case).where(Case.in_triage.is_(True), Case.status.in_(OPEN_STATUSES))
    scope = await numbers.scope_of(ctx.turn, _staff(ctx).id)
    if scope is not None:  # the triage queues of their communities
        query = query.where(Case.community_id.in_([row for row, _ in scope]))
    rows = (await ctx.turn.session.scalars(query.order_by(Case.id).limit(LIST_LIMIT))).all()
    if not rows:
        ctx.reply(render("staff.triage_empty"))
        return
    lines = [case_line(ctx, c) + "  " + mask_text(c.text)[:30] for c in rows]
    ctx.reply(render("staff.triage_list", lines="\n".join(lines)))


async def assign(ctx: ChatContext, command: Command) -> None:
    staff = _staff(ctx)
    case = await case_for_action(ctx, command.number)
    if case is None:
        return
    target = ctx.turn.community.staff.get(command.arg or "")
    if target is None:
        ctx.reply(render("staff.unknown_staff", id=command.arg))
        return
    if refuse_move(ctx, case, CaseStatus.ASSIGNED):
        return
    first = case.assignee_id is None
    reached = await cases.assign(ctx.turn, case, target.id, by=staff, reason="manual")
    if first:
        await cases.acknowledge(ctx.turn, case)
    ctx.reply(
        render("staff.assigned_ok", number=numbers.label(ctx.turn, case), name=target.name), case_id=case.id
    )
    if not reached:
        ctx.reply(
            render("staff.target_unreachable", number=numbers.label(ctx.turn, case), name=target.name),
            case_id=case.id,
        )


async def _reporter(ctx: ChatContext, number: int | None) -> Resident | None:
    case = await ctx.turn.session.get(Case, number) if number is not None else None
    if case is None or case.reporter_id is None:
        ctx.reply(render("staff.case_not_found", number=number))
        return None
    return await ctx.turn.session.get(Resident, case.reporter_id)


async def block(ctx: ChatContext, command: Command) -> None:
    resident = await _reporter(ctx, command.number)
    if resident is not None:
        resident.blocked = command.kind == Cmd.BLOCK
        key = "staff.blocked_ok" if resident.blocked else "staff.unblocked_ok"
        ctx.reply(render(key, number=command.number))


async def invite(ctx: ChatContext, command: Command) -> None:
    try:
        code = await binding.create_invite(ctx.turn.session, command.arg or "", ctx.turn.now)
    except KeyError:
        ctx.reply(render("staff.unknown_staff", id=command.arg))
        return
    # "push_only": delivered to the admin's own account, never as a reply to whoever made the request
    ctx.reply(render("binding.invite", id=command.arg, code=code), kind="push_only")


async def stats(ctx: ChatContext, _command: Command) -> None:
    me = _staff(ctx)
    turn = ctx.turn
    street = turn.services.street
    if turn.services.several and me.id in street.admins:  # a 街道 admin: the communities ranked
        ids = {c.code: i for i, c in await numbers.scope_rows(turn, street) if i is not None}
        ctx.reply(await stats_summary.street_summary(turn.session, street, ids, turn.now))
        return
    community = turn.community
    grids = stats_summary.leader_grids(community, me.id) if me.role == Role.LEADER else None
    community_id = await numbers.row_id(turn, community) if turn.services.several else None
    ctx.reply(
        await stats_summary.chat_summary(
            turn.session, community, turn.now, grids=grids, community_id=community_id
        )
    )


# The staff side of the core's commands (words, roles, refusals and help lines: handlers/kernel/commands.py).
for _kind, _handler in {
    Cmd.CANCEL: cancel,
    Cmd.BIND: bind,
    Cmd.CASES: list_cases,
    Cmd.MY_CASES: list_cases,
    Cmd.QUERY: show,
    Cmd.ACCEPT: accept,
    Cmd.PROGRESS: progress,
    Cmd.RESOLVE: resolve,
    Cmd.TRANSFER: transfer,
    Cmd.TRANSFER_GRID: transfer_grid,
    Cmd.REFER: refer,
    Cmd.INVALID: invalid,
    Cmd.DUPLICATE: mark_duplicate,
    Cmd.REOPEN: reopen,
    Cmd.TRIAGE: triage,
    Cmd.ASSIGN: assign,
    Cmd.BLOCK: block,
    Cmd.UNBLOCK: block,
    Cmd.INVITE: invite,
    Cmd.STATS: stats,
    Cmd.RECLASSIFY: corrections.reclassify,
}.items():
    COMMANDS.bind(_kind, staff=_handler)
