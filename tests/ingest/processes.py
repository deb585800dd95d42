"""What the tests of the parse sandbox look at from outside: processes (through /proc), their
peak memory, and a guard that keeps a regressed in-process parse from eating the machine.
Imported as `ingest.processes`."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def children_of(pid: int) -> list[int]:
    """Live (not zombie) child processes of `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                out.append(int(entry.name))
    return out


def cpu_ticks(pid: int) -> int:
    """User + system CPU time a process has used, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def busy_parse_process(pid: int, since: dict[int, int], ticks: int = 20) -> int | None:
    """A parse process of `pid` that has used `ticks` more CPU ticks than it had in `since`
    (pid → ticks; a new process counts from 0): one that is parsing."""
    for worker in parse_processes(pid):
        if cpu_ticks(worker) - since.get(worker, 0) >= ticks:
            return worker
    return None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def parse_processes(pid: int) -> list[int]:
    """Parse workers (`python -m rag.ingest.worker`) process `pid` runs."""
    out = []
    for child in children_of(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"rag.ingest.worker" in cmdline:
            out.append(child)
    return out


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition()` every 50 ms for up to `timeout` seconds; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` memory field (`VmHWM`, `VmRSS`…) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@contextmanager
def address_space_headroom(extra_bytes: int) -> Iterator[None]:
    """Let this process map at most `extra_bytes` more while the block runs (`RLIMIT_AS`), so a
    parse that regresses to inflating a bomb in-process fails with `MemoryError` instead of
    taking gigabytes from the machine."""
    import os

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = status_kib(os.getpid(), "VmSize") * 1024 + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
