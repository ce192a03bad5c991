"""One code per building or place (一楼一码): the scene string a printed QR code carries, signed so that it
can be neither guessed nor forged, and read back to (community code, kind, name).

A scene is ``{community}_{kind}{where}_{signature}``:

* ``community``: the community's short code (``HPL``), 1-16 of ``[A-Za-z0-9-]``;
* ``kind``: ``b`` for a building, ``p`` for a place;
* ``where``: 8 characters, a hash of the building's key (``3``, ``A``, ``二期3``) or the place's name
  (``东门``), resolved against the community's buildings and places when the code is scanned: the
  community file may be edited, reordered, extended; a code stays good while its building or place is
  still in the file (a stale one is refused, never placed somewhere else);
* ``signature``: 16 characters of HMAC-SHA256 over the rest with the deployment's secret (96 bits).

Hashes and signatures are URL-safe base64, so a scene is at most 16 + 27 = 43 characters of
``[A-Za-z0-9_-]``: inside WeChat's ``QR_LIMIT_STR_SCENE`` (1-64 characters) and Telegram's ``/start``
payload (1-64 of ``A-Za-z0-9_-``). Fields are read at fixed offsets from the end (base64 may hold ``_``).

The secret is ``OUTREACH_QR_SECRET`` (the ``qr`` section of the settings tree); without it a random
secret is made once and kept in the database (``shared_secret``), so the no-token demo works and every
process agrees. Setting the variable later invalidates the codes printed with the generated one.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass

from handlers.community.building_spec import BuildingSet
from handlers.community.model import Community
from handlers.community.qr_config import CODE_RE, DEFAULT_COMMUNITY_CODE

SECRET_KEY = "scenes:secret"  # its row in the shared secrets (``handlers.kernel.token_store``)
MAX_SCENE = 64
_WHERE = 8
_SIGNATURE = 16
_TAIL = 1 + 1 + _WHERE + 1 + _SIGNATURE  # "_" kind where "_" signature
_SCENE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FORMAT = b"scene1:"  # bumps if the format changes, so an old signature never verifies a new meaning


class Kind(enum.StrEnum):
    BUILDING = "b"
    PLACE = "p"


@dataclass(frozen=True)
class Target:
    """A building or place a code can be printed for: ``key`` is what the hash covers (the building's
    key, the place's name), ``label`` how people read it (``3号楼``, ``东门``), ``grid`` its grid."""

    kind: Kind
    key: str
    label: str
    grid: str


@dataclass(frozen=True)
class Scanned:
    community: str
    target: Target


class Refusal(enum.StrEnum):
    MALFORMED = "malformed"  # not a scene at all (length, characters, shape)
    FORGED = "forged"  # the signature does not match: made up or altered
    OTHER_COMMUNITY = "other_community"  # signed, for a community this deployment does not serve
    STALE = "stale"  # signed, but its building or place is no longer in the community file


def community_code(community: Community) -> str:
    """The community's short code: ``Community.code`` where the model has it (the 街道 model), else
    ``community.code`` in the file, else ``C1`` (the model's default for a file that names none)."""
    code = getattr(community, "code", None) or getattr(community.config.community, "code", None)
    return str(code) if code else DEFAULT_COMMUNITY_CODE


def _b64(raw: bytes, length: int) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")[:length]


def _where(kind: Kind, key: str) -> str:
    return _b64(hashlib.sha256(f"{kind.value}:{key}".encode()).digest(), _WHERE)


def _signature(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, _FORMAT + payload.encode("ascii"), hashlib.sha256).digest(), _SIGNATURE)


def sign(secret: bytes, code: str, target: Target) -> str:
    if not CODE_RE.fullmatch(code):
        raise ValueError(f"community code {code!r}: 1-16 of A-Z, a-z, 0-9, -")
    payload = f"{code}_{target.kind.value}{_where(target.kind, target.key)}"
    return f"{payload}_{_signature(secret, payload)}"


