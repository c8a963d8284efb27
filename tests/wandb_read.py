"""Read what an offline W&B run wrote, without a network: its ``run-<id>.wandb`` transaction log.

An offline run directory (``<dir>/wandb/offline-run-<time>-<id>/``) holds ``run-<id>.wandb``, the
log that ``wandb sync`` uploads later, plus ``files/`` (media such as tables and images) and
``logs/``. Recent wandb (0.2x+, whose backend is the Go ``wandb-core``) writes no
``config.yaml``/``wandb-summary.json`` for offline runs and no longer ships a Python reader for
the log, so this module parses it: the file is a LevelDB-style log (a 7-byte header ``":W&B"``,
magic 0xBEE1, version 0; then 32 KiB blocks of chunks, each with a 7-byte header of CRC-32
(seeded with the chunk type), length and type FULL/FIRST/MIDDLE/LAST), and every record is a
``wandb.proto.wandb_internal_pb2.Record`` protobuf whose values are JSON-encoded.

Requires wandb (for the protobuf classes) only when a run is actually read.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_VERSION = 0
HEADER = struct.Struct("<4sHB")  # ident, magic, version
CHUNK = struct.Struct("<IHB")  # crc32, length, type
BLOCK_LEN = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    path: Path  # the run directory
    id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    project: str = ""
    entity: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # without wandb's internal "_wandb"
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per step, with "_step"
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None  # None: the run never finished (crashed, or still running)
    truncated: bool = False  # the log ended in a torn or corrupt chunk (killed writer)

    @property
    def files_dir(self) -> Path:
        return self.path / "files"

    def series(self, key: str) -> list[tuple[int, Any]]:
        """(step, value) pairs of one metric, in logged order."""
        return [(int(row["_step"]), row[key]) for row in self.history if key in row and "_step" in row]

    def media_path(self, key: str) -> Path | None:
        """The file behind a media summary entry (a wandb.Table or wandb.Image), if written."""
        entry = self.summary.get(key)
        if isinstance(entry, dict) and entry.get("path"):
            p = self.files_dir / entry["path"]
            return p if p.exists() else None
        return None

    def table(self, key: str) -> dict[str, Any] | None:
        """A logged wandb.Table as {"columns": [...], "data": [[...], ...]}, read from its file."""
        p = self.media_path(key)
        if p is None:
            return None
        return json.loads(p.read_text(encoding="utf-8"))


def find_offline_runs(wandb_dir: Path) -> list[Path]:
    """Run directories (oldest first) under a wandb dir: ``<dir>/wandb`` or ``<dir>`` itself."""
    wandb_dir = Path(wandb_dir)
    roots = [wandb_dir]
    if (wandb_dir / "wandb").is_dir():
        roots.insert(0, wandb_dir / "wandb")
    out: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink() and child.name.startswith(("offline-run-", "run-")) \
                    and any(child.glob("run-*.wandb")):
                out.append(child)
    return sorted(set(out), key=_run_dir_key)


def _run_dir_key(path: Path) -> tuple[str, str]:
    m = re.search(r"\d{8}_\d{6}", path.name)  # offline-run-<YYYYmmdd_HHMMSS>-<id>
    return (m.group(0) if m else "", path.name)


def read_offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    return [read_offline_run(p) for p in find_offline_runs(wandb_dir)]


def transaction_log(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    logs = sorted(run_dir.glob("run-*.wandb"))
    if not logs:
        raise FileNotFoundError(f"no run-*.wandb transaction log in {run_dir}")
    return logs[0]


def iter_record_bytes(data: bytes) -> Iterator[bytes | None]:
    """Serialized records from a transaction log; yields None last if the log ends torn/corrupt."""
    if len(data) < HEADER.size:
        raise ValueError("not a W&B transaction log: file shorter than its header")
    ident, magic, version = HEADER.unpack_from(data, 0)
    if ident != HEADER_IDENT or magic != HEADER_MAGIC or version != HEADER_VERSION:
        raise ValueError(f"not a W&B transaction log (header {ident!r}, magic {magic:#x}, version {version})")
    off = HEADER.size
    pending: list[bytes] | None = None
    while off < len(data):
        room = BLOCK_LEN - off % BLOCK_LEN
        if room < CHUNK.size:  # block trailer: zero padding
            off += room
            continue
        if off + CHUNK.size > len(data):
            yield None
            return
        crc, length, kind = CHUNK.unpack_from(data, off)
        if crc == 0 and length == 0 and kind == 0:  # zero padding (preallocated or block end)
            off += room
            continue
        body = data[off + CHUNK.size: off + CHUNK.size + length]
        if len(body) < length or zlib.crc32(body, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            yield None
            return
        off += CHUNK.size + length
        if kind == FULL:
            pending = None
            yield body
        elif kind == FIRST:
            pending = [body]
        elif kind == MIDDLE and pending is not None:
            pending.append(body)
        elif kind == LAST and pending is not None:
            pending.append(body)
            yield b"".join(pending)
            pending = None
        else:
            yield None
            return
    if pending is not None:
        yield None


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[path[-1]] = value


def _del_path(target: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        target = target.get(part)
        if not isinstance(target, dict):
            return
    target.pop(path[-1], None)


def _item_path(item: Any) -> list[str]:
    return list(item.nested_key) if len(item.nested_key) else [item.key]


def _apply(target: dict[str, Any], updates: Any, removes: Any = ()) -> None:
    for item in updates:
        _set_path(target, _item_path(item), json.loads(item.value_json) if item.value_json else None)
    for item in removes:
        _del_path(target, _item_path(item))


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Parse an offline run directory (or its ``run-*.wandb`` file) into an OfflineRun."""
    from wandb.proto import wandb_internal_pb2 as pb  # wandb's own record schema

    log_path = transaction_log(Path(run_dir))
    out = OfflineRun(path=log_path.parent)
    for raw in iter_record_bytes(log_path.read_bytes()):
        if raw is None:
            out.truncated = True
            break
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.id, out.name, out.group, out.job_type = r.run_id, r.display_name, r.run_group, r.job_type
            out.project, out.entity, out.tags = r.project, r.entity, list(r.tags)
            _apply(out.config, r.config.update, r.config.remove)
            _apply(out.summary, r.summary.update, r.summary.remove)
        elif kind == "config":
            _apply(out.config, rec.config.update, rec.config.remove)
        elif kind == "summary":
            _apply(out.summary, rec.summary.update, rec.summary.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply(row, rec.history.item)
            if "_step" not in row and rec.history.HasField("step"):
                row["_step"] = rec.history.step.num
            out.history.append(row)
        elif kind == "exit":
            out.exit_code = rec.exit.exit_code
    out.config.pop("_wandb", None)
    return out
