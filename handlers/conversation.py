"""The channel-neutral conversation: one inbound message in, replies and notifications (outbox rows) out.

Every channel adapter (console, Telegram, WeChat) turns its platform's update into an ``Inbound`` and
calls ``Conversation.handle``; then it delivers what the outbox holds for it. The whole turn is one
transaction, so a report and its acknowledgement are stored together or not at all, and a redelivered
message (same platform message id) is recognised and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers import cases
from handlers.classify import Classification
from handlers.commands import Cmd, Command, parse_action, parse_command
from handlers.context import Services, Turn
from handlers.features import ChatContext, ChatFeature, default_features
from handlers.inbound import MAX_TEXT, Inbound, normalise, problem_with
from handlers.lifecycle import can_move, record
from handlers.people import Actor, Address, identify
from handlers.routing import RouteReason
from messages import render
from storage.models import OPEN_STATUSES, ActorType, Case, CaseStatus, Dialog, InboundMessage, Role

log = logging.getLogger(__name__)

AWAIT_LOCATION = "await_location"
AWAIT_DESCRIPTION = "await_description"
AWAIT_NOTE = "await_note"
LOCATION_TRIES = 2
LIST_LIMIT = 10


@dataclass
class Handled:
    duplicate: bool = False
    outbox_ids: list[int] = field(default_factory=list)
    case_id: int | None = None
    failed: bool = False


class Conversation:
    def __init__(self, services: Services, features: Sequence[ChatFeature] | None = None) -> None:
        self.services = services
        self.features = list(default_features() if features is None else features)

    async def handle(self, message: Inbound) -> Handled:
        message = normalise(message)
        now = self.services.clock()
        try:
            async with self.services.sessions.begin() as session:
                turn = Turn(self.services, session, now)
                row = await self._log_inbound(turn, message)
                if row is None:
                    return Handled(duplicate=True)
                actor = await identify(session, message, now)
                await self._dispatch(turn, actor, message, row)
                await session.flush()
                return Handled(outbox_ids=[m.id for m in turn.sent], case_id=row.case_id)
        except IntegrityError:
            if message.message_id is not None and await self._seen(message):
                return Handled(duplicate=True)  # another process took the same redelivery first
            log.exception("integrity error handling a %s message", message.channel)
        except Exception:
            log.exception("failed to handle a %s message", message.channel)
        return await self._record_failure(message, now)

    async def act(self, message: Inbound, action: str) -> Handled:
        """A button press: the same as typing the command the button stands for."""
        command = parse_action(action)
        text = "" if command is None else f"/{command.kind.value} {command.number or ''}".strip()
        return await self.handle(Inbound(**{**message.__dict__, "text": text}))

    # -- bookkeeping ---------------------------------------------------------------------------------

    async def _seen(self, message: Inbound) -> bool:
        async with self.services.sessions() as session:
            found = await session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == message.channel,
                    InboundMessage.external_id == message.message_id,
                )
            )
        return found is not None

    async def _log_inbound(self, turn: Turn, message: Inbound) -> InboundMessage | None:
        if message.message_id is not None:
            exists = await turn.session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == message.channel,
                    InboundMessage.external_id == message.message_id,
                )
            )
            if exists is not None:
                return None
        row = InboundMessage(
            channel=message.channel,
            external_id=message.message_id,
            sender=message.sender,
            received_at=turn.now,
            text=message.text,
            photo=message.photo,
            latitude=message.latitude,
            longitude=message.longitude,
        )
        turn.session.add(row)
        await turn.session.flush()
        return row

    async def _record_failure(self, message: Inbound, now: datetime) -> Handled:
        """Keep the message and apologise, even though handling it failed (nothing half-written stays)."""
        try:
            async with self.services.sessions.begin() as session:
                turn = Turn(self.services, session, now)
                row = InboundMessage(
                    channel=message.channel,
                    external_id=message.message_id,
                    sender=message.sender,
                    received_at=now,
                    text=message.text,
                    photo=message.photo,
                    latitude=message.latitude,
                    longitude=message.longitude,
                    status="failed",
                    error="handler error",
                )
                session.add(row)
                turn.say(Address(message.channel, message.sender), render("chat.internal_error"))
                await session.flush()
                return Handled(failed=True, outbox_ids=[m.id for m in turn.sent])
        except Exception:
            log.exception("could not record a failed %s message", message.channel)
            return Handled(failed=True)

    # -- dispatch ------------------------------------------------------------------------------------

    async def _dispatch(self, turn: Turn, actor: Actor, message: Inbound, row: InboundMessage) -> None:
        problem = problem_with(message)
        if problem is not None:
            turn.say(actor.address, render(f"input.{problem.value}", limit=MAX_TEXT))
            return
        text = message.text or ""
        command = parse_command(text) if text else None
        dialog = await turn.session.get(Dialog, (message.channel, message.sender))
        if self.features:
            ctx = ChatContext(turn, actor, message, command, dialog, row)
            for feature in self.features:
                if await feature.handle(ctx):
                    return
            dialog = ctx.dialog
        if actor.is_staff:
            await self._staff(turn, actor, message, command, dialog)
        else:
            await self._resident(turn, actor, message, row, command, dialog)

    async def _set_dialog(self, turn: Turn, message: Inbound, state: str, data: dict[str, object]) -> None:
        dialog = await turn.session.get(Dialog, (message.channel, message.sender))
        if dialog is None:
            dialog = Dialog(channel=message.channel, external_id=message.sender, state=state)
            turn.session.add(dialog)
        dialog.state = state
        dialog.data = data
        dialog.updated_at = turn.now

    async def _clear_dialog(self, turn: Turn, dialog: Dialog | None) -> None:
        if dialog is not None:
            await turn.session.delete(dialog)

    # -- residents -----------------------------------------------------------------------------------

    async def _resident(
        self,
        turn: Turn,
        actor: Actor,
        message: Inbound,
        row: InboundMessage,
        command: Command | None,
        dialog: Dialog | None,
    ) -> None:
        assert actor.resident is not None
        if command is not None and command.kind in {Cmd.START, Cmd.HELP}:
            await self._clear_dialog(turn, dialog)
            turn.say(actor.address, render("chat.welcome", community=turn.community.name))
            return
        if command is not None and command.kind == Cmd.CANCEL:
            await self._clear_dialog(turn, dialog)
            turn.say(actor.address, render("chat.cancelled"))
            return
        if command is not None and command.kind == Cmd.MY_CASES:
            await self._list_own_cases(turn, actor)
            return
        if command is not None and command.kind == Cmd.QUERY:
            await self._show_own_case(turn, actor, command.number)
            return
        if (
            dialog is not None
            and dialog.state == AWAIT_LOCATION
            and await self._location_reply(turn, actor, message, row, command, dialog)
        ):
            return
        if dialog is not None and dialog.state == AWAIT_DESCRIPTION:
            message = Inbound(
                **{
                    **message.__dict__,
                    "photo": message.photo or dialog.data.get("photo"),
                    "latitude": message.latitude or dialog.data.get("latitude"),
                    "longitude": message.longitude or dialog.data.get("longitude"),
                }
            )
            await self._clear_dialog(turn, dialog)
        if command is not None:  # a staff command typed by a resident
            turn.say(actor.address, render("chat.staff_only"))
            return
        await self._report(turn, actor, message, row)

    async def _report(self, turn: Turn, actor: Actor, message: Inbound, row: InboundMessage) -> None:
        text = message.text or ""
        classification = turn.community.classifier.classify(text) if text else None
        if classification is None or not classification.is_report:
            if message.photo or message.has_location:
                await self._set_dialog(
                    turn,
                    message,
                    AWAIT_DESCRIPTION,
                    {"photo": message.photo, "latitude": message.latitude, "longitude": message.longitude},
                )
                turn.say(actor.address, render("report.ask_description"))
            elif classification is not None and classification.intent == "greeting":
                turn.say(actor.address, render("chat.welcome", community=turn.community.name))
            elif classification is not None and classification.intent == "closure":
                turn.say(actor.address, render("chat.thanks"))
            else:
                turn.say(actor.address, render("chat.not_a_report"))
            return
        case = await cases.open_case(turn, actor, message, classification)
        row.case_id = case.id
        location = turn.community.locator.locate(text)
        decision = await cases.route_case(turn, case, classification, location)
        if decision.reason == RouteReason.NO_GRID:
            await self._set_dialog(turn, message, AWAIT_LOCATION, {"case": case.id, "tries": 0})
            turn.say(
                actor.address,
                render(
                    "report.ask_location",
                    number=case.id,
                    category=cases.category_name(turn, case.category_code),
                    examples=self._place_examples(turn),
                ),
                case_id=case.id,
            )

    async def _location_reply(
        self,
        turn: Turn,
        actor: Actor,
        message: Inbound,
        row: InboundMessage,
        command: Command | None,
        dialog: Dialog,
    ) -> bool:
        """The resident's answer to "where is it?". Returns False when the message is not an answer."""
        case = await turn.session.get(Case, int(dialog.data["case"]))
        if case is None or case.status != CaseStatus.NEW or case.in_triage:
            await self._clear_dialog(turn, dialog)
            return False
        row.case_id = case.id
        text = message.text or ""
        location = turn.community.locator.locate(text) if text else None
        if command is not None and command.kind == Cmd.DONT_KNOW:
            location = None
            tries = LOCATION_TRIES
        else:
            tries = int(dialog.data.get("tries", 0)) + 1
        if location is None and message.has_location and case.latitude is None:
            case.latitude, case.longitude = message.latitude, message.longitude
        if location is None and tries < LOCATION_TRIES:
            dialog.data = {**dialog.data, "tries": tries}
            turn.say(actor.address, render("report.ask_location_again", examples=self._place_examples(turn)))
            return True
        await self._clear_dialog(turn, dialog)
        record(
            turn.session,
            case,
            action="location_given",
            actor_type=ActorType.RESIDENT,
            actor_id=str(actor.resident.id) if actor.resident else None,
            at=turn.now,
            note=text or None,
        )
        classification = Classification(
            text=case.text,
            category=case.category_code,
            categories=tuple(case.categories),
            confidence=case.confidence,
            keywords=(),
        )
        if location is None:
            await cases.send_to_triage(turn, case, "no_location")
        else:
            await cases.route_case(turn, case, classification, location)
        return True

    def _place_examples(self, turn: Turn) -> str:
        places = [p for g in turn.community.grids.values() for p in g.places][:2]
        return "、".join(f"“{p}”" for p in places) or "“东门”"

    async def _list_own_cases(self, turn: Turn, actor: Actor) -> None:
        assert actor.resident is not None
        rows = (
            await turn.session.scalars(
                select(Case)
                .where(Case.reporter_id == actor.resident.id)
                .order_by(Case.id.desc())
                .limit(LIST_LIMIT)
            )
        ).all()
        if not rows:
            turn.say(actor.address, render("resident.no_cases"))
            return
        lines = [self._case_line(turn, c) for c in rows]
        turn.say(actor.address, render("resident.case_list", lines="\n".join(lines)))

    async def _show_own_case(self, turn: Turn, actor: Actor, number: int | None) -> None:
        case = await turn.session.get(Case, number) if number is not None else None
        if case is None or actor.resident is None or case.reporter_id != actor.resident.id:
            turn.say(actor.address, render("resident.case_not_found", number=number))
            return
        turn.say(actor.address, self._case_detail(turn, case))

    def _case_line(self, turn: Turn, case: Case) -> str:
        local = case.created_at.astimezone(turn.community.timezone)
        return render(
            "case.line",
            number=case.id,
            category=cases.category_name(turn, case.category_code),
            status=render(f"status.{case.status}"),
            date=local.strftime("%m-%d %H:%M"),
        )

    def _case_detail(self, turn: Turn, case: Case) -> str:
        local = case.created_at.astimezone(turn.community.timezone)
        detail = render(
            "case.detail",
            number=case.id,
            category=cases.category_name(turn, case.category_code),
            status=render(f"status.{case.status}"),
            location=cases.location_label(turn, case),
            date=local.strftime("%Y-%m-%d %H:%M"),
            text=case.text,
        )
        if case.resolution_note:
            detail += "\n" + render("case.detail_note", note=case.resolution_note)
        return detail

    # -- staff ---------------------------------------------------------------------------------------

    async def _staff(
        self, turn: Turn, actor: Actor, message: Inbound, command: Command | None, dialog: Dialog | None
    ) -> None:
        assert actor.staff is not None
        if dialog is not None and dialog.state == AWAIT_NOTE and command is None:
            await self._clear_dialog(turn, dialog)
            await self._resolve(turn, actor, int(dialog.data["case"]), message.text or "", message.photo)
            return
        if command is None or command.kind in {Cmd.START, Cmd.HELP}:
            await self._clear_dialog(turn, dialog)
            turn.say(
                actor.address,
                render("staff.help", name=actor.staff.name, role=cases.role_label(actor.staff.role)),
            )
            return
        if command.kind == Cmd.CANCEL:
            await self._clear_dialog(turn, dialog)
            turn.say(actor.address, render("chat.cancelled"))
        elif command.kind == Cmd.CASES:
            await self._list_staff_cases(turn, actor)
        elif command.kind == Cmd.QUERY:
            await self._show_staff_case(turn, actor, command.number)
        elif command.kind == Cmd.ACCEPT:
            await self._accept(turn, actor, command.number)
        elif command.kind == Cmd.RESOLVE:
            if command.arg:
                await self._resolve(turn, actor, command.number, command.arg, message.photo)
            elif await self._case_for_action(turn, actor, command.number) is not None:
                await self._set_dialog(turn, message, AWAIT_NOTE, {"case": command.number})
                turn.say(actor.address, render("staff.ask_note", number=command.number))
        elif command.kind == Cmd.TRIAGE:
            await self._triage_list(turn, actor)
        elif command.kind == Cmd.ASSIGN:
            await self._assign(turn, actor, command.number, command.arg)
        else:
            turn.say(
                actor.address,
                render("staff.help", name=actor.staff.name, role=cases.role_label(actor.staff.role)),
            )

    async def _case_for_action(self, turn: Turn, actor: Actor, number: int | None) -> Case | None:
        assert actor.staff is not None
        case = await turn.session.get(Case, number) if number is not None else None
        if case is None:
            turn.say(actor.address, render("staff.case_not_found", number=number))
            return None
        if not cases.can_act(turn, actor.staff, case):
            turn.say(actor.address, render("staff.not_allowed", number=case.id))
            return None
        return case

    async def _accept(self, turn: Turn, actor: Actor, number: int | None) -> None:
        assert actor.staff is not None
        case = await self._case_for_action(turn, actor, number)
        if case is None:
            return
        if not can_move(case, CaseStatus.ACCEPTED):
            turn.say(
                actor.address, render("staff.illegal", number=case.id, status=render(f"status.{case.status}"))
            )
            return
        await cases.accept(turn, case, actor.staff)
        turn.say(actor.address, render("staff.accepted_ok", number=case.id), case_id=case.id)

    async def _resolve(
        self, turn: Turn, actor: Actor, number: int | None, note: str, photo: str | None
    ) -> None:
        assert actor.staff is not None
        case = await self._case_for_action(turn, actor, number)
        if case is None:
            return
        if not can_move(case, CaseStatus.RESOLVED):
            turn.say(
                actor.address, render("staff.illegal", number=case.id, status=render(f"status.{case.status}"))
            )
            return
        if not note.strip():
            turn.say(actor.address, render("staff.ask_note", number=case.id))
            return
        await cases.resolve(turn, case, actor.staff, note.strip(), photo)
        turn.say(actor.address, render("staff.resolved_ok", number=case.id), case_id=case.id)

    async def _assign(self, turn: Turn, actor: Actor, number: int | None, staff_id: str | None) -> None:
        assert actor.staff is not None
        if actor.role == Role.WORKER:
            turn.say(actor.address, render("staff.admin_only"))
            return
        case = await self._case_for_action(turn, actor, number)
        if case is None:
            return
        target = turn.community.staff.get(staff_id or "")
        if target is None:
            turn.say(actor.address, render("staff.unknown_staff", id=staff_id))
            return
        if not can_move(case, CaseStatus.ASSIGNED):
            turn.say(
                actor.address, render("staff.illegal", number=case.id, status=render(f"status.{case.status}"))
            )
            return
        await cases.assign(turn, case, target.id, by=actor, reason="manual")
        await cases.acknowledge(turn, case)
        turn.say(
            actor.address, render("staff.assigned_ok", number=case.id, name=target.name), case_id=case.id
        )

    async def _list_staff_cases(self, turn: Turn, actor: Actor) -> None:
        assert actor.staff is not None
        query = select(Case).where(Case.status.in_(OPEN_STATUSES))
        if actor.role == Role.WORKER:
            query = query.where(Case.assignee_id == actor.staff.id)
        elif actor.role == Role.LEADER:
            grids = [g.code for g in turn.community.grids.values() if g.leader == actor.staff.id]
            query = query.where((Case.assignee_id == actor.staff.id) | Case.grid_code.in_(grids))
        rows = (await turn.session.scalars(query.order_by(Case.id).limit(LIST_LIMIT * 2))).all()
        if not rows:
            turn.say(actor.address, render("staff.no_cases"))
            return
        lines = [self._case_line(turn, c) for c in rows]
        turn.say(actor.address, render("staff.case_list", lines="\n".join(lines)))

    async def _show_staff_case(self, turn: Turn, actor: Actor, number: int | None) -> None:
        case = await self._case_for_action(turn, actor, number)
        if case is not None:
            turn.say(actor.address, self._case_detail(turn, case), case_id=case.id)

    async def _triage_list(self, turn: Turn, actor: Actor) -> None:
        if actor.role != Role.ADMIN:
            turn.say(actor.address, render("staff.admin_only"))
            return
        rows = (
            await turn.session.scalars(
                select(Case)
                .where(Case.in_triage.is_(True), Case.status == CaseStatus.NEW)
                .order_by(Case.id)
                .limit(20)
            )
        ).all()
        if not rows:
            turn.say(actor.address, render("staff.triage_empty"))
            return
        lines = [self._case_line(turn, c) + "  " + c.text[:30] for c in rows]
        turn.say(actor.address, render("staff.triage_list", lines="\n".join(lines)))
