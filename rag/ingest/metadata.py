"""Document metadata: policy fields read from the text, merged under the user's own metadata.

`extract_metadata` reads `title`, `date` (ISO `YYYY-MM-DD`), `issuer` (发文机关) and `doc_number`
(文号) from where Chinese policy documents and news articles put them: labelled fields
(`发文字号：…`, `发布日期：…`), the header lines before the body (title, 文号, a date line) and the
落款 (issuing body, then the date) after it. It is conservative: a date or 文号 mentioned in the
body is never taken, nothing is guessed, and a key is absent when it is not found.

`with_metadata` is what ingestion calls: extracted values go into `Document.metadata` unless the
user supplied the key (the user's value wins), and a found title replaces a loader title that was
only the document's first line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from rag.errors import InputError
from rag.types import Document

KEYS = ("title", "date", "issuer", "doc_number")
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_CHARS = 128
MAX_METADATA_BYTES = 16_384  # of the JSON encoding: metadata rides along with every passage

_HEADER_LINES = 12  # a header (红头, 文号, title, date line) is never longer than this
_FOOTER_LINES = 12  # nor are the 落款 and 版记 at the end

# --- dates ----------------------------------------------------------------------------------
_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "Ｏ": 0, "O": 0, "０": 0}
_CN_DIGITS.update({c: i for i, c in enumerate("一二三四五六七八九", 1)})
_CN_YEAR = "[〇○零Ｏ０O一二三四五六七八九]{4}"
_CN_SMALL = "[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九]"
_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号號]"
    r"|(?<![\d.])(?P<y2>(?:19|20)\d{2})(?P<sep>[-/.])(?P<m2>\d{1,2})(?P=sep)(?P<d2>\d{1,2})(?![\d.])"
    rf"|(?<![〇○零一二三四五六七八九十])(?P<y3>{_CN_YEAR})年(?P<m3>{_CN_SMALL})月(?P<d3>{_CN_SMALL})[日号號]"
)
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?"
# What may follow a date on a news date line: a time, then the source, author or page furniture.
_DATE_LINE_TAIL = re.compile(
    rf"^\s*(?:{_TIME})?\s*(?:$|[|｜]|(?:来源|來源|作者|编辑|編輯|责任编辑|責任編輯|字号|字號|浏览|瀏覽|阅读|閱讀|星期|周[一二三四五六日])\s*)"
)
_DATE_LABEL = re.compile(
    r"(?P<label>发布日期|發布日期|发布时间|發布時間|公布日期|成文日期|发文日期|發文日期|印发日期|印發日期|日期|时间|時間)\s*[:：]\s*$"
)
_DATE_LABEL_RANK = {"发布": 0, "發布": 0, "公布": 0, "成文": 1, "发文": 1, "發文": 1, "印发": 1}

# --- 文号 -----------------------------------------------------------------------------------
_DOC_NUMBER = re.compile(
    r"(?P<pre>[\u4e00-\u9fff]{1,12})\s*[〔\[（(【]\s*(?P<year>(?:19|20)\d{2})\s*[〕\]）)】]"
    r"\s*(?P<num>第?\s*\d{1,5})\s*(?P<hao>[号號])"
)
_DOC_NUMBER_LABEL = re.compile(r"(?:发文字号|發文字號|文号|文號)\s*[:：]\s*")

# --- issuers --------------------------------------------------------------------------------
_ORG = re.compile(
    r"^[\u4e00-\u9fff（）()]{2,40}?"
    r"(?:政府|办公厅|辦公廳|办公室|辦公室|委员会|委員會|委|局|部|厅|廳|院|署|会|會|中心|公司|银行|銀行"
    r"|集团|集團|所|处|處|社|办|辦|组|組|馆|館)$"
)
_ISSUER_LABEL = re.compile(
    r"(?:发文机关|發文機關|发布机构|發布機構|发文单位|發文單位|发布单位|發布單位)\s*[:：]\s*(?P<org>[\u4e00-\u9fff（）()]{2,40}?)"
    r"(?=$|\s|[，,;；|｜]|发文|發文|成文|发布|發布|文号|文號|索引|主题|主題)"
)
_RED_HEADER = re.compile(r"^(?P<org>.+?)文件$")  # 红头: "上海市人民政府文件"

# --- titles ---------------------------------------------------------------------------------
_ABOUT = re.compile(r"关于|關於")
_KINDS = (
    "通知|通告|公告|意见|意見|决定|決定|办法|辦法|规定|規定|规划|規劃|方案|批复|批覆|函|报告|報告|请示|請示"
    "|决议|決議|命令|细则|細則|条例|條例|纲要|綱要|计划|計劃|措施|指引|指南|通报|通報|公报|公報|规则|規則"
    "|章程|清单|清單|要点|要點|纪要|紀要"
)
# A title ends in a document kind, maybe followed by an edition note: "办法（试行）".
_KIND_END = re.compile(
    rf"(?:{_KINDS})(?:[（(](?:试行|試行|暂行|暫行|征求意见稿|徵求意見稿|草案|修订|修訂|\d{{4}}年(?:修订|修訂|版)?)[）)])?"
)
_TITLE_LABEL = re.compile(r"^(?:标题|標題|题名|題名)\s*[:：]\s*(?P<title>.+)$")
_PROSE = re.compile(r"[。！？!?；;]")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_LABELLED = re.compile(
    r"^[^:：]{1,8}[:：]"
)  # "索引号：…": a field of a metadata block, not a title
_TRAILER = re.compile(
    r"^(?:抄送|抄報|抄报|主送|联系人|聯繫人|联系电话|聯繫電話|附件|[（(]此件|此件)|(?:印发|印發)$|^[（(].*[）)]$"
)
_BRACKETS = (("《", "》"), ("（", "）"), ("(", ")"), ("“", "”"), ("〔", "〕"), ("【", "】"))


@dataclass(frozen=True)
class Extracted:
    """What `extract_metadata` found; a field is None when the text does not say it."""

    title: str | None = None
    date: str | None = None  # ISO YYYY-MM-DD
    issuer: str | None = None
    doc_number: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The found fields only (absent keys were not found)."""
        values = {k: getattr(self, k) for k in KEYS}
        return {k: v for k, v in values.items() if v}


