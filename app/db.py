"""The database engine, sessions and schema migrations.

SQLite is the embedded default. The supervisor writes from background threads
while browser sessions read, so SQLite runs in WAL mode with a busy timeout and
every unit of work opens its own short session.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine

from app.settings import get_settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(RuntimeError):
    """The database cannot be opened or migrated; the message says why."""


def _on_sqlite_connect(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise DatabaseError(
                "PERSEPHONE_DB_URL names an in-memory SQLite database, which would "
                "lose every run at restart: give it a file, e.g. "
                "sqlite:///data/persephone.db."
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision, keeping every stored run."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_engine_lock = threading.Lock()


@functools.cache
def _create_engine() -> Engine:
    url = get_settings().database_url
    try:
        engine = make_engine(url)
    except ArgumentError:
        # The URL itself is not echoed: it may carry a password.
        raise DatabaseError(
            "PERSEPHONE_DB_URL is not a database URL SQLAlchemy understands: use "
            "e.g. sqlite:///data/persephone.db or "
            "postgresql+psycopg://user@host/persephone."
        ) from None
    except ImportError as error:
        raise DatabaseError(
            f"PERSEPHONE_DB_URL needs the database driver {error.name!r}, which is "
            f"not installed: install it into .venv (for PostgreSQL: pip install "
            f"'psycopg[binary]'), or unset PERSEPHONE_DB_URL to use SQLite."
        ) from None
    except OSError as error:
        raise DatabaseError(
            f"The folder for the database in PERSEPHONE_DB_URL cannot be created "
            f"({error.strerror}): point it at a writable place."
        ) from None
    try:
        migrate(engine)
    except (SQLAlchemyError, CommandError, OSError) as error:
        raise DatabaseError(
            f"The database at PERSEPHONE_DB_URL could not be opened or upgraded "
            f"({type(error).__name__}); check the URL and that the file or server "
            f"is reachable and writable."
        ) from error
    return engine


def get_engine() -> Engine:
    """The one engine of this process, migrated on first use."""
    # Threads (the supervisor, browser sessions) may ask at the same moment;
    # only one may run the migrations.
    with _engine_lock:
        return _create_engine()


def reset_engine() -> None:
    with _engine_lock:
        if _create_engine.cache_info().currsize:
            _create_engine().dispose()
        _create_engine.cache_clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A short session that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
