"""One plain-words line per calibration figure, computed from the numbers. Pure (no ORM, no
Django): it reads the JSON a calibration report answers (`selectors.calibration_report`), so the
page and any other reader say the same thing about the same figures.

Every sentence names its sample or interval: a reading without one would claim more than the
pairs show.
"""

from __future__ import annotations

from typing import Any

from evaluation import stats

# Landis and Koch's words for kappa: the ones practitioners use, coarse on purpose.
# Upper bounds, exclusive: 0.52 is moderate, 0.6 substantial.
KAPPA_WORDS = ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))


def pct(value: float | None) -> str:
    if value is None:
        return "—"
    rounded = round(value * 100)
    return f"{rounded:.0f}%" if abs(value * 100 - rounded) < 0.05 or rounded >= 10 else f"{value * 100:.1f}%"


def num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _interval(estimate: dict[str, Any] | None, fmt: Any = pct) -> str:
    interval = (estimate or {}).get("interval")
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return ""
    return f"{fmt(interval['low'])}-{fmt(interval['high'])}"


def kappa_words(kappa: float) -> str:
    if kappa < 0:
        return "worse than chance"
    if kappa == 0:
        return "no better than chance"
    return next((name for upper, name in KAPPA_WORDS if kappa < upper), "almost perfect")


def too_few_line(binary: dict[str, Any] | None, bar: dict[str, Any]) -> str | None:
    """What the pairs lack to show the bar at all, or None when they can."""
    if not binary:
        return "No pairs yet: no human has labelled a conversation this judge scored on this criterion."
    for key, label, who in (("tnr", "TNR", "fails"), ("tpr", "TPR", "passes")):
        target = bar.get(key)
        if target is None:
            continue
        needed = stats.min_items_for_bar(target)
        have = (binary.get(key) or {}).get("n") or 0
        if needed is None:
            return f"A {label} bar of {num(target)} cannot be shown by any sample."
        if have < needed:
            return (
                f"Too few pairs: {needed} human {who} are needed to show {label} >= {num(target)} (there are {have})."
            )
    if (binary.get("cohen_kappa") or {}).get("value") is None:
        return "Too few pairs: kappa is undefined while every answer is in one class."
    return None


def confusion_line(binary: dict[str, Any] | None) -> str:
    """How the judge errs: the share of human fails it passes, and of human passes it fails."""
    if not binary:
        return "No pairs yet."
    c = binary["confusion"]
    fails, passes = c["fp"] + c["tn"], c["tp"] + c["fn"]
    parts = []
    if fails:
        parts.append(f"The judge passes {pct(c['fp'] / fails)} of answers humans fail")
    else:
        parts.append("Humans failed no answer yet")
    if passes:
        parts.append(f"fails {pct(c['fn'] / passes)} of answers humans pass")
    else:
        parts.append("humans passed none")
    return f"{parts[0]}, and {parts[1]} ({binary['n']} pairs)."


def kappa_line(binary: dict[str, Any] | None) -> str:
    kappa = (binary or {}).get("cohen_kappa") or {}
    value = kappa.get("value")
    if value is None:
        return "Agreement beyond chance cannot be measured yet (kappa is undefined)."
    interval = _interval(kappa, num)
    words = kappa_words(value)
    prevalence = ((binary or {}).get("prevalence") or {}).get("value")
    skew = ""
    if prevalence is not None and (prevalence > 0.85 or prevalence < 0.15):
        skew = f"; humans pass {pct(prevalence)}, so read it with TPR and TNR"
    return f"Agreement beyond chance is {words} (kappa {num(value)}{', ' + interval if interval else ''}){skew}."


def reliability_line(confidence: dict[str, Any] | None) -> str:
    """Where the judge's stated confidence is furthest from how often it is right."""
    if not confidence:
        return "The judge sent no confidences, so its calibration cannot be read."
    worst = None
    for b in confidence.get("reliability") or []:
        acc = (b.get("accuracy") or {}).get("value")
        if not b.get("n") or b.get("mean_confidence") is None or acc is None:
            continue
        gap = b["mean_confidence"] - acc
        if worst is None or abs(gap) > abs(worst[0]):
            worst = (gap, b, acc)
    ece = confidence.get("ece") or {}
    ece_text = f"ECE {num(ece.get('value'))}" + (f", {_interval(ece, num)}" if _interval(ece, num) else "")
    if worst is None:
        return f"Too few confident pairs to read calibration ({ece_text})."
    gap, b, acc = worst
    if abs(gap) < 0.05:
        return f"Its confidence means what it says: every bin is within 5 points of its accuracy ({ece_text})."
    side = "overconfident" if gap > 0 else "underconfident"
    return (
        f"The judge is {side}: when it says {pct(b['mean_confidence'])} it is right {pct(acc)} of the time "
        f"({b['n']} pairs; {ece_text})."
    )


