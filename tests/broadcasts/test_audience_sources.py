"""The audience tags other features give broadcasts through the composition
(``handlers/audience_sources.py``): ``#reporters`` and a resident's grid by their reports (the cases),
``#guardians`` (the reminders), reached from the command line as from the chat."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exists

from handlers.broadcasts import audience as aud
from handlers.cases.models import Case
from storage.database import create_engine, session_factory
from storage.models import Resident, ResidentIdentity
from tests.support.cli import run


async def test_cli_broadcast_reads_reporters_and_their_grid_from_the_cases(tmp_path: Path) -> None:
    env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    assert run(["broadcasts"], env=env).returncode == 0  # creates the schema and loads the sample
    engine = create_engine(env["OUTREACH_DATABASE_URL"])
    try:
        async with session_factory(engine).begin() as session:
            residents = [Resident(display_name=f"u{i}") for i in range(3)]
            session.add_all(residents)
            await session.flush()
            session.add_all(
                ResidentIdentity(channel="console", external_id=f"u{i}", resident_id=r.id)
                for i, r in enumerate(residents)
            )
            session.add(
                Case(text="垃圾没人收", channel="console", reporter_id=residents[0].id, grid_code="G2")
            )
    finally:
        await engine.dispose()

    reporters = run(["broadcast", "--text", "周六义诊", "--tag", "reporters", "--dry-run"], env=env)
    assert reporters.returncode == 0, reporters.stderr.decode()
    assert "共 1 人" in reporters.stdout.decode(), reporters.stdout.decode()
    by_grid = run(["broadcast", "--text", "周六义诊", "--grid", "G2", "--dry-run"], env=env)
    assert by_grid.returncode == 0, by_grid.stderr.decode()
    assert "共 1 人" in by_grid.stdout.decode(), by_grid.stdout.decode()  # the grid of their report
    guardians = run(["broadcast", "--text", "周六疫苗接种", "--tag", "guardians", "--dry-run"], env=env)
    assert guardians.returncode == 0, guardians.stderr.decode()  # available: nobody enrolled yet
    assert "共 0 人" in guardians.stdout.decode(), guardians.stdout.decode()


def test_only_a_built_in_resident_tag_takes_a_source() -> None:
    for tag in ("volunteers", aud.STAFF):
        with pytest.raises(ValueError):
            aud.provide_tag(tag, lambda: exists().where(Resident.id.is_(None)))
