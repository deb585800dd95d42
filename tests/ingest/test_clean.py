"""`clean_pages`: running headers/footers and page numbers go, hyphenated words are rejoined,
and every other line stays exactly as extracted."""

from __future__ import annotations

import pytest

from rag.ingest.clean import clean_pages, is_page_number, join_hyphenated

BODIES = [
    ["关于推进港航物流一体化的实施意见", "各区人民政府：", "现就推进港航物流一体化提出如下意见。"],
    ["一、总体目标", "到2027年，物流总费用比率降至百分之十三左右。"],
    ["二、主要任务", "洋山港四期自动化码头由上海国际港务集团负责运营。", "试点企业共有四十二家。"],
    ["三、保障措施", "建立联席会议制度，每季度通报一次工作进展。"],
]


def pages(header: str | None, footer: str | None, bodies: list[list[str]] = BODIES) -> list[str]:
    """Page texts as a PDF extractor gives them: header, body lines, footer (`{n}` = page)."""
    out = []
    for n, body in enumerate(bodies, 1):
        lines = ([header.format(n=n)] if header else []) + body
        lines += [footer.format(n=n, total=len(bodies))] if footer else []
        out.append("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize(
    ("header", "footer"),
    [
        ("上海市人民政府公报", "- {n} -"),
        ("上海市人民政府公报  2024年第{n}期", "第{n}页 共{total}页"),
        ("上海市人民政府公报 第 {n} 页", None),  # the page number inside the header
        (None, "{n}/{total}"),
        (None, "— {n} —"),
        ("Shanghai Gazette", "Page {n} of {total}"),
        (None, "{n}"),  # a bare page number: recurs at the bottom of every page
        ("上海市人民政府公报", "第{n}页"),
        ("上海市人民政府公报", "－ {n} －"),  # full-width dashes
    ],
)
def test_headers_footers_and_page_numbers_go_and_the_body_stays(
    header: str | None, footer: str | None
) -> None:
    cleaned = clean_pages(pages(header, footer))
    assert cleaned == ["\n".join(body) for body in BODIES]


def test_running_lines_that_alternate_between_odd_and_even_pages_go() -> None:
    bodies = BODIES + BODIES[::-1]  # six pages: three odd, three even
    raw = [
        f"{'上海市人民政府公报' if n % 2 else '2024年第9期'}\n" + "\n".join(body) + f"\n{n}\n"
        for n, body in enumerate(bodies, 1)
    ]
    assert clean_pages(raw) == ["\n".join(body) for body in bodies]


def test_a_line_on_few_pages_is_body_text() -> None:
    # The same heading tops two of four pages: not most of them, so it is content.
    bodies = [["专栏", *BODIES[0]], BODIES[1], ["专栏", *BODIES[2]], BODIES[3]]
    assert clean_pages(pages("上海市人民政府公报", "- {n} -", bodies)) == [
        "\n".join(b) for b in bodies
    ]


def test_numbers_inside_the_page_or_in_table_cells_stay() -> None:
    # A table whose cells come out one per line: bare numbers deep inside a page are data.
    table = ["指标", "2023", "目标", "13", "试点企业", "42", "以上为初步统计。"]
    raw = pages("上海市人民政府公报", "- {n} -", [table, BODIES[1], BODIES[2]])
    assert clean_pages(raw)[0] == "\n".join(table)


def test_a_bare_number_at_the_edge_of_some_pages_only_stays() -> None:
    # Page 1 ends with a figure, the others do not: not a page number pattern.
    bodies = [[*BODIES[0], "42"], BODIES[1], BODIES[2], BODIES[3]]
    assert clean_pages(pages(None, None, bodies)) == ["\n".join(b) for b in bodies]


def test_single_page_drops_its_page_number_only() -> None:
    assert clean_pages(["上海市人民政府公报\n正文第一段。\n正文第二段。\n1\n"]) == [
        "上海市人民政府公报\n正文第一段。\n正文第二段。"
    ]
    assert clean_pages(["正文第一段。\n第1页 共1页"]) == ["正文第一段。"]


def test_blank_and_empty_pages() -> None:
    assert clean_pages([]) == []
    raw = pages("上海市人民政府公报", "- {n} -")
    raw.insert(2, "\n \n")  # a blank page in the middle
    cleaned = clean_pages(raw)
    assert cleaned[2] == "" and len(cleaned) == 5
    assert cleaned[3] == "\n".join(BODIES[2])


def test_only_whole_lines_go_words_are_never_rewritten() -> None:
    raw = pages("上海市人民政府公报", "- {n} -")
    for before, after in zip(raw, clean_pages(raw), strict=True):
        kept = after.split("\n")
        assert all(line in before.split("\n") for line in kept)


@pytest.mark.parametrize(
    ("text", "joined"),
    [
        ("The infor-\nmation system", "The information system"),
        ("a well-\nknown port", "a wellknown port"),  # a hyphen at a line end is taken as a break
        ("co\u00ad\noperation", "cooperation"),  # a soft hyphen
        ("Shanghai-\nNingbo", "Shanghai-\nNingbo"),  # a capital after it: a compound name
        ("沪-\n苏", "沪-\n苏"),  # not Latin
        ("2024-\n2025", "2024-\n2025"),
        ("infor- mation", "infor- mation"),  # no line break
    ],
)
def test_hyphenated_words(text: str, joined: str) -> None:
    assert join_hyphenated(text) == joined


def test_hyphenated_words_are_joined_in_pages() -> None:
    body = ["The port community infor-", "mation system links all firms."]
    assert clean_pages(["\n".join(body)]) == [
        "The port community information system links all firms."
    ]


@pytest.mark.parametrize(
    ("line", "is_number"),
    [
        ("- 12 -", True),
        ("—12—", True),
        ("第12页", True),
        ("第 十二 页", True),
        ("第3页 共30页", True),
        ("共30页 第3页", True),
        ("12/30", True),
        ("１２／３０", True),  # full width
        ("Page 7", True),
        ("page 7 of 12", True),
        ("p. 7", True),
        ("12", False),  # bare: only when it recurs, or on a single page
        ("第12章", False),
        ("2024年第9期", False),
        ("12月30日", False),
        ("- 12 -公报", False),
    ],
)
def test_page_number_patterns(line: str, is_number: bool) -> None:
    assert is_page_number(line) is is_number
