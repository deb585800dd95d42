"""`rag ask`/`rag search` through a running `rag serve` on the same index (no model loaded in the
CLI), falling back to the in-process engine when there is none; `--json` prints what the HTTP API
answers (`/v1/ask`, `/v1/search`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli.helpers import cli_env, rag

from api.schemas import AskResponse, CitationOut, PassageOut, SearchResponse
from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.serving import SERVE_FILE, Unavailable, find_server
from rag.wire import PASSAGE_FIELDS

DEMO = (
    "长三角生态绿色一体化发展示范区于2019年11月1日正式揭牌，范围包括上海市青浦区、江苏省苏州市"
    "吴江区和浙江省嘉兴市嘉善县，面积约2413平方公里。示范区的先行启动区面积约660平方公里。\n"
)
SUZHOU = (
    "苏州工业园区位于江苏省苏州市东部，成立于1994年，是中国和新加坡两国政府间的重要合作项目。"
    "园区总面积278平方公里，其中中新合作区80平方公里。\n"
)
QUESTION = "示范区的面积是多少？"

# The CLI with `rag.engine` made unimportable: it can answer only through a server.
NO_ENGINE = (
    "import sys; sys.modules['rag.engine'] = None; from rag.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def rag_without_engine(
    args: Sequence[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_ENGINE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _without_took(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "took_ms"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Path:
    root = tmp_path_factory.mktemp("served")
    engine = Engine(Settings(index_dir=root / "idx"), embedder=use_embedder)
    src = root / "src"
    src.mkdir()
    (src / "demo.txt").write_text(DEMO, encoding="utf-8")
    (src / "suzhou.txt").write_text(SUZHOU, encoding="utf-8")
    results = engine.ingest_paths([src / "demo.txt"], metadata={"issuer": "示范区执委会"})
    results += engine.ingest_paths([src / "suzhou.txt"])
    assert [r.status for r in results] == ["added", "added"]
    engine.close()
    return root / "idx"


def test_wire_fields_are_the_http_contract() -> None:
    assert list(PASSAGE_FIELDS) == list(PassageOut.model_fields)


def test_ask_and_search_through_a_running_server(
    index_dir: Path, tmp_path: Path, loopback_server: Callable[..., Any]
) -> None:
    log = tmp_path / "serve.log"
    env = cli_env(index_dir)
    with loopback_server(index_dir, log) as server:
        record = json.loads((index_dir / SERVE_FILE).read_text(encoding="utf-8"))
        assert record["pid"] == server.pid and record["index_dir"] == str(index_dir.resolve())

        proc = rag_without_engine(["ask", QUESTION, "--json"], env)
        assert proc.returncode == 0, proc.stderr
        via_cli = json.loads(proc.stdout)
        via_http = httpx.post(f"{server.base}/v1/ask", json={"question": QUESTION}, timeout=60)
        assert _without_took(via_cli) == _without_took(via_http.json())
        AskResponse.model_validate(via_cli)
        assert "2413" in via_cli["answer"] and via_cli["citations"]

        proc = rag_without_engine(["ask", QUESTION], env)  # human output, same as local
        assert proc.returncode == 0, proc.stderr
        assert "2413" in proc.stdout and "demo.txt" in proc.stdout
        assert "示范区执委会" in proc.stdout

        args = ["search", "苏州工业园区", "--top-k", "1", "--source", "suzhou.txt", "--json"]
        proc = rag_without_engine(args, env)
        assert proc.returncode == 0, proc.stderr
        found = json.loads(proc.stdout)
        SearchResponse.model_validate(found)
        assert [r["source"] for r in found["results"]] == ["suzhou.txt"]

        # the server's 4xx is the user's error: one line, exit 2
        proc = rag_without_engine(["ask", QUESTION, "--top-k", "0"], env)
        assert proc.returncode == 2 and proc.stderr.startswith("error: "), proc.stderr
        # --no-server answers in-process (here: cannot, rag.engine is blocked)
        proc = rag_without_engine(["search", "苏州", "--no-server"], env)
        assert proc.returncode != 0
        assert "rag.engine" in proc.stderr
    assert not (index_dir / SERVE_FILE).exists()  # removed on shutdown (SIGTERM)
    served = log.read_text(errors="replace")
    assert served.count("POST /v1/ask") >= 3 and "POST /v1/search" in served


def test_keyed_server(index_dir: Path, tmp_path: Path, loopback_server: Callable[..., Any]) -> None:
    """With RAG_API_KEYS set, the CLI sends RAG_API_KEY; without one it answers in-process."""
    with loopback_server(index_dir, tmp_path / "serve.log", RAG_API_KEYS="k1,k2"):
        proc = rag_without_engine(["ask", QUESTION, "--json"], cli_env(index_dir, RAG_API_KEY="k2"))
        assert proc.returncode == 0, proc.stderr
        assert "2413" in json.loads(proc.stdout)["answer"]
        # a wrong key: refused by the server, answered locally
        proc = rag(["ask", QUESTION, "--json"], cli_env(index_dir, RAG_API_KEY="nope"))
        assert proc.returncode == 0, proc.stderr
        local = json.loads(proc.stdout)
        assert set(local) == set(AskResponse.model_fields)
        assert all(set(p) == set(PassageOut.model_fields) for p in local["passages"])
        assert all(set(c) == set(CitationOut.model_fields) for c in local["citations"])
        assert "2413" in local["answer"]


def test_stale_serve_file_falls_back(index_dir: Path, tmp_path: Path) -> None:
    """A serve.json whose process is gone, or whose server does not answer, is passed over."""
    index = tmp_path / "idx"
    index.mkdir()
    settings = Settings(index_dir=index)
    record = {
        "host": "127.0.0.1",
        "port": 9,  # discard: nothing answers HTTP there
        "pid": os.getpid(),
        "index_dir": str(index.resolve()),
        "embedder": settings.embedder,
        "auth": False,
    }
    (index / SERVE_FILE).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(Unavailable, match="readyz"):
        find_server(index, settings.embedder, None)
    proc = subprocess.Popen(["true"])
    proc.wait()
    (index / SERVE_FILE).write_text(json.dumps({**record, "pid": proc.pid}), encoding="utf-8")
    with pytest.raises(Unavailable, match="gone"):
        find_server(index, settings.embedder, None)
    with pytest.raises(Unavailable, match="another"):
        find_server(index, "bge-m3", None)

    # the real CLI on a served index's copy with a stale file: answers in-process
    copy = tmp_path / "copy"
    shutil.copytree(index_dir, copy)
    (copy / SERVE_FILE).write_text(
        json.dumps({**record, "index_dir": str(copy.resolve())}), encoding="utf-8"
    )
    proc = rag(["ask", QUESTION], cli_env(copy))
    assert proc.returncode == 0, proc.stderr
    assert "2413" in proc.stdout
