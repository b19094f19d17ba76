"""Performance metrics on a returns series and on round-trip trades.

Returns-based definitions follow quantstats' conventions (tests cross-check them on the same
returns): ``periods`` returns per year; Sharpe = mean / std(ddof=1) x sqrt(periods); Sortino =
mean / sqrt(mean(min(r, 0)^2)) x sqrt(periods); drawdown on the compounded curve
``prod(1 + r)``; annualized return = ``(1 + total)^(periods / n) - 1``; Calmar = annualized / |max
drawdown|; win rate and profit factor over non-zero period returns.
"""

from __future__ import annotations

import math

import numpy as np


def returns_from_equity(equity: np.ndarray) -> np.ndarray:
    e = np.asarray(equity, dtype=np.float64)
    return e[1:] / e[:-1] - 1.0 if e.size > 1 else np.zeros(0)


def resample_equity(ts: np.ndarray, equity: np.ndarray, step_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Equity at a fixed grid (last value at or before each grid point), for period returns."""
    if ts.size == 0:
        return ts, equity
    grid = np.arange((ts[0] // step_ns) * step_ns, ts[-1] + step_ns, step_ns, dtype=np.int64)
    idx = np.searchsorted(ts, grid, side="right") - 1
    ok = idx >= 0
    return grid[ok], equity[idx[ok]]


def sharpe(r: np.ndarray, periods: float) -> float:
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    return float(r.mean() / sd * math.sqrt(periods)) if sd > 0 else 0.0


def sortino(r: np.ndarray, periods: float) -> float:
    dd = math.sqrt(float((np.minimum(r, 0.0) ** 2).sum()) / r.size) if r.size else 0.0
    return float(r.mean() / dd * math.sqrt(periods)) if dd > 0 else 0.0


def drawdown(r: np.ndarray) -> tuple[float, int]:
    """(max drawdown as a negative fraction, longest drawdown duration in periods)."""
    if r.size == 0:
        return 0.0, 0
    curve = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.r_[1.0, curve])[1:]
    dd = curve / peak - 1.0
    under = dd < 0
    longest = cur = 0
    for u in under:
        cur = cur + 1 if u else 0
        longest = max(longest, cur)
    return float(dd.min()), int(longest)


def returns_metrics(r: np.ndarray, periods: float) -> dict[str, float]:
    r = np.asarray(r, dtype=np.float64)
    total = float(np.prod(1.0 + r) - 1.0) if r.size else 0.0
    ann = float((1.0 + total) ** (periods / r.size) - 1.0) if r.size and total > -1 else 0.0
    mdd, dur = drawdown(r)
    nz = r[r != 0]
    wins, losses = nz[nz > 0], nz[nz < 0]
    return {
        "total_return": total,
        "annualized_return": ann,
        "volatility": float(r.std(ddof=1) * math.sqrt(periods)) if r.size > 1 else 0.0,
        "sharpe": sharpe(r, periods),
        "sortino": sortino(r, periods),
        "max_drawdown": mdd,
        "max_drawdown_duration_periods": dur,
        "calmar": ann / abs(mdd) if mdd < 0 else 0.0,
        "period_win_rate": float(wins.size / nz.size) if nz.size else 0.0,
        "profit_factor": float(wins.sum() / abs(losses.sum()))
        if losses.size
        else (math.inf if wins.size else 0.0),
        "avg_period_win": float(wins.mean()) if wins.size else 0.0,
        "avg_period_loss": float(losses.mean()) if losses.size else 0.0,
    }


def round_trips(fills: list) -> list[dict]:
    """FIFO-free position round trips per symbol: a trade opens when flat and closes back at flat."""
    out, open_ = [], {}
    for f in fills:
        t = open_.get(f.symbol)
        if t is None:
            t = open_[f.symbol] = {
                "symbol": f.symbol,
                "entry_ts": f.ts,
                "side": f.side,
                "qty": 0,
                "pos": 0,
                "cost": 0.0,
                "proceeds": 0.0,
                "fees": 0.0,
                "entry_notional": 0.0,
            }
        t["pos"] += f.side * f.qty
        t["fees"] += f.fee
        if f.side == t["side"]:
            t["qty"] += f.qty
            t["entry_notional"] += f.qty * f.price_usd
        cash = -f.side * f.qty * f.price_usd
        t["proceeds" if cash > 0 else "cost"] += abs(cash)
        if t["pos"] == 0:
            t["exit_ts"] = f.ts
            t["pnl"] = t["proceeds"] - t["cost"] - t["fees"]
            t["entry_px"] = t["entry_notional"] / t["qty"]
            t["exit_px"] = (t["proceeds"] if t["side"] > 0 else t["cost"]) / t["qty"]
            out.append(t)
            del open_[f.symbol]
    return out


def trade_metrics(trips: list[dict]) -> dict[str, float]:
    pnl = np.array([t["pnl"] for t in trips], dtype=np.float64)
    w, lo = pnl[pnl > 0], pnl[pnl <= 0]
    return {
        "trades": int(pnl.size),
        "win_rate": float(w.size / pnl.size) if pnl.size else 0.0,
        "profit_factor_trades": float(w.sum() / abs(lo.sum()))
        if lo.sum() < 0
        else (math.inf if w.size else 0.0),
        "avg_win": float(w.mean()) if w.size else 0.0,
        "avg_loss": float(lo.mean()) if lo.size else 0.0,
    }


def exposure(ts: np.ndarray, gross: np.ndarray) -> float:
    """Share of the run's time with a non-zero position (from the equity samples)."""
    if ts.size < 2:
        return 0.0
    dt = np.diff(ts).astype(np.float64)
    return float((dt * (gross[:-1] > 0)).sum() / dt.sum()) if dt.sum() > 0 else 0.0


def summarize(engine, step_ns: int = 60_000_000_000, periods: float | None = None) -> dict:
    """Every metric of a finished engine run (returns on a fixed grid of step_ns)."""
    curve = np.array(engine.equity_curve) if engine.equity_curve else np.zeros((0, 4))
    ts, eq = curve[:, 0].astype(np.int64), curve[:, 1]
    gts, geq = resample_equity(ts, eq, step_ns)
    if periods is None:  # 6.5 regular hours x 252 days
        periods = 252 * 6.5 * 3600e9 / step_ns
    m = returns_metrics(returns_from_equity(geq), periods)
    m.update(trade_metrics(round_trips(engine.fills)))
    m["exposure"] = exposure(ts, curve[:, 3]) if ts.size else 0.0
    start = engine.pf.start_cash
    m["turnover"] = engine.pf.traded_notional / start if start else 0.0
    m["fees_paid"] = engine.pf.fees
    m["fee_breakdown"] = dict(engine.fees.totals)
    m["slippage_paid"] = engine.pf.slippage
    m["final_equity"] = engine.pf.equity
    m["start_equity"] = start
    m["fills"] = len(engine.fills)
    m["return_step_s"] = step_ns / 1e9
    m["periods_per_year"] = periods
    return m
