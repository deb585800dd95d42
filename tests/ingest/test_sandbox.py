"""The parse sandbox (`rag.ingest.sandbox`): calls run in a worker process with memory and CPU
limits; a call over a limit, too slow, crashed or no longer wanted has its worker killed and is
reported as a `DocumentError` naming the limit, and this process is unharmed. Workers serve
several calls, and retire after one that grew them."""

from __future__ import annotations

import functools
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest.processes import alive, parse_processes, status_kib, wait_until

from rag.errors import Cancelled, CorruptDocument, DocumentTooComplex, EncryptedDocument
from rag.ingest.sandbox import Sandbox, SandboxLimits


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(SandboxLimits(memory_mb=512, timeout=20))
    box.start()
    yield box
    box.close()


# --- what the children run (module level: pickled by reference) ------------------------------
def whoami() -> tuple[int, tuple[int, int], float]:
    """pid, address-space limit, and CPU seconds this call may still use."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
    return (
        os.getpid(),
        resource.getrlimit(resource.RLIMIT_AS),
        soft - usage.ru_utime - usage.ru_stime,
    )


def hog_memory(megabytes: int) -> int:
    held = [bytearray(1 << 20) for _ in range(megabytes)]  # 1 MiB at a time, as a parser grows
    return len(held)


def sleep_forever(pid_file: Path) -> None:
    pid_file.write_text(str(os.getpid()))
    time.sleep(600)


def spin_past_own_cpu_limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (1, 5))
    while True:
        pass


def raise_error(error: Exception) -> None:
    raise error


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} and {b}")


def raise_unpicklable() -> None:
    raise Unpicklable(1, 2)


def damaged_for_lack_of_memory() -> None:
    try:
        raise MemoryError
    except MemoryError as exc:
        raise CorruptDocument("x.docx: the .docx file is damaged (MemoryError)") from exc


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


# --- tests ---------------------------------------------------------------------------------
def test_call_runs_in_a_worker_with_memory_and_cpu_limits(sandbox: Sandbox) -> None:
    pid, address_space, cpu_left = sandbox.run("doc", whoami)
    assert pid != os.getpid()
    assert address_space == (512 << 20, 512 << 20)
    assert 20 <= cpu_left <= 22  # the timeout, rounded up, plus a second, for this call
    again, _, cpu_left = sandbox.run("doc", whoami)
    assert again == pid and 20 <= cpu_left <= 22  # a warm worker, and a fresh CPU allowance


def test_worker_grown_by_a_call_retires(sandbox: Sandbox) -> None:
    pid = sandbox.run("doc", whoami)[0]
    assert sandbox.run("big", functools.partial(hog_memory, 300)) == 300  # over half the limit
    assert not alive(pid) or wait_until(lambda: not alive(pid), 5)
    assert sandbox.run("doc", whoami)[0] != pid


def test_child_over_the_memory_limit_is_refused_and_this_process_is_unharmed(
    sandbox: Sandbox,
) -> None:
    assert sandbox.run("small", functools.partial(hog_memory, 64)) == 64
    before = status_kib(os.getpid(), "VmRSS")
    with pytest.raises(DocumentTooComplex) as info:
        sandbox.run("big.docx", functools.partial(hog_memory, 2048))
    assert str(info.value) == (
        "big.docx: parsing needed more memory than the limit of 512 MiB (RAG_PARSE_MEMORY_MB); "
        "the file is too complex to read"
    )
    assert info.value.code == "document_too_complex"
    assert status_kib(os.getpid(), "VmRSS") - before < 100 * 1024


def test_child_over_the_time_limit_is_killed(tmp_path: Path) -> None:
    box = Sandbox(SandboxLimits(memory_mb=512, timeout=1))
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    with pytest.raises(DocumentTooComplex) as info:
        box.run("slow.pdf", functools.partial(sleep_forever, pid_file))
    assert time.monotonic() - start < 10
    assert str(info.value) == (
        "slow.pdf: parsing took longer than the limit of 1 s (RAG_PARSE_TIMEOUT); "
        "the file is too complex to read"
    )
    assert wait_until(lambda: not alive(int(pid_file.read_text())), 5)


def test_child_over_its_cpu_limit_is_reported_as_the_time_limit(sandbox: Sandbox) -> None:
    with pytest.raises(DocumentTooComplex) as info:
        sandbox.run("spin.pdf", spin_past_own_cpu_limit)
    assert "used more CPU time than the limit of 21 s (RAG_PARSE_TIMEOUT)" in str(info.value)


def test_cancelled_call_kills_the_worker_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with pytest.raises(Cancelled) as info:  # the caller gives up once the call is running
        sandbox.run(
            "gone.docx", functools.partial(sleep_forever, pid_file), cancelled=pid_file.exists
        )
    assert str(info.value) == "gone.docx: cancelled before anything was stored; parsing stopped"
    assert wait_until(lambda: not alive(int(pid_file.read_text())), 5)


def test_call_cancelled_while_its_worker_starts_never_runs(tmp_path: Path) -> None:
    box = Sandbox(SandboxLimits(memory_mb=512, timeout=20))  # no worker yet: one must start
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    with pytest.raises(Cancelled):
        box.run("gone.docx", functools.partial(sleep_forever, pid_file), cancelled=lambda: True)
    assert time.monotonic() - start < 1  # not the ~2 s a worker takes to load the parsers
    assert not pid_file.exists()
    box.close()


def test_warm_up_finishing_after_close_stops_its_worker() -> None:
    """`Engine.warm_parser` starts a worker in the background; an engine closed while it loads
    (a service stopped at once) must not leave that process running."""
    others = set(parse_processes(os.getpid()))  # the module's sandbox keeps a worker of its own
    box = Sandbox(SandboxLimits(memory_mb=512, timeout=20))
    warming = threading.Thread(target=box.start)
    warming.start()
    assert wait_until(lambda: bool(set(parse_processes(os.getpid())) - others), 10)  # starting
    ours = set(parse_processes(os.getpid())) - others
    box.close()
    warming.join(60)
    assert wait_until(lambda: not any(alive(pid) for pid in ours), 10)


def test_call_waiting_for_a_slot_can_be_cancelled(tmp_path: Path) -> None:
    box = Sandbox(SandboxLimits(memory_mb=512, timeout=2, processes=1))

    def occupy() -> None:
        with pytest.raises(DocumentTooComplex):  # runs until the time limit
            box.run("first", functools.partial(sleep_forever, tmp_path / "p"))

    busy = threading.Thread(target=occupy)
    busy.start()
    assert wait_until((tmp_path / "p").exists, 10)  # the only slot is taken
    start = time.monotonic()
    with pytest.raises(Cancelled):
        box.run("second", whoami, cancelled=lambda: time.monotonic() - start > 0.5)
    assert time.monotonic() - start < 3
    busy.join()


def test_errors_raised_in_the_child_come_back_as_themselves(sandbox: Sandbox) -> None:
    error = EncryptedDocument("locked.pdf: the PDF is encrypted")
    with pytest.raises(EncryptedDocument) as info:
        sandbox.run("locked.pdf", functools.partial(raise_error, error))
    assert str(info.value) == "locked.pdf: the PDF is encrypted"
    with pytest.raises(RuntimeError) as unexpected:
        sandbox.run("odd.pdf", raise_unpicklable)
    assert str(unexpected.value) == "Unpicklable: 1 and 2"
    assert "in the parse process" in "".join(unexpected.value.__notes__)


def test_damaged_for_lack_of_memory_is_the_memory_limit(sandbox: Sandbox) -> None:
    with pytest.raises(DocumentTooComplex) as info:
        sandbox.run("x.docx", damaged_for_lack_of_memory)
    assert "RAG_PARSE_MEMORY_MB" in str(info.value)


def test_crashed_child_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(DocumentTooComplex) as info:
        sandbox.run("crash.pdf", crash)
    assert str(info.value).startswith(
        "crash.pdf: the parser stopped on this file (killed by SIGSEGV)"
    )
    assert sandbox.run("next", whoami)[0] != os.getpid()  # the next call is served as usual


def test_at_most_processes_children_at_once(tmp_path: Path) -> None:
    box = Sandbox(SandboxLimits(memory_mb=512, timeout=30, processes=1))
    stamps: list[tuple[float, float]] = []

    def one(n: int) -> None:
        stamps.append(box.run(f"doc{n}", functools.partial(pause, 1.0)))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (_, first_end), (second_start, _) = sorted(stamps)
    assert second_start >= first_end  # the second started once the first had finished


def pause(seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()
