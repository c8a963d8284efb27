"""One search per directory: an OS file lock (filelock), released by the kernel when its holder dies.

A kill -9 leaves nothing to clean up: the next search takes the lock at once. Beside the lock, a
small owner file says who holds it (pid, host, since), for the message a second search gets.
The lock file itself is never deleted: removing it would let two processes hold locks on two
different files of the same name.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from ..atomic import write_json_atomic

LOCK_FILE = "search.lock"
OWNER_FILE = "search.owner.json"


class SearchLockedError(RuntimeError):
    pass


class SearchLock:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)
        self.path = self.dir / LOCK_FILE
        self.owner_file = self.dir / OWNER_FILE
        self._lock = FileLock(str(self.path), timeout=0)

    def acquire(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            owner = self.owner()
            raise SearchLockedError(
                f"search directory {self.dir} is in use by process {owner.get('pid', '?')} on "
                f"{owner.get('host', '?')} (since {owner.get('since', '?')}). Wait for that search to finish or "
                f"stop it, or choose another directory with search.dir=<path>."
            ) from None
        write_json_atomic(self.owner_file, {"pid": os.getpid(), "host": socket.gethostname(),
                                            "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    def owner(self) -> dict:
        try:
            return json.loads(self.owner_file.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def release(self) -> None:
        if self._lock.is_locked:
            if self.owner().get("pid") == os.getpid():
                self.owner_file.unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> "SearchLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
