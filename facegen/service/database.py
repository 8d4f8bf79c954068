"""The database connection: SQLite (WAL, one writer at a time) under DATA by default, any SQLAlchemy URL by setting."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from facegen.service.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_SECONDS = 60
"""How long a transaction waits for its turn to write before it fails."""


def make_engine(settings: Settings) -> Engine:
    """An engine for the settings' database; SQLite gets WAL, a busy timeout and write-locking transactions, handed
    from thread to thread by a lock of this process (see `_locked_connection`)."""
    url = settings.resolved_database_url
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    settings.data.mkdir(parents=True, exist_ok=True)
    factory = _locked_connection(threading.Lock())
    engine = create_engine(url, connect_args={"timeout": LOCK_SECONDS, "check_same_thread": False, "factory": factory})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # noqa: ANN001
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.take_writer_lock()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # writers queue up instead of failing on a stale snapshot
        except BaseException:
            dbapi_connection.release_writer_lock()
            raise

    return engine


def _locked_connection(lock: threading.Lock) -> type[sqlite3.Connection]:
    """SQLite connections that hold `lock` from BEGIN to COMMIT or ROLLBACK: the threads of one process take turns
    at once, where SQLite's busy handler would have them sleep up to 100 ms between tries (a long tail of latency
    for concurrent requests). Other processes still wait through the busy timeout."""

    class LockedConnection(sqlite3.Connection):
        holds_lock = False

        def take_writer_lock(self) -> None:
            if not lock.acquire(timeout=LOCK_SECONDS):
                raise sqlite3.OperationalError(f"database is locked: no write turn within {LOCK_SECONDS} s")
            self.holds_lock = True

        def release_writer_lock(self) -> None:
            if self.holds_lock:
                self.holds_lock = False
                lock.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.release_writer_lock()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.release_writer_lock()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.release_writer_lock()

    return LockedConnection


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
