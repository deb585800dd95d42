"""Browser tests: Debian's chromium (/usr/bin/chromium, or $CHROMIUM) driven by Playwright, against
the real app served by uvicorn on a loopback port over a small real index.

Playwright comes from PyPI (the `dev` extra) and downloads no browser: it launches the system's
chromium. Without that chromium (or Playwright), every test here is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ingest.samples import gazette_pdf
from web.site import Site, start_server, stop_server

from rag.config import Settings
from rag.engine import Engine, Upload

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from rag.embed.base import Embedder

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# U+20000 is one code point but two UTF-16 units: the page must convert the API's offsets
ASTRAL_DOC = (
    "# 青石湖数据中心𠀀简介\n\n"
    "𠀀𠀁青石湖数据中心于2025年3月投入运行，共有机柜4800个，由澄江数字科技公司运营。\n\n"
    "数据中心采用液冷技术，年均电能利用效率为1.15。\n"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless chromium, shared by the session."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def web_engine(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder
) -> Iterator[Engine]:
    """Two articles of the bundled corpus, the four-page gazette PDF (with an issuer) and an
    article with characters outside the BMP before its quotes."""
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("web_idx"), api_keys=None, admin_keys=None
    )
    engine = Engine(settings, embedder=use_embedder)
    uploads = [
        Upload(p.name, p.read_bytes(), {})
        for p in sorted(CORPUS.glob("*.txt"))
        if p.name.startswith(("000_", "002_"))
    ]
    uploads.append(Upload("gazette.pdf", gazette_pdf(), {"issuer": "上海市人民政府"}))
    uploads.append(Upload("qingshihu.md", ASTRAL_DOC.encode(), {}))
    engine.ingest_documents(uploads)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def site(web_engine: Engine) -> Iterator[Site]:
    """The app on a loopback port, no keys."""
    base, running = start_server(web_engine)
    yield Site(base, web_engine)
    stop_server(running)


@pytest.fixture(scope="session")
def keyed_site(web_engine: Engine) -> Iterator[Site]:
    """The same index served with a read key `read-key-1` and an admin key `admin-key-1`."""
    base, running = start_server(web_engine, api_keys="read-key-1", admin_keys="admin-key-1")
    yield Site(base, web_engine)
    stop_server(running)
