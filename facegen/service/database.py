"""The database connection: SQLite (WAL, one writer at a time) under DATA by default, any SQLAlchemy URL by setting."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from facegen.service.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(settings: Settings) -> Engine:
    """An engine for the settings' database; SQLite gets WAL, a busy timeout and write-locking transactions."""
    url = settings.resolved_database_url
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    settings.data.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # noqa: ANN001
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # writers queue up instead of failing on a stale snapshot

    return engine


_ENGINES: dict[tuple[int, str], Engine] = {}


def engine_for(settings: Settings) -> Engine:
    """One engine per process and database (a forked worker makes its own)."""
    key = (os.getpid(), settings.resolved_database_url)
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(settings)
    return _ENGINES[key]


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the settings' database; objects stay readable after commit."""
    return sessionmaker(engine_for(settings), expire_on_commit=False)


def migrate(settings: Settings) -> None:
    """Bring the database to the newest schema with Alembic (run at every start; a no-op when current)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine_for(settings).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
