"""A damaged `rag.sqlite3` is refused with a clear error, never taken for a new, empty index.

Damage is real: the database of a built index truncated to 0 bytes or to half, its header
overwritten with random bytes. The library refuses it (`IndexError_`), leaves it as it is and
writes nothing beside it; every command (`rag serve` too) prints one `error:` line and exits 1.
A brand-new index is one whose file does not exist yet: that one is created.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_durability import DEMO, FIRST, write

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.errors import IndexError_
from rag.store.sqlite import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Path:
    """An index of two documents, closed (its database file alone is the whole index)."""
    root = tmp_path_factory.mktemp("damaged")
    engine = Engine(Settings(index_dir=root / "idx"), embedder=use_embedder)
    engine.ingest_paths([write(root / "src" / "a.txt", FIRST), write(root / "src" / "b.txt", DEMO)])
    engine.close()
    assert sorted(p.name for p in (root / "idx").iterdir() if "sqlite" in p.name) == ["rag.sqlite3"]
    return root / "idx"


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = np.random.default_rng(11).bytes(100)
    path.write_bytes(bytes(data))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (_empty, "is empty (0 bytes)"),
    "half": (_half, "is truncated"),
    "random-header": (_random_header, "is not an SQLite database"),
}


def damaged_copy(built: Path, tmp_path: Path, how: str) -> Path:
    index_dir = tmp_path / "idx"
    shutil.copytree(built, index_dir)
    DAMAGE[how][0](index_dir / "rag.sqlite3")
    return index_dir


def snapshot_of(index_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(index_dir.iterdir())}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_database_is_refused_and_left_alone(
    built: Path, tmp_path: Path, use_embedder: Embedder, how: str
) -> None:
    index_dir = damaged_copy(built, tmp_path, how)
    before = snapshot_of(index_dir)
    for attempt in (
        lambda: Store(index_dir / "rag.sqlite3"),
        lambda: Store(index_dir / "rag.sqlite3", readonly=True),
        lambda: Engine(Settings(index_dir=index_dir), embedder=use_embedder),
    ):
        with pytest.raises(IndexError_) as exc:
            attempt()
        assert DAMAGE[how][1] in str(exc.value) and "rag.sqlite3" in str(exc.value)
    assert snapshot_of(index_dir) == before  # not rewritten, no derived file rebuilt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rag(args: list[str], index_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_INDEX_DIR=str(index_dir), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_every_command_says_so_in_one_line(built: Path, tmp_path: Path, how: str) -> None:
    index_dir = damaged_copy(built, tmp_path, how)
    before = snapshot_of(index_dir)
    for args in (
        ["info"],
        ["info", "--json"],
        ["search", "示范区"],
        ["delete", "0123456789abcdef"],
        ["serve", "--port", str(free_port())],
    ):
        try:
            proc = rag(args, index_dir)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that started anyway
            pytest.fail(f"rag {' '.join(args)} served a damaged index")
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and DAMAGE[how][1] in lines[-1], (args, lines)
        assert "Traceback" not in proc.stderr, args
        assert proc.stdout == "", args
    assert snapshot_of(index_dir) == before


def test_a_database_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rag.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    db.commit()
    db.close()
    with pytest.raises(IndexError_, match="no index"):
        Store(path)
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    db.close()


def test_a_new_index_is_created_whole_without_leftovers(tmp_path: Path) -> None:
    """Created under a temporary name and linked into place: concurrent creators (processes)
    all end up with the one same, complete database, and no temporary file remains."""
    index_dir = tmp_path / "new"
    script = (
        "import sys; from pathlib import Path; from rag.store.sqlite import Store; "
        "s = Store(Path(sys.argv[1])); print(s.manifest().schema_version); s.close()"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(index_dir / "rag.sqlite3")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip() == str(SCHEMA_VERSION), err
    assert [p.name for p in index_dir.iterdir()] == ["rag.sqlite3"]
    store = Store(index_dir / "rag.sqlite3", readonly=True)
    assert store.count_documents() == 0 and store.manifest().schema_version == SCHEMA_VERSION
    store.close()


def test_an_interrupted_creation_is_finished_not_refused(tmp_path: Path) -> None:
    """An older version created the file in place: killed after SQLite wrote its header but
    before the schema, it left a valid database with no tables. That is a new index."""
    path = tmp_path / "rag.sqlite3"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "db.execute('PRAGMA journal_mode=WAL'); os.kill(os.getpid(), signal.SIGKILL)",
            str(path),
        ],
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL and path.stat().st_size > 0
    store = Store(path)
    assert store.manifest().schema_version == SCHEMA_VERSION and store.count_documents() == 0
    store.close()
