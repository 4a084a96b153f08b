"""Another writer holding an SQLite store's write lock, as a second process would."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from types import TracebackType


class HeldWriteLock:
    """``with HeldWriteLock(path, seconds):`` the lock is held from entry for ``seconds``,
    or until ``release()`` when None (on a thread, so the block runs meanwhile); the exit
    releases it and waits for that."""

    def __init__(self, path: Path, seconds: float | None = None) -> None:
        self.path, self.seconds = path, seconds
        self.thread: threading.Thread | None = None
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> HeldWriteLock:
        locked = threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(locked,))
        self.thread.start()
        if not locked.wait(10):
            raise AssertionError(f"could not lock {self.path}")
        return self

    def _hold(self, locked: threading.Event) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            locked.set()
            self.released.wait(self.seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.thread is not None
        self.release()
        self.thread.join()
