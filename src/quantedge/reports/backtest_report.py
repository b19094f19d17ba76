"""Backtest reports: an interactive HTML page (Plotly) and PNG charts (matplotlib).

HTML: equity and drawdown, every symbol's price with our trades (buy/sell markers) and the
strategy's signal markers (order tags), and the per-trade (round-trip) table.  PNG: equity,
drawdown and price-with-trades.  Plotly and matplotlib are optional report dependencies: when
one is missing its files are skipped and the reason is returned, the run itself is unaffected.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from quantedge.backtest.metrics import round_trips
from quantedge.backtest.outputs import iso_ns
from quantedge.timeutil import et_wall


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _drawdown(eq: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(eq) if eq.size else eq
    return eq / peak - 1.0 if eq.size else eq


def _trips_table(engine) -> list[dict]:
    rows = []
    for t in round_trips(engine.fills):
        rows.append(
            {
                "symbol": engine.names[t["symbol"]],
                "side": "long" if t["side"] > 0 else "short",
                "entry": iso_ns(t["entry_ts"]),
                "exit": iso_ns(t["exit_ts"]),
                "qty": t["qty"],
                "entry_px": round(t["entry_px"], 4),
                "exit_px": round(t["exit_px"], 4),
                "fees": round(t["fees"], 4),
                "pnl": round(t["pnl"], 4),
            }
        )
    return rows


def _price_series(engine, s: int) -> tuple[np.ndarray, np.ndarray]:
    for (_iv, sym), bars in sorted(engine._bar_hist.items()):
        if sym == s and bars:
            b = np.array(bars)
            return b["t_close"], b["close"] / 10_000
    f = [x for x in engine.fills if x.symbol == s]
    return np.array([x.ts for x in f]), np.array([x.price_usd for x in f])


def write_html(path: Path, engine, metrics: dict) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    curve = np.array(engine.equity_curve) if engine.equity_curve else np.zeros((0, 4))
    t = et_wall(curve[:, 0])
    syms = sorted({f.symbol for f in engine.fills})[:4]
    fig = make_subplots(
        rows=2 + len(syms),
        cols=1,
        shared_xaxes=False,
        vertical_spacing=0.06,
        subplot_titles=["Equity", "Drawdown"] + [f"{engine.names[s]}: price, trades" for s in syms],
    )
    fig.add_trace(go.Scatter(x=t, y=curve[:, 1], name="equity", line={"width": 1.5}), row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=t,
            y=_drawdown(curve[:, 1]) * 100,
            name="drawdown %",
            fill="tozeroy",
            line={"color": "firebrick", "width": 1},
        ),
        row=2,
        col=1,
    )
    for k, s in enumerate(syms, start=3):
        pt, px = _price_series(engine, s)
        fig.add_trace(
            go.Scatter(
                x=et_wall(pt),
                y=px,
                name=f"{engine.names[s]} close",
                line={"color": "gray", "width": 1},
            ),
            row=k,
            col=1,
        )
        for side, color, sym in ((1, "green", "triangle-up"), (-1, "red", "triangle-down")):
            f = [x for x in engine.fills if x.symbol == s and x.side == side]
            fig.add_trace(
                go.Scatter(
                    x=et_wall(np.array([x.ts for x in f])),
                    y=[x.price_usd for x in f],
                    mode="markers",
                    name="buy" if side > 0 else "sell",
                    text=[f"{x.qty} @ {x.price_usd:.4f} ({x.reason}) {x.tag}" for x in f],
                    marker={"symbol": sym, "color": color, "size": 9},
                ),
                row=k,
                col=1,
            )
        sig = [(ts, f"{nm} score {sc:.2f}") for ts, sy, nm, sc in engine.signals_seen if sy == s]
        if sig:
            fig.add_trace(
                go.Scatter(
                    x=et_wall(np.array([a for a, _ in sig])),
                    y=[float(np.nanmax(px)) if px.size else 0] * len(sig),
                    mode="markers",
                    name="signal",
                    text=[m for _, m in sig],
                    marker={"symbol": "star", "color": "orange", "size": 8},
                ),
                row=k,
                col=1,
            )
    fig.update_layout(height=300 * (2 + len(syms)), title="Backtest report (times US/Eastern)",
                      showlegend=True)
    keys = (
        "total_return",
        "annualized_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "win_rate",
        "profit_factor_trades",
        "trades",
        "exposure",
        "turnover",
        "fees_paid",
        "slippage_paid",
        "final_equity",
    )
    mt = "".join(f"<tr><td>{k}</td><td>{html.escape(_fmt(metrics.get(k)))}</td></tr>" for k in keys)
    trips = _trips_table(engine)
    head = "".join(f"<th>{c}</th>" for c in (trips[0] if trips else {}))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in trips
    )
    page = (
        f"<html><head><meta charset='utf-8'><title>Backtest report</title><style>td,th{{padding:2px 8px;"
        f"border-bottom:1px solid #ddd;font-family:monospace}}</style></head><body><h1>Backtest report</h1>"
        f"<h2>Metrics</h2><table>{mt}</table>{fig.to_html(full_html=False, include_plotlyjs=True)}"
        f"<h2>Trades (round trips)</h2><table><tr>{head}</tr>{body}</table></body></html>"
    )
    path.write_text(page)
    return path


def write_pngs(out: Path, engine) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = np.array(engine.equity_curve) if engine.equity_curve else np.zeros((0, 4))
    t = et_wall(curve[:, 0])
    paths = []
    fig, ax = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    ax[0].plot(t, curve[:, 1], lw=1)
    ax[0].set_title("Equity")
    ax[1].fill_between(t, _drawdown(curve[:, 1]) * 100, 0, color="firebrick", alpha=0.5)
    ax[1].set_title("Drawdown % (times ET)")
    fig.tight_layout()
    p = out / "equity.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    for s in sorted({f.symbol for f in engine.fills})[:4]:
        pt, px = _price_series(engine, s)
        fig, ax = plt.subplots(figsize=(10, 4))
        ax.plot(et_wall(pt), px, color="gray", lw=1)
        for side, c, m in ((1, "green", "^"), (-1, "red", "v")):
            f = [x for x in engine.fills if x.symbol == s and x.side == side]
            ax.scatter(
                et_wall(np.array([x.ts for x in f])), [x.price_usd for x in f], c=c, marker=m
            )
        ax.set_title(f"{engine.names[s]}: price and trades (ET)")
        fig.tight_layout()
        p = out / f"trades_{engine.names[s]}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    return paths


def write_reports(out: Path, engine, metrics: dict) -> dict[str, Path]:
    """HTML and PNGs where their libraries are installed; skipped ones are noted in metrics."""
    paths: dict[str, Path] = {}
    skipped = []
    try:
        paths["html"] = write_html(out / "report.html", engine, metrics)
    except ImportError as e:
        skipped.append(f"report.html: {e.name} not installed (pip install 'quantedge[reports]')")
    try:
        for p in write_pngs(out, engine):
            paths[f"png_{p.stem}"] = p
    except ImportError as e:
        skipped.append(f"PNG charts: {e.name} not installed (pip install 'quantedge[reports]')")
    metrics["reports_skipped"] = skipped
    return paths
