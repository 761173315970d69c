"""`cartolog db migrate`: the event store's table and Alembic's migrations, idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from eventsourcing.utils import Environment
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from adapters.eventstore import APPLICATION_NAME, GroupCommitFactory, store_environment

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 727_001  # pg_advisory_lock key: one migrator at a time


def migrate(engine: Engine) -> None:
    """Create or upgrade every table, holding an advisory lock so runs never overlap."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            create_event_store_tables(engine)
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()


def create_event_store_tables(engine: Engine) -> None:
    """The eventsourcing library's events table, created through the library itself."""
    url = engine.url.render_as_string(hide_password=False)
    env = Environment(APPLICATION_NAME, store_environment(url, create_table=True))
    factory = GroupCommitFactory(env)
    try:
        factory.application_recorder()
    finally:
        factory.close()


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist; True if it was created."""
    from sqlalchemy import create_engine

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
            return not exists
    finally:
        admin.dispose()
