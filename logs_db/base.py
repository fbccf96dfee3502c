"""The DuckDB connection under the LogStore: opening the file, one cursor per thread, read helpers, closing.

DuckDB allows one read-write process per file, so the store is owned by the serving process (or one CLI
command at a time); threads share it through a cursor each. New conversations, turns and grader rewards are
written behind the caller by one writer thread (logs_db/writer.py); every other call first waits for them
(``_cur`` flushes), so reads always see every write made before them.

Also the errors every part of the store raises, and the small value helpers they share.
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import duckdb

from .migrations import apply_migrations
from .writer import WriteBehind


class LogError(ValueError):
    """Bad input for the log: the message is meant for the person who sent it."""


class UnknownId(LogError):
    pass


class DuplicateRating(LogError):
    """The same rating of the same reply by the same user again (a double click, a replayed request)."""


class DatabaseLocked(RuntimeError):
    pass


def new_id() -> str:
    return uuid.uuid4().hex


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def from_json(text: str | None) -> dict:
    return json.loads(text) if text else {}


S = TypeVar("S", bound="StoreBase")
Row = TypeVar("Row")


class StoreBase:
    """The connection, the per-thread cursors and the write-behind queue that every part of the store uses."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DatabaseLocked(
                    f"{self.path} is open in another clarify process (DuckDB allows one writer). "
                    "Stop it, or point this command at another --data-dir."
                ) from exc
            raise
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        apply_migrations(self._conn)
        self._writer = WriteBehind(self._conn)
        self._closed = False

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            # A creation cut short (disk full at the first start) leaves an empty file DuckDB refuses for good;
            # it holds nothing, so start afresh. (A file another process is creating is locked: not this case.)
            if "not a valid DuckDB database file" not in str(exc) or not self.path.is_file() \
                    or self.path.stat().st_size != 0:
                raise
            self.path.unlink()
            return duckdb.connect(str(self.path))

    @property
    def _cur(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor, once every write queued before this call is committed."""
        self._writer.flush()
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._conn.cursor()
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    def _rows(self, make: Callable[..., Row], sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Every row of a query as a typed row: ``make(*columns)``."""
        return [make(*r) for r in self._cur.execute(sql, list(params)).fetchall()]

    def _one(self, make: Callable[..., Row], sql: str, params: Iterable[Any], missing: str) -> Row:
        """The one row of a query as a typed row; UnknownId(`missing`) when there is none."""
        row = self._cur.execute(sql, list(params)).fetchone()
        if row is None:
            raise UnknownId(missing)
        return make(*row)

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor inside BEGIN ... COMMIT (ROLLBACK when the block raises)."""
        cur = self._cur
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def execute(self, sql: str, params: Iterable[Any] = ()):
        """Read-only queries for the insights and snapshot code (constant SQL, bound params)."""
        return self._cur.execute(sql, list(params))

    def query_arrow(self, sql: str, params: Iterable[Any] = ()):
        """A constant query straight to an Arrow table (no row-by-row copy): snapshots, insights."""
        # A fresh cursor: the thread's cursor may hold a half-fetched result (fetchone), which DuckDB
        # refuses to mix with a relation query on the same connection.
        self._writer.flush()
        cur = self._conn.cursor()
        try:
            return cur.sql(sql, params=list(params)).to_arrow_table()
        finally:
            cur.close()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor in one transaction, so several queries read one state of the log (the snapshot)."""
        self._writer.flush()
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield cur
        finally:
            cur.execute("ROLLBACK")
            cur.close()

    def close(self) -> None:
        """Flush, checkpoint and close; closing again is a no-op (a `with` block around an explicit close)."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with self._cursors_lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
        self._conn.execute("CHECKPOINT")
        self._conn.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def migrations(self) -> list[tuple[int, str]]:
        return self.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall()
