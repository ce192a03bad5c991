"""The storage layer: engine, models, migrations. Imports nothing above itself."""

# The embedded default: an SQLite file in the current folder (kept here, free of imports, so the
# settings and Alembic's own command line share it without loading SQLAlchemy).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///outreach.db"
