"""Stamped, checksummed, atomically written files for derived indexes.

Layout: `MAGIC`, a 4-byte header length, a JSON header (`generation`, `kind`, `sha256` of the
payload, plus caller fields), then the payload. Written to a temp file, fsynced, then renamed,
so a reader sees the old file or the new one, never half of one. A reader that finds a wrong
magic, a bad header or a checksum mismatch gets `StaleOrCorrupt` and rebuilds from SQLite.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

MAGIC = b"RAGIDX1\n"


class StaleOrCorrupt(Exception):
    """A derived index file is missing, from another generation, or damaged."""


def write_stamped(path: Path, payload: bytes | memoryview, header: dict[str, Any]) -> None:
    """Atomically write `payload` with `header` (plus its checksum) to `path`."""
    head = dict(header, sha256=hashlib.sha256(payload).hexdigest(), size=memoryview(payload).nbytes)
    head_bytes = json.dumps(head, sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC + struct.pack("<I", len(head_bytes)) + head_bytes)
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
