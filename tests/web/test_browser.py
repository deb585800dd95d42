"""The page at `/` in a real browser (chromium via Playwright): ask, watch the answer stream in,
click a citation and see exactly the quoted words highlighted in the source; PDFs give the page;
refusals and filters; upload (file picker and drag and drop), list, delete; the API-key box;
keyboard use; a phone-width screen; `/docs` and `/redoc` rendering with every other host blocked.

With WEB_SCREENSHOTS=<dir> the main views are saved there as PNG (docs/ holds the ones committed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from llm.peer import Peer, Reply
from web.site import Site, start_server, stop_server

from rag.config import Settings
from rag.engine import Engine
from rag.llm.openai import OpenAIChat

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Route

expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

SHOTS = os.environ.get("WEB_SCREENSHOTS")
TIMEOUT = 60_000  # ms: a loaded 2-core machine answers in seconds, not a minute

CARBON = "碳谷2023年的税收是多少？"
PORT = "洋山港四期自动化码头的年设计吞吐能力是多少？"
RACKS = "青石湖数据中心有多少个机柜？"


def shot(page: Page, name: str, **kwargs: Any) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), **kwargs)


def blocked_outside(context: BrowserContext, base: str) -> list[str]:
    """Abort every request to another origin; return the list they are recorded in."""
    attempts: list[str] = []

    def handle(route: Route) -> None:
        if route.request.url.startswith(base + "/") or route.request.url == base:
            route.continue_()
        else:
            attempts.append(route.request.url)
            route.abort()

    context.route("**/*", handle)
    return attempts


@pytest.fixture()
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(TIMEOUT)
    ctx.outside = blocked_outside(ctx, site.base)  # type: ignore[attr-defined]
    yield ctx
    assert ctx.outside == [], f"the page tried other hosts: {ctx.outside}"  # type: ignore[attr-defined]
    ctx.close()


@pytest.fixture()
def page(context: BrowserContext, site: Site) -> Page:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.js_errors = errors  # type: ignore[attr-defined]
    p.goto(site.base + "/")
    return p


def expected(site: Site, question: str, **body: Any) -> dict[str, Any]:
    """The same question asked over HTTP (extractive answers are deterministic)."""
    r = httpx.post(f"{site.base}/v1/ask", json={"question": question, **body}, timeout=60)
    r.raise_for_status()
    return r.json()


def ask(page: Page, question: str) -> None:
    page.fill("#question", question)
    page.press("#question", "Enter")
    expect(page.locator("#answer-box")).to_have_attribute("data-state", "done")


def marks_text(page: Page) -> str:
    return "".join(page.locator("#source-text mark").all_text_contents())


def open_citation(page: Page, i: int) -> None:
    page.locator("#answer button.cite").nth(i).click()
    expect(page.locator("#source")).to_have_attribute("data-state", "open")


def in_view(page: Page, selector: str) -> bool:
    """Whether the element is inside the visible part of its scrolling container and the window."""
    return bool(
        page.evaluate(
            """(sel) => {
              const m = document.querySelector(sel), box = document.getElementById('source-text');
              const r = m.getBoundingClientRect(), b = box.getBoundingClientRect();
              return r.top >= b.top - 1 && r.bottom <= b.bottom + 1 && r.top >= 0
                && r.bottom <= window.innerHeight;
            }""",
            selector,
        )
    )


# --- asking -----------------------------------------------------------------------------------
def test_ask_streams_and_a_citation_highlights_its_quote(page: Page, site: Site) -> None:
    want = expected(site, CARBON)
    assert want["answerable"] and want["citations"]
    streamed: list[str] = []
    page.on(
        "response",
        lambda r: (
            streamed.append(r.headers.get("content-type", ""))
            if r.url.endswith("/v1/ask")
            else None
        ),
    )
    ask(page, CARBON)
    assert streamed and streamed[0].startswith("text/event-stream")
    expect(page.locator("#answer")).to_have_text(want["answer"])
    buttons = page.locator("#answer button.cite")
    assert buttons.count() == len(want["citations"])
    assert "43.58亿元" in page.locator("#answer").inner_text()
    for i, c in enumerate(want["citations"]):
        open_citation(page, i)
        assert marks_text(page) == c["quote"]
        assert in_view(page, "#source-text mark")
        passage = want["passages"][c["marker"] - 1]
        expect(page.locator("#source-title")).to_have_text(passage["title"] or passage["source"])
        expect(page.locator("#source-meta")).to_contain_text(passage["source"])
        if i == 0 and SHOTS:
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, "web-ask.png")
    # every passage used is listed
    page.locator("#passages summary").click()
    expect(page.locator("#passage-list > li")).to_have_count(len(want["passages"]))
    for p in want["passages"]:
        expect(page.locator("#passage-list")).to_contain_text(p["text"][:30])
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_pdf_citation_shows_its_page_and_metadata(page: Page, site: Site) -> None:
    want = expected(site, PORT)
    c = next(c for c in want["citations"] if c["source"] == "gazette.pdf")
    i = want["citations"].index(c)
    ask(page, PORT)
    open_citation(page, i)
    assert marks_text(page) == c["quote"]
    assert c["page"] == 3
    expect(page.locator("#source-where")).to_contain_text("第 3 页")
    expect(page.locator("#source-meta")).to_contain_text("上海市人民政府")  # issuer
    # page labels mark where each page starts; the highlight sits after page 3's label
    expect(page.locator("#source-text .page-label")).to_have_count(4)
    after_label_3 = page.evaluate(
        """() => {
          const label = document.querySelector('#source-text .page-label[data-page="3"]');
          const mark = document.querySelector('#source-text mark');
          return !!(label.compareDocumentPosition(mark) & Node.DOCUMENT_POSITION_FOLLOWING);
        }"""
    )
    assert after_label_3
    assert in_view(page, "#source-text mark")


def test_offsets_after_characters_outside_the_bmp(page: Page, site: Site) -> None:
    want = expected(site, RACKS)
    c = next(c for c in want["citations"] if c["source"] == "qingshihu.md")
    ask(page, RACKS)
    open_citation(page, want["citations"].index(c))
    assert "4800" in c["quote"]
    assert marks_text(page) == c["quote"]


def test_passage_opens_in_its_document(page: Page, site: Site) -> None:
    want = expected(site, CARBON)
    ask(page, CARBON)
    page.locator("#passages summary").click()
    page.locator("#passage-list > li").nth(1).get_by_role("button").click()
    expect(page.locator("#source")).to_have_attribute("data-state", "open")
    assert marks_text(page) == want["passages"][1]["text"]


def test_refusal_is_shown_plainly(page: Page, site: Site) -> None:
    question = "月球背面的火山最近一次喷发是什么时候？"
    assert not expected(site, question)["answerable"]
    ask(page, question)
    expect(page.locator(".notice.refusal")).to_be_visible()
    expect(page.locator("#answer button.cite")).to_have_count(0)


def test_filters_and_top_k_are_sent(page: Page, site: Site) -> None:
    page.locator("#filters summary").click()
    page.fill("#f-issuer", "上海市人民政府")
    page.fill("#f-from", "2000-01-01")
    page.fill("#f-topk", "2")
    with page.expect_request("**/v1/ask") as req:
        page.fill("#question", PORT)
        page.click("#ask-button")
    assert req.value.post_data_json == {
        "question": PORT,
        "stream": True,
        "top_k": 2,
        "filter": {"metadata": {"issuer": "上海市人民政府"}, "date_from": "2000-01-01"},
    }
    expect(page.locator("#answer-box")).to_have_attribute("data-state", "done")
    # the gazette has an issuer but no date: the date range leaves nothing, which is a refusal
    expect(page.locator(".notice.refusal")).to_be_visible()
    page.fill("#f-from", "")
    ask(page, PORT)
    page.locator("#passages summary").click()
    items = page.locator("#passage-list > li")
    assert 1 <= items.count() <= 2
    for text in items.all_text_contents():
        assert "gazette.pdf" in text


def test_keyboard_only(page: Page, site: Site) -> None:
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.focus("#question")
    page.keyboard.type(CARBON)
    page.keyboard.press("Enter")
    expect(page.locator("#answer-box")).to_have_attribute("data-state", "done")
    cite = page.locator("#answer button.cite").first
    cite.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#source")).to_have_attribute("data-state", "open")
    assert page.evaluate("document.activeElement.id") == "source-title"
    page.keyboard.press("Escape")
    expect(page.locator("#source")).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('cite')")
    # every control has an accessible name
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, input, textarea, a')]
              .filter(e => e.offsetParent !== null || e.type === 'file')
              .filter(e => !(e.getAttribute('aria-label') || e.labels?.length || e.textContent.trim()))
              .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []


def test_english_labels(page: Page, site: Site) -> None:
    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#ask-button")).to_have_text("Ask")
    expect(page.locator("label[for=question]")).to_have_text("Question (Chinese or English)")
    ask(page, "How much tax did the Carbon Valley collect in 2023?")
    open_citation(page, 0)
    expect(page.locator("#source-meta")).to_contain_text("File")
    page.click("#lang")  # back to Chinese for the other tests (kept in localStorage)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_phone_width(browser: Browser, site: Site) -> None:
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    ctx.set_default_timeout(TIMEOUT)
    outside = blocked_outside(ctx, site.base)
    page = ctx.new_page()
    page.goto(site.base + "/")
    want = expected(site, CARBON)
    ask(page, CARBON)
    open_citation(page, 0)
    assert marks_text(page) == want["citations"][0]["quote"]
    no_sideways = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    assert page.evaluate(no_sideways)
    shot(page, "web-phone.png")
    page.click("#tab-docs")
    expect(page.locator("#doc-rows tr").first).to_be_visible()
    assert page.evaluate(no_sideways)
    shot(page, "web-phone-documents.png", full_page=True)
    assert outside == []
    ctx.close()


# --- documents --------------------------------------------------------------------------------
def row(page: Page, source: str) -> Any:
    return page.locator(f'#doc-rows tr[data-source="{source}"]')


def test_upload_list_delete(page: Page, site: Site, tmp_path: Path) -> None:
    page.click("#tab-docs")
    expect(page.locator("#view-docs")).to_be_visible()
    expect(row(page, "gazette.pdf")).to_be_visible()
    body = "".join(
        f"灯塔岛第{n}季度接待游客{n * 7 + 3}万人次，新建码头{n}座，渔业产值增长百分之{n + 4}。"
        for n in range(1, 9)
    )
    good = tmp_path / "lantern.md"
    good.write_text(f"# 灯塔岛年报\n\n{body}\n", encoding="utf-8")
    copy = tmp_path / "lantern-copy.txt"  # the same article, saved again as plain text
    copy.write_text(f"灯塔岛年报\n\n{body}\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    page.set_input_files("#files", [str(good), str(copy), str(empty)])
    items = page.locator("#uploads li")
    expect(items).to_have_count(3)
    for name in ("lantern.md", "lantern-copy.txt", "empty.txt"):
        expect(page.locator(f'#uploads li[data-name="{name}"]')).not_to_have_attribute(
            "data-status", ""
        )
    item = page.locator('#uploads li[data-name="lantern.md"]')
    expect(item).to_have_attribute("data-status", "added")
    dup = page.locator('#uploads li[data-name="lantern-copy.txt"]')
    expect(dup).to_have_attribute("data-duplicate-of", "lantern.md")
    expect(dup).to_contain_text("lantern.md")
    failed = page.locator('#uploads li[data-name="empty.txt"]')
    expect(failed).to_have_attribute("data-status", "failed")
    expect(failed).to_contain_text("失败")
    expect(row(page, "lantern.md")).to_be_visible()
    expect(row(page, "lantern-copy.txt")).to_be_visible()
    shot(page, "web-documents.png", full_page=True)

    # drag and drop
    handle = page.evaluate_handle(
        """() => {
          const dt = new DataTransfer();
          dt.items.add(new File(['# 风车村\\n\\n风车村共有风车17座。\\n'], 'windmill.md',
                                {type: 'text/markdown'}));
          return dt;
        }"""
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": handle})
    expect(page.locator('#uploads li[data-name="windmill.md"]')).to_have_attribute(
        "data-status", "added"
    )
    expect(row(page, "windmill.md")).to_be_visible()

    # delete, confirming (and once declining)
    messages: list[str] = []

    def dismiss(d: Any) -> None:
        messages.append(d.message)
        d.dismiss()

    page.once("dialog", dismiss)
    row(page, "windmill.md").get_by_role("button").click()
    expect(row(page, "windmill.md")).to_be_visible()
    assert messages and "windmill.md" in messages[0]
    for source in ("windmill.md", "lantern-copy.txt", "lantern.md"):
        page.once("dialog", lambda d: d.accept())
        row(page, source).get_by_role("button").click()
        expect(row(page, source)).to_have_count(0)
    listed = {d.source for d in site.engine.documents()}
    assert not listed & {"windmill.md", "lantern.md", "lantern-copy.txt"}


# --- keys -------------------------------------------------------------------------------------
def test_api_key_is_asked_for_and_kept_in_session_storage(
    browser: Browser, keyed_site: Site
) -> None:
    ctx = browser.new_context()
    ctx.set_default_timeout(TIMEOUT)
    page = ctx.new_page()
    page.goto(keyed_site.base + "/")
    expect(page.locator("#key-box")).to_be_visible()
    expect(page.locator("#key-input")).to_be_focused()
    page.fill("#key-input", "read-key-1")
    page.press("#key-input", "Enter")
    expect(page.locator("#key-box")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('rag-zh.api-key')") == "read-key-1"
    assert (
        page.evaluate("Object.keys(localStorage).filter(k => localStorage[k].includes('key-1'))")
        == []
    )
    ask(page, CARBON)
    expect(page.locator("#answer button.cite").first).to_be_visible()
    open_citation(page, 0)  # the text endpoint takes the read key
    # a read key may not write: the page says so and asks for another
    page.click("#tab-docs")
    page.set_input_files(
        "#files", files=[{"name": "k.txt", "mimeType": "text/plain", "buffer": "钥匙".encode()}]
    )
    expect(page.locator('#uploads li[data-name="k.txt"]')).to_have_attribute(
        "data-status", "failed"
    )
    expect(page.locator("#key-box")).to_be_visible()
    page.fill("#key-input", "admin-key-1")
    page.click("#key-form button[type=submit]")
    page.set_input_files(
        "#files",
        files=[
            {"name": "k.txt", "mimeType": "text/plain", "buffer": "钥匙岛有灯塔一座。".encode()}
        ],
    )
    expect(page.locator('#uploads li[data-name="k.txt"]').first).to_have_attribute(
        "data-status", "added"
    )
    page.once("dialog", lambda d: d.accept())
    row(page, "k.txt").get_by_role("button").click()
    expect(row(page, "k.txt")).to_have_count(0)
    ctx.close()


# --- offline docs -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_render_with_other_hosts_blocked(
    context: BrowserContext, site: Site, path: str
) -> None:
    page = context.new_page()
    page.goto(site.base + path)
    if path == "/docs":
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("rag-zh")
        expect(
            page.locator(".opblock-summary-path", has_text="/v1/documents/{doc_id}/text")
        ).to_be_visible()
        shot(page, "web-swagger.png")
    else:
        expect(page.locator("h1", has_text="rag-zh")).to_be_visible()
        expect(page.get_by_text("/v1/documents/{doc_id}/text").first).to_be_attached()


# --- an LLM answer: streamed sentence by sentence, warnings shown -----------------------------
def test_llm_answer_streams_and_its_warnings_are_shown(
    browser: Browser, web_engine: Any, use_embedder: Any, llm_peer: Peer
) -> None:
    good = "碳谷2023年的税收达到43.58亿元[1]。"
    reply = good + "碳谷的产值是300亿元。[1][9]" + "月球上已经建成了三百座工厂。"
    llm_peer.script(Reply(reply, chunk_delay=0.25))
    settings = Settings(
        index_dir=web_engine.settings.index_dir,
        llm_base_url=llm_peer.base_url,
        llm_model="peer-model",
        api_keys=None,
        admin_keys=None,
        cors_origins=None,
    )
    llm = OpenAIChat(llm_peer.base_url, "peer-model", timeout=10.0, retries=0, backoff=0.01)
    engine = Engine(settings, embedder=use_embedder, llm=llm)
    base, running = start_server(engine)
    ctx = browser.new_context(locale="zh-CN")
    ctx.set_default_timeout(TIMEOUT)
    outside = blocked_outside(ctx, base)
    try:
        page = ctx.new_page()
        page.goto(base + "/")
        page.fill("#question", CARBON)
        page.press("#question", "Enter")
        # the first checked sentence is on the page while the model is still writing
        page.wait_for_function(
            """() => document.getElementById('answer').textContent.includes('43.58亿元')
                 && document.getElementById('answer-box').dataset.state === 'streaming'"""
        )
        expect(page.locator("#answer-box")).to_have_attribute("data-state", "done")
        expect(page.locator("#answer-meta")).to_contain_text("大模型")
        expect(page.locator('.notice.warning[data-code="citations_dropped"]')).to_be_visible()
        unsupported = page.locator('.notice.warning[data-code="unsupported_sentences"]')
        expect(unsupported).to_be_visible()
        expect(page.locator("#notices")).to_contain_text("月球上已经建成了三百座工厂")
        assert "月球" not in page.locator("#answer").inner_text()
        open_citation(page, 0)
        assert "43.58亿元" in marks_text(page)
        assert outside == []
    finally:
        ctx.close()
        stop_server(running)
        engine.close()
