"""Small server-rendered SVG charts for the dashboards: no JavaScript, no CDN, no inline style.

Pure (no Django). Every text that reaches the markup (titles, labels, series names, tooltips)
goes through `html.escape`, so a label an agent chose (an action name) cannot inject markup; the
functions return markup the template may mark safe. Colours are SVG presentation attributes
(`fill`, `stroke`), which a Content-Security-Policy without 'unsafe-inline' styles allows.
Each point carries a `<title>` (the browser's tooltip) with its exact value, and the chart an
`aria-label`, so the figures are readable without the picture; the pages show tables as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

# A colour-blind-safe palette (Okabe-Ito), in the order series are drawn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WIDTH = 640
HEIGHT = 220
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 52, 12, 28, 38
_MAX_X_LABELS = 8
MAX_POINTS = 400  # a chart is per day over weeks; more points would be unreadable anyway

Formatter = Callable[[float], str]


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    """Coordinates with two decimals: exact enough, short markup."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value * 100 == round(value * 100) else f"{value * 100:.1f}%"


def count(value: float) -> str:
    return f"{value:,.0f}"


def duration(value: float) -> str:
    """Seconds as people read them: 45 s, 3.5 min, 2.1 h, 1.5 d."""
    if value < 60:
        return f"{value:.0f} s" if value >= 10 or value == int(value) else f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min".replace(".0 min", " min")
    if value < 86400:
        return f"{value / 3600:.1f} h".replace(".0 h", " h")
    return f"{value / 86400:.1f} d".replace(".0 d", " d")


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value` (0 and less: 1)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value - 1e-12:
            return step * power
    return 10 * power


# Axis tops for durations that split into four readable steps (15 s, 1 min, 5 min, 15 min, 1 h...).
_DURATION_TOPS = (
    4,
    8,
    20,
    40,
    60,
    120,
    240,
    480,
    1200,
    2400,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    172800,
    345600,
    691200,
    1209600,
    2419200,
)


def nice_duration_max(value: float) -> float:
    """The smallest duration top (seconds) at or above `value` whose quarter is a round time."""
    if not math.isfinite(value) or value <= 0:
        return 60.0
    for top in _DURATION_TOPS:
        if top >= value:
            return float(top)
    step = _DURATION_TOPS[-1]
    return float(step * math.ceil(value / step))


def _x_positions(n: int, width: int) -> list[float]:
    inner = width - _PAD_LEFT - _PAD_RIGHT
    if n == 1:
        return [_PAD_LEFT + inner / 2]
    return [_PAD_LEFT + inner * i / (n - 1) for i in range(n)]


def _title(title: str, width: int) -> str:
    """The chart's title from the left edge; a title longer than the width (about 7 px a
    character at 13 px) is squeezed to fit rather than cut off by the viewBox."""
    fit = f' textLength="{width - 8}" lengthAdjust="spacingAndGlyphs"' if 7.2 * len(title) > width - 8 else ""
    return f'<text x="4" y="16" font-size="13" font-weight="600"{fit}>{_e(title)}</text>'


def _frame(
    *, title: str, x_labels: Sequence[str], y_max: float, y_format: Formatter, width: int, height: int, xs: list[float]
) -> list[str]:
    """Title, horizontal grid lines with their values, and a thinned row of x labels."""
    bottom = height - _PAD_BOTTOM
    out = [_title(title, width)]
    for i in range(5):
        value = y_max * i / 4
        y = bottom - (bottom - _PAD_TOP) * i / 4
        out.append(
            f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="#d0d4da" stroke-width="{1 if i == 0 else 0.5}"/>'
        )
        out.append(
            f'<text x="{_PAD_LEFT - 6}" y="{_num(y + 4)}" text-anchor="end" font-size="10" fill="#555">'
            f"{_e(y_format(value))}</text>"
        )
    n = len(x_labels)
    every = max(1, math.ceil(n / _MAX_X_LABELS))
    for i, label in enumerate(x_labels):
        # Every `every`-th label, and the last one, which takes the place of a thinned label too
        # close to it.
        if i != n - 1 and (i % every or n - 1 - i < every):
            continue
        # Centred under its point, but the last label ends at its point when centring would
        # run it past the right edge (about 6 px a character at 10 px).
        anchor = "end" if i == n - 1 and n > 1 and xs[i] + 3 * len(label) > width - 2 else "middle"
        out.append(
            f'<text x="{_num(xs[i])}" y="{bottom + 16}" text-anchor="{anchor}" font-size="10" fill="#555">'
            f"{_e(label)}</text>"
        )
    return out


def _legend(names: Sequence[str], width: int, height: int) -> list[str]:
    out = []
    x = _PAD_LEFT
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{height - 12}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{height - 3}" font-size="11" fill="#333">{_e(name)}</text>')
        x += 24 + 7 * len(name)
        if x > width - 60:
            break
    return out


def _open(title: str, width: int, height: int, summary: str) -> str:
    label = f"{title}. {summary}" if summary else title
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
    )


def _empty(title: str, width: int, height: int) -> str:
    return (
        _open(title, width, height, "no data")
        + _title(title, width)
        + f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" font-size="12" fill="#555">No data</text>'
        + "</svg>"
    )


def _check(x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]) -> None:
    if len(x_labels) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points per chart")
    for name, values in series:
        if len(values) != len(x_labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(x_labels)} labels")


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def line_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_format: Formatter = count,
    y_max: float | None = None,
    nice: Callable[[float], float] = nice_max,
    width: int = WIDTH,
    height: int = HEIGHT,
    summary: str = "",
) -> str:
    """Lines over shared x labels; None (no data that day) breaks a line instead of drawing 0.
    The y axis runs to `y_max`, else to `nice(largest value)`."""
    _check(x_labels, series)
    if not x_labels:
        return _empty(title, width, height)
    top = y_max if y_max is not None else nice(max((v for _, s in series for v in _finite(s)), default=0))
    bottom = height - _PAD_BOTTOM
    xs = _x_positions(len(x_labels), width)

    def y_of(value: float) -> float:
        return bottom - (bottom - _PAD_TOP) * min(max(value / top, 0.0), 1.0)

    parts = [_open(title, width, height, summary)]
    parts += _frame(title=title, x_labels=x_labels, y_max=top, y_format=y_format, width=width, height=height, xs=xs)
    for i, (name, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        path: list[str] = []
        pen_down = False
        for x, value in zip(xs, values, strict=True):
            if value is None or not math.isfinite(value):
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{_num(x)} {_num(y_of(value))}")
            pen_down = True
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, label, value in zip(xs, x_labels, values, strict=True):
            if value is None or not math.isfinite(value):
                continue
            parts.append(
                f'<circle cx="{_num(x)}" cy="{_num(y_of(value))}" r="2.5" fill="{colour}">'
                f"<title>{_e(name)}, {_e(label)}: {_e(y_format(value))}</title></circle>"
            )
    parts += _legend([name for name, _ in series], width, height)
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_format: Formatter = count,
    width: int = WIDTH,
    height: int = HEIGHT,
    summary: str = "",
) -> str:
    """One bar per x label, its series stacked bottom up in order (None counts as 0)."""
    _check(x_labels, series)
    n = len(x_labels)
    if not n:
        return _empty(title, width, height)
    totals = [sum(values[i] or 0 for _, values in series) for i in range(n)]
    top = nice_max(max(totals, default=0))
    bottom = height - _PAD_BOTTOM
    xs = _x_positions(n, width)
    inner = width - _PAD_LEFT - _PAD_RIGHT
    bar = max(2.0, min(24.0, inner / max(n, 1) * 0.7))
    scale = (bottom - _PAD_TOP) / top
    parts = [_open(title, width, height, summary)]
    parts += _frame(title=title, x_labels=x_labels, y_max=top, y_format=y_format, width=width, height=height, xs=xs)
    for j, label in enumerate(x_labels):
        y = float(bottom)
        for i, (name, values) in enumerate(series):
            value = values[j] or 0
            if value <= 0 or not math.isfinite(value):
                continue
            h = value * scale
            y -= h
            parts.append(
                f'<rect x="{_num(xs[j] - bar / 2)}" y="{_num(y)}" width="{_num(bar)}" height="{_num(h)}" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_e(name)}, {_e(label)}: {_e(y_format(value))}'
                f"</title></rect>"
            )
    parts += _legend([name for name, _ in series], width, height)
    parts.append("</svg>")
    return "".join(parts)


def _unit_frame(
    *, title: str, width: int, height: int, x_title: str, y_title: str
) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    """A square-ish frame for values in [0, 1] on both axes: grid, tick values, axis titles."""
    left, right, top, bottom = _PAD_LEFT, width - _PAD_RIGHT, _PAD_TOP, height - _PAD_BOTTOM

    def x_of(value: float) -> float:
        return left + (right - left) * min(max(value, 0.0), 1.0)

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * min(max(value, 0.0), 1.0)

    out = [_title(title, width)]
    for i in range(5):
        v = i / 4
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{_num(y_of(v))}" y2="{_num(y_of(v))}" '
            f'stroke="#d0d4da" stroke-width="{1 if i == 0 else 0.5}"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{_num(y_of(v) + 4)}" text-anchor="end" font-size="10" fill="#555">'
            f"{_e(percent(v))}</text>"
        )
        out.append(
            f'<text x="{_num(x_of(v))}" y="{bottom + 14}" text-anchor="middle" font-size="10" fill="#555">'
            f"{_e(percent(v))}</text>"
        )
    out.append(
        f'<text x="{_num((left + right) / 2)}" y="{height - 4}" text-anchor="middle" font-size="11" fill="#333">'
        f"{_e(x_title)}</text>"
    )
    out.append(
        f'<text x="12" y="{_num((top + bottom) / 2)}" text-anchor="middle" font-size="11" fill="#333" '
        f'transform="rotate(-90 12 {_num((top + bottom) / 2)})">{_e(y_title)}</text>'
    )
    return out, x_of, y_of


def reliability_diagram(
    *,
    title: str,
    points: Sequence[tuple[float, float, float | None, float | None, str]],
    x_title: str = "mean confidence",
    y_title: str = "accuracy",
    width: int = 420,
    height: int = 320,
    summary: str = "",
) -> str:
    """Points (x, y, low, high, tooltip) in [0, 1] x [0, 1] with vertical interval bars (low and
    high None: no bar), over the diagonal y = x that perfect calibration would follow."""
    if len(points) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points per chart")
    finite = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not finite:
        return _empty(title, width, height)
    parts = [_open(title, width, height, summary)]
    frame, x_of, y_of = _unit_frame(title=title, width=width, height=height, x_title=x_title, y_title=y_title)
    parts += frame
    parts.append(
        f'<line x1="{_num(x_of(0))}" y1="{_num(y_of(0))}" x2="{_num(x_of(1))}" y2="{_num(y_of(1))}" '
        f'stroke="#888" stroke-width="1" stroke-dasharray="4 3"><title>perfect calibration</title></line>'
    )
    colour = PALETTE[0]
    for x, y, low, high, tip in finite:
        if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
            parts.append(
                f'<line x1="{_num(x_of(x))}" x2="{_num(x_of(x))}" y1="{_num(y_of(low))}" y2="{_num(y_of(high))}" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
            for end in (low, high):
                parts.append(
                    f'<line x1="{_num(x_of(x) - 4)}" x2="{_num(x_of(x) + 4)}" y1="{_num(y_of(end))}" '
                    f'y2="{_num(y_of(end))}" stroke="{colour}" stroke-width="1.5"/>'
                )
        parts.append(
            f'<circle cx="{_num(x_of(x))}" cy="{_num(y_of(y))}" r="4" fill="{colour}"><title>{_e(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def band_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[tuple[float, float, float] | None]]],
    y_format: Formatter = percent,
    y_min: float = 0.0,
    y_max: float = 1.0,
    width: int = WIDTH,
    height: int = HEIGHT,
    reference: tuple[str, float] | None = None,
    summary: str = "",
) -> str:
    """Lines of (value, low, high) per x label, each with its interval as a shaded band; None
    (no figure that week) breaks line and band. `reference` draws a labelled horizontal line (a
    bar to clear). The y axis runs from y_min to y_max."""
    _check(x_labels, series)
    if not x_labels or not any(v is not None for _, values in series for v in values):
        return _empty(title, width, height)
    if not y_max > y_min:
        raise ValueError("y_max must be above y_min")
    bottom = height - _PAD_BOTTOM
    xs = _x_positions(len(x_labels), width)

    def y_of(value: float) -> float:
        share = (value - y_min) / (y_max - y_min)
        return bottom - (bottom - _PAD_TOP) * min(max(share, 0.0), 1.0)

    parts = [_open(title, width, height, summary)]
    frame = _frame(
        title=title,
        x_labels=x_labels,
        y_max=1.0,
        y_format=lambda v: y_format(y_min + v * (y_max - y_min)),
        width=width,
        height=height,
        xs=xs,
    )
    parts += frame
    if reference is not None:
        name, value = reference
        parts.append(
            f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{_num(y_of(value))}" y2="{_num(y_of(value))}" '
            f'stroke="#D55E00" stroke-width="1" stroke-dasharray="5 3"><title>{_e(name)}: {_e(y_format(value))}'
            f"</title></line>"
        )
    for i, (name, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        runs: list[list[tuple[float, tuple[float, float, float]]]] = [[]]
        for x, value in zip(xs, values, strict=True):
            if value is None or not all(math.isfinite(v) for v in value):
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((x, value))
        for run in runs:
            if not run:
                continue
            upper = [f"{_num(x)} {_num(y_of(v[2]))}" for x, v in run]
            lower = [f"{_num(x)} {_num(y_of(v[1]))}" for x, v in reversed(run)]
            if len(run) == 1:  # a lone week: a bar instead of an area
                x, v = run[0]
                parts.append(
                    f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(y_of(v[1]))}" y2="{_num(y_of(v[2]))}" '
                    f'stroke="{colour}" stroke-opacity="0.35" stroke-width="8"/>'
                )
            else:
                parts.append(
                    f'<path d="M{" L".join(upper + lower)} Z" fill="{colour}" fill-opacity="0.18" stroke="none"/>'
                )
                line = " L".join(f"{_num(x)} {_num(y_of(v[0]))}" for x, v in run)
                parts.append(f'<path d="M{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, label, value in zip(xs, x_labels, values, strict=True):
            if value is None or not all(math.isfinite(v) for v in value):
                continue
            parts.append(
                f'<circle cx="{_num(x)}" cy="{_num(y_of(value[0]))}" r="2.5" fill="{colour}">'
                f"<title>{_e(name)}, {_e(label)}: {_e(y_format(value[0]))} "
                f"({_e(y_format(value[1]))} to {_e(y_format(value[2]))})</title></circle>"
            )
    parts += _legend([name for name, _ in series], width, height)
    parts.append("</svg>")
    return "".join(parts)


def meter(
    *, title: str, segments: Sequence[tuple[str, float, str]], width: int = 160, height: int = 10, summary: str = ""
) -> str:
    """One horizontal bar split into segments (name, value, colour) in order, each as wide as its
    share of the total: a progress bar that shows more than done / not done. An empty total
    draws the bare track."""
    values = [max(0.0, v) if math.isfinite(v) else 0.0 for _, v, _ in segments]
    total = sum(values)
    label = summary or ", ".join(f"{name} {count(v)}" for (name, _, _), v in zip(segments, values, strict=True))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="meter" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}: {_e(label)}">'
        f"<title>{_e(title)}: {_e(label)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" rx="2" fill="#e9ecef"/>',
    ]
    x = 0.0
    for (name, _, colour), value in zip(segments, values, strict=True):
        if not total or value <= 0:
            continue
        w = width * value / total
        parts.append(
            f'<rect x="{_num(x)}" y="0" width="{_num(w)}" height="{height}" fill="{_e(colour)}">'
            f"<title>{_e(name)}: {_e(count(value))}</title></rect>"
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)


def swatch(colour: str, *, size: int = 10) -> str:
    """A small square of `colour`, for a legend written in HTML beside a chart."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="swatch" viewBox="0 0 {size} {size}" width="{size}" '
        f'height="{size}" aria-hidden="true"><rect width="{size}" height="{size}" rx="2" fill="{_e(colour)}"/></svg>'
    )


__all__ = [
    "PALETTE",
    "band_chart",
    "count",
    "duration",
    "line_chart",
    "meter",
    "nice_duration_max",
    "nice_max",
    "percent",
    "reliability_diagram",
    "stacked_bar_chart",
    "swatch",
]


def interval_bars(
    *,
    title: str,
    rows: Sequence[tuple[str, float | None, Sequence[tuple[str, float, float]]]],
    reference: tuple[str, float] | None = None,
    width: int = WIDTH,
    row_height: int = 34,
    value_format: Formatter = percent,
    summary: str = "",
) -> str:
    """One row per label on a 0-1 axis: its intervals as horizontal bars (one per (name, low,
    high), stacked in the row, coloured by position) and its value as a dot; `reference` draws a
    labelled vertical line (one half: "even"). A row with no value and no interval says so."""
    if not rows:
        return _empty(title, width, 120)
    left, right = 150, width - _PAD_RIGHT - 8
    top = _PAD_TOP + 6
    height = top + row_height * len(rows) + 34

    def x_of(value: float) -> float:
        return left + (right - left) * min(max(value, 0.0), 1.0)

    parts = [_open(title, width, height, summary)]
    parts.append(f'<text x="{_PAD_LEFT}" y="16" font-size="13" font-weight="600">{_e(title)}</text>')
    axis_y = top + row_height * len(rows)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _num(x_of(tick))
        parts.append(f'<line x1="{x}" x2="{x}" y1="{top}" y2="{axis_y}" stroke="#e5e5e5" stroke-width="1"/>')
        parts.append(
            f'<text x="{x}" y="{axis_y + 14}" text-anchor="middle" font-size="11" fill="#555">'
            f"{_e(value_format(tick))}</text>"
        )
    if reference is not None:
        name, value = reference
        x = _num(x_of(value))
        parts.append(
            f'<line x1="{x}" x2="{x}" y1="{top - 4}" y2="{axis_y}" stroke="#D55E00" stroke-width="1" '
            f'stroke-dasharray="5 3"><title>{_e(name)}: {_e(value_format(value))}</title></line>'
        )
    names: list[str] = []
    for i, (label, value, intervals) in enumerate(rows):
        y0 = top + row_height * i
        parts.append(
            f'<text x="{left - 8}" y="{_num(y0 + row_height / 2 + 4)}" text-anchor="end" font-size="12" '
            f'fill="#333">{_e(label[:24])}</text>'
        )
        usable = [(n, lo, hi) for n, lo, hi in intervals if math.isfinite(lo) and math.isfinite(hi)]
        if value is None and not usable:
            parts.append(
                f'<text x="{left + 4}" y="{_num(y0 + row_height / 2 + 4)}" font-size="11" fill="#555">'
                "no answers yet</text>"
            )
            continue
        for j, (name, low, high) in enumerate(usable):
            if name not in names:
                names.append(name)
            colour = PALETTE[names.index(name) % len(PALETTE)]
            y = y0 + 8 + j * 8
            parts.append(
                f'<rect x="{_num(x_of(low))}" y="{_num(y)}" width="{_num(max(x_of(high) - x_of(low), 1.5))}" '
                f'height="6" fill="{colour}" opacity="0.75"><title>{_e(label)}, {_e(name)}: '
                f"{_e(value_format(low))} to {_e(value_format(high))}</title></rect>"
            )
        if value is not None and math.isfinite(value):
            parts.append(
                f'<circle cx="{_num(x_of(value))}" cy="{_num(y0 + row_height / 2)}" r="4" fill="#000">'
                f"<title>{_e(label)}: {_e(value_format(value))}</title></circle>"
            )
    parts += _legend(names, width, height)
    parts.append("</svg>")
    return "".join(parts)
