"""Pre-gap pattern analyzer: what did the day before an overnight gap look like?

From the daily table (:mod:`quantedge.research.daily`) every pair of consecutive catalog days of a
symbol gives a gap, next open / previous close - 1, classed ``gap_up`` (>= ``gap``), ``gap_down``
(<= -``gap``) or ``flat``.  For each feature of the day before (signal triggers, scores, active
seconds, the last hour's composite, off-exchange share, where the close sat in the day's range) the
report compares the classes: means per class, and for the yes/no features the gap-up rate with and
without the feature and its lift over the base rate (docs/research.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quantedge.research.daily import SIGNALS, DailyTable, write_csv
from quantedge.research.tracker import TrackerParams, accumulation_days, markdown_table, save_png

CLASSES = ("gap_up", "flat", "gap_down")
#: tolerance of the gap threshold (prices in cents make e.g. 3.00 -> 2.85 a gap of -0.04999...)
EPS = 1e-9
#: numeric features of the day before a gap, compared by class
NUMERIC = ("composite_max", "composite_active_s", "composite_last_hour_max", *(f"{s}_max" for s in SIGNALS
           if s != "composite"), "off_exchange_share", "close_location", "return")
PAIR_COLUMNS = ("symbol", "date", "next_date", "close", "next_open", "gap_pct", "class",
                "accumulation_day", *NUMERIC, *(f"{s}_triggers" for s in SIGNALS))


def gap_pairs(table: DailyTable, gap: float = 0.05, params: TrackerParams | None = None) -> list[dict]:
    """One row per (symbol, day, next catalog day) with both prices known (PAIR_COLUMNS)."""
    if not 0 < gap < 1:
        raise ValueError(f"gap must be in (0, 1), got {gap}")
    acc, _ = accumulation_days(table, params or TrackerParams())
    dates = sorted(set(table["date"].tolist()))
    nxt = dict(zip(dates[:-1], dates[1:], strict=True))
    at = {(table["symbol"][k], table["date"][k]): k for k in range(len(table))}
    rows = []
    for k in range(len(table)):
        sym, d = table["symbol"][k], table["date"][k]
        j = at.get((sym, nxt.get(d)))
        if j is None:
            continue
        close, nopen = float(table["close"][k]), float(table["open"][j])
        if not (close > 0 and nopen > 0):
            continue
        g = nopen / close - 1
        up, down = g >= gap - EPS, g <= -gap + EPS  # a gap of exactly the threshold counts, either way
        rows.append({
            "symbol": sym, "date": d, "next_date": table["date"][j], "close": close, "next_open": nopen,
            "gap_pct": 100 * g, "class": "gap_up" if up else ("gap_down" if down else "flat"),
            "accumulation_day": bool(acc[k]),
            **{c: float(table[c][k]) for c in NUMERIC},
            **{f"{s}_triggers": int(table[f"{s}_triggers"][k]) for s in SIGNALS},
        })
    return rows


def summarize(pairs: list[dict]) -> dict:
    """Counts per class, feature means per class, and gap-up rates with / without each yes/no feature."""
    cls = np.array([p["class"] for p in pairs], dtype=object)
    counts = {c: int((cls == c).sum()) for c in CLASSES}
    means = []
    for f in NUMERIC:
        x = np.array([p[f] for p in pairs], dtype=float)
        row = {"feature": f}
        for c in CLASSES:
            v = x[(cls == c) & np.isfinite(x)]
            row[c] = float(v.mean()) if v.size else np.nan
        means.append(row)
    up = cls == "gap_up"
    base = float(up.mean()) if len(pairs) else np.nan
    flags = {"accumulation_day": np.array([p["accumulation_day"] for p in pairs], bool)}
    for s in SIGNALS:
        flags[f"{s}_triggered"] = np.array([p[f"{s}_triggers"] > 0 for p in pairs], bool)
    lifts = []
    for name, on in flags.items():
        n_on, n_off = int(on.sum()), int((~on).sum())
        p_on = float(up[on].mean()) if n_on else np.nan
        p_off = float(up[~on].mean()) if n_off else np.nan
        lifts.append({"feature": name, "days_with": n_on, "gap_up_rate_with": p_on, "days_without": n_off,
                      "gap_up_rate_without": p_off,
                      "lift": p_on / base if n_on and base > 0 else np.nan,
                      "share_of_gap_ups": (float(on[up].mean()) if up.any() else np.nan)})
    return {"pairs": len(pairs), "counts": counts, "base_gap_up_rate": base, "means": means, "lifts": lifts}


def scatter_png(pairs: list[dict], path: Path, gap: float) -> Path:
    """Next-day gap against the day before's minutes with the composite at its trigger level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([p["composite_active_s"] / 60 for p in pairs])
    y = np.array([p["gap_pct"] for p in pairs])
    trig = np.array([p["composite_triggers"] > 0 for p in pairs], bool)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(x[~trig], y[~trig], s=14, c="tab:gray", alpha=0.7, label="no composite trigger")
    ax.scatter(x[trig], y[trig], s=18, c="tab:orange", alpha=0.9, label="composite triggered")
    ax.axhline(100 * gap, color="tab:green", lw=0.8, ls="--")
    ax.axhline(-100 * gap, color="tab:red", lw=0.8, ls="--")
    ax.set_xlabel("day before: composite at trigger level (min)")
    ax.set_ylabel("overnight gap (%)")
    ax.legend(fontsize=8)
    ax.set_title("Overnight gaps and the accumulation seen the day before")
    return save_png(fig, path)


def write_pregap(table: DailyTable, pairs: list[dict], summary: dict, out: Path,
                 gap: float) -> dict[str, Path]:
    """daily.csv, pregap_pairs.csv, pregap.md and pregap.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"daily": table.write_csv(out / "daily.csv"),
             "pairs": write_csv(pairs, PAIR_COLUMNS, out / "pregap_pairs.csv"),
             "pregap_png": scatter_png(pairs, out / "pregap.png", gap)}
    c = summary["counts"]
    md = [f"# Pre-gap patterns (gap >= {100 * gap:g} %)", "",
          f"{summary['pairs']} symbol-day pairs ({table.mode} books): {c['gap_up']} gap up, "
          f"{c['flat']} flat, {c['gap_down']} gap down; base gap-up rate "
          f"{summary['base_gap_up_rate']:.3f}.", ""]
    if summary["pairs"] < 30:
        md += [f"Only {summary['pairs']} pairs: rates and lifts below are anecdotes, not estimates.", ""]
    md += ["## The day before, by class (means)", "",
           markdown_table(summary["means"], ["feature", *CLASSES]), "",
           "## Gap-up rate with and without each feature of the day before", "",
           markdown_table(summary["lifts"], ["feature", "days_with", "gap_up_rate_with", "days_without",
                                             "gap_up_rate_without", "lift", "share_of_gap_ups"]), "",
           "![gaps](pregap.png)", ""]
    paths["pregap_md"] = out / "pregap.md"
    paths["pregap_md"].write_text("\n".join(md))
    return paths


__all__ = ["gap_pairs", "summarize", "write_pregap", "CLASSES", "PAIR_COLUMNS"]
