"""reviewapp.rendering: untrusted text shown as sent (line breaks, lists), hostile markup inert,
JSON pretty-printed at any depth without recursion, and a size cap with "show all". Pure: no
database."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from demo.scenarios import _RETAIL_SYSTEM
from reviewapp import rendering
from reviewapp.rendering import (
    JSON_MAX_DEPTH,
    MARKDOWN_MAX_MARKS,
    PREVIEW_CHARS,
    TEXT_CAP,
    MarkdownBudget,
    json_html,
    json_text_depth,
    pretty_json,
    text_html,
)


class _Elements(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def tags(self) -> list[str]:
        return [tag for tag, _ in self.elements]


def nested(depth: int) -> list:
    """[[[...]]] `depth` levels deep, built without recursion."""
    outer = inner = []
    for _ in range(depth - 1):
        child: list = []
        inner.append(child)
        inner = child
    return outer


# --- faithful: line breaks and lists ---------------------------------------------------------


def test_single_newlines_are_line_breaks():
    assert str(text_html("first line\nsecond line")) == '<div class="md"><p>first line<br>second line</p>\n</div>'


def test_runs_of_spaces_reach_the_page_for_pre_wrap():
    assert "<p>a   b</p>" in str(text_html("a   b"))


def test_the_demo_agents_list_after_a_colon_is_a_list():
    answer = (
        "Here's what I found for 2026-12-03:\n"
        "- DA1887 at 2026-12-03 07:35: fare difference $0.00\n"
        "- DA1089 at 2026-12-03 12:10: fare difference $45.20\n"
        "Each is with no change fee on your fare. Which one works for you?"
    )

    page = _Elements(str(text_html(answer)))

    assert page.tags() == ["div", "p", "ul", "li", "li", "br"]
    assert "".join(page.text).split("\n") == [
        "Here's what I found for 2026-12-03:",
        "",
        "DA1887 at 2026-12-03 07:35: fare difference $0.00",
        "DA1089 at 2026-12-03 12:10: fare difference $45.20Each is with no change fee on your fare. Which one works "
        "for you?",
        "",
        "",
    ]


def test_the_demo_system_prompts_policy_list_is_a_list():
    page = _Elements(str(text_html(_RETAIL_SYSTEM.format(version="shop-v1.0"))))

    assert page.tags().count("li") == 4
    assert page.tags()[:4] == ["div", "p", "br", "br"]  # three lines, then the list


def test_ordered_lists_keep_their_first_number():
    assert '<ol start="3">' in str(text_html("3. three\n4. four"))


def test_tables_code_and_emphasis_render():
    html = str(text_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nx = 1\n```\n`c` **b** _i_ ~~s~~"))

    assert "<table>" in html and "<td>2</td>" in html
    assert "<pre><code>x = 1\n</code></pre>" in html
    assert "<code>c</code> <strong>b</strong> <em>i</em> <s>s</s>" in html


# --- hostile markup --------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<svg onload="alert(1)"></svg>',
    '<a href="javascript:alert(1)">raw link</a>',
    "<iframe src=https://evil.example></iframe>",
    "[md link](javascript:alert(1))",
    "[md link](JaVaScRiPt:alert(1))",
    "[md link]( javascript:alert(1) )",
    "[md link](&#106;avascript:alert(1))",
    "[md link](java\tscript:alert(1))",
    "[md link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[md link](vbscript:alert(1))",
    "[md link](/admin/)",
    "[ref link][r]\n\n[r]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![pixel](https://tracker.example/p.png)",
    "![pixel](javascript:alert(1))",
    '[x](https://ok.example "title" onmouseover="alert(1)")',
    "`<script>alert(1)</script>`",
    "\n```html\n<script>alert(1)</script>\n```\n",
    "<style>body{display:none}</style>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_markup_is_inert(payload):
    html = str(text_html(f"before {payload} after"))

    page = _Elements(html)
    assert set(page.tags()) <= {"div", "p", "a", "code", "pre", "br"}, page.tags()
    for tag, attrs in page.elements:
        if tag == "a":
            assert set(attrs) == {"href", "rel"} or set(attrs) == {"href", "rel", "title"}, attrs
            assert attrs["href"].startswith("https://"), attrs
            assert attrs["rel"] == "noopener noreferrer nofollow"
        else:
            assert attrs == ({"class": "md"} if tag == "div" else {}), (tag, attrs)
    assert "before" in "".join(page.text) and "after" in "".join(page.text)


@pytest.mark.parametrize(
    "payload",
    ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[md link](javascript:alert(1))", "<b>bold?</b>"],
)
def test_raw_html_and_refused_links_are_shown_as_the_text_they_were(payload):
    assert payload in "".join(_Elements(str(text_html(payload))).text)


def test_an_image_is_shown_as_a_link_to_where_it_pointed():
    html = str(text_html("![pixel](https://tracker.example/p.png)"))

    assert "<img" not in html
    assert '!<a href="https://tracker.example/p.png" rel="noopener noreferrer nofollow">pixel</a>' in html


def test_http_links_open_safely():
    html = str(text_html("[docs](https://example.com/a?b=1&c=2) and <mailto:help@example.com>"))

    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">docs</a>' in html
    assert '<a href="mailto:help@example.com" rel="noopener noreferrer nofollow">' in html


def test_the_sanitiser_drops_a_non_http_href_markdown_let_through():
    # Belt and braces behind markdown-it's own link check.
    assert rendering._cleaner.clean('<a href="/admin/">x</a>') == '<a rel="noopener noreferrer nofollow">x</a>'
    assert rendering._cleaner.clean('<a href="javascript:alert(1)">x</a>') == (
        '<a rel="noopener noreferrer nofollow">x</a>'
    )


# --- bounded: the cap, the markup limit, the page budget -------------------------------------


def test_text_over_the_cap_is_a_plain_preview_with_show_all():
    text = "**not bold** <b>x</b>\n" + "[" * TEXT_CAP

    html = str(text_html(text))

    page = _Elements(html)
    assert page.tags() == ["div", "div", "details", "summary", "div"]
    assert page.elements[1][1] == {"class": "as-sent preview"}
    preview, summary, full = page.text
    assert preview == text[:PREVIEW_CHARS] + "…"
    assert summary == f"Show all {len(text):,} characters"
    assert full == text
    assert "<strong>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_text_at_the_cap_is_still_parsed():
    text = "**bold** " + "a" * (TEXT_CAP - 9)

    assert len(text) == TEXT_CAP
    assert str(text_html(text)).startswith('<div class="md"><p><strong>bold</strong> aaa')


def test_text_dense_in_markup_is_shown_as_sent_instead_of_parsed():
    text = "*a* " + "[" * (MARKDOWN_MAX_MARKS - 1)  # one mark over the limit

    assert str(text_html(text)) == f'<div class="as-sent">{text}</div>'
    assert str(text_html(text[:-1])).startswith('<div class="md"><p><em>a</em>')


def test_the_page_budget_stops_parsing_once_spent():
    budget = MarkdownBudget(marks=10)

    first = text_html("*one* two", budget=budget)  # 2 marks
    second = text_html("*" * 8, budget=budget)  # 8: exactly what is left
    third = text_html("*three*", budget=budget)

    assert str(first) == '<div class="md"><p><em>one</em> two</p>\n</div>'
    assert str(second).startswith('<div class="md">')
    assert str(third) == '<div class="as-sent">*three*</div>'
    assert budget.marks == 0


def test_non_text_renders_nothing():
    assert str(text_html("")) == str(text_html(None)) == ""  # type: ignore[arg-type]


# --- JSON ------------------------------------------------------------------------------------


def test_pretty_json_indents_and_keeps_key_order():
    assert pretty_json('{"b": 1, "a": [true, null]}') == '{\n  "b": 1,\n  "a": [\n    true,\n    null\n  ]\n}'
    assert pretty_json({"b": "é", "a": 2}) == '{\n  "b": "é",\n  "a": 2\n}'


@pytest.mark.parametrize("text", ["not json", '{"a": 1,}', '{"a": ', "", '"just a string"', "42", "[1, 2] trailing"])
def test_pretty_json_shows_anything_else_as_sent(text):
    assert pretty_json(text) == text


def test_pretty_json_shows_duplicate_keys_as_sent():
    # Decoding keeps only the last; the reviewer must see both.
    assert pretty_json('{"amount": 10, "amount": 1000}') == '{"amount": 10, "amount": 1000}'


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH + 1, 5_000, 100_000])
def test_json_text_too_deep_is_shown_as_sent(depth):
    text = '{"q": ' + "[" * depth + "]" * depth + "}"

    assert pretty_json(text) == text
    assert json_text_depth(text) == JSON_MAX_DEPTH + 1  # counting stops past the limit


def test_json_text_at_the_depth_limit_is_pretty_printed():
    text = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH

    assert pretty_json(text) == json.dumps(json.loads(text), indent=2)


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_decoded_json_of_any_depth_is_shown_compact(depth):
    assert pretty_json(nested(depth)) == "[" * depth + "]" * depth
    assert pretty_json({"a": [nested(depth), "x"]}) == '{"a": [' + "[" * depth + "]" * depth + ', "x"]}'


def test_brackets_inside_strings_do_not_count_as_depth():
    assert json_text_depth('{"a": "[[[[{{{{", "b": ["\\"[["]}') == 2
    assert json_text_depth('["unterminated [[[[[[') == 1


def test_json_html_escapes_and_caps():
    pretty = str(json_html('{"q": "<script>"}'))
    assert pretty == '<pre class="as-sent">{\n  &quot;q&quot;: &quot;&lt;script&gt;&quot;\n}</pre>'
    capped = str(json_html('{"q": "' + "x" * TEXT_CAP + '"}'))
    assert capped.startswith('<div class="capped"><pre class="as-sent preview">{&quot;q&quot;: &quot;xxx')
    assert "Show all 65,545 characters" in capped


def test_markup_is_counted_in_any_text():
    assert rendering.markup_count("é [ü](x) \ud800 *") == 3  # [ ] *
    assert rendering.markup_count(rendering.MARKUP_CHARS) == len(rendering.MARKUP_CHARS)
    assert rendering.markup_count("plain words, and more.") == 0


def test_decoded_values_json_cannot_encode_are_shown_anyway():
    assert pretty_json({(1, 2): "x"}) == '{\n  "[1, 2]": "x"\n}'
    assert pretty_json({"when": {1, 2}}) == '{\n  "when": "{1, 2}"\n}'


def test_json_that_indentation_would_blow_up_is_shown_as_sent():
    # 1,000 arrays 31 deep: 64 KB sent, about 4 MB once indented.
    unit = "[" * 31 + "1" + "]" * 31
    text = "[" + ",".join([unit] * 1_000) + "]"
    few = "[" + ",".join([unit] * 10) + "]"

    assert len(text) <= TEXT_CAP
    assert pretty_json(text) == text
    assert pretty_json(few) == json.dumps(json.loads(few), indent=2)  # ten of them still fit
