"""Read and prepare the files of a folder ingest, in worker processes when asked to.

A file whose size and mtime are the ones stored for its source is not read at all (the caller
decides that, with `stat_of` and `FileState`); every other file is read, hashed, and — unless its
hash is the stored one — decoded, normalised, chunked and fingerprinted (`prepare`). With a
`Sandbox`, `prepare` runs in a limited child process per file, several at once when asked to (a
file that needs too much time or memory fails alone, the ingest goes on); results come back in
job order, at most a few jobs ahead of the consumer (memory stays bounded when embedding, in the
main process, is the slower side). Without one, files are prepared here, one at a time.

A file's modification time is trusted to reveal a later change only when it is older than the
moment of the `stat` by `RACY_NS`: a file written again within one timestamp tick of being read
would keep its size and mtime (git's "racily clean" problem); such a file is compared by content
next time instead.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import DocumentError, NotFound
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.pipeline import Prepared, content_hash, prepare, read_file
from rag.ingest.sandbox import Sandbox

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
    limits: ParseLimits = DEFAULT_LIMITS


@dataclass(frozen=True)
class Loaded:
    """What reading one file gave: a prepared document, the same content as stored
    (`prepared` None, `error` empty), or a failure (`error` says why)."""

    job: FileJob
    prepared: Prepared | None = None
    error: str = ""


def load_file(job: FileJob, sandbox: Sandbox | None = None) -> Loaded:
    """Read, hash and (when changed) prepare one file, in a `sandbox` process when given. Never
    raises: one bad file fails alone."""
    try:
        data = read_file(job.path, job.max_bytes)
        if content_hash(data, job.metadata) == job.previous:
            return Loaded(job)
        call = functools.partial(
            prepare,
            job.source,
            data,
            chunk_size=job.chunk_size,
            chunk_overlap=job.chunk_overlap,
            max_bytes=job.max_bytes,
            metadata=job.metadata,
            limits=job.limits,
        )
        return Loaded(job, sandbox.run(job.source, call) if sandbox else call())
    except (DocumentError, NotFound) as exc:
        return Loaded(job, error=str(exc))
    except OSError as exc:  # unreadable (permissions, I/O error, vanished)
        return Loaded(job, error=f"{job.path}: cannot be read ({exc.strerror or exc})")
    except Exception as exc:  # a bug on one odd file must not stop the others; say what it was
        log.exception("preparing %s failed", job.path)
        return Loaded(job, error=f"{job.path}: cannot be prepared ({type(exc).__name__}: {exc})")


def load_files(
    jobs: Sequence[FileJob], workers: int = 0, sandbox: Sandbox | None = None
) -> Iterator[Loaded]:
    """`load_file` of every job, in job order.

    With a `sandbox`, files are prepared in its processes, `max(1, workers)` at once (threads
    here read the files and wait for the processes), up to `WINDOW_PER_WORKER` jobs per worker
    ahead of the consumer: the next files parse while the caller embeds. Without one, one at a
    time in this process.
    """
    if sandbox is None:
        yield from map(load_file, jobs)
        return
    parallel = max(1, workers)
    pool = ThreadPoolExecutor(parallel, thread_name_prefix="rag-parse")
    try:
        pending: deque[Future[Loaded]] = deque()
        queued = iter(jobs)

        def submit() -> None:
            for job in queued:
                pending.append(pool.submit(load_file, job, sandbox))
                return

        for _ in range(WINDOW_PER_WORKER * parallel):
            submit()
        while pending:
            loaded = pending.popleft().result()
            submit()  # keep the window full
            yield loaded
    finally:  # the consumer may stop early: drop what has not started
        pool.shutdown(wait=True, cancel_futures=True)
