"""One configured backtest end to end: data -> engine -> metrics -> files (and reports)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from quantedge.backtest.bias import lookahead_report
from quantedge.backtest.config import BacktestConfig, load_events
from quantedge.backtest.engine import Engine
from quantedge.backtest.metrics import summarize
from quantedge.backtest.outputs import write_outputs
from quantedge.strategies import registry


def make_strategy(name: str, params: dict):
    reg = registry()
    if name not in reg:
        raise ValueError(f"strategy {name!r} unknown; available: {sorted(reg)}")
    return reg[name](params)


def run_backtest(
    cfg: BacktestConfig, progress: Callable[[int, int], None] | None = None, report: bool = True
) -> dict:
    """Run and write every output; returns metrics plus the output paths."""
    names, batches, total = load_events(cfg)
    strat = make_strategy(cfg.strategy, cfg.params)
    eng = Engine(strat, max(len(names), 1), cfg.engine, names)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    eng.run(batches, progress=tick)
    m = summarize(eng, cfg.return_step_ns)
    m["strategy"] = {"name": cfg.strategy, "params": strat.p.__dict__}
    m["lookahead_guard"] = lookahead_report(eng)
    m["risk_rejections"] = eng.risk.rejections
    m["kill_switch_events"] = eng.risk.kill_events
    m["events"] = eng.events_seen
    m["strategy_callbacks"] = eng.callbacks
    m["callback_seconds"] = eng.callback_s
    out = Path(cfg.output)
    if not out.is_absolute():
        out = Path.cwd() / out
    paths = write_outputs(out, eng, m)
    if report:
        from quantedge.reports.backtest_report import write_reports

        paths.update(write_reports(out, eng, m))
    m["outputs"] = {k: str(v) for k, v in paths.items()}
    return m
