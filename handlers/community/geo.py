"""Location pins: the configured place nearest to a shared location, if it is close enough.

Places get coordinates in the community YAML (added key ``place_coordinates`` on a grid:
``{东门: [31.2304, 121.4737]}``); a pin farther than ``MAX_DISTANCE_M`` from every place locates
nothing, and the bot asks for the building instead."""

from __future__ import annotations

import math

from handlers.community.location import LocationMatch
from handlers.community.model import Community

MAX_DISTANCE_M = 300.0
EARTH_RADIUS_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def nearest_place(community: Community, latitude: float, longitude: float) -> LocationMatch | None:
    best: tuple[float, str, str] | None = None
    for grid in community.grids.values():
        for place, (lat, lon) in grid.place_coordinates.items():
            d = distance_m(latitude, longitude, lat, lon)
            if d <= MAX_DISTANCE_M and (best is None or d < best[0]):
                best = (d, grid.code, place)
    if best is None:
        return None
    return LocationMatch(grid=best[1], matched=best[2], building=None, place=best[2])