def trend_line(trend: list[dict[str, Any]]) -> str:
    points = [p for p in trend if (p.get("cohen_kappa") or {}).get("value") is not None]
    if not points:
        return "No week has enough pairs for a kappa yet."
    if len(points) == 1:
        p = points[0]
        return f"One week so far: kappa {num(p['cohen_kappa']['value'])} in the week of {p['week']} ({p['n']} pairs)."
    first, last = points[0], points[-1]
    a, b = first["cohen_kappa"]["value"], last["cohen_kappa"]["value"]
    lo, hi = (
        (last["cohen_kappa"].get("interval") or {}).get("low"),
        (last["cohen_kappa"].get("interval") or {}).get("high"),
    )
    inside = lo is not None and hi is not None and lo <= a <= hi
    moved = "within the latest week's interval" if inside else ("up" if b > a else "down")
    return (
        f"Kappa went from {num(a)} (week of {first['week']}) to {num(b)} (week of {last['week']}): "
        f"{moved}{'' if inside else ' beyond the latest interval'}."
    )


def pass_rate_line(pass_rate: dict[str, Any] | None) -> str:
    if not pass_rate:
        return "No pass-rate estimate: no rubric question names this criterion with a pass rule."
    judge = (pass_rate.get("judge_only") or {}).get("value")
    ppi = pass_rate.get("ppi") or {}
    best = ppi.get("value")
    if best is None:
        return "Too few labels for a pass-rate estimate."
    method = "prediction-powered" if pass_rate.get("method_used") == "ppi" else "human labels alone"
    interval = _interval(ppi)
    corrected = f"{pct(best)} ({method}{', ' + interval if interval else ''})"
    if judge is None:
        return f"The agent passes an estimated {corrected}."
    gap = judge - best
    if abs(gap) < 0.01:
        return f"The judge's own rate, {pct(judge)}, matches the corrected estimate {corrected}."
    direction = "overstates" if gap > 0 else "understates"
    return f"The judge says {pct(judge)} pass; it {direction} the agent: the corrected estimate is {corrected}."


def status_line(status: str, binary: dict[str, Any] | None, bar: dict[str, Any]) -> str:
    if status == "too_few":
        return too_few_line(binary, bar) or "Too few pairs to judge against the bar."
    short = []
    for key, label in (("cohen_kappa", "kappa"), ("tpr", "TPR"), ("tnr", "TNR")):
        target = bar.get("kappa" if key == "cohen_kappa" else key)
        value = ((binary or {}).get(key) or {}).get("value")
        if target is not None and value is not None and value < target:
            short.append(f"{label} {num(value)} < {num(target)}")
    if status == "below_bar":
        return "Below the bar: " + ", ".join(short) + "." if short else "Below the bar."
    return f"Meets the bar (kappa {num(bar.get('kappa'))}, TPR {num(bar.get('tpr'))}, TNR {num(bar.get('tnr'))})."


def trust_line(trust: dict[str, Any] | None) -> str:
    if not trust:
        return "No confidence yet above which this judge agrees with humans reliably enough to trust."
    agreement = trust.get("agreement") or {}
    low = (agreement.get("interval") or {}).get("low")
    return (
        f"At confidence {num(trust['threshold'])} or more the judge agrees with humans at least "
        f"{pct(low)} of the time (95% lower bound, {trust['n']} pairs); that is {pct(trust['coverage'])} of its "
        f"labelled traffic. Send humans what it is less sure of."
    )


def signal_line(kind: str, row: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    rate = row.get("fail_rate") or {}
    if not row.get("n"):
        return f"No labelled conversation was flagged {kind} yet."
    interval = _interval(rate)
    text = (
        f"Conversations flagged {kind} fail {pct(rate.get('value'))} of the time "
        f"({interval + ', ' if interval else ''}n={row['n']})"
    )
    base = (baseline or {}).get("fail_rate") or {}
    if base.get("value") is not None and (baseline or {}).get("n"):
        text += f", against {pct(base['value'])} of all labelled conversations"
    return text + "."


__all__ = [
    "confusion_line",
    "kappa_line",
    "kappa_words",
    "pass_rate_line",
    "pct",
    "reliability_line",
    "signal_line",
    "status_line",
    "too_few_line",
    "trend_line",
    "trust_line",
]
