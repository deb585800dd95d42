// rag-zh web page: ask (streamed answer, clickable citations), read sources, manage documents.
// Plain JavaScript, no dependencies, no build step. Document text is only ever put into the page
// as text nodes (never parsed as HTML), and the page talks only to the server it came from.
"use strict";

(function () {
  const KEY_STORE = "rag-zh.api-key"; // sessionStorage only: gone when the tab closes
  const LANG_STORE = "rag-zh.lang";

  // --- labels ------------------------------------------------------------------------------
  const TEXT = {
    zh: {
      skip: "跳到主要内容", views: "视图", tabAsk: "提问", tabDocs: "文档", apiDocs: "API 文档",
      keyTitle: "需要 API 密钥", keyWhy: "服务器配置了 API 密钥。密钥只保存在本浏览器标签页的会话存储中。",
      keyLabel: "API 密钥", keySave: "使用此密钥", keyForget: "清除密钥",
      keyMissing: "服务器要求 API 密钥：请在上方输入。", keyWrong: "API 密钥无效：请重新输入。",
      keyReadOnly: "此密钥只能读取，上传和删除需要管理员密钥。",
      questionLabel: "问题（中文或英文）", questionPlaceholder: "例如：碳谷2023年的税收是多少？",
      askButton: "提问", filters: "筛选与选项", issuer: "发文机关", docNumber: "文号",
      dateFrom: "起始日期", dateTo: "截止日期", topK: "段落数 (top_k)", answer: "回答",
      close: "关闭", sourceText: "文档原文", title: "标题", source: "来源", date: "日期",
      chunks: "片段", actions: "操作", stored: "已存储的文档", refresh: "刷新",
      dropHint: "把文件拖到这里，或", chooseFiles: "选择文件", formats: "支持 .txt .md .html .pdf .docx（可多选）",
      searching: "正在检索…", composing: (n) => `找到 ${n} 个段落，正在生成回答…`,
      answered: (ms) => `用时 ${Math.round(ms)} 毫秒`, mode: (m) => `方式：${m === "llm" ? "大模型" : "抽取"}`,
      refusal: "未找到答案：文档中没有足够的依据。", warning: "注意",
      dropped: (n) => `已删除 ${n} 个指向不存在段落的引用标记。`,
      unsupported: "以下句子没有文档依据，已从回答中删除：",
      passagesUsed: (n) => `使用的段落（${n}）`, showInDoc: "在原文中查看",
      citeLabel: (n, t) => `引用 ${n}：${t}`, page: (p) => `第 ${p} 页`, pages: (a, b) => `第 ${a}–${b} 页`,
      chars: (a, b) => `字符 ${a}–${b}`, alsoIn: "相同内容也见于：", score: "得分",
      loadingDoc: "正在读取原文…", docGone: "该文档已不存在（可能已被删除）。",
      docChanged: "该文档在回答之后已被修改，引用位置已失效：请重新提问。",
      noDocs: "还没有文档。", docCount: (n) => `索引中有 ${n} 篇文档。`,
      delete: "删除", deleteLabel: (s) => `删除 ${s}`, confirmDelete: (s) => `确定删除“${s}”吗？此操作无法撤销。`,
      deleted: (s) => `已删除 ${s}。`, uploading: "上传中…", processing: "正在处理…",
      added: "已添加", updated: "已更新", unchanged: "未变化（已存在）", failed: "失败",
      duplicateOf: (s) => `与已存储的 ${s} 几乎相同（仍已保存）`,
      uploadDone: (ok, bad) => `上传完成：${ok} 个成功，${bad} 个失败。`,
      progressLabel: (name) => `${name} 上传进度`,
      notReady: "索引仍在加载，请稍后再试。", rateLimited: (s) => `请求过于频繁，请在 ${s} 秒后重试。`,
      networkError: "无法连接服务器。", error: "错误",
      metaTitle: "标题", metaIssuer: "发文机关", metaDocNumber: "文号", metaDate: "日期", metaSource: "文件",
      metaPage: "页码", switchLang: "Switch to English", otherLang: "English",
    },
    en: {
      skip: "Skip to main content", views: "Views", tabAsk: "Ask", tabDocs: "Documents", apiDocs: "API docs",
      keyTitle: "API key needed", keyWhy: "This server requires an API key. It is kept in this tab's session storage only.",
      keyLabel: "API key", keySave: "Use this key", keyForget: "Forget key",
      keyMissing: "The server requires an API key: enter it above.", keyWrong: "The API key was refused: enter it again.",
      keyReadOnly: "This key may read but not write: uploads and deletes need an admin key.",
      questionLabel: "Question (Chinese or English)", questionPlaceholder: "e.g. How much tax did the Carbon Valley collect in 2023?",
      askButton: "Ask", filters: "Filters and options", issuer: "Issuer", docNumber: "Document number (文号)",
      dateFrom: "Date from", dateTo: "Date to", topK: "Passages (top_k)", answer: "Answer",
      close: "Close", sourceText: "Document text", title: "Title", source: "Source", date: "Date",
      chunks: "Chunks", actions: "Actions", stored: "Stored documents", refresh: "Refresh",
      dropHint: "Drop files here, or", chooseFiles: "Choose files", formats: ".txt .md .html .pdf .docx (several at once)",
      searching: "Searching…", composing: (n) => `Found ${n} passages; composing the answer…`,
      answered: (ms) => `took ${Math.round(ms)} ms`, mode: (m) => `mode: ${m === "llm" ? "LLM" : "extractive"}`,
      refusal: "No answer found: the documents do not support one.", warning: "Warning",
      dropped: (n) => `${n} citation marker(s) pointing at no passage were removed.`,
      unsupported: "These sentences are not supported by the documents and were removed:",
      passagesUsed: (n) => `Passages used (${n})`, showInDoc: "Show in document",
      citeLabel: (n, t) => `Citation ${n}: ${t}`, page: (p) => `page ${p}`, pages: (a, b) => `pages ${a}–${b}`,
      chars: (a, b) => `characters ${a}–${b}`, alsoIn: "Same text also in: ", score: "score",
      loadingDoc: "Loading the document…", docGone: "This document no longer exists (deleted).",
      docChanged: "This document changed after the answer was given, so the cited place is gone: ask again.",
      noDocs: "No documents yet.", docCount: (n) => `${n} documents in the index.`,
      delete: "Delete", deleteLabel: (s) => `Delete ${s}`, confirmDelete: (s) => `Delete "${s}"? This cannot be undone.`,
      deleted: (s) => `Deleted ${s}.`, uploading: "Uploading…", processing: "Processing…",
      added: "added", updated: "updated", unchanged: "unchanged (already stored)", failed: "failed",
      duplicateOf: (s) => `nearly duplicates stored ${s} (stored anyway)`,
      uploadDone: (ok, bad) => `Upload finished: ${ok} succeeded, ${bad} failed.`,
      progressLabel: (name) => `Upload progress of ${name}`,
      notReady: "The index is still loading; try again shortly.", rateLimited: (s) => `Too many requests: retry in ${s} s.`,
      networkError: "Cannot reach the server.", error: "Error",
      metaTitle: "Title", metaIssuer: "Issuer", metaDocNumber: "Document number (文号)", metaDate: "Date", metaSource: "File",
      metaPage: "Page", switchLang: "切换到中文", otherLang: "中文",
    },
  };
  let lang = localStorage.getItem(LANG_STORE) ||
    ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en");

  function t(key, ...args) {
    const v = (TEXT[lang] && TEXT[lang][key]) ?? TEXT.en[key] ?? key;
    return typeof v === "function" ? v(...args) : v;
  }

  const $ = (id) => document.getElementById(id);
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node; // children are nodes or strings: strings become text nodes, never markup
  }

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
    for (const node of document.querySelectorAll("[data-i18n-aria-label]")) node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
    const b = $("lang");
    b.textContent = t("otherLang");
    b.setAttribute("lang", lang === "zh" ? "en" : "zh");
    b.setAttribute("aria-label", t("switchLang"));
    if (lastAnswer) renderFinal(lastAnswer, false);
    if (!$("view-docs").hidden) loadDocuments();
  }

  // --- the API -----------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status; this.code = code; this.retryAfter = retryAfter;
    }
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  async function errorFrom(res) {
    let code = "http_" + res.status, message = res.statusText || String(res.status);
    try {
      const body = await res.json();
      if (body && body.error) { code = body.error.code; message = body.error.message; }
    } catch (_) { /* not JSON */ }
    return new ApiError(res.status, code, message, res.headers.get("Retry-After"));
  }

  async function api(path, options) {
    let res;
    try {
      res = await fetch(path, Object.assign({}, options, { headers: headers((options || {}).headers) }));
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, "network", t("networkError"));
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  // Show an API error plainly; a 401/403 opens the key box.
  function explain(err) {
    if (err.name === "AbortError") return "";
    if (err.status === 401) {
      showKeyBox(sessionStorage.getItem(KEY_STORE) ? t("keyWrong") : t("keyMissing"));
      return sessionStorage.getItem(KEY_STORE) ? t("keyWrong") : t("keyMissing");
    }
    if (err.status === 403) { showKeyBox(t("keyReadOnly")); return t("keyReadOnly"); }
    if (err.status === 503 && err.code === "not_ready") return t("notReady");
    if (err.status === 429) return t("rateLimited", err.retryAfter || "?");
    return `${t("error")} ${err.status || ""} ${err.code}: ${err.message}`.replace("  ", " ");
  }

  function say(message, kind) {
    const s = $("status");
    s.textContent = message || "";
    s.className = "status" + (kind ? " " + kind : "");
  }

  function showKeyBox(why) {
    $("key-box").hidden = false;
    $("key-why").textContent = why;
    $("key-input").focus();
  }

  // --- server-sent events over fetch (EventSource cannot POST) -------------------------------
  async function* readEvents(res) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buffer = "";
    let name = "", data = [];
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // SSE lines end at CRLF, LF or CR; a CR at the very end may be half of a CRLF: keep it
      const lines = buffer.split(/\r\n|\n|\r(?!$)/);
      buffer = done ? "" : lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: name || "message", data: data.join("\n") };
          name = ""; data = [];
        } else if (line.startsWith(":")) {
          continue; // a comment
        } else {
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          let v = i < 0 ? "" : line.slice(i + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "event") name = v;
          else if (field === "data") data.push(v);
        }
      }
      if (done) {
        if (data.length) yield { event: name || "message", data: data.join("\n") };
        return;
      }
    }
  }

  // --- asking --------------------------------------------------------------------------------
  let lastAnswer = null; // the final `citations` event's payload
  let asking = null; // AbortController of the request in flight

  function requestBody(question) {
    const body = { question, stream: true };
    const k = $("f-topk").value.trim();
    if (k) body.top_k = parseInt(k, 10);
    const filter = {}, metadata = {};
    const issuer = $("f-issuer").value.trim(), docnum = $("f-docnum").value.trim();
    if (issuer) metadata.issuer = issuer;
    if (docnum) metadata.doc_number = docnum;
    if (Object.keys(metadata).length) filter.metadata = metadata;
    if ($("f-from").value) filter.date_from = $("f-from").value;
    if ($("f-to").value) filter.date_to = $("f-to").value;
    if (Object.keys(filter).length) body.filter = filter;
    return body;
  }

  async function ask(question) {
    if (asking) asking.abort();
    const controller = new AbortController();
    asking = controller;
    lastAnswer = null;
    $("answer-box").hidden = false;
    $("notices").replaceChildren();
    $("answer-meta").textContent = "";
    $("passage-list").replaceChildren();
    $("passages").hidden = true;
    const out = $("answer");
    out.replaceChildren();
    out.setAttribute("aria-busy", "true");
    $("answer-box").dataset.state = "streaming";
    say(t("searching"));
    let passages = [];
    try {
      const res = await api("/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(requestBody(question)),
        signal: controller.signal,
      });
      for await (const ev of readEvents(res)) {
        if (controller !== asking) return;
        const data = ev.data === "[DONE]" ? null : JSON.parse(ev.data);
        if (ev.event === "passages") {
          passages = data.passages;
          renderPassages(passages);
          say(t("composing", passages.length));
        } else if (ev.event === "delta") {
          out.append(document.createTextNode(data.text));
        } else if (ev.event === "citations") {
          lastAnswer = data;
          renderFinal(data, true);
          say("");
        } else if (ev.event === "done") {
          $("answer-meta").dataset.took = data.took_ms;
          renderMeta();
        }
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      const message = explain(err);
      $("notices").append(el("p", { class: "notice error", role: "alert", text: message }));
      say("");
    } finally {
      if (controller === asking) {
        out.setAttribute("aria-busy", "false");
        $("answer-box").dataset.state = lastAnswer ? "done" : "failed";
        asking = null;
      }
    }
  }

  function renderMeta() {
    if (!lastAnswer) return;
    const parts = [t("mode", lastAnswer.mode)];
    const took = $("answer-meta").dataset.took;
    if (took) parts.push(t("answered", Number(took)));
    $("answer-meta").textContent = parts.join(" · ");
  }

  function docLabel(p) {
    return (p && (p.title || p.source)) || "";
  }

  // The k-th `[n]` of the answer is the k-th citation with marker n (citations come in answer order).
  function renderFinal(a, announce) {
    const out = $("answer");
    out.replaceChildren();
    const used = {};
    const parts = a.answer.split(/\[(\d+)\]/);
    for (let i = 0; i < parts.length; i++) {
      if (i % 2 === 0) { if (parts[i]) out.append(document.createTextNode(parts[i])); continue; }
      const n = Number(parts[i]);
      const mine = a.citations.filter((c) => c.marker === n);
      const c = mine[Math.min(used[n] || 0, mine.length - 1)];
      used[n] = (used[n] || 0) + 1;
      const passage = a.passages[n - 1];
      if (!c || !passage) { out.append(document.createTextNode(`[${n}]`)); continue; }
      out.append(el("button", {
        type: "button", class: "cite", "data-marker": n, "data-quote-start": c.start,
        "aria-label": t("citeLabel", n, docLabel(passage)), title: docLabel(passage),
        text: `[${n}]`, onclick: (e) => openSpan(passage, c.start, c.end, c.page, e.currentTarget),
      }));
    }
    const notices = $("notices");
    notices.replaceChildren();
    if (!a.answerable) notices.append(el("p", { class: "notice refusal", role: announce ? "alert" : null, text: t("refusal") }));
    for (const w of a.warnings || []) {
      notices.append(el("p", { class: "notice warning", "data-code": w.code },
        el("strong", { text: `${t("warning")} (${w.code}): ` }), w.message));
    }
    const codes = new Set((a.warnings || []).map((w) => w.code));
    if (a.dropped_citations && !codes.has("citations_dropped")) notices.append(el("p", { class: "notice warning", text: t("dropped", a.dropped_citations) }));
    if ((a.unsupported_sentences || []).length) {
      notices.append(el("div", { class: "notice warning" }, el("p", { text: t("unsupported") }),
        el("ul", {}, ...a.unsupported_sentences.map((s) => el("li", { text: s })))));
    }
    renderPassages(a.passages);
    renderMeta();
  }

  function renderPassages(passages) {
    const list = $("passage-list");
    list.replaceChildren();
    $("passages").hidden = !passages.length;
    $("passages-summary").textContent = t("passagesUsed", passages.length);
    passages.forEach((p, i) => {
      const where = [p.source];
      if (p.page) where.push(t("page", p.page));
      where.push(`${t("score")} ${p.score.toFixed(3)}`);
      list.append(el("li", { id: `passage-${i + 1}` },
        el("p", { class: "passage-head" }, el("strong", { text: `[${i + 1}] ${docLabel(p)}` }), " ",
          el("span", { class: "meta", text: where.join(" · ") })),
        el("p", { class: "passage-text", text: p.text }),
        p.also_in && p.also_in.length ? el("p", { class: "meta", text: t("alsoIn") + p.also_in.join(", ") }) : null,
        el("button", { type: "button", class: "link", text: t("showInDoc"),
          onclick: (e) => openSpan(p, p.start, p.end, p.page, e.currentTarget) })));
    });
  }

  // --- the source panel ----------------------------------------------------------------------
  const docCache = new Map(); // doc_id -> Promise of GET /v1/documents/{id}/text
  let returnFocus = null;

  function fetchDoc(docId) {
    if (!docCache.has(docId)) {
      const p = api(`/v1/documents/${encodeURIComponent(docId)}/text`).then((r) => r.json());
      p.catch(() => docCache.delete(docId));
      docCache.set(docId, p);
    }
    return docCache.get(docId);
  }

  // Offsets from the API count Unicode code points; JavaScript strings count UTF-16 units.
  // Returns the converter and the text's length in code points.
  function utf16Offsets(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) return { at: (cp) => cp, total: text.length };
    const map = [0];
    for (let i = 0; i < text.length; ) {
      const c = text.codePointAt(i);
      i += c > 0xffff ? 2 : 1;
      map.push(i);
    }
    return { at: (cp) => map[Math.max(0, Math.min(cp, map.length - 1))], total: map.length - 1 };
  }

  // The document's text as text nodes, the span [start, end) in <mark>s (one per page it
  // crosses), a page label where each page of a PDF begins. Returns the marks.
  function renderDocText(doc, start, end) {
    const box = $("source-text");
    box.replaceChildren();
    const text = doc.text;
    const { at, total } = utf16Offsets(text);
    const pageAt = new Map();
    for (const p of doc.pages || []) {
      if (!pageAt.has(p.start)) pageAt.set(p.start, []);
      pageAt.get(p.start).push(p.page);
    }
    const cuts = new Set([0, total, start, end, ...pageAt.keys()]);
    const points = [...cuts].filter((x) => x >= 0 && x <= total).sort((x, y) => x - y);
    const marks = [];
    for (let i = 0; i < points.length; i++) {
      const a = points[i];
      for (const page of pageAt.get(a) || []) {
        box.append(el("span", { class: "page-label", "data-page": page, text: t("page", page) }));
      }
      if (i === points.length - 1) break;
      const b = points[i + 1];
      const piece = document.createTextNode(text.slice(at(a), at(b)));
      if (a >= start && b <= end && start < end) {
        const m = el("mark", {}, piece);
        marks.push(m);
        box.append(m);
      } else {
        box.append(piece);
      }
    }
    return marks;
  }

  // Whether the document's text still holds the passage where the answer said it was.
  function holds(doc, passage) {
    const { at } = utf16Offsets(doc.text);
    return doc.text.slice(at(passage.start), at(passage.end)) === passage.text;
  }

  function pagesOf(doc, start, end) {
    return (doc.pages || []).filter((p) => p.end > p.start && p.start < Math.max(end, start + 1) && p.end > start).map((p) => p.page);
  }

  let openCount = 0; // a later click wins over an earlier one still loading

  async function openSpan(passage, start, end, page, opener) {
    const mine = ++openCount;
    returnFocus = opener || null;
    const panel = $("source");
    panel.hidden = false;
    panel.dataset.state = "loading";
    $("source-title").textContent = docLabel(passage);
    $("source-meta").replaceChildren();
    $("source-where").textContent = t("loadingDoc");
    $("source-text").replaceChildren();
    let doc;
    try {
      doc = await fetchDoc(passage.doc_id);
      if (!holds(doc, passage)) { // changed since it was cached: read it again
        docCache.delete(passage.doc_id);
        doc = await fetchDoc(passage.doc_id);
      }
    } catch (err) {
      if (mine !== openCount) return;
      $("source-where").textContent = err.status === 404 ? t("docGone") : explain(err);
      panel.dataset.state = "failed";
      return;
    }
    if (mine !== openCount) return;
    if (!holds(doc, passage)) {
      $("source-where").textContent = t("docChanged");
      panel.dataset.state = "failed";
      return;
    }
    const md = doc.metadata || {};
    $("source-title").textContent = doc.title || md.title || doc.source;
    const rows = [
      ["metaTitle", doc.title || md.title], ["metaIssuer", md.issuer], ["metaDocNumber", md.doc_number],
      ["metaDate", md.date], ["metaSource", doc.source],
    ];
    const dl = $("source-meta");
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("div", { "data-key": k }, el("dt", { text: t(k) }), el("dd", { text: String(v) })));
    }
    const where = [];
    const pages = pagesOf(doc, start, end);
    if (pages.length > 1) where.push(t("pages", pages[0], pages[pages.length - 1]));
    else if (page || pages.length) where.push(t("page", page || pages[0]));
    where.push(t("chars", start, end));
    $("source-where").textContent = where.join(" · ");
    const marks = renderDocText(doc, start, end);
    panel.dataset.state = "open";
    $("source-title").focus({ preventScroll: true });
    if (marks.length) marks[0].scrollIntoView({ block: "center" });
    else panel.scrollIntoView({ block: "start" });
  }

  function closeSource() {
    $("source").hidden = true;
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
    returnFocus = null;
  }

  // --- documents -----------------------------------------------------------------------------
  async function loadDocuments() {
    const rows = $("doc-rows");
    let list;
    try {
      list = await (await api("/v1/documents")).json();
    } catch (err) {
      say(explain(err), "error");
      return null;
    }
    rows.replaceChildren();
    if (!list.documents.length) {
      rows.append(el("tr", {}, el("td", { colspan: 7, text: t("noDocs") })));
    }
    for (const d of list.documents) {
      const md = d.metadata || {};
      rows.append(el("tr", { "data-doc-id": d.doc_id, "data-source": d.source },
        el("td", { text: d.title || md.title || "" }),
        el("td", { class: "source-cell", text: d.source }),
        el("td", { text: md.issuer || "" }),
        el("td", { class: "nowrap", text: md.doc_number || "" }),
        el("td", { class: "nowrap", text: md.date || "" }),
        el("td", { class: "num", text: String(d.chunks) }),
        el("td", {}, el("button", { type: "button", class: "danger", text: t("delete"),
          "aria-label": t("deleteLabel", d.source), onclick: () => removeDocument(d) }))));
    }
    return list;
  }

  async function removeDocument(d) {
    if (!window.confirm(t("confirmDelete", d.source))) return;
    try {
      await api(`/v1/documents/${encodeURIComponent(d.doc_id)}`, { method: "DELETE" });
      docCache.delete(d.doc_id);
      say(t("deleted", d.source), "ok");
    } catch (err) {
      say(explain(err), "error");
    }
    await loadDocuments();
    $("refresh").focus();
  }

  function uploadOne(file, item) {
    // XMLHttpRequest: fetch reports no upload progress
    return new Promise((resolve) => {
      const bar = item.querySelector("progress");
      const state = item.querySelector(".state");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/documents");
      const key = sessionStorage.getItem(KEY_STORE);
      if (key) xhr.setRequestHeader("Authorization", "Bearer " + key);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) bar.value = e.loaded / e.total;
      };
      xhr.upload.onload = () => { bar.value = 1; state.textContent = t("processing"); };
      xhr.onerror = () => {
        state.textContent = `${t("failed")}: ${t("networkError")}`;
        item.dataset.status = "failed";
        resolve(false);
      };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 200 || xhr.status === 201) {
          const r = body.documents[0];
          item.dataset.status = r.status;
          item.dataset.docId = r.doc_id;
          let s = t(r.status);
          if (r.duplicate_of) { s += " · " + t("duplicateOf", r.duplicate_of); item.dataset.duplicateOf = r.duplicate_of; }
          state.textContent = `${s} · ${r.chunks} ${t("chunks")}`;
          docCache.delete(r.doc_id);
          resolve(true);
        } else {
          const err = new ApiError(xhr.status, body && body.error ? body.error.code : "http_" + xhr.status,
            body && body.error ? body.error.message : xhr.statusText, xhr.getResponseHeader("Retry-After"));
          state.textContent = `${t("failed")}: ${explain(err)}`;
          item.dataset.status = "failed";
          resolve(false);
        }
      };
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  async function uploadFiles(files) {
    if (!files.length) return;
    const list = $("uploads");
    let ok = 0, bad = 0;
    const items = files.map((f) => {
      const item = el("li", { "data-name": f.name },
        el("span", { class: "name", text: f.name }), " ",
        el("progress", { max: 1, value: 0, "aria-label": t("progressLabel", f.name) }), " ",
        el("span", { class: "state", text: t("uploading") }));
      list.prepend(item);
      return item;
    });
    for (let i = 0; i < files.length; i++) {
      if (await uploadOne(files[i], items[i])) ok++; else bad++;
    }
    say(t("uploadDone", ok, bad), bad ? "error" : "ok");
    await loadDocuments();
  }

  // --- views, key, language ------------------------------------------------------------------
  function show(view) {
    const docs = view === "docs";
    $("view-ask").hidden = docs;
    $("view-docs").hidden = !docs;
    for (const [tab, on] of [[$("tab-ask"), !docs], [$("tab-docs"), docs]]) {
      if (on) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
    }
    if (docs) loadDocuments();
    if (location.hash !== (docs ? "#documents" : "")) history.replaceState(null, "", docs ? "#documents" : location.pathname);
  }

  async function probe() {
    try {
      const list = await (await api("/v1/documents")).json();
      say(t("docCount", list.total));
    } catch (err) {
      say(explain(err), err.status === 401 ? "error" : "");
    }
  }

  function init() {
    applyLanguage();
    $("tab-ask").addEventListener("click", () => show("ask"));
    $("tab-docs").addEventListener("click", () => show("docs"));
    $("lang").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_STORE, lang);
      applyLanguage();
    });
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("key-input").value.trim();
      if (!v) return;
      sessionStorage.setItem(KEY_STORE, v);
      $("key-input").value = "";
      $("key-box").hidden = true;
      docCache.clear();
      say("");
      if (!$("view-docs").hidden) loadDocuments(); else probe();
      $("question").focus();
    });
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      $("key-input").value = "";
      docCache.clear();
    });
    $("ask-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const q = $("question").value.trim();
      if (q) ask(q);
    });
    $("question").addEventListener("keydown", (e) => {
      // Enter asks, Shift+Enter breaks the line (not while an input method is composing)
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        $("ask-form").requestSubmit();
      }
    });
    $("source-close").addEventListener("click", closeSource);
    $("source").addEventListener("keydown", (e) => { if (e.key === "Escape") closeSource(); });
    $("refresh").addEventListener("click", loadDocuments);
    $("files").addEventListener("change", (e) => {
      const files = [...e.target.files];
      e.target.value = "";
      uploadFiles(files);
    });
    const drop = $("drop");
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
    }
    for (const type of ["dragleave", "drop"]) {
      drop.addEventListener(type, () => drop.classList.remove("over"));
    }
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      uploadFiles([...(e.dataTransfer ? e.dataTransfer.files : [])]);
    });
    show(location.hash === "#documents" ? "docs" : "ask");
    probe();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
