"""many communities in one database: community code and aliases, grids/workers/categories per community,
staff memberships, the resident's community, cases' community and per-community number

An existing database becomes one community (the row it has, code "C1" unless its file named one):
its grids, workers, categories, staff, residents and cases are that community's, and every case keeps
its number (``number = id``), so old numbers keep working. Grid codes and category codes become unique
within a community (composite keys with ``community_id``).

SQLite: ``grids``, ``grid_workers``, ``categories`` and ``community`` are copied (batch mode; nothing
refers to them once the cases' foreign key to ``grids.code`` is gone). ``cases`` and ``residents`` are
referred to by other tables: copying them would trip the foreign keys (SQLite enforces them here, and
``PRAGMA foreign_keys`` cannot change inside the migration's transaction), so their new columns are
added in place and their foreign keys are edited in the stored table definition (SQLite's documented
procedure for adding and removing constraints, ``writable_schema`` with the schema version bumped).

The downgrade keeps the first community only (the single-community case).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_CODE = "C1"
CASES_GRID_FK = "CONSTRAINT fk_cases_grid_code_grids FOREIGN KEY(grid_code) REFERENCES grids (code)"
CASES_COMMUNITY_FK = (
    "CONSTRAINT fk_cases_community_id_community FOREIGN KEY(community_id) REFERENCES community (id)"
)
RESIDENTS_COMMUNITY_FK = (
    "CONSTRAINT fk_residents_community_id_community FOREIGN KEY(community_id) REFERENCES community (id)"
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _edit_sqlite_table(table: str, edit: Any) -> None:
    """Change a table's stored definition in place (constraints only: the rows are not touched)."""
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    changed = edit(sql)
    if changed == sql:
        raise RuntimeError(f"the stored definition of {table} is not the expected one")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (changed, table)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _add_constraint(constraint: str) -> Any:
    def edit(sql: str) -> str:
        head, _, _ = sql.rstrip().rpartition(")")
        return f"{head.rstrip()}, \n\t{constraint}\n)"

    return edit


def _replace(old: str, new: str) -> Any:
    return lambda sql: sql.replace(old, new)


def _remove_constraint(constraint: str) -> Any:
    return lambda sql: sql.replace(f", \n\t{constraint}", "").replace(f",\n\t{constraint}", "")


def _community_codes() -> list[tuple[int, str]]:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, source FROM community ORDER BY id")).all()
    codes = []
    for row_id, source in rows:
        data = json.loads(source) if isinstance(source, str) else (source or {})
        info = data.get("community") if isinstance(data, dict) else None
        code = str((info or {}).get("code") or DEFAULT_CODE)
        codes.append((row_id, code))
    return codes


