"""Bars from ticks, vectorized: OHLCV per (symbol, interval) over lit, last-sale-eligible prints.

A bar covers ``[t_open, t_open + interval)`` in ``ts_recv`` (what the strategy could know), so it is
complete at ``t_close`` and is delivered then, never earlier.  Intervals without prints produce
no bar.  Prints that are corrections, out of sequence or average-price are left out; hidden and
off-exchange prints are real trades and count.
"""

from __future__ import annotations

import numpy as np

from quantedge import events as ev

BAR_DTYPE = np.dtype(
    [
        ("t_open", np.int64),
        ("t_close", np.int64),
        ("symbol", np.int32),
        ("n_trades", np.int32),
        ("open", np.int64),
        ("high", np.int64),
        ("low", np.int64),
        ("close", np.int64),
        ("volume", np.int64),
        ("notional", np.float64),
    ]
)

BAR_EXCLUDE = ev.COND_CANCEL_CORRECTION | ev.COND_OUT_OF_SEQUENCE | ev.COND_AVERAGE_PRICE


def bar_trades(events: np.ndarray) -> np.ndarray:
    """Mask of the events that make bars."""
    return (
        (events["kind"] == ev.KIND_TRADE)
        & (events["price"] > 0)
        & (events["size"] > 0)
        & ((events["conditions"] & BAR_EXCLUDE) == 0)
    )


def build_bars(events: np.ndarray, interval_ns: int, symbols: np.ndarray | None = None) -> np.ndarray:
    """Bars of every symbol (or of ``symbols``) from a merge-ordered batch, by close then symbol."""
    if interval_ns <= 0:
        raise ValueError(f"bar interval must be positive, got {interval_ns} ns")
    m = bar_trades(events)
    if symbols is not None:
        m &= np.isin(events["symbol"], symbols)
    t = events[m]
    if t.size == 0:
        return np.zeros(0, BAR_DTYPE)
    bucket = t["ts_recv"] // interval_ns
    sym = t["symbol"].astype(np.int64)
    order = np.lexsort((np.arange(t.size), sym, bucket))  # stable: stream order inside a bar
    b, s, px, sz = bucket[order], sym[order], t["price"][order], t["size"][order]
    start = np.flatnonzero(np.r_[True, (b[1:] != b[:-1]) | (s[1:] != s[:-1])])
    end = np.r_[start[1:], b.size] - 1
    out = np.zeros(start.size, BAR_DTYPE)
    out["t_open"] = b[start] * interval_ns
    out["t_close"] = out["t_open"] + interval_ns
    out["symbol"] = s[start]
    out["n_trades"] = end - start + 1
    out["open"] = px[start]
    out["close"] = px[end]
    out["high"] = np.maximum.reduceat(px, start)
    out["low"] = np.minimum.reduceat(px, start)
    out["volume"] = np.add.reduceat(sz, start)
    out["notional"] = np.add.reduceat(px.astype(np.float64) * sz, start) / ev.PRICE_SCALE
    return out


def merge_bar(a: np.void, b: np.void) -> None:
    """Extend bar a (earlier part of an interval) with b (later part), in place."""
    a["high"] = max(a["high"], b["high"])
    a["low"] = min(a["low"], b["low"])
    a["close"] = b["close"]
    a["volume"] += b["volume"]
    a["notional"] += b["notional"]
    a["n_trades"] += b["n_trades"]


def parse_interval(x: str | int) -> int:
    """'1s', '500ms', '1min', '5m', '1h' or ns int -> ns."""
    if isinstance(x, int):
        return x
    s = str(x).strip().lower()
    for suf, mult in (
        ("ms", 1_000_000),
        ("min", 60_000_000_000),
        ("us", 1_000),
        ("ns", 1),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ):
        if s.endswith(suf):
            try:
                return int(float(s[: -len(suf)]) * mult)
            except ValueError:
                break
    raise ValueError(f"bar interval {x!r}: expected e.g. 1s, 500ms, 1min, 5m, 1h")
