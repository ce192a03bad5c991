"""The composition of broadcast audiences: what the other features know of residents, given to the
broadcasts feature (``handlers.broadcasts.audience``) without the features importing each other.

``#guardians`` is the reminders' guardianships, ``#reporters`` and a resident's grid by their reports
are the cases'. ``install()`` is called by ``handlers/feature_set.py`` (the app, the demo, the tests)
and by the command line (``bot/cli.py``, for ``broadcast``); a deployment without one of the features
leaves its tag out and broadcasts answers that the tag is unavailable."""

from __future__ import annotations

from handlers.broadcasts.audience import GUARDIANS, REPORTERS, provide_home_grid, provide_tag
from handlers.cases import audience as cases_audience
from handlers.reminders import audience as reminders_audience


def install() -> None:
    """Register the features' audience sources with broadcasts (again: the same, no harm)."""
    provide_tag(GUARDIANS, reminders_audience.guardians)
    provide_tag(REPORTERS, cases_audience.reporters)
    provide_home_grid(cases_audience.reports_grid)
