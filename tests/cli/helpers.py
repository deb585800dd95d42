"""Running the real CLI in a subprocess, and reading an index's state without opening an engine."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cli_env(index_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any `RAG_*` setting, pointed at `index_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_INDEX_DIR"] = str(index_dir)
    env.update(extra)
    return env


def rag(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (`python -m rag.cli ARGS`) in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def index_state(index_dir: Path) -> dict[str, Any]:
    """Counts, generation and document hashes, read-only from the index database."""
    db = sqlite3.connect(f"file:{index_dir / 'rag.sqlite3'}?mode=ro", uri=True)
    try:
        return {
            "documents": db.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            "chunks": db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
            "generation": db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0],
            "hashes": db.execute(
                "SELECT source, content_hash FROM documents ORDER BY source"
            ).fetchall(),
        }
    finally:
        db.close()
