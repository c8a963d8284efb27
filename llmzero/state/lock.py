"""One search per directory: a lock file holding the owner's pid, taken over only when that process is gone."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


class SearchLockedError(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SearchLock:
    def __init__(self, directory: Path | str):
        self.path = Path(directory) / "search.lock"
        self._held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                same_host = owner.get("host") in (None, socket.gethostname())
                pid = int(owner.get("pid", -1))
                if pid > 0 and same_host and not _alive(pid):
                    self.path.unlink(missing_ok=True)  # stale: its process died (e.g. kill -9)
                    continue
                raise SearchLockedError(
                    f"search directory {self.path.parent} is in use by process {pid} on {owner.get('host', '?')} "
                    f"(since {owner.get('since', '?')}). Wait for that search to finish or stop it, or choose "
                    f"another directory with search.dir=<path>. If that process is gone, delete {self.path}."
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self._held = True
            return
        raise SearchLockedError(f"could not take the lock {self.path}")

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> "SearchLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
