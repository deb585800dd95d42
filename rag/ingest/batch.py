"""Read and prepare the files of a folder ingest, in worker processes when asked to.

A file whose size and mtime are the ones stored for its source is not read at all (the caller
decides that, with `stat_of` and `FileState`); every other file is read, hashed, and — unless its
hash is the stored one — decoded, normalised, chunked and fingerprinted (`prepare`). That work is
per file and independent, so `load_files` can spread it over a `ProcessPoolExecutor`; results come
back in job order, at most a few jobs ahead of the consumer (memory stays bounded when embedding,
in the main process, is the slower side).

A file's modification time is trusted to reveal a later change only when it is older than the
moment of the `stat` by `RACY_NS`: a file written again within one timestamp tick of being read
would keep its size and mtime (git's "racily clean" problem); such a file is compared by content
next time instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import DocumentError, NotFound
from rag.ingest.pipeline import Prepared, content_hash, prepare, read_file

log = logging.getLogger(__name__)

RACY_NS = 1_000_000_000  # an mtime closer than this to the stat's time is not trusted
WINDOW_PER_WORKER = 4  # jobs in flight per worker process


@dataclass(frozen=True)
class Stat:
    """A file's size and mtime at one moment, and whether they may be trusted later."""

    size: int
    mtime_ns: int
    trusted: bool

    @property
    def key(self) -> tuple[int, int]:
        """`(size, mtime_ns)`, as stored."""
        return (self.size, self.mtime_ns)


def stat_of(path: Path) -> Stat:
    """`stat` a file (raises `OSError`); taken *before* reading it, so a write in between shows
    as a different mtime next time."""
    now = time.time_ns()
    st = path.stat()
    return Stat(st.st_size, st.st_mtime_ns, st.st_mtime_ns <= now - RACY_NS)


@dataclass(frozen=True)
class FileJob:
    """One file to read and prepare, with what is stored for its source."""

    path: Path
    source: str
    previous: str | None  # content hash stored for the source, if any
    chunk_size: int
    chunk_overlap: int
    max_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)  # the user's, for every file


@dataclass(frozen=True)
class Loaded:
    """What reading one file gave: a prepared document, the same content as stored
    (`prepared` None, `error` empty), or a failure (`error` says why)."""

    job: FileJob
    prepared: Prepared | None = None
    error: str = ""


def load_file(job: FileJob) -> Loaded:
    """Read, hash and (when changed) prepare one file. Never raises: one bad file fails alone."""
    try:
        data = read_file(job.path, job.max_bytes)
        if content_hash(data, job.metadata) == job.previous:
            return Loaded(job)
        return Loaded(
            job,
            prepare(
                job.source,
                data,
                chunk_size=job.chunk_size,
                chunk_overlap=job.chunk_overlap,
                max_bytes=job.max_bytes,
                metadata=job.metadata,
            ),
        )
    except (DocumentError, NotFound) as exc:
        return Loaded(job, error=str(exc))
    except OSError as exc:  # unreadable (permissions, I/O error, vanished)
        return Loaded(job, error=f"{job.path}: cannot be read ({exc.strerror or exc})")
    except Exception as exc:  # a bug on one odd file must not stop the others; say what it was
        log.exception("preparing %s failed", job.path)
        return Loaded(job, error=f"{job.path}: cannot be prepared ({type(exc).__name__}: {exc})")


def load_files(jobs: Sequence[FileJob], workers: int = 0) -> Iterator[Loaded]:
    """`load_file` of every job, in job order; with `workers` > 1 (and several jobs) in that
    many worker processes. A pool that breaks (a worker killed) leaves the rest to this process."""
    if workers <= 1 or len(jobs) < 2:
        yield from map(load_file, jobs)
        return
    # spawn, not fork: the parent runs threads (query batcher, BLAS) whose locks a fork would copy
    context = multiprocessing.get_context("spawn")
    done = 0
    try:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            pending: deque[Future[Loaded]] = deque()
            queued = iter(jobs)
            for job in queued:
                pending.append(pool.submit(load_file, job))
                if len(pending) >= WINDOW_PER_WORKER * workers:
                    break
            while pending:
                loaded = pending.popleft().result()
                for job in queued:  # keep the window full
                    pending.append(pool.submit(load_file, job))
                    break
                done += 1
                yield loaded
    except BrokenProcessPool:
        log.warning("the ingest worker pool broke; preparing the remaining files in-process")
        yield from map(load_file, jobs[done:])
