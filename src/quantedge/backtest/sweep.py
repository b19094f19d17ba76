"""Parameter sweeps: one backtest per point of a grid, ranked, with the bias checks a search needs.

A sweep is a backtest config plus a grid of dotted keys (``strategy.params.fast=5,10,20``); every
combination (the Cartesian product, in the order given) runs as an ordinary backtest in its own
output folder, on worker processes.  Searching many configurations and keeping the best one
overstates its Sharpe, so the result carries the **deflated Sharpe ratio** of the best trial
(:func:`quantedge.backtest.bias.deflated_sharpe`: the probability that its true Sharpe beats the
best of ``N`` trials expected by luck, from the spread of all trials' Sharpe ratios) and, when
asked, an **out-of-sample** run of the best parameters on other data (e.g. the next day).

Every trial config is built and its strategy constructed before anything runs, so a bad key or
value stops the sweep with a message naming the trial, not after half the grid ran.  A trial that
fails while it runs (a strategy that checks its parameters at start, e.g. ``fast < slow``) is kept
in the table as failed, with its error, ranked last; the other trials run.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Metrics kept per trial (from the backtest's metrics.json), in table order.
METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "calmar", "trades", "win_rate",
           "profit_factor", "fills", "fees_paid", "final_equity")
#: Metrics a sweep can rank by; larger is better for each (drawdowns are negative fractions).
RANKABLE = ("sharpe", "sortino", "total_return", "calmar", "profit_factor", "win_rate", "max_drawdown",
            "final_equity")


class SweepError(ValueError):
    """A grid, override or trial config that cannot run; the message names the item."""


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["a.b=1,2", "c=x,y"]`` -> ``{"a.b": ["1", "2"], "c": ["x", "y"]}`` (values stay text: the
    config loader parses each as YAML, like ``--set``)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise SweepError(f"--grid {item!r}: expected dotted.key=v1,v2,...")
        key, vals = item.split("=", 1)
        key = key.strip()
        values = [v.strip() for v in vals.split(",") if v.strip() != ""]
        if not key or not values:
            raise SweepError(f"--grid {item!r}: expected dotted.key=v1,v2,...")
        if key in grid:
            raise SweepError(f"--grid {item!r}: {key} is already swept")
        if len(set(values)) != len(values):
            raise SweepError(f"--grid {item!r}: repeated value")
        grid[key] = values
    if not grid:
        raise SweepError("a sweep needs at least one --grid key=v1,v2,...")
    return grid


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination, the first key varying slowest."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


@dataclass
class Trial:
    """One grid point: its overrides, output folder, metrics and per-period returns."""

    index: int
    values: dict[str, str]
    output: Path
    metrics: dict = field(default_factory=dict)
    returns: list[float] = field(default_factory=list)
    error: str = ""
    state_path: str = ""  # the trial's own portfolio state file, when the config persists one

    def private(self) -> dict[str, str]:
        """Overrides that keep this trial's files apart from the others' (output, state file)."""
        d = {"output": str(self.output)}
        if self.state_path:
            d["state_path"] = self.state_path
        return d

    @property
    def name(self) -> str:
        return f"trial_{self.index:03d}"

    def per_period_sharpe(self) -> float:
        r = np.asarray(self.returns, dtype=np.float64)
        sd = r.std(ddof=1) if r.size > 1 else 0.0
        return float(r.mean() / sd) if sd > 0 else 0.0


@dataclass
class SweepResult:
    """Every trial (grid order), the ranking and the bias checks of the best trial."""

    config: Path
    grid: dict[str, list[str]]
    rank_by: str
    trials: list[Trial]
    ranking: list[int]  # trial indices, best first
    deflated: dict | None
    out_of_sample: dict | None
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> Trial:
        return self.trials[self.ranking[0]]


def _load(config: Path, overrides: dict[str, str], where: str):
    from quantedge.backtest.config import BacktestConfig
    from quantedge.backtest.runner import make_strategy

    try:
        cfg = BacktestConfig.load(config, overrides)
        make_strategy(cfg.strategy, cfg.params)  # the strategy validates its parameters
        if cfg.signals and "config" in cfg.signals:
            from quantedge.backtest.pipeline import signal_config

            signal_config(cfg)  # signal parameters (signals.params.<section>.<key>) too
    except (ValueError, TypeError, KeyError) as e:
        raise SweepError(f"{where}: {e}") from None
    return cfg


def _run_one(args: tuple[str, dict[str, str]]) -> tuple[dict, list[float], str]:
    """Worker: one backtest (no HTML/PNG reports); its metrics, period returns on the metrics grid,
    and the error message when it failed ("" otherwise)."""
    import pyarrow.parquet as pq

    from quantedge.backtest.config import BacktestConfig
    from quantedge.backtest.metrics import resample_equity, returns_from_equity
    from quantedge.backtest.runner import run_backtest

    config, overrides = args
    cfg = BacktestConfig.load(Path(config), overrides)
    try:
        m = run_backtest(cfg, report=False)
    except Exception as e:  # noqa: BLE001 - any failure of one trial is that trial's result
        return {}, [], f"{type(e).__name__}: {e}"
    eq = pq.read_table(m["outputs"]["equity"], columns=["ts", "equity"])
    ts = eq.column("ts").to_numpy().astype(np.int64)
    e = eq.column("equity").to_numpy().astype(np.float64)
    _, grid_eq = resample_equity(ts, e, cfg.return_step_ns)
    keep = {k: m.get(k) for k in METRICS}
    keep["events"] = m.get("events")
    keep["lookahead_ok"] = bool(m.get("lookahead_guard", {}).get("ok", True))
    return keep, [float(x) for x in returns_from_equity(grid_eq)], ""


def _key(m: dict, rank_by: str) -> float:
    v = m.get(rank_by)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return -math.inf
    return float(v)


def run_sweep(config: str | Path, grid: dict[str, list[str]], overrides: dict[str, str] | None = None,
              output: str | Path = "out/sweep", rank_by: str = "sharpe", workers: int | None = None,
              oos: dict[str, str] | None = None,
              on_trial: Callable[[Trial], None] | None = None) -> SweepResult:
    """Run every grid point of ``config`` (with ``overrides``), rank by ``rank_by``, deflate the best
    trial's Sharpe over all trials and, with ``oos`` overrides, rerun the best parameters on that
    other data.  Writes ``sweep.csv``, ``sweep.md`` and ``sweep.json`` under ``output``."""
    if rank_by not in RANKABLE:
        raise SweepError(f"--rank {rank_by!r}: choose one of {', '.join(RANKABLE)}")
    config = Path(config)
    out = Path(output).resolve()
    base = dict(overrides or {})
    for k in grid:
        if k in base:
            raise SweepError(f"{k} is both swept (--grid) and fixed (--set)")
    trials: list[Trial] = []
    for i, values in enumerate(grid_points(grid)):
        t = Trial(i, values, out / f"trial_{i:03d}")
        cfg = _load(config, {**base, **values, "output": str(t.output)}, f"{t.name} ({_label(values)})")
        if cfg.engine.state_path and "state_path" not in values:
            # a persisted portfolio state is per run: trials running at once must not share one file
            t.state_path = str(t.output / "portfolio_state.json")
        trials.append(t)
    if oos:
        _load(config, {**base, **oos, "output": str(out / "oos")}, "out-of-sample run")
    jobs = [(str(config), {**base, **t.values, **t.private()}) for t in trials]
    workers = workers if workers is not None else min(len(jobs), os.cpu_count() or 1, 2)
    if workers <= 1:
        for t, job in zip(trials, jobs, strict=True):
            t.metrics, t.returns, t.error = _run_one(job)
            if on_trial:
                on_trial(t)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for t, (m, r, err) in zip(trials, pool.map(_run_one, jobs), strict=True):
                t.metrics, t.returns, t.error = m, r, err
                if on_trial:
                    on_trial(t)
    ok = [t for t in trials if not t.error]
    if not ok:
        raise SweepError(f"every trial failed; first: {trials[0].name}: {trials[0].error}")
    ranking = sorted(range(len(trials)),
                     key=lambda i: (bool(trials[i].error), -_key(trials[i].metrics, rank_by), i))
    best = trials[ranking[0]]
    deflated = None
    if len(best.returns) >= 3:
        from quantedge.backtest.bias import deflated_sharpe

        # the trials that ran are the search; a failed one tried nothing
        deflated = deflated_sharpe(np.asarray(best.returns), [t.per_period_sharpe() for t in ok])
    out_of_sample = None
    if oos:
        private = {"output": str(out / "oos")}
        if best.state_path:
            private["state_path"] = str(out / "oos" / "portfolio_state.json")
        m, _, err = _run_one((str(config), {**base, **best.values, **oos, **private}))
        if err:
            raise SweepError(f"out-of-sample run ({_label(oos)}) failed: {err}")
        out_of_sample = {"overrides": oos, "params": best.values, "metrics": m,
                         "in_sample": {k: best.metrics.get(k) for k in METRICS}}
    res = SweepResult(config, grid, rank_by, trials, ranking, deflated, out_of_sample)
    res.outputs = write_sweep(out, res)
    return res


def _label(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4g}"
    return str(v)


def write_sweep(out: Path, res: SweepResult) -> dict[str, str]:
    """sweep.csv (one row per trial, grid order), sweep.md (ranked table and bias checks), sweep.json."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(res.grid)
    rank_of = {ti: r + 1 for r, ti in enumerate(res.ranking)}
    paths = {"csv": out / "sweep.csv", "markdown": out / "sweep.md", "json": out / "sweep.json"}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "rank", *keys, *METRICS, "output", "error"])
        for t in res.trials:
            w.writerow([t.name, rank_of[t.index], *(t.values[k] for k in keys),
                        *(t.metrics.get(m) for m in METRICS), str(t.output), t.error])
    lines = [f"# Parameter sweep: {res.config}", "",
             f"{len(res.trials)} trials over {_label({k: ','.join(v) for k, v in res.grid.items()})}; "
             f"ranked by {res.rank_by}.", "",
             "| rank | trial | " + " | ".join(keys) + " | " + " | ".join(METRICS) + " |",
             "|---:|---|" + "---|" * len(keys) + "---:|" * len(METRICS)]
    for r, ti in enumerate(res.ranking):
        t = res.trials[ti]
        cells = ([f"failed: {t.error}".replace("|", "/")] + [""] * (len(METRICS) - 1) if t.error
                 else [_fmt(t.metrics.get(m)) for m in METRICS])
        lines.append(f"| {r + 1} | {t.name} | " + " | ".join(t.values[k] for k in keys) + " | "
                     + " | ".join(cells) + " |")
    best = res.best
    score = _fmt(best.metrics.get(res.rank_by))
    lines += ["", f"**Best**: {best.name} ({_label(best.values)}), {res.rank_by} {score}."]
    if res.deflated is not None:
        d = res.deflated
        lines += ["", f"**Deflated Sharpe** of the best trial over {d['n_trials']} trials: {d['dsr']:.3f} "
                  f"(per-period Sharpe {d['sharpe_per_period']:.4f} vs {d['sr0_expected_max']:.4f} expected "
                  f"from the best of {d['n_trials']} by luck; {d['n_returns']} period returns). "
                  "Below 0.95 the best trial is not distinguishable from search luck."]
    else:
        lines += ["", "**Deflated Sharpe**: not computed (the best trial has fewer than 3 period returns)."]
    if res.out_of_sample is not None:
        o = res.out_of_sample
        lines += ["", f"**Out of sample** ({_label(o['overrides'])}), best parameters:", "",
                  "| | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS),
                  "| in sample | " + " | ".join(_fmt(o["in_sample"].get(m)) for m in METRICS) + " |",
                  "| out of sample | " + " | ".join(_fmt(o["metrics"].get(m)) for m in METRICS) + " |"]
    paths["markdown"].write_text("\n".join(lines) + "\n")
    rows = [{"trial": t.name, "rank": rank_of[t.index], "values": t.values, "metrics": t.metrics,
             "per_period_sharpe": t.per_period_sharpe(), "output": str(t.output), "error": t.error}
            for t in res.trials]
    doc = {"config": str(res.config), "grid": res.grid, "rank_by": res.rank_by, "trials": rows,
           "best": best.name, "deflated_sharpe": res.deflated, "out_of_sample": res.out_of_sample}
    paths["json"].write_text(json.dumps(_plain(doc), indent=1, allow_nan=False) + "\n")
    return {k: str(v) for k, v in paths.items()}


def _plain(o):
    """Strict JSON: infinite / NaN floats (a profit factor with no losing period) as strings."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return o
