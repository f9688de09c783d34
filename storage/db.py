"""The database: engine, one short unit of work per event or job, and migrations."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from storage.text import install_text_guard

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")
_depth = threading.local()  # how many sessions this thread has open (SQLite: nested ones defer)


def _reason(exc: BaseException) -> str:
    """The driver's own first line (connection refused, no such file, bad password), which
    says what to fix; never the SQL or the parameters."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{lines[0][:200]} ({cause.__class__.__name__})" if lines else cause.__class__.__name__


class DatabaseError(Exception):
    """The database cannot be reached or is not at the expected schema."""


class DatabaseReadOnly(DatabaseError):
    """The database answers but does not keep a write (a read-only file, a full disk, a
    read-only transaction or standby)."""


# The one row the health probe rewrites (in the small key-value table the generated secret
# key lives in).
_KEYVALUE = sa.table("keyvalue", sa.column("key"), sa.column("value"))
PROBE_KEY = "health-probe"


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned per dialect, whose statements never carry a control character
    (storage/text.py); SQLite gets foreign keys, WAL and a busy timeout."""
    engine = _dialect_engine(url, **kwargs)
    install_text_guard(engine)
    return engine


def _dialect_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # Let SQLAlchemy, not the driver, begin transactions: otherwise a SAVEPOINT that
            # comes first runs outside any transaction and its RELEASE commits on its own.
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock up front: a transaction that read first and writes later
            # fails at once (no busy wait) when another connection committed in between.
            # A session opened inside another on the same thread begins as a reader (the
            # outer one holds the lock), and AUTOCOMMIT connections begin nothing.
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return
            nested = getattr(_depth, "value", 0) > 1
            conn.exec_driver_sql("BEGIN" if nested else "BEGIN IMMEDIATE")

        return engine
    # No ping before every checkout (a round trip per unit of work): a connection PostgreSQL
    # dropped fails its unit once, is discarded, and the unit runs again from the inbox.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 3600)
    kwargs.setdefault("pool_size", 12)
    return sa.create_engine(url, **kwargs)


class TurnLock:
    """A re-entrant lock whose urgent callers go before the others already waiting. Each
    release wakes one waiter (an urgent one first), not every thread waiting."""

    def __init__(self) -> None:
        lock = threading.Lock()
        self._urgent_turn = threading.Condition(lock)
        self._normal_turn = threading.Condition(lock)
        self._owner: int | None = None
        self._depth = 0
        self._waiting = {True: 0, False: 0}  # urgent, normal

    def acquire(self, *, urgent: bool = False) -> None:
        me = threading.get_ident()
        turn = self._urgent_turn if urgent else self._normal_turn
        with turn:
            if self._owner == me:
                self._depth += 1
                return
            self._waiting[urgent] += 1
            try:
                while self._owner is not None or (not urgent and self._waiting[True]):
                    turn.wait()
            finally:
                self._waiting[urgent] -= 1
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._urgent_turn:
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            if self._waiting[True]:
                self._urgent_turn.notify()
            elif self._waiting[False]:
                self._normal_turn.notify()


class Database:
    """Owns the engine and the threads database work runs on; hands out short sessions that
    commit or roll back as a unit.

    Work runs on `threads` threads (`run`), never on the event loop, so a slow query or a
    digest's ranking holds up no one's acknowledgement. SQLite has one writer: sessions in
    this process take turns on a lock (handed over at once, where SQLite's own busy wait
    polls), and other processes wait on SQLite's busy timeout.
    """

    def __init__(self, url: str, *, threads: int = 8, **engine_kwargs: Any) -> None:
        self.url = url
        self.threads = threads
        if make_url(url).get_backend_name() != "sqlite":
            engine_kwargs.setdefault("pool_size", threads + 4)
        self.engine = create_db_engine(url, **engine_kwargs)
        self._writer = TurnLock() if self.is_sqlite else None
        self._executor: ThreadPoolExecutor | None = None
        self._urgent: ThreadPoolExecutor | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, urgent: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error. An `urgent` one (a
        request being acknowledged) takes the next turn on SQLite's writer, before units of
        work already waiting."""
        _depth.value = getattr(_depth, "value", 0) + 1
        lock = self._writer if _depth.value == 1 else None
        if lock is not None:
            lock.acquire(urgent=urgent)
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        finally:
            if lock is not None:
                lock.release()
            _depth.value -= 1

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database work on the database's threads, off the event loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="plnbot-db")
        call = functools.partial(work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def run_urgent(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` on a thread of its own, never queued behind units of work (acknowledgements
        wait on it)."""
        if self._urgent is None:
            self._urgent = ThreadPoolExecutor(1, thread_name_prefix="plnbot-intake")
        call = functools.partial(work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._urgent, call)

    def ping(self) -> None:
        """Raise DatabaseError unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseError(f"database does not answer: {_reason(exc)}") from exc

    def check_writes(self, stamp: str) -> None:
        """Commit one real write (the health probe's row gets `stamp`): DatabaseError when the
        database does not answer, DatabaseReadOnly when it answers but the write fails."""
        self.ping()
        row = {"key": PROBE_KEY, "value": stamp[:200]}
        try:
            with self.session(urgent=True) as session:
                conn = session.connection()
                update = _KEYVALUE.update().where(_KEYVALUE.c.key == PROBE_KEY)
                if conn.execute(update.values(value=row["value"])).rowcount == 0:
                    conn.execute(_KEYVALUE.insert().values(**row))
        except sa.exc.IntegrityError:
            return  # another replica made the row first: writes work
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseReadOnly(
                f"database does not keep writes: {exc.__class__.__name__}"
            ) from exc

    def alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        command.upgrade(self.alembic_config(), "head")

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def is_current(self) -> bool:
        return self.current_revision() == self.head_revision()

    def dispose(self) -> None:
        for executor in (self._executor, self._urgent):
            if executor is not None:
                executor.shutdown(wait=True)
        self._executor = self._urgent = None
        self.engine.dispose()
