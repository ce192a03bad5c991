"""What the kernel needs of a community and of the 街道 (the communities one deployment serves): ports,
so that the kernel never imports the community model (``handlers/community/model.py`` and
``street.py`` satisfy them; the composition root hands them in through ``Services``).

A turn's community (``Turn.community``) is the one the turn is about: the resident's (named in the
message, remembered, from their reports, or asked), or, for staff, the case's or their only one. A
single-community deployment is a street of one, and everything reads as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import tzinfo
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class CommunityPort(Protocol):
    """A community as the Turn sees it."""

    @property
    def code(self) -> str: ...  # the short code of its case numbers (HPL-12)

    @property
    def name(self) -> str: ...

    @property
    def timezone(self) -> tzinfo: ...

    @property
    def staff(self) -> Mapping[str, Any]: ...  # its staff (the 街道's admins too) by id

    @property
    def calendar(self) -> Any: ...  # its working time and holidays

    @property
    def config(self) -> Any: ...  # its file as validated (limits, digest, emergency numbers …)

    def admins(self) -> list[str]: ...

    def leaders(self) -> list[str]: ...


class StreetPort(Protocol):
    """The communities of the deployment."""

    @property
    def name(self) -> str: ...

    @property
    def admins(self) -> tuple[str, ...]: ...  # 街道-level staff: staff of every community

    @property
    def only(self) -> CommunityPort | None: ...  # the community, when there is exactly one

    def get(self, code: str) -> CommunityPort | None: ...

    def named_in(self, text: str) -> CommunityPort | None: ...

    def of_staff(self, staff_id: str) -> tuple[CommunityPort, ...]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class StreetOfOne:
    """The street a single community makes (what ``Services`` carries when it is given no street)."""

    def __init__(self, community: CommunityPort) -> None:
        self.community = community
        self.name = community.name
        self.admins: tuple[str, ...] = ()

    @property
    def only(self) -> CommunityPort:
        return self.community

    def get(self, code: str) -> CommunityPort | None:
        return self.community if code.strip().upper() == self.community.code.upper() else None

    def named_in(self, text: str) -> CommunityPort | None:
        return None  # nothing to tell apart

    def of_staff(self, staff_id: str) -> tuple[CommunityPort, ...]:
        return (self.community,) if staff_id in self.community.staff else ()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.community,))

    def __len__(self) -> int:
        return 1
