"""Stamped, checksummed, atomically written files for derived indexes.

Layout: `MAGIC`, a 4-byte header length, a JSON header (`generation`, `kind`, `sha256` of the
payload, plus caller fields), then the payload. Written to a temp file, fsynced, then renamed,
so a reader sees the old file or the new one, never half of one. A reader that finds a wrong
magic, a bad header or a checksum mismatch gets `StaleOrCorrupt` and rebuilds from SQLite.

The temporary file (`.NAME.PID.tmp`) is removed whenever the write fails (a full disk, a
read-only one, an interrupt), and its writer holds it locked (`flock`) while it is written: a
temporary file nobody holds is left over from a process that died, and `sweep_temp_files` (run
when an engine opens the index) removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import struct
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"RAGIDX1\n"
# `.NAME.PID.tmp`, and the files SQLite keeps beside such a temporary database
_TEMP = re.compile(r"^\.(?P<base>.+\.\d+\.tmp)(?:-wal|-shm|-journal)?$")


class StaleOrCorrupt(Exception):
    """A derived index file is missing, from another generation, or damaged."""


def write_stamped(path: Path, payload: bytes | memoryview, header: dict[str, Any]) -> None:
    """Atomically write `payload` with `header` (plus its checksum) to `path`.

    On any failure (`OSError` such as ENOSPC or EROFS, or an interrupt) the temporary file is
    removed before the error propagates, and `path` is as it was.
    """
    head = dict(header, sha256=hashlib.sha256(payload).hexdigest(), size=memoryview(payload).nbytes)
    head_bytes = json.dumps(head, sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # "being written": see sweep_temp_files
            fh.write(MAGIC + struct.pack("<I", len(head_bytes)) + head_bytes)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_header(path: Path) -> dict[str, Any]:
    """The header of the stamped file at `path` (its payload is not read, so not checksummed);
    `StaleOrCorrupt` when the file is missing, no index file, or not as long as it says."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(len(MAGIC) + 4)
            if len(start) < len(MAGIC) + 4 or not start.startswith(MAGIC):
                raise StaleOrCorrupt(f"{path.name}: not an index file")
            (n,) = struct.unpack("<I", start[len(MAGIC) :])
            raw = fh.read(n)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError as exc:
        raise StaleOrCorrupt(f"{path.name}: missing") from exc
    try:
        head = json.loads(raw)
    except ValueError as exc:
        raise StaleOrCorrupt(f"{path.name}: damaged header") from exc
    if not isinstance(head, dict) or head.get("size") != size - len(MAGIC) - 4 - n:
        raise StaleOrCorrupt(f"{path.name}: damaged (not the length its header says)")
    return head


def sweep_temp_files(directory: Path) -> list[str]:
    """Remove the temporary files in `directory` that writers left behind when they died (a
    kill, a crash, an older version that did not clean up), and return their names.

    A temporary file is live while its writer holds it locked; the lock goes with the process,
    whatever its pid namespace (a server and an ingest in two containers sharing the volume).
    Files SQLite keeps beside a temporary database (`-wal`, `-shm`) go with it. Anything that
    cannot be removed (a read-only disk) is left.
    """
    removed: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        base = directory / ("." + m.group("base"))
        if base.exists() and _held(base):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    if removed:
        log.info("removed temporary files left by dead writers: %s", ", ".join(removed))
    return removed


def _held(path: Path) -> bool:
    """Whether some process holds `path` locked (is writing it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the lock this took
    return False


def read_stamped(path: Path, expect: dict[str, Any]) -> memoryview:
    """Return the payload at `path` if its header matches every key in `expect` and it is intact."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise StaleOrCorrupt(f"{path.name}: missing") from exc
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise StaleOrCorrupt(f"{path.name}: not an index file")
    (n,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        head = json.loads(data[start : start + n])
    except ValueError as exc:
        raise StaleOrCorrupt(f"{path.name}: damaged header") from exc
    payload = memoryview(data)[start + n :]  # a view: the payload may be a GB of vectors
    if (
        head.get("size") != len(payload)
        or head.get("sha256") != hashlib.sha256(payload).hexdigest()
    ):
        raise StaleOrCorrupt(f"{path.name}: checksum mismatch (damaged)")
    for key, value in expect.items():
        if head.get(key) != value:
            raise StaleOrCorrupt(f"{path.name}: built for {key}={head.get(key)!r}, need {value!r}")
    return payload