def extract_metadata(text: str, title: str = "") -> Extracted:
    """Title, publication date, issuer and 文号 of a (policy) document, where it states them.

    `title` is the loader's title; it is used when the text's header holds no policy title
    (e.g. a DOCX title property), unless it is a truncated first line.
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    header = _header(lines)
    doc_title, title_rest = _find_title(header)
    if doc_title is None and title and not title.endswith("…"):
        doc_title, title_rest = _policy_title(_MD_HEADING.sub("", title.strip()))
    sig_date, sig_issuer = _signature(lines, len(header))
    labelled_date = _labelled_date(header)
    return Extracted(
        title=doc_title,
        date=labelled_date or sig_date or _header_date(header),
        issuer=_labelled_issuer(header)
        or sig_issuer
        or _title_issuer(doc_title)
        or _red_header_issuer(header),
        doc_number=_labelled_doc_number(header) or _header_doc_number(header, title_rest),
    )


def normalize_date(value: str) -> str | None:
    """`value` as ISO `YYYY-MM-DD` when it is exactly one date (`2024年10月15日`,
    `二〇二四年十月十五日`, `2024/10/15`, `2024.10.15`, `2024-10-15`), else None."""
    value = value.strip()
    m = _DATE.fullmatch(value)
    return _iso(m) if m else None


def check_user_metadata(metadata: Mapping[str, Any] | None) -> None:
    """Refuse user metadata that is not a small JSON object (`InputError`, naming the limit)."""
    if not metadata:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise InputError(f"metadata has {len(metadata)} keys; the limit is {MAX_METADATA_KEYS}")
    for key in metadata:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_METADATA_KEY_CHARS:
            raise InputError(
                f"metadata keys must be non-empty strings of at most {MAX_METADATA_KEY_CHARS} characters"
            )
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise InputError(f"metadata must be plain JSON (finite numbers): {exc}") from exc
    if len(encoded) > MAX_METADATA_BYTES:
        raise InputError(
            f"metadata is {len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES}"
        )


def with_metadata(document: Document) -> Document:
    """`document` with extracted metadata added under the user's (user values win).

    A user `date` in a recognised form is normalised to ISO (so date filters can compare it).
    The title becomes the user's `title` metadata if given, else the extracted title when the
    loader's title was just the text's first line (possibly cut).
    """
    user = dict(document.metadata)
    user_date = user.get("date")
    if isinstance(user_date, str):
        user["date"] = normalize_date(user_date) or user_date
    found = extract_metadata(document.text, document.title).as_dict()
    metadata: dict[str, Any] = {**found, **user}
    title = document.title
    user_title = user.get("title")
    if isinstance(user_title, str) and user_title.strip():
        title = user_title.strip()
    elif "title" in found and _is_first_line(document.title, document.text):
        title = found["title"]
    return replace(document, title=title, metadata=metadata)


# --- parts ----------------------------------------------------------------------------------
def _header(lines: list[str]) -> list[str]:
    """The leading lines before the body starts (the first line of running prose)."""
    out: list[str] = []
    for line in lines[:_HEADER_LINES]:
        if _PROSE.search(line) or len(line) > 200:
            break
        out.append(_MD_HEADING.sub("", line))
    return out


def _iso(m: re.Match[str]) -> str | None:
    """The ISO date of a `_DATE` match, or None when it is no calendar date (2024-02-30)."""
    try:
        if m.group("y"):
            d = date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        elif m.group("y2"):
            d = date(int(m.group("y2")), int(m.group("m2")), int(m.group("d2")))
        else:
            year = int("".join(str(_CN_DIGITS[c]) for c in m.group("y3")))
            d = date(year, _cn_small(m.group("m3")), _cn_small(m.group("d3")))
    except ValueError:
        return None
    return d.isoformat()


def _cn_small(s: str) -> int:
    """一..三十一 as an int."""
    if "十" not in s:
        return _CN_DIGITS[s]
    tens, _, ones = s.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _dates(line: str) -> Iterator[tuple[re.Match[str], str]]:
    """Every valid date in `line`, with its ISO form."""
    for m in _DATE.finditer(line):
        iso = _iso(m)
        if iso:
            yield m, iso


def _only_date(line: str) -> str | None:
    """The ISO date when `line` is a date and nothing else (brackets and spaces aside)."""
    return normalize_date(line.strip(" （）()[]【】"))


def _labelled_date(header: list[str]) -> str | None:
    """A header date after a label; 发布日期 outranks 成文日期, which outranks a bare 日期."""
    best: tuple[int, str] | None = None
    for line in header:
        for m, iso in _dates(line):
            label = _DATE_LABEL.search(line, 0, m.start())
            if label:
                rank = _DATE_LABEL_RANK.get(label.group("label")[:2], 2)
                if best is None or rank < best[0]:
                    best = (rank, iso)
    return best[1] if best else None


def _header_date(header: list[str]) -> str | None:
    """A news-style date line in the header: the date first, then only a time, source or author."""
    for line in header:
        for m, iso in _dates(line):
            before = line[: m.start()].strip(" [【|｜")
            if not before and _DATE_LINE_TAIL.match(line[m.end() :]):
                return iso
    return None


def _signature(lines: list[str], header_len: int) -> tuple[str | None, str | None]:
    """The 落款: (date, issuer). The first issuing body followed by a date line after the header
    (attachments may follow a notice's 落款), else a date line ending the text (after 版记)."""
    for i in range(header_len, len(lines)):
        iso = _only_date(lines[i])
        if iso and i > 0 and _is_org(lines[i - 1]):
            return iso, lines[i - 1]
        org_date = _org_then_date(lines[i])
        if org_date:
            return org_date[1], org_date[0]
    tail = lines[max(header_len, len(lines) - _FOOTER_LINES) :]
    while tail and _TRAILER.search(tail[-1]) and not _only_date(tail[-1]):
        tail = tail[:-1]
    if tail:
        iso = _only_date(tail[-1])
        if iso:
            return iso, None
    return None, None


def _org_then_date(line: str) -> tuple[str, str] | None:
    """`上海市人民政府 2024年10月15日` on one line → (issuer, ISO date)."""
    for m, iso in _dates(line):
        org = line[: m.start()].strip()
        if m.end() == len(line.rstrip()) and _is_org(org):
            return org, iso
    return None


def _is_org(s: str) -> bool:
    """One issuing body's name (joint issuers on one line are not taken apart)."""
    return bool(_ORG.match(s)) and not _ABOUT.search(s)


def _labelled_issuer(header: list[str]) -> str | None:
    for line in header:
        m = _ISSUER_LABEL.search(line)
        if m and _is_org(m.group("org")):
            return m.group("org")
    return None


def _title_issuer(title: str | None) -> str | None:
    """The body a policy title names before 关于: `国务院办公厅关于…的通知` → 国务院办公厅."""
    if not title:
        return None
    m = _ABOUT.search(title)
    org = title[: m.start()].strip() if m else ""
    return org if _is_org(org) else None


def _red_header_issuer(header: list[str]) -> str | None:
    m = _RED_HEADER.match(header[0]) if header else None
    return m.group("org") if m and _is_org(m.group("org")) else None


def _doc_number(m: re.Match[str]) -> str:
    """A 文号 with its brackets unified to 〔〕 and spaces dropped: `沪府发〔2024〕12号`."""
    num = re.sub(r"\s", "", m.group("num"))
    return f"{m.group('pre')}〔{m.group('year')}〕{num}{m.group('hao')}"


def _labelled_doc_number(header: list[str]) -> str | None:
    for line in header:
        label = _DOC_NUMBER_LABEL.search(line)
        m = _DOC_NUMBER.match(line, label.end()) if label else None
        if m:
            return _doc_number(m)
    return None


def _header_doc_number(header: list[str], title_rest: str) -> str | None:
    """A 文号 standing on its own header line (maybe followed by `签发人：…`), or right after the
    title on the same line. One cited in the body (`（国发〔2017〕35号）`) is never taken."""
    for line in header:
        m = _DOC_NUMBER.match(line)
        if m and (m.end() == len(line) or line[m.end()].isspace()):
            return _doc_number(m)
    # normalize_text may have joined title, 文号 and salutation into one line
    m = _DOC_NUMBER.match(title_rest)
    if m and _title_rest_ok(title_rest[m.end() :].strip()):
        return _doc_number(m)
    return None


def _balanced(s: str) -> bool:
    return all(s.count(a) == s.count(b) for a, b in _BRACKETS)


def _title_like(s: str) -> bool:
    return 4 <= len(s) <= 120 and not _PROSE.search(s) and _balanced(s)


def _policy_title(line: str, whole_line: bool = True) -> tuple[str | None, str]:
    """(title, what follows it on the line) when `line` starts with a title ending in a document
    kind: `…关于…的通知` (the rest may be the 文号 or the salutation it got joined with), or, with
    `whole_line`, a line that is all title, such as `上海市促进人工智能产业发展条例`."""
    about = _ABOUT.search(line)
    for m in reversed(list(_KIND_END.finditer(line))):
        title, rest = line[: m.end()], line[m.end() :].strip()
        if not _title_like(title):
            continue
        if about and about.start() < m.start() and _title_rest_ok(rest):
            return title, rest
        if whole_line and not rest and not about:
            return title, rest
    return None, ""


def _title_rest_ok(rest: str) -> bool:
    """After a title on one line: nothing, a 文号, or the salutation (`各区人民政府，…：`)."""
    return not rest or bool(_DOC_NUMBER.match(rest)) or (rest[-1] in "：:" and "。" not in rest)


def _find_title(header: list[str]) -> tuple[str | None, str]:
    """The policy title among the header lines (a title split over two lines is joined).

    A `…关于…的通知` title may follow other header lines; a title without 关于 must be the first
    line that is not a 红头, 文号, date or labelled field (later ones are often a contents list).
    """
    first = True
    for i, line in enumerate(header):
        if _LABELLED.match(line):
            m = _TITLE_LABEL.match(line)
            if m and _title_like(m.group("title").strip()):
                return m.group("title").strip(), ""
            continue
        if _RED_HEADER.match(line) or _DOC_NUMBER.match(line) or any(_dates(line)):
            continue
        title, rest = _policy_title(line, whole_line=first)
        if title is None and _ABOUT.search(line) and i + 1 < len(header):
            title, rest = _policy_title(line + header[i + 1], whole_line=False)
        if title is not None:
            return title, rest
        first = False
    return None, ""


def _is_first_line(title: str, text: str) -> bool:
    """Whether a loader's title is just the text's first line (or its cut start, `…`)."""
    first = text.lstrip().split("\n", 1)[0].strip()
    return not title or title == first or (title.endswith("…") and first.startswith(title[:-1]))