def scene_code(scene: object) -> str | None:
    """The community code a scene claims (unverified: only to pick the community to verify it in), or
    None when it is not shaped like a scene."""
    if not isinstance(scene, str) or len(scene) > MAX_SCENE or len(scene) <= _TAIL:
        return None
    code = scene[:-_TAIL]
    return code if CODE_RE.fullmatch(code) else None


def verify(secret: bytes, scene: str, community: Community, code: str) -> Scanned | Refusal:
    """The building or place a scanned scene names in ``community`` (whose code is ``code``), or why
    not. Cheap on hostile input: the shape is checked before anything is hashed."""
    if not isinstance(scene, str) or len(scene) > MAX_SCENE or not _SCENE_RE.fullmatch(scene):
        return Refusal.MALFORMED
    if len(scene) <= _TAIL or scene[-_TAIL] != "_" or scene[-_SIGNATURE - 1] != "_":
        return Refusal.MALFORMED
    payload, given = scene[: -_SIGNATURE - 1], scene[-_SIGNATURE:]
    scene_code, kind_char = payload[: -_WHERE - 2], payload[-_WHERE - 1]
    if not CODE_RE.fullmatch(scene_code) or kind_char not in {k.value for k in Kind}:
        return Refusal.MALFORMED
    if not hmac.compare_digest(_signature(secret, payload), given):
        return Refusal.FORGED
    if scene_code != code:
        return Refusal.OTHER_COMMUNITY
    target = targets_by_hash(community).get((Kind(kind_char), payload[-_WHERE:]))
    return Refusal.STALE if target is None else Scanned(scene_code, target)


# -- what a community has to print -------------------------------------------------------------------


def _building_labels(buildings: BuildingSet, zone: str = "") -> Iterator[tuple[str, str]]:
    """(key, label) of every building of a grid, in the form the locator reads back."""
    for low, high in buildings.ranges:
        for number in range(low, high + 1):
            yield f"{zone}{number}", f"{zone}{number}号楼"
    for name in sorted(buildings.names):
        yield f"{zone}{name}", f"{zone}{name}座" if len(name) == 1 and name.isalpha() else f"{zone}{name}"
    for inner_zone, inner in buildings.zones:
        yield from _building_labels(inner, zone + inner_zone)
    for unit_zone, base, unit in sorted(buildings.units):
        key = f"{unit_zone}{base}栋{unit}单元"
        yield key, key


def targets(community: Community) -> list[Target]:
    """Every building, then every place, of the community, grid by grid as the file lists them."""
    found: list[Target] = []
    for code in community.grids:
        for key, label in _building_labels(community.buildings.get(code, BuildingSet())):
            found.append(Target(Kind.BUILDING, key, label, code))
    for code, grid in community.grids.items():
        found += [Target(Kind.PLACE, place, place, code) for place in grid.places]
    return found


_BY_HASH: dict[int, tuple[Community, dict[tuple[Kind, str], Target]]] = {}


def targets_by_hash(community: Community) -> dict[tuple[Kind, str], Target]:
    """The community's targets by (kind, hash), built once per community object."""
    cached = _BY_HASH.get(id(community))
    if cached is not None and cached[0] is community:
        return cached[1]
    table = {(t.kind, _where(t.kind, t.key)): t for t in targets(community)}
    if len(_BY_HASH) > 8:
        _BY_HASH.clear()
    _BY_HASH[id(community)] = (community, table)
    return table


def find_target(community: Community, building: str | None = None, place: str | None = None) -> Target | None:
    """The target an operator names: ``--building 3`` (or 3号楼, A座, 二期3号楼), ``--place 东门``."""
    if place is not None:
        return next((t for t in targets(community) if t.kind == Kind.PLACE and t.key == place.strip()), None)
    if building is None:
        return None
    text = building.strip()
    candidates = [text, f"{text}号楼"] if text.isdigit() else [text]
    for candidate in candidates:
        found = community.locator.locate(candidate)
        if found is not None and found.building is not None and found.grid is not None:
            return next(
                (t for t in targets(community) if t.kind == Kind.BUILDING and t.key == found.building), None
            )
    return None
