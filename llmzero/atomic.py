"""Atomic file writes: a reader, or a search resumed after kill -9, sees the old file or the new one, never half.

The file is written aside and swapped in by one rename. Temporary files get the mode an ordinary
`open()` would give (0666 less the umask), so what we publish is as readable as any other output.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import yaml


def _umask() -> int:
    # Linux reports it without changing it; elsewhere it can only be read by setting it and putting it back.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


TEMP_SUFFIX = ".tmp"


def temp_prefix(path: Path | str) -> str:
    """Temporary files of `path` are `.<name>.<anything>.tmp` beside it: hidden, and recognisable after a kill."""
    return f".{Path(path).name}."


def is_temp_file(path: Path | str) -> bool:
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


@contextlib.contextmanager
def atomic_writer(path: Path | str, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to `path`; on a clean exit it is synced and renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # The rename itself must reach the disk before we report the state change as done.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_writer(path) as fh:
        fh.write(text)


def write_json_atomic(path: Path | str, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_yaml_atomic(path: Path | str, data: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def read_json(path: Path | str) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
