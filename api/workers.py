"""Several server processes on one listening socket: `rag serve` with `RAG_WORKERS` above 1.

One process serves on about one core: the interpreter lock serialises the Python of a search.
The supervisor (the `rag serve` process) opens the index once — so a rebuild, when one is
needed, happens once and is saved, not in every worker — binds the socket, and starts the
workers with `spawn` (a fork would copy the embedder's threads and locks mid-state). Each worker
opens the index itself: the segment files are memory-mapped, so their pages are shared through
the page cache, not copied. Worker 0 runs the background merges; the others adopt the layout it
saves (`Indexer._adopt_saved`). Writes through any worker are committed to the one SQLite store
and reach the others through the change log within `RECHECK_SECONDS`.

The kernel spreads new connections over the workers accepting on the shared socket. A worker
that dies is started again; SIGTERM or SIGINT stops them all gracefully (each finishes its
requests in flight). `serve.json` names the supervisor, written once every worker is ready.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

import uvicorn

from rag.config import Settings
from rag.errors import RagError
from rag.serving import remove_serve_file, write_serve_file

log = logging.getLogger("rag.workers")

READY_SECONDS = 600.0  # a worker opening a large index maps and verifies every segment file
STOP_SECONDS = 30.0  # a worker gets this long to finish its requests before it is killed
RESTART_PAUSE = 1.0  # between restarts of a worker that keeps dying


class _ReadyServer(uvicorn.Server):
    """uvicorn's server that tells the supervisor once it is listening."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        """As uvicorn.Server; `ready` is set once startup is complete."""
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: Any = None) -> None:
        """Start serving on the inherited socket, then signal readiness."""
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self.ready.set()


def run_worker(settings: Settings, sock: socket.socket, index: int, ready: Event) -> None:
    """One worker process: open the index, serve the app on the shared socket until stopped."""
    from threadpoolctl import threadpool_limits

    from api.app import create_app
    from api.server import server_config
    from rag.engine import open_engine

    threadpool_limits(1, user_api="blas")  # as `rag serve` does: see there
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [worker {index}] %(name)s: %(message)s",
    )
    engine = open_engine(settings, background_merge=index == 0)
    app = create_app(settings, engine=engine, owns_engine=True)
    _ReadyServer(server_config(app, settings), ready).run(sockets=[sock])


class Supervisor:
    """Starts `settings.workers` worker processes on one bound socket and keeps them running."""

    def __init__(self, settings: Settings) -> None:
        """Bind the socket now: a port in use is an error before any worker starts."""
        self.settings = settings
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY on accepted connections only when
        # the socket says TCP, and without it every keep-alive response waits ~40 ms for a
        # delayed ACK (what uvicorn's own `--workers` socket suffers: Kludex/uvicorn#3149).
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((settings.host, settings.port))
        except OSError as exc:
            self.sock.close()
            raise RagError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from exc
        self.sock.listen(2048)
        self.sock.set_inheritable(True)
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, Any] = {}
        self._ready: dict[int, Event] = {}
        self._stopping = False

    def _start(self, index: int) -> None:
        ready = self._ctx.Event()
        proc = self._ctx.Process(
            target=run_worker,
            args=(self.settings, self.sock, index, ready),
            name=f"rag-worker-{index}",
            daemon=False,
        )
        proc.start()
        self._procs[index] = proc
        self._ready[index] = ready

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; returns the exit status (1: no worker became ready)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        s = self.settings
        for i in range(s.workers):
            self._start(i)
        deadline = time.monotonic() + READY_SECONDS
        while not self._stopping and not all(e.is_set() for e in self._ready.values()):
            if time.monotonic() > deadline or any(not p.is_alive() for p in self._procs.values()):
                log.error("a worker did not start: stopping")
                self._shutdown()
                return 1
            time.sleep(0.1)
        if self._stopping:
            self._shutdown()
            return 0
        write_serve_file(s.index_dir, s.host, s.port, s.embedder, bool(s.api_keys or s.admin_keys))
        log.info("%d workers serving on http://%s:%d", s.workers, s.host, s.port)
        try:
            while not self._stopping:
                for i, proc in list(self._procs.items()):
                    if not proc.is_alive() and not self._stopping:
                        log.warning("worker %d exited (%s): starting it again", i, proc.exitcode)
                        time.sleep(RESTART_PAUSE)
                        self._start(i)
                time.sleep(0.2)
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        """Stop every worker (SIGTERM: uvicorn's graceful stop), killing any that hang."""
        remove_serve_file(self.settings.index_dir)
        for proc in self._procs.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for proc in self._procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.sock.close()


def serve_workers(settings: Settings) -> int:
    """`rag serve` with several workers: open (and if needed rebuild) the index once, then run
    the supervisor."""
    from rag.engine import open_engine

    # Opened and closed here so that a rebuild happens once, before the workers map its files,
    # and an unusable index is one `error:` line before any worker starts.
    open_engine(settings, background_merge=False).close()
    return Supervisor(settings).run()
