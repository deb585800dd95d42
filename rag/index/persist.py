"""What derived index files share: their magic, the error a reader raises on an unusable one, and
the sweep of temporary files that dead writers left behind.

The files themselves are `rag.index.container` files: `MAGIC`, a 4-byte header length, a JSON
header with the payload's `sha256`, then the payload; written to a temp file, fsynced, then
renamed, so a reader sees the old file or the new one, never half of one. A reader that finds a
wrong magic, a bad header or a checksum mismatch gets `StaleOrCorrupt` and rebuilds from SQLite.

The temporary file (`.NAME.PID.tmp`) is removed whenever the write fails (a full disk, a
read-only one, an interrupt), and its writer holds it locked (`flock`) while it is written: a
temporary file nobody holds is left over from a process that died, and `sweep_temp_files` (run
when an engine opens the index) removes it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"RAGIDX1\n"
# `.NAME.PID.tmp`, and the files SQLite keeps beside such a temporary database
_TEMP = re.compile(r"^\.(?P<base>.+\.\d+\.tmp)(?:-wal|-shm|-journal)?$")


class StaleOrCorrupt(Exception):
    """A derived index file is missing, from another generation, or damaged."""


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
