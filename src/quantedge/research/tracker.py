"""Multi-day accumulation tracker: which symbols keep showing quiet buying, day after day.

Institutions building a position in a small cap rarely finish in one session.  From the daily
table (:mod:`quantedge.research.daily`) a symbol-day counts as an **accumulation day** when the
composite score triggered, or stayed at its trigger level for at least ``min_active_s`` scored
seconds; it is **stealthy** when the price also stayed within ``stealth_move`` of the open.  Symbols
are ranked by their current streak of accumulation days, then by how many days of the range were
accumulation days, then by the composite's active seconds (docs/research.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantedge.research.daily import SIGNALS, DailyTable, fmt_cell, write_csv

RANK_COLUMNS = (
    "rank", "symbol", "days", "accumulation_days", "streak", "stealth_days", "composite_triggers",
    "composite_active_s", "composite_max_mean", *(f"{s}_triggers" for s in SIGNALS if s != "composite"),
    "first_open", "last_close", "change_pct", "above_low_pct", "off_exchange_share", "last_date",
)


@dataclass(frozen=True)
class TrackerParams:
    """What makes a day an accumulation day (see the module docstring)."""

    min_active_s: int = 300
    stealth_move: float = 0.03

    def __post_init__(self) -> None:
        if self.min_active_s < 1:
            raise ValueError(f"min_active_s must be >= 1 second, got {self.min_active_s}")
        if not 0 < self.stealth_move < 1:
            raise ValueError(f"stealth_move must be in (0, 1), got {self.stealth_move}")


def accumulation_days(table: DailyTable, params: TrackerParams) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the table: (accumulation day, stealthy accumulation day)."""
    acc = (table["composite_triggers"] > 0) | (table["composite_active_s"] >= params.min_active_s)
    with np.errstate(invalid="ignore"):
        quiet = np.abs(table["return"]) <= params.stealth_move
    return acc, acc & quiet


def track(table: DailyTable, params: TrackerParams | None = None) -> list[dict]:
    """One ranked row per symbol (RANK_COLUMNS)."""
    params = params or TrackerParams()
    acc, stealth = accumulation_days(table, params)
    sym = table["symbol"]
    rows = []
    for name in sorted(set(sym.tolist())):
        i = np.nonzero(sym == name)[0]  # the table is sorted by date: i is in date order
        a = acc[i]
        streak = len(a) - int(np.flatnonzero(~a)[-1]) - 1 if (~a).any() else len(a)
        opens, closes, lows = table["open"][i], table["close"][i], table["low"][i]
        first_open = _first_finite(opens)
        last_close = _first_finite(closes[::-1])
        low = np.nanmin(lows) if np.isfinite(lows).any() else np.nan
        vol = table["volume"][i]
        off = table["off_exchange_share"][i]
        row = {
            "symbol": name,
            "days": len(i),
            "accumulation_days": int(a.sum()),
            "streak": streak,
            "stealth_days": int(stealth[i].sum()),
            "composite_triggers": int(table["composite_triggers"][i].sum()),
            "composite_active_s": int(table["composite_active_s"][i].sum()),
            "composite_max_mean": _nanmean(table["composite_max"][i]),
            **{f"{s}_triggers": int(table[f"{s}_triggers"][i].sum()) for s in SIGNALS if s != "composite"},
            "first_open": first_open,
            "last_close": last_close,
            "change_pct": 100 * (last_close / first_open - 1) if first_open > 0 else np.nan,
            "above_low_pct": 100 * (last_close / low - 1) if low > 0 else np.nan,
            "off_exchange_share": (float(np.nansum(off * vol) / vol.sum()) if vol.sum() > 0 else np.nan),
            "last_date": str(table["date"][i[-1]]),
        }
        rows.append(row)
    rows.sort(key=lambda r: (-r["streak"], -r["accumulation_days"], -r["composite_active_s"], r["symbol"]))
    for k, r in enumerate(rows, 1):
        r["rank"] = k
    return [{c: r[c] for c in RANK_COLUMNS} for r in rows]


def _first_finite(x: np.ndarray) -> float:
    ok = np.isfinite(x)
    return float(x[ok][0]) if ok.any() else np.nan


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else np.nan


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """Rows as a Markdown table, floats to 4 significant digits (for reading)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt_cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def heatmap_png(table: DailyTable, rows: list[dict], path: Path, top: int = 40) -> Path:
    """Symbols (by rank) x days: minutes with the composite at its trigger level, triggers written
    in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["symbol"] for r in rows[:top]]
    dates = sorted(set(table["date"].tolist()))
    grid = np.full((len(names), len(dates)), np.nan)
    trig = np.zeros_like(grid)
    pos = {n: i for i, n in enumerate(names)}
    dpos = {d: j for j, d in enumerate(dates)}
    for k in range(len(table)):
        i = pos.get(table["symbol"][k])
        if i is None:
            continue
        j = dpos[table["date"][k]]
        grid[i, j] = table["composite_active_s"][k] / 60
        trig[i, j] = table["composite_triggers"][k]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(dates) + 3), max(3, 0.28 * len(names) + 1.5)))
    im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(dates)), dates, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(dates)):
            if trig[i, j] > 0:
                ax.text(j, i, f"{int(trig[i, j])}", ha="center", va="center", color="white", fontsize=7)
    fig.colorbar(im, ax=ax, label="composite at trigger level (min)")
    ax.set_title("Accumulation by day (numbers: composite triggers)")
    return save_png(fig, path)


def save_png(fig, path: Path) -> Path:
    """Write a research chart and free it (the commands draw many in one process)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_tracker(table: DailyTable, rows: list[dict], out: Path, params: TrackerParams,
                  top: int = 40) -> dict[str, Path]:
    """daily.csv, tracker.csv, tracker.md and tracker.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"daily": table.write_csv(out / "daily.csv"),
             "tracker": write_csv(rows, RANK_COLUMNS, out / "tracker.csv"),
             "tracker_png": heatmap_png(table, rows, out / "tracker.png", top)}
    dates = sorted(set(table["date"].tolist()))
    cols = ["rank", "symbol", "streak", "accumulation_days", "days", "stealth_days", "composite_triggers",
            "composite_active_s", "change_pct", "above_low_pct", "off_exchange_share"]
    md = [f"# Accumulation tracker, {dates[0]} to {dates[-1]}", "",
          f"{len(rows)} symbols, {len(dates)} days, {table.mode} books. An accumulation day: a composite "
          f"trigger, or the composite at >= {table.active_score:g} for >= {params.min_active_s} scored "
          f"seconds; stealthy: the close within {100 * params.stealth_move:g} % of the open.", "",
          markdown_table(rows[:top], cols), "", "![accumulation by day](tracker.png)", ""]
    paths["tracker_md"] = out / "tracker.md"
    paths["tracker_md"].write_text("\n".join(md))
    return paths


__all__ = ["TrackerParams", "track", "accumulation_days", "write_tracker", "RANK_COLUMNS"]
