"""What a failed SQLite call means for its caller: no room, a read-only index, or a damaged file.

SQLite reports a full disk as SQLITE_FULL (a shared-memory file it cannot grow as
SQLITE_IOERR_SHMSIZE; a write refused by a quota as SQLITE_IOERR_WRITE), a write to a read-only
file or directory as SQLITE_READONLY*, and a damaged file as SQLITE_CORRUPT* or SQLITE_NOTADB.
Each becomes the library error that the HTTP edge maps to 507, 503 or 500, with a message that
says what happened and what to do. Anything else (a locked database, a misuse) is left as it is:
it is no storage condition, and its traceback is what finds the bug.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexError_, RagError, ReadOnlyIndex, StorageFull

# Write failures that mean "no room": SQLite turns ENOSPC into SQLITE_FULL, but EDQUOT (and a
# shared-memory file that cannot be extended) arrive as these I/O errors.
_NO_ROOM = {
    "SQLITE_FULL",
    "SQLITE_IOERR_WRITE",
    "SQLITE_IOERR_SHMSIZE",
    "SQLITE_IOERR_TRUNCATE",
    "SQLITE_IOERR_FSYNC",
}
_UNREADABLE = {"SQLITE_NOTADB", "SQLITE_IOERR_READ", "SQLITE_IOERR_SHORT_READ"}


def error_name(exc: sqlite3.Error) -> str:
    """SQLite's name of the (extended) result code behind `exc`, e.g. `SQLITE_FULL`; '' if none."""
    return str(getattr(exc, "sqlite_errorname", "") or "")


def no_room(path: Path, detail: object) -> StorageFull:
    """The error for a write that did not fit on the disk holding the index at `path`."""
    return StorageFull(
        f"no space left for the index at {path.parent} ({detail}); the write was not applied; "
        "free some space and retry"
    )


def read_only(path: Path, detail: object) -> ReadOnlyIndex:
    """The error for a write to an index that cannot be written."""
    return ReadOnlyIndex(
        f"the index at {path.parent} is read-only ({detail}); writes are refused, "
        "searches are served"
    )


def damaged(path: Path, detail: object) -> IndexError_:
    """The error for a database file that cannot be read as an index."""
    return IndexError_(
        f"{path}: the index database is damaged ({detail}); restore it from a backup, "
        "or index the documents again into a new RAG_INDEX_DIR"
    )


def translate(exc: sqlite3.Error, path: Path) -> RagError | None:
    """The library error `exc` (raised by SQLite on the database at `path`) stands for, or None
    when it is no storage condition."""
    name = error_name(exc)
    if name in _NO_ROOM:
        return no_room(path, exc)
    if name.startswith("SQLITE_READONLY"):
        return read_only(path, exc)
    if name.startswith("SQLITE_CORRUPT") or name in _UNREADABLE:
        return damaged(path, exc)
    return None


def open_refusal(exc: sqlite3.Error, path: Path) -> RagError | None:
    """Why the database at `path` could not be opened for writing, when the reason is the disk
    (no room for SQLite's -wal/-shm files, or a read-only file system or directory): the index
    is then served read-only and writes are refused with this error. None for anything else."""
    name = error_name(exc)
    if name in _NO_ROOM:
        return no_room(path, "the disk was too full to open it for writing")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
        return read_only(path, "it could not be opened for writing")
    return None


def is_no_room(exc: OSError) -> bool:
    """Whether an OS error says the disk or the quota is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def is_read_only(exc: OSError) -> bool:
    """Whether an OS error says the file system or the file may not be written."""
    return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Raise SQLite's storage errors inside the block as the library's (`translate`); an error
    it does not name is raised unchanged."""
    try:
        yield
    except sqlite3.Error as exc:
        mapped = translate(exc, path)
        if mapped is None:
            raise
        raise mapped from exc
