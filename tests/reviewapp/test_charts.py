"""reviewapp/charts.py: server-rendered SVG. No database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reviewapp import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own markup, parsed to check its shape


def test_line_chart_draws_each_series_and_breaks_on_missing_days():
    markup = charts.line_chart(
        title="Rates",
        x_labels=["05-01", "05-02", "05-03", "05-04"],
        series=[("auto-approved", [0.5, None, 0.25, 1.0]), ("escalated", [0.5, 0.5, 0.75, 0.0])],
        y_format=charts.percent,
        y_max=1.0,
    )
    root = parse(markup)
    paths = root.findall(f"{SVG}path")
    assert len(paths) == 2
    # The missing day starts a new segment: two moves in the first series' path.
    assert paths[0].get("d").count("M") == 2
    assert paths[1].get("d").count("M") == 1
    tips = [c.find(f"{SVG}title").text for c in root.findall(f"{SVG}circle")]
    assert "auto-approved, 05-04: 100%" in tips
    assert len(tips) == 7
    assert root.get("role") == "img"


def test_everything_written_is_escaped_and_no_inline_style():
    hostile = '<script>alert(1)</script>"&'
    markup = charts.line_chart(title=hostile, x_labels=[hostile], series=[(hostile, [1.0])])
    markup += charts.stacked_bar_chart(title=hostile, x_labels=[hostile], series=[(hostile, [3])])
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    assert "style=" not in markup and "<style" not in markup
    for part in markup.split("</svg>")[:-1]:
        parse(part + "</svg>")  # well-formed


def test_stacked_bars_stack_bottom_up():
    markup = charts.stacked_bar_chart(
        title="Actions", x_labels=["d1", "d2"], series=[("approved", [3, 0]), ("escalated", [1, 2])]
    )
    rects = [r for r in parse(markup).findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [r.find(f"{SVG}title").text for r in rects] == ["approved, d1: 3", "escalated, d1: 1", "escalated, d2: 2"]
    approved, escalated = float(rects[0].get("height")), float(rects[1].get("height"))
    assert approved == pytest.approx(3 * escalated)
    # The second sits on top of the first.
    assert float(rects[1].get("y")) + escalated == pytest.approx(float(rects[0].get("y")))


def test_empty_and_mismatched_input():
    assert "No data" in charts.line_chart(title="x", x_labels=[], series=[])
    assert "No data" in charts.stacked_bar_chart(title="x", x_labels=[], series=[])
    with pytest.raises(ValueError):
        charts.line_chart(title="x", x_labels=["a"], series=[("s", [1, 2])])


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (0.7, 1), (3, 5), (12, 20), (21, 25), (100, 100), (101, 200)])
def test_nice_max(value, expected):
    assert charts.nice_max(value) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.25, "4.2 s"), (45, "45 s"), (90, "1.5 min"), (120, "2 min"), (7200, "2 h"), (129600, "1.5 d")],
)
def test_duration(seconds, text):
    assert charts.duration(seconds) == text


def test_meter_splits_the_bar_by_share_and_escapes_its_names():
    markup = charts.meter(
        title="Progress <b>",
        segments=[("done", 3, "#009E73"), ("in <i>review</i>", 1, "#E69F00"), ("open", 0, "#ccc")],
        width=160,
    )
    root = parse(markup)
    track, *parts = root.findall(f"{SVG}rect")
    assert float(track.get("width")) == 160
    assert [p.find(f"{SVG}title").text for p in parts] == ["done: 3", "in <i>review</i>: 1"]  # text, not markup
    assert [float(p.get("width")) for p in parts] == [120, 40]
    assert float(parts[1].get("x")) == 120
    assert "<i>" not in markup and "style=" not in markup
    assert root.get("aria-label") == "Progress <b>: done 3, in <i>review</i> 1, open 0"


def test_an_empty_meter_is_the_bare_track_and_a_swatch_is_one_square():
    root = parse(charts.meter(title="Progress", segments=[("done", 0, "#000"), ("open", 0, "#ccc")]))
    assert len(root.findall(f"{SVG}rect")) == 1
    square = parse(charts.swatch('#000"/><script>'))
    assert square.find(f"{SVG}rect").get("fill") == '#000"/><script>'
