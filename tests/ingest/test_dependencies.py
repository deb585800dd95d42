"""Every package a format needs is declared, and a missing one is found when the service starts
(an error naming it and the pip command), never as a 500 on the first upload of that format."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rag.config import Settings
from rag.engine import Engine
from rag.errors import ConfigError
from rag.ingest.loaders import check_format_dependencies

ROOT = Path(__file__).resolve().parents[2]


def test_lxml_html_clean_is_declared() -> None:
    # jusText (through trafilatura) imports lxml.html.clean, since lxml 5.2 the separate package
    # lxml_html_clean: asked for only as the `lxml[html_clean]` extra, which some pips skip.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("[")[0].split("=")[0].strip() for d in project["dependencies"]}
    assert "lxml_html_clean" in names


def test_all_format_dependencies_are_installed_here() -> None:
    check_format_dependencies()


def test_engine_refuses_to_open_without_a_format_dependency(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "lxml_html_clean", None)  # as if it were not installed
    with pytest.raises(ConfigError) as info:
        Engine(Settings(index_dir=tmp_path))
    assert str(info.value) == (
        "missing packages needed to read documents: lxml_html_clean (for HTML); "
        "install them with pip install lxml_html_clean"
    )
    assert not (tmp_path / "rag.sqlite3").exists()  # refused before anything was opened


def test_rag_serve_without_a_format_dependency_exits_with_the_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = (
        "import sys; sys.modules['lxml_html_clean'] = None\n"
        "from rag.cli import main\n"
        f"sys.exit(main(['serve', '--index-dir', {str(tmp_path)!r}, '--port', '{port}']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: missing packages needed to read documents: lxml_html_clean (for HTML); "
        "install them with pip install lxml_html_clean"
    )