def upgrade() -> None:
    op.create_table(
        "street",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("admins", sa.JSON(), nullable=False),
        sa.Column("single_file", sa.Boolean(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_street")),
    )
    _upgrade_community()
    op.create_table(
        "staff_communities",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_staff_communities_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_communities_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("staff_id", "community_id", name=op.f("pk_staff_communities")),
    )
    op.create_index(
        op.f("ix_staff_communities_community_id"), "staff_communities", ["community_id"], unique=False
    )
    first = "(SELECT MIN(id) FROM community)"
    op.execute(
        "INSERT INTO staff_communities (staff_id, community_id, active) "
        f"SELECT id, {first}, active FROM staff WHERE EXISTS (SELECT 1 FROM community)"
    )
    _upgrade_cases(first)
    _upgrade_grids(first)
    _upgrade_residents(first)


def _upgrade_community() -> None:
    with op.batch_alter_table("community") as batch:
        batch.add_column(sa.Column("code", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("aliases", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    bind = op.get_bind()
    for row_id, code in _community_codes():
        bind.execute(
            sa.text("UPDATE community SET code = :code, aliases = :aliases WHERE id = :id"),
            {"code": code, "aliases": "[]", "id": row_id},
        )
    op.execute(
        "INSERT INTO street (id, name, timezone, admins, single_file, loaded_at) "
        "SELECT id, name, timezone, '[]', :yes, loaded_at FROM community "
        "WHERE id = (SELECT MIN(id) FROM community)".replace(":yes", "1" if _sqlite() else "true")
    )
    with op.batch_alter_table("community") as batch:
        batch.alter_column("code", existing_type=sa.String(length=16), nullable=False)
        batch.alter_column("aliases", existing_type=sa.JSON(), nullable=False)
        batch.create_unique_constraint(batch.f("uq_community_code"), ["code"])


def _upgrade_cases(first: str) -> None:
    op.add_column("cases", sa.Column("community_id", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("number", sa.Integer(), nullable=True))
    op.execute(f"UPDATE cases SET community_id = {first}, number = id")
    if _sqlite():
        _edit_sqlite_table("cases", _replace(CASES_GRID_FK, CASES_COMMUNITY_FK))
    else:
        op.drop_constraint("fk_cases_grid_code_grids", "cases", type_="foreignkey")
        op.create_foreign_key(
            op.f("fk_cases_community_id_community"), "cases", "community", ["community_id"], ["id"]
        )
    op.create_index("uq_cases_community_number", "cases", ["community_id", "number"], unique=True)
    op.create_index("ix_cases_community_status", "cases", ["community_id", "status", "grid_code"])
    op.create_index("ix_cases_community_created", "cases", ["community_id", "created_at"])


def _upgrade_grids(first: str) -> None:
    # The workers first: their foreign key to grids.code goes before grids' key changes.
    with op.batch_alter_table("grid_workers") as batch:
        batch.drop_constraint("fk_grid_workers_grid_code_grids", type_="foreignkey")
        batch.add_column(sa.Column("community_id", sa.Integer(), nullable=True))
    for table in ("grids", "grid_workers", "categories"):
        if table != "grid_workers":
            with op.batch_alter_table(table) as batch:
                batch.add_column(sa.Column("community_id", sa.Integer(), nullable=True))
        op.execute(f"UPDATE {table} SET community_id = {first}")
    for table, key in (("grids", ["community_id", "code"]), ("categories", ["community_id", "code"])):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("community_id", existing_type=sa.Integer(), nullable=False)
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", key)
            batch.create_foreign_key(
                batch.f(f"fk_{table}_community_id_community"), "community", ["community_id"], ["id"]
            )
    with op.batch_alter_table("grid_workers") as batch:
        batch.alter_column("community_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint("pk_grid_workers", type_="primary")
        batch.create_primary_key("pk_grid_workers", ["community_id", "grid_code", "staff_id"])
        batch.create_foreign_key(
            "fk_grid_workers_grid_grids",
            "grids",
            ["community_id", "grid_code"],
            ["community_id", "code"],
            ondelete="CASCADE",
        )


def _upgrade_residents(first: str) -> None:
    op.add_column("residents", sa.Column("community_id", sa.Integer(), nullable=True))
    op.execute(f"UPDATE residents SET community_id = {first}")
    if _sqlite():
        _edit_sqlite_table("residents", _add_constraint(RESIDENTS_COMMUNITY_FK))
    else:
        op.create_foreign_key(
            op.f("fk_residents_community_id_community"), "residents", "community", ["community_id"], ["id"]
        )


def downgrade() -> None:
    first = "(SELECT MIN(id) FROM community)"
    # Residents and cases keep their rows; everything of the other communities goes.
    if _sqlite():
        _edit_sqlite_table("residents", _remove_constraint(RESIDENTS_COMMUNITY_FK))
        op.execute("ALTER TABLE residents DROP COLUMN community_id")
    else:
        op.drop_constraint("fk_residents_community_id_community", "residents", type_="foreignkey")
        op.drop_column("residents", "community_id")
    for table in ("grid_workers", "grids", "categories"):
        op.execute(f"DELETE FROM {table} WHERE community_id <> {first}")
    with op.batch_alter_table("grid_workers") as batch:
        batch.drop_constraint("fk_grid_workers_grid_grids", type_="foreignkey")
        batch.drop_constraint("pk_grid_workers", type_="primary")
        batch.create_primary_key("pk_grid_workers", ["grid_code", "staff_id"])
        batch.drop_column("community_id")
    for table in ("grids", "categories"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_community_id_community", type_="foreignkey")
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["code"])
            batch.drop_column("community_id")
    with op.batch_alter_table("grid_workers") as batch:
        batch.create_foreign_key(
            "fk_grid_workers_grid_code_grids", "grids", ["grid_code"], ["code"], ondelete="CASCADE"
        )
    op.drop_index("ix_cases_community_created", table_name="cases")
    op.drop_index("ix_cases_community_status", table_name="cases")
    op.drop_index("uq_cases_community_number", table_name="cases")
    if _sqlite():
        _edit_sqlite_table("cases", _replace(CASES_COMMUNITY_FK, CASES_GRID_FK))
        op.execute("ALTER TABLE cases DROP COLUMN number")
        op.execute("ALTER TABLE cases DROP COLUMN community_id")
    else:
        op.drop_constraint("fk_cases_community_id_community", "cases", type_="foreignkey")
        op.drop_column("cases", "number")
        op.drop_column("cases", "community_id")
        op.create_foreign_key("fk_cases_grid_code_grids", "cases", "grids", ["grid_code"], ["code"])
    op.drop_index(op.f("ix_staff_communities_community_id"), table_name="staff_communities")
    op.drop_table("staff_communities")
    op.execute(f"DELETE FROM community WHERE id <> {first}")
    with op.batch_alter_table("community") as batch:
        batch.drop_constraint("uq_community_code", type_="unique")
        batch.drop_column("active")
        batch.drop_column("aliases")
        batch.drop_column("code")
    op.drop_table("street")
