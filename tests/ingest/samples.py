"""Test documents built on the fly: Chinese PDFs (reportlab, built-in CID font `STSong-Light`),
Word files (python-docx) and HTML pages, plus broken ones. Imported as `ingest.samples`."""

from __future__ import annotations

import io
import zipfile

from docx import Document as new_docx
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

HEADER = "上海市人民政府公报"
# One list of drawn lines per page (each line drawn as its own text line, as a PDF wraps prose).
# Every page tells something the others do not; page 3 alone names the Yangshan terminal.
GAZETTE_PAGES = [
    [
        "关于推进长三角港航物流一体化的实施意见",
        "各区人民政府，市政府各委、办、局：",
        "为贯彻落实长三角一体化发展国家战略，降低全社会物流成本，现就推进港航物流",
        "一体化提出如下意见，请认真贯彻执行。",
    ],
    [
        "一、总体目标",
        "到２０２７年，区域内社会物流总费用与国内生产总值的比率降至百分之十三左右，",
        "多式联运货运量年均增长百分之八，内河集装箱运输量突破一千万标准箱。",
        "The port community infor-",
        "mation system will link all logistics firms of the delta.",
    ],
    [
        "二、主要任务",
        "洋山港四期自动化码头的年设计吞吐能力为六百三十万标准箱，由上海国际港务集团",
        "负责运营，首批参加“一单制”试点的企业共有四十二家。",
    ],
    [
        "三、保障措施",
        "市发展改革委会同市交通委建立联席会议制度，每季度通报一次工作进展，",
        "对成效明显的区给予资金奖励。",
    ],
]


def pdf_bytes(
    pages: list[list[str]],
    *,
    header: str | None = HEADER,
    footer: str | None = "- {n} -",
    encrypt: str | StandardEncryption | None = None,
) -> bytes:
    """A PDF with one page per entry: an optional running header and page-number footer."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt=encrypt)
    for n, lines in enumerate(pages, 1):
        if header:
            c.setFont(FONT, 9)
            c.drawString(72, 800, header)
            c.drawString(420, 800, f"2024年第{n + 8}期")  # the issue number varies
        c.setFont(FONT, 12)
        y = 740
        for line in lines:
            c.drawString(72, y, line)
            y -= 18
        if footer:
            c.setFont(FONT, 9)
            c.drawString(290, 40, footer.format(n=n, total=len(pages)))
        c.showPage()
    c.save()
    return buf.getvalue()


def gazette_pdf(**kwargs: object) -> bytes:
    """The four-page gazette: header `上海市人民政府公报` and footer `- n -` on every page."""
    return pdf_bytes(GAZETTE_PAGES, **kwargs)  # type: ignore[arg-type]


def encrypted_pdf() -> bytes:
    """The gazette, opened only with the user password `secret`."""
    return gazette_pdf(encrypt="secret")


def owner_locked_pdf() -> bytes:
    """The gazette with only an owner password (copying forbidden): anyone may open it."""
    return gazette_pdf(encrypt=StandardEncryption("", ownerPassword="owner", canCopy=0))


def image_only_pdf() -> bytes:
    """Two pages with a drawn rectangle and a bitmap: a scan, no text at all."""
    from PIL import Image

    image = Image.new("RGB", (40, 20), (200, 30, 30))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for _ in range(2):
        c.rect(100, 400, 300, 200, fill=1)
        c.drawImage(ImageReader(image), 100, 100, width=200, height=100)
        c.showPage()
    c.save()
    return buf.getvalue()


DOCX_TITLE = "青石镇竹编产业年度报告"
DOCX_HEADING = "一、产业概况"
DOCX_PARAGRAPHS = [
    "青石镇的竹编产业在去年实现产值三亿四千万元，当地共有竹编合作社十二家。",
    "镇政府计划在三年内建成竹编文化展示馆，并开设面向青年的技艺培训班。",
]
DOCX_TABLE = [
    ["指标", "去年", "今年目标"],
    ["产值（亿元）", "3.4", "4.0"],
    ["合作社（家）", "12", "15"],
]


def docx_bytes() -> bytes:
    """A Word file: a title, a heading, two paragraphs, a 3×3 table (a merged cell in the last row
    added below it) and a closing paragraph."""
    doc = new_docx()
    doc.add_heading(DOCX_TITLE, 0)
    doc.add_heading(DOCX_HEADING, 1)
    for p in DOCX_PARAGRAPHS:
        doc.add_paragraph(p)
    table = doc.add_table(rows=len(DOCX_TABLE) + 1, cols=3)
    for r, row in enumerate(DOCX_TABLE):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = table.cell(len(DOCX_TABLE), 0).merge(table.cell(len(DOCX_TABLE), 2))
    merged.text = "数据来源：青石镇统计站"
    doc.add_paragraph("以上数据均为初步统计。")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def docx_without_document_xml() -> bytes:
    """A real .docx package with its main part (`word/document.xml`) taken out."""
    src = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in src.namelist():
            if name != "word/document.xml":
                out.writestr(name, src.read(name))
    return buf.getvalue()


def plain_zip() -> bytes:
    """A valid zip archive that is no Office document."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        out.writestr("notes.txt", "不是 Word 文件")
    return buf.getvalue()


ARTICLE_TITLE = "长三角出台全国首个跨省域物流降本增效方案"
ARTICLE_PARAGRAPHS = [
    "记者从上海市发展改革委获悉，沪苏浙皖四地联合印发《长三角地区物流降本增效行动方案》，"
    "这是全国首个跨省域的物流降本增效方案。",
    "方案提出，到2027年，长三角地区社会物流总费用与国内生产总值的比率力争降至13%左右，"
    "区域物流一体化水平明显提升。",
    "方案还提出，合力开展“一单制”“一箱制”试点，打造多式联运示范工程，"
    "推动港口、铁路、公路信息互联互通。",
]
BOILERPLATE = [
    "网站首页",
    "新闻中心",
    "关于我们",
    "热门文章推荐",
    "版权所有",
    "沪ICP备",
    "网站地图",
]


def html_page(charset: str = "utf-8") -> str:
    """A news page: navigation, a sidebar, the article and a footer (and a script)."""
    paragraphs = "\n".join(f"<p>{p}</p>" for p in ARTICLE_PARAGRAPHS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="{charset}"><title>{ARTICLE_TITLE} - 新闻中心 - 某某网</title></head>
<body>
<header><nav><ul><li><a href="/">网站首页</a></li><li><a href="/news">新闻中心</a></li>
<li><a href="/about">关于我们</a></li></ul></nav></header>
<aside class="sidebar"><h3>热门文章推荐</h3><ul><li><a href="/a">沪苏浙皖联合发布新政</a></li>
<li><a href="/b">港口吞吐量再创新高</a></li></ul></aside>
<main><article>
<h1>{ARTICLE_TITLE}</h1>
{paragraphs}
<table><tr><th>指标</th><th>目标</th></tr><tr><td>物流费用比率</td><td>13%</td></tr></table>
</article></main>
<footer><p>版权所有 © 2024 某某网 沪ICP备12345678号</p><p>联系我们 | 网站地图 | 隐私政策</p></footer>
<script>var note = "不应出现的脚本文字";</script>
</body></html>
"""
