"""Every module that declares tables, by name: the metadata is whole only once all are imported.

Features keep their tables next to their code (``handlers/reminders/models.py``); storage may not import
them (import contract), so it names them here and imports them by name when the whole schema is needed:
Alembic's ``env.py``, a new database created from the models (``storage.migrate.create_from_models``),
and the tests that compare the two. A feature's new model module adds one line here."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

MODEL_MODULES = (
    "storage.models",  # the shared core: Base, community, people, inbound, outbox
    "storage.attempt_models",
    "storage.wechat_models",
    "handlers.cases.models",  # cases, their events and followers (the core tables refer to "cases.id")
    "handlers.cases.classify_models",
    "handlers.reminders.models",
    "handlers.broadcasts.models",
)


def load_models() -> MetaData:
    """Import every model module and return the one metadata they all add their tables to."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from storage.models import Base

    return Base.metadata
