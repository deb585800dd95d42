"""Stamped multi-array files: streamed to disk, checksummed in blocks, memory-mapped back.

The stamped-file layout of `rag.index.persist` (`MAGIC`, a 4-byte header length, a JSON header with
`kind`, `sha256` and `size` of the payload, then the payload), so the two kinds of derived file
are told apart by `kind`, not by format. What differs is the scale: a segment holds gigabytes of
vectors, so nothing here ever holds a whole file in process memory.

- Writing streams each array (and a FAISS index, through FAISS's own writer) straight into the
  temp file while hashing it; the header is reserved first and rewritten with the checksum at the
  end (its length cannot change: the checksum is fixed-width). Then fsync, `os.replace`, fsync of
  the directory; on any failure the temp file is removed and the target left as it was.
- Reading checks magic, header and the caller's expectations, streams the payload through
  SHA-256 in fixed-size blocks (page cache, not process memory), then maps the file read-only:
  every array is a zero-copy view of the mapping, so several processes share the pages and RSS
  grows only with the pages a search actually touches.
- Every array starts on a 64-byte boundary (SIMD- and cache-line-friendly views); a FAISS part is
  placed so that its trailing vector storage is aligned, as FAISS reads it in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import mmap
import os
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.index.persist import MAGIC, StaleOrCorrupt

# FAISS's bundled type stubs lack its IO classes: reach them untyped.
_faiss: Any = faiss

ALIGN = 64
_BLOCK = 8 << 20  # bytes hashed per read when verifying a file
_PREFIX = len(MAGIC) + 4
_NO_SHA = "0" * 64  # placeholder of the checksum's exact width


class FaissPart:
    """A FAISS index to be serialised into a container file (streamed, never copied whole).

    `tail` is the number of bytes at the end of the serialised index that should start on an
    aligned offset (a flat storage's vectors: FAISS writes them last).
    """

    def __init__(self, index: faiss.Index, tail: int = 0) -> None:
        """Measure the serialised size of `index` with a counting dry run."""
        self.index = index
        self.tail = tail
        counted = [0]

        def count(block: bytes) -> int:
            counted[0] += len(block)
            return len(block)

        _write_index(index, count)
        self.nbytes = counted[0]


Part = np.ndarray | FaissPart


@dataclass(frozen=True, eq=False)
class Container:
    """A verified container file: its header and read-only, zero-copy views of its parts."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    mapping: mmap.mmap | None  # kept so the views stay valid (None: empty payload)


def write_container(
    path: Path, header: Mapping[str, Any], parts: Mapping[str, Part]
) -> dict[str, Any]:
    """Atomically write `parts` (arrays and FAISS indexes) under `header` to `path`.

    Returns the header as written (with `sha256`, `size` and the parts' layout). The temp file
    is removed on every failure path, and `path` is then untouched.
    """
    layout: dict[str, dict[str, Any]] = {}
    cursor = 0
    for name, part in parts.items():
        if isinstance(part, FaissPart):
            nbytes, tail, dtype, shape = part.nbytes, part.tail, "|u1", [part.nbytes]
        else:
            nbytes, tail, dtype, shape = part.nbytes, part.nbytes, part.dtype.str, list(part.shape)
        # the smallest offset ≥ cursor at which the part's last `tail` bytes start aligned
        offset = cursor + (-(cursor + nbytes - tail)) % ALIGN
        layout[name] = {"dtype": dtype, "shape": shape, "offset": offset, "nbytes": nbytes}
        cursor = offset + nbytes
    head = dict(header, parts=layout, size=cursor, sha256=_NO_SHA)
    prefix = _prefix(head)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            # held while written: `persist.sweep_temp_files` (another process opening the index)
            # leaves alone a temporary file that somebody holds locked
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            fh.write(prefix)  # reserved; rewritten below once the checksum is known
            digest = hashlib.sha256()

            def emit(block: bytes | memoryview) -> int:
                digest.update(block)
                return fh.write(block)

            written = 0
            for name, part in parts.items():
                spec = layout[name]
                emit(bytes(spec["offset"] - written))
                if isinstance(part, FaissPart):
                    _write_index(part.index, emit)
                else:
                    _write_array(part, emit)
                written = spec["offset"] + spec["nbytes"]
                if fh.tell() - len(prefix) != written:
                    raise RuntimeError(f"{path.name}: part {name} wrote an unexpected size")
            head["sha256"] = digest.hexdigest()
            final = _prefix(head)
            if len(final) != len(prefix):  # cannot happen: the checksum has a fixed width
                raise RuntimeError(f"{path.name}: header changed size")
            fh.seek(0)
            fh.write(final)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return head


def read_header(path: Path) -> dict[str, Any]:
    """The header of a container file, unverified (cheap: the payload is not read)."""
    try:
        with open(path, "rb") as fh:
            return _read_head(fh, path)[0]
    except FileNotFoundError as exc:
        raise StaleOrCorrupt(f"{path.name}: missing") from exc


def read_container(path: Path, expect: Mapping[str, Any]) -> Container:
    """Verify `path` (magic, header fields in `expect`, size, SHA-256 streamed in blocks) and map
    it read-only; raise `StaleOrCorrupt` if anything is off."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after the mapping is made
    except FileNotFoundError as exc:
        raise StaleOrCorrupt(f"{path.name}: missing") from exc
    with fh:
        head, start = _read_head(fh, path)
        for key, value in expect.items():
            if head.get(key) != value:
                raise StaleOrCorrupt(
                    f"{path.name}: built for {key}={head.get(key)!r}, need {value!r}"
                )
        size = head.get("size")
        if not isinstance(size, int) or os.fstat(fh.fileno()).st_size != start + size:
            raise StaleOrCorrupt(f"{path.name}: truncated or extended")
        digest = hashlib.sha256()
        buf = memoryview(bytearray(_BLOCK))
        while k := fh.readinto(buf):
            digest.update(buf[:k])
        if digest.hexdigest() != head.get("sha256"):
            raise StaleOrCorrupt(f"{path.name}: checksum mismatch (damaged)")
        mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    arrays: dict[str, np.ndarray] = {}
    parts = head.get("parts")
    if not isinstance(parts, dict):
        raise StaleOrCorrupt(f"{path.name}: no parts table")
    for name, spec in parts.items():
        try:
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(s) for s in spec["shape"])
            offset, nbytes = int(spec["offset"]), int(spec["nbytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StaleOrCorrupt(f"{path.name}: bad entry for part {name}") from exc
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes or offset < 0 or offset + nbytes > size:
            raise StaleOrCorrupt(f"{path.name}: part {name} does not fit the file")
        if mapping is None or count == 0:
            arrays[name] = np.zeros(shape, dtype)
        else:
            view = np.frombuffer(mapping, dtype=dtype, count=count, offset=start + offset)
            arrays[name] = view.reshape(shape)
    return Container(head, arrays, mapping)


def _prefix(head: dict[str, Any]) -> bytes:
    """Magic, length and JSON header, padded with spaces so the payload starts aligned."""
    raw = json.dumps(head, sort_keys=True).encode()
    raw += b" " * ((-(_PREFIX + len(raw))) % ALIGN)
    return MAGIC + struct.pack("<I", len(raw)) + raw


def _read_head(fh: Any, path: Path) -> tuple[dict[str, Any], int]:
    """Parse magic and header; return the header and the payload's file offset."""
    lead = fh.read(_PREFIX)
    if len(lead) < _PREFIX or not lead.startswith(MAGIC):
        raise StaleOrCorrupt(f"{path.name}: not an index file")
    (n,) = struct.unpack("<I", lead[len(MAGIC) :])
    try:
        head = json.loads(fh.read(n))
    except ValueError as exc:
        raise StaleOrCorrupt(f"{path.name}: damaged header") from exc
    if not isinstance(head, dict):
        raise StaleOrCorrupt(f"{path.name}: damaged header")
    return head, _PREFIX + n


def _write_array(array: np.ndarray, emit: Any) -> None:
    """Stream an array's bytes (C order) in blocks: a memory-mapped source is paged in as it goes."""
    flat = np.ascontiguousarray(array).reshape(-1)
    raw = flat.view(np.uint8).data if flat.size else memoryview(b"")
    for lo in range(0, len(raw), _BLOCK):
        emit(raw[lo : lo + _BLOCK])


def _write_index(index: faiss.Index, sink: Any) -> None:
    """Serialise `index` through FAISS's streaming writer into `sink(block) -> bytes written`."""
    writer = _faiss.PyCallbackIOWriter(sink)
    faiss.write_index(index, writer)
    del writer  # flushes FAISS's buffered tail into `sink`


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (the directory entry); skipped where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
