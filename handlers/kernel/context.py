"""What the channel-neutral handlers are given: the database, the 街道 and its communities (as kernel
ports, ``community_port.py``), the clock (injected, so tests can travel in time and channels can share
one set of services) and the features' sections of the settings tree (built once by the composition
root, ``bot/settings.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.community_port import CommunityPort, StreetOfOne, StreetPort
from handlers.kernel.outbox import Button, Outbound, enqueue
from handlers.kernel.people import Address, staff_addresses, staff_addresses_of
from storage.models import OutboxMessage, utcnow

Section = TypeVar("Section", bound=BaseModel)


@dataclass(frozen=True)
class Services:
    sessions: async_sessionmaker[AsyncSession]
    # The deployment's first (for a single-community deployment: its only) community: what a turn is
    # about until it knows better (``Turn.community``).
    community: CommunityPort  # (the community model, with its classifier and locator)
    channels: frozenset[str]  # the channels this deployment runs; staff are reached on these
    clock: Callable[[], datetime] = utcnow
    # The features' settings sections by model (``ReminderSettings`` → its values): keyed by the model
    # so that the kernel needs to know no feature; ``bot.settings.Settings.sections()`` fills it.
    settings: Mapping[type[BaseModel], BaseModel] = field(default_factory=dict)
    # Every community the deployment serves; a street of ``community`` alone when not given.
    street: StreetPort = None  # type: ignore[assignment]
    # Small facts about the deployment that features look up once and keep (the communities' row
    # ids by code): a miss looks again, so another process's reload is seen.
    memo: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.street is None:
            object.__setattr__(self, "street", StreetOfOne(self.community))

    @property
    def several(self) -> bool:
        """Whether the deployment serves several communities (case numbers then carry their code)."""
        return len(self.street) > 1

    def section(self, model: type[Section]) -> Section:
        """The feature's settings, or the model's defaults when the root gave none (tests, benches)."""
        found = self.settings.get(model)
        return found if isinstance(found, model) else model()


@dataclass
class Turn:
    """One unit of work (a message handled, an action taken): one transaction, one clock reading,
    and the messages it produces, written to the outbox in that same transaction."""

    services: Services
    session: AsyncSession
    now: datetime
    sent: list[OutboxMessage] = field(default_factory=list)
    # The community this turn is about, once known (see ``community``).
    chosen: CommunityPort | None = None
    # The community a case number in the message named ("接单 HPL-12" is read as 12 in HPL).
    number_scope: CommunityPort | None = None
    # A button press: the case number it carries is the case's id, not its number in a community.
    button: bool = False
    # Each staff member's accounts, looked up once per turn: the escalation scan's turn tells the same
    # leaders and admins about many cases (and a look-up flushes the turn's pending rows first).
    staff_accounts: dict[str, list[Address]] = field(default_factory=dict)

    @property
    def community(self) -> Any:
        """The turn's community (a ``CommunityPort``): the one set for it (the resident's, the case's,
        the staff member's only one), else the deployment's first, which is its only one when it
        serves one community."""
        return self.chosen if self.chosen is not None else self.services.community

    @community.setter
    def community(self, community: CommunityPort | None) -> None:
        self.chosen = community

    @property
    def community_known(self) -> bool:
        return self.chosen is not None or not self.services.several

    def say(
        self,
        to: Address,
        text: str,
        *,
        kind: str = "reply",
        case_id: int | None = None,
        buttons: Sequence[Button] = (),
        photo: str | None = None,
        dedup_key: str | None = None,
    ) -> None:
        out = Outbound(
            to.channel,
            to.recipient,
            text,
            kind=kind,
            case_id=case_id,
            buttons=buttons,
            photo=photo,
            dedup_key=dedup_key,
        )
        self.sent.append(enqueue(self.session, out, self.now))

    async def tell_staff(
        self,
        staff_id: str,
        text: str,
        *,
        kind: str = "notify",
        case_id: int | None = None,
        buttons: Sequence[Button] = (),
        photo: str | None = None,
    ) -> int:
        """Send to every account the staff member has on a running channel; returns how many."""
        addresses = self.staff_accounts.get(staff_id)
        if addresses is None:
            addresses = await staff_addresses(self.session, staff_id, self.services.channels)
            self.staff_accounts[staff_id] = addresses
        for address in addresses:
            self.say(address, text, kind=kind, case_id=case_id, buttons=buttons, photo=photo)
        return len(addresses)

    async def know_staff(self, staff_ids: Iterable[str]) -> None:
        """Look up these staff members' accounts at once, before telling them one by one (a look-up
        per person would also flush the turn's pending rows each time)."""
        missing = {s for s in staff_ids if s and s not in self.staff_accounts}
        if missing:
            self.staff_accounts.update(
                await staff_addresses_of(self.session, missing, self.services.channels)
            )

    async def tell_admins(
        self, text: str, *, case_id: int | None = None, buttons: Sequence[Button] = ()
    ) -> int:
        reached = 0
        for admin in self.community.admins():
            reached += await self.tell_staff(admin, text, case_id=case_id, buttons=buttons)
        return reached
