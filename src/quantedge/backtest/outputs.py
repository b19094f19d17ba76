"""Run outputs: trade log CSV, fills CSV with reasons, metrics JSON, equity curve Parquet.

Formats (docs/backtester.md defines every column):
* ``trades.csv`` — ``timestamp,symbol,action,qty,price,notional,cash,equity``; timestamp ISO-8601
  UTC with ns, action BUY/SELL, price in dollars, cash/equity after the fill.
* ``fills.csv`` — the above plus order_id, reason, liquidity, fee, slippage, tag.
* ``metrics.json`` — every metric, the look-ahead guard report, risk rejections, kill events.
* ``equity.parquet`` — ts (int64 ns UTC), equity, cash, gross_exposure.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TRADE_COLUMNS = ["timestamp", "symbol", "action", "qty", "price", "notional", "cash", "equity"]
FILL_COLUMNS = TRADE_COLUMNS + ["order_id", "reason", "liquidity", "fee", "slippage", "tag"]


def iso_ns(ns: int) -> str:
    s = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{s}.{ns % 1_000_000_000:09d}Z"


def _atomic(path: Path, write) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_csv(path: Path, rows: list[dict], cols: list[str]) -> None:
    def w(p: Path) -> None:
        with open(p, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(cols)
            for r in rows:
                out.writerow([iso_ns(r[c]) if c == "timestamp" else _fmt(r[c]) for c in cols])

    _atomic(path, w)


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.6f}".rstrip("0").rstrip(".") if math.isfinite(x) else str(x)
    return x


def _json_safe(o):
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_json_safe(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, np.generic):
        return _json_safe(o.item())
    return o


def write_metrics(path: Path, metrics: dict) -> None:
    """metrics.json, atomically (non-finite floats as null / "inf")."""
    _atomic(path, lambda p: p.write_text(json.dumps(_json_safe(metrics), indent=2)))


def write_outputs(out_dir: Path, engine, metrics: dict) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        k: out_dir / n
        for k, n in (
            ("trades", "trades.csv"),
            ("fills", "fills.csv"),
            ("metrics", "metrics.json"),
            ("equity", "equity.parquet"),
        )
    }
    write_csv(paths["trades"], engine.trade_log, TRADE_COLUMNS)
    write_csv(paths["fills"], engine.trade_log, FILL_COLUMNS)
    write_metrics(paths["metrics"], metrics)
    curve = np.array(engine.equity_curve) if engine.equity_curve else np.zeros((0, 4))
    tbl = pa.table(
        {
            "ts": pa.array(curve[:, 0].astype(np.int64)),
            "equity": curve[:, 1],
            "cash": curve[:, 2],
            "gross_exposure": curve[:, 3],
        }
    )
    _atomic(paths["equity"], lambda p: pq.write_table(tbl, p))
    return paths
