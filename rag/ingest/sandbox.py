"""Parse untrusted bytes where a runaway parser cannot hurt the service.

Parsers are big C and Python libraries fed whatever a client sends: a 1 MB `.docx` that inflates
to gigabytes, a PDF whose pages take minutes to read. The size limits (`rag.ingest.limits`) stop
the known shapes early; this module bounds everything else. `Sandbox.run` calls a function (in
practice `rag.ingest.pipeline.prepare` bound to a file's bytes) in a worker process that

- may map at most `memory_mb` MiB of address space (`RLIMIT_AS`): an allocation past it fails
  in the worker, never touching the caller's memory;
- is killed when the call runs longer than `timeout` seconds of wall clock (by the caller), and
  in any case after as many seconds of CPU for the call (`RLIMIT_CPU`, should the caller be gone);
- is killed at once when the caller gives up (`cancelled`, e.g. the HTTP client went away).

A call stopped by a limit, or whose worker crashed, raises `DocumentTooComplex` (422) naming the
limit and its setting; an error the function raises on purpose (a `DocumentError`) comes back as
itself. At most `processes` workers run at once (later calls wait for one), so parse memory is
bounded by `processes × memory_mb` whatever is uploaded. Calls and results are pickled.

A worker is a fresh interpreter running `rag.ingest.worker` (started with `subprocess`, not
multiprocessing: its children import the program's main module again, which costs seconds under
a script that loads the engine and runs an unguarded script a second time; and the service runs
threads, which a plain `fork` would copy in whatever state their locks were). It loads and warms
up the parsers once (~2 s) and is kept for the next calls. It is replaced when it was killed or
crashed, and retires itself after a call that grew its address space by more than `RETIRE_PEAK_SHARE`
of what the limit left it once the parsers were loaded (a parse that grew the heap leaves it
grown, and the out-of-memory test reads the peak), after running out of memory, and after
`MAX_CALLS_PER_WORKER` calls. So no parse inherits a bloated heap.

Workers keep the normal CPU priority. Searches suffered from in-process parsing because it held
the interpreter lock, which a worker does not share; a lower priority would also starve a parse on
a busy machine until the wall-clock limit refused a legitimate file.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from rag.errors import (
    Cancelled,
    ConfigError,
    CorruptDocument,
    DocumentTooComplex,
    RagError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.1  # how often a waiting call looks at `cancelled`
START_SECONDS = 120.0  # a worker that is not ready by then is broken
MAX_CALLS_PER_WORKER = 100  # then a worker retires: bounds what caches and fragmentation add up
RETIRE_PEAK_SHARE = 0.5  # a worker that grew by this share of what the limit left it retires
MEMORY_PEAK_SHARE = 0.9  # a failed call that brought its worker this close to the limit ran out
_OUT_OF_MEMORY = re.compile(
    r"memory allocation failed|unable to allocate|out of memory|cannot allocate memory", re.I
)
# One thread per BLAS / OpenMP pool: a worker does no large matrix work, and every thread's
# stack and buffers count against its address-space limit.
_WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class SandboxLimits:
    """What each parse may use, and how many parse processes may run at once."""

    memory_mb: int
    timeout: float  # seconds, wall clock
    processes: int = 1


class _Worker:
    """A worker process and the caller's end of its connection."""

    def __init__(self, limits: SandboxLimits) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rag.ingest.worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the caller's output (e.g. `--json`) stays its own
                env={**os.environ, **_WORKER_ENV},
                start_new_session=True,  # a Ctrl-C is the caller's to handle, not the worker's
            )
        except OSError as exc:
            ours.close()
            raise ConfigError(f"cannot start a parse worker ({exc})") from exc
        finally:
            theirs.close()  # the worker holds its own end: EOF here then means it is gone
        self.connection = Connection(ours.detach())
        self.connection.send((sys.path, limits.memory_mb * 1024 * 1024))
        self.ready = False

    def stop(self) -> None:
        """Kill the worker (if it still runs) and reap it."""
        self.connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Sandbox:
    """Runs calls in limited worker processes (see the module docstring). Thread-safe."""

    def __init__(self, limits: SandboxLimits) -> None:
        """Check the platform can sandbox; no process starts before `start` or the first `run`."""
        try:
            import resource  # noqa: F401  (the limits need it: POSIX only)
        except ImportError as exc:
            raise ConfigError(
                "the parse sandbox needs a POSIX system (resource limits); "
                "set RAG_PARSE_SANDBOX=false to parse in-process"
            ) from exc
        self.limits = limits
        self._slots = threading.BoundedSemaphore(max(1, limits.processes))
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._closed = False  # after `close`, a worker that finishes is stopped, not kept
        # idle workers go with the sandbox, even one nobody closed
        self._finalizer = weakref.finalize(self, _stop_all, self._idle, self._lock)

    def start(self) -> None:
        """Start one worker now and wait until it has loaded the parsers (~2 s), so that the
        first `run` does not wait for it. Optional."""
        if not self._slots.acquire(blocking=False):
            return  # calls are running: they started workers
        try:
            worker = self._take()
            try:
                self._ready(worker, "(warm-up)", None)
            except BaseException:
                worker.stop()
                raise
            self._keep(worker)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Stop the idle workers (a running call or warm-up keeps its worker until it ends, then
        stops it)."""
        with self._lock:
            self._closed = True
        self._finalizer()

    def _keep(self, worker: _Worker) -> None:
        """Put a worker that may serve again with the idle ones, or stop it if the sandbox has
        been closed meanwhile (a warm-up still starting when the engine closed)."""
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.stop()

    def run(
        self, name: str, call: Callable[[], T], *, cancelled: Callable[[], bool] | None = None
    ) -> T:
        """`call()` in a worker process; its result, or the error it raised.

        `call` must be picklable (a function of an importable module, not of `__main__`: the
        worker is a program of its own; or a `functools.partial` of one with picklable
        arguments). `name` (the document) starts the messages of the errors raised
        here: `DocumentTooComplex` when the call went over a limit or its worker crashed, and
        `Cancelled` as soon as `cancelled()` returns true (polled every `POLL_SECONDS`, also
        while waiting for a worker); the worker is killed then.
        """
        while not self._slots.acquire(timeout=POLL_SECONDS):
            if cancelled is not None and cancelled():
                raise _cancelled(name)
        try:
            kind, value = self._call(name, call, cancelled)
        finally:
            self._slots.release()
        if kind == "ok":
            return value
        if kind == "memory":
            raise DocumentTooComplex(
                f"{name}: parsing needed more memory than the limit of {self.limits.memory_mb} "
                "MiB (RAG_PARSE_MEMORY_MB); the file is too complex to read"
            )
        assert isinstance(value, BaseException)
        raise value

    def _take(self) -> _Worker:
        """An idle worker that still runs, or a new one (the caller holds a slot)."""
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                worker.stop()
        return _Worker(self.limits)

    def _ready(self, worker: _Worker, name: str, cancelled: Callable[[], bool] | None) -> None:
        """Wait until a new worker has loaded the parsers (not counted in the call's time)."""
        deadline = time.monotonic() + START_SECONDS
        while not worker.ready:
            if wait([worker.connection], timeout=POLL_SECONDS):
                try:
                    worker.ready = worker.connection.recv() == "ready"
                except EOFError:
                    worker.process.wait()
                    raise ConfigError(
                        f"the parse worker did not start (exit status {worker.process.returncode}"
                        "; its error is in the service's log)"
                    ) from None
            elif cancelled is not None and cancelled():
                raise _cancelled(name)
            elif time.monotonic() > deadline:
                raise ConfigError(f"the parse worker did not start within {START_SECONDS:g} s")

    def _call(
        self, name: str, call: Callable[[], Any], cancelled: Callable[[], bool] | None
    ) -> tuple[str, Any]:
        """Hand the call to a worker and wait for its outcome; keep the worker if it may serve
        again, else make sure it is gone."""
        worker = self._take()
        keep = False
        try:
            self._ready(worker, name, cancelled)
            try:
                worker.connection.send((call, math.ceil(self.limits.timeout) + 1))
            except (BrokenPipeError, ConnectionResetError):  # died idle (killed from outside)
                worker.stop()
                worker = _Worker(self.limits)
                self._ready(worker, name, cancelled)
                worker.connection.send((call, math.ceil(self.limits.timeout) + 1))
            kind, value, retiring = self._outcome(name, worker, cancelled)
            keep = not retiring
            return kind, value
        finally:
            if keep:
                self._keep(worker)
            else:
                worker.stop()

    def _outcome(
        self, name: str, worker: _Worker, cancelled: Callable[[], bool] | None
    ) -> tuple[str, Any, bool]:
        """The worker's answer `(kind, value, retiring)`, or the error for a call that went over
        a limit or whose worker died."""
        deadline = time.monotonic() + self.limits.timeout
        while True:
            remaining = deadline - time.monotonic()
            if wait([worker.connection], timeout=max(0.0, min(POLL_SECONDS, remaining))):
                try:
                    answer: tuple[str, Any, bool] = worker.connection.recv()
                    return answer
                except EOFError:  # died before it could answer (killed by a limit, crashed)
                    break
            if cancelled is not None and cancelled():
                raise _cancelled(name)
            if remaining <= 0:
                raise DocumentTooComplex(
                    f"{name}: parsing took longer than the limit of {self.limits.timeout:g} s "
                    "(RAG_PARSE_TIMEOUT); the file is too complex to read"
                )
        raise self._died(name, worker.process.wait())

    def _died(self, name: str, exitcode: int | None) -> DocumentTooComplex:
        """The error for a worker that ended without an answer."""
        if exitcode is not None and exitcode < 0 and -exitcode == signal.SIGXCPU:
            return DocumentTooComplex(
                f"{name}: parsing used more CPU time than the limit of "
                f"{math.ceil(self.limits.timeout) + 1} s (RAG_PARSE_TIMEOUT); the file is too "
                "complex to read"
            )
        if exitcode is not None and exitcode < 0:
            how = f"killed by {signal.Signals(-exitcode).name}"
        else:
            how = f"exit status {exitcode}"
        log.warning("a parse process for %s ended without an answer (%s)", name, how)
        return DocumentTooComplex(
            f"{name}: the parser stopped on this file ({how}); it is damaged or too complex to "
            f"read within {self.limits.memory_mb} MiB (RAG_PARSE_MEMORY_MB)"
        )


def _stop_all(idle: list[_Worker], lock: threading.Lock) -> None:
    with lock:
        workers = list(idle)
        idle.clear()
    for worker in workers:
        worker.stop()


def _cancelled(name: str) -> Cancelled:
    return Cancelled(f"{name}: cancelled before anything was stored; parsing stopped")


def serve(connection: Connection, memory_bytes: int) -> None:
    """The worker's side (`rag.ingest.worker`): set the limits, say "ready", then answer calls
    `(call, cpu_seconds)` with `(kind, value, retiring)` — `("ok", result)`, `("raised", error)`
    or `("memory", None)` — until the connection closes or the worker retires (see the module
    docstring)."""
    import resource

    _limit(resource.RLIMIT_CORE, 0, 0)  # a CPU-limit signal would otherwise dump a core
    _limit(resource.RLIMIT_AS, memory_bytes, memory_bytes)
    # What the interpreter and the parsers take before any call: growth is measured from here.
    baseline = _peak_address_space()
    connection.send("ready")
    for calls in range(1, MAX_CALLS_PER_WORKER + 1):
        try:
            call, cpu_seconds = connection.recv()
        except EOFError:
            return
        except Exception as exc:  # a call that cannot be unpickled here (a module it needs…)
            connection.send(("raised", _portable(exc), False))
            continue
        # RLIMIT_CPU counts the process's whole life: allow this call `cpu_seconds` more (the
        # soft limit sends SIGXCPU, which ends the process). Only the soft limit: an unprivileged
        # process may raise it again for the next call, never a hard one it lowered.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = math.ceil(usage.ru_utime + usage.ru_stime)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = used + cpu_seconds
        resource.setrlimit(
            resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
        )
        message: tuple[str, Any]
        try:
            message = ("ok", call())
        except BaseException as exc:
            message = (
                ("memory", None)
                if _out_of_memory(exc, memory_bytes)
                else ("raised", _portable(exc))
            )
        del call  # the document and its result go before the next call
        retiring = (
            message[0] == "memory"
            or calls == MAX_CALLS_PER_WORKER
            or _peak_address_space() - baseline > RETIRE_PEAK_SHARE * (memory_bytes - baseline)
        )
        try:
            connection.send((*message, retiring))
        except MemoryError:  # the result itself does not fit in what is left to pickle it
            connection.send(("memory", None, True))
            return
        if retiring:
            return


def _limit(which: int, soft: int, hard: int) -> None:
    """Lower a resource limit (never above the hard limit the process already has)."""
    import resource

    _, current = resource.getrlimit(which)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
    resource.setrlimit(which, (min(soft, hard), hard))


def _out_of_memory(exc: BaseException, memory_bytes: int) -> bool:
    """Whether `exc` failed for lack of memory. Format loaders turn any parser error into
    `CorruptDocument`, and parsers do not always say memory ran out: under the limit libxml2
    reports "unknown error", zlib "Unable to allocate output buffer". So: a `MemoryError`, or
    such a message, in the chain of errors, or a process that reached `MEMORY_PEAK_SHARE` of
    its address-space limit (the allocation that failed was the one past it). A deliberate
    verdict other than "damaged" (encrypted, too large, no text layer…) stands as it is."""
    if isinstance(exc, RagError) and not isinstance(exc, CorruptDocument):
        return False
    if _peak_address_space() >= MEMORY_PEAK_SHARE * memory_bytes:
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or _OUT_OF_MEMORY.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _peak_address_space() -> int:
    """This process's peak address space in bytes (`VmPeak`; 0 where /proc cannot tell)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (library errors do), else a `RuntimeError` naming it; an
    unexpected error carries the child's traceback as a note, for the parent's log."""
    if not isinstance(exc, RagError):
        exc.add_note("in the parse process:\n" + "".join(traceback.format_exception(exc)))
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        error = RuntimeError(f"{type(exc).__name__}: {exc}")
        for note in getattr(exc, "__notes__", ()):
            error.add_note(note)
        return error
