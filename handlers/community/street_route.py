"""A message routed in a 街道: first which community (the one ``--community`` or the scanned code gives,
the only one, or the one the message names or places), then as in that community (``route_message``).

When the community cannot be told (the message names none, or several) the report is still classified,
by the first community's classifier (communities that keep the default categories share one), and the
caller asks the resident which community (``ask_community``).
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.community.classify import Classification
from handlers.community.location import LocationMatch
from handlers.community.model import Community
from handlers.community.routing import Route, route_message
from handlers.community.street import Located, Street


@dataclass(frozen=True)
class StreetRoute:
    community: Community | None  # None: the message does not tell (ask)
    located: Located  # how the message told it (empty when given, or a street of one)
    classification: Classification
    location: LocationMatch | None
    route: Route | None  # None without a community

    @property
    def ask_community(self) -> bool:
        """A report whose community the bot cannot tell: it asks (thanks or a question it does not)."""
        return self.community is None and self.classification.is_report

    @property
    def choices(self) -> tuple[str, ...]:
        """The communities the message names when it names several (the ones to offer first)."""
        return self.located.codes if len(self.located.codes) > 1 else ()


def community_for(street: Street, text: str, code: str | None = None) -> tuple[Community | None, Located]:
    """The community a message is about: the one ``code`` names, the only one, or the one the message
    names (or a place only it has)."""
    if code is not None:
        return street.get(code), Located()
    if street.only is not None:
        return street.only, Located()
    located = street.locate(text)
    return (street.get(located.code) if located.code else None), located


def route_in_street(street: Street, text: str, code: str | None = None) -> StreetRoute:
    community, located = community_for(street, text, code)
    if community is None:
        result = street.communities[0].classifier.classify(text)
        return StreetRoute(None, located, result, None, None)
    result, location, decision = route_message(community, text)
    return StreetRoute(community, located, result, location, decision)
