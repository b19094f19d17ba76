"""One configured backtest end to end: data -> engine -> metrics -> files (and reports)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from quantedge.backtest.bias import lookahead_report
from quantedge.backtest.config import BacktestConfig, load_events
from quantedge.backtest.engine import Engine
from quantedge.backtest.metrics import summarize
from quantedge.backtest.outputs import write_metrics, write_outputs
from quantedge.strategies import registry


def make_strategy(name: str, params: dict):
    reg = registry()
    if name not in reg:
        raise ValueError(f"strategy {name!r} unknown; available: {sorted(reg)}")
    return reg[name](params)


def _engine(cfg: BacktestConfig, strat, names: list[str]) -> Engine:
    """The engine of a configured run; on LOBSTER days with an L3 venue its book opens with the day's
    opening book (backtest/seeds.py), not empty."""
    eng = Engine(strat, max(len(names), 1), cfg.engine, names)
    if cfg.engine.execution.book == "l3":
        from quantedge.backtest.seeds import find_seeds

        eng.seed_opening_books(*find_seeds(cfg, names, str(cfg.data.get("date", ""))))
    return eng


def run_backtest(
    cfg: BacktestConfig, progress: Callable[[int, int], None] | None = None, report: bool = True
) -> dict:
    """Run and write every output; returns metrics plus the output paths.

    With a ``signals`` section the signal records (computed by the signal pipeline alongside the
    replay, or read from a Parquet file) are merged into the stream by receive time."""
    names, batches, total = load_events(cfg)
    strat = make_strategy(cfg.strategy, cfg.params)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    out = Path(cfg.output)
    if not out.is_absolute():
        out = Path.cwd() / out
    sig_info: dict | None = None
    if cfg.signals:
        from quantedge.backtest.pipeline import run_with_signals, signal_inputs

        stage, recs, sig_info = signal_inputs(cfg, names)
        eng = _engine(cfg, strat, names)
        run_with_signals(eng, batches, stage=stage, signals=recs, progress=tick, info=sig_info)
        if stage is not None:
            sig_info.update(stage.save(out / "signals.parquet", names))
    else:
        eng = _engine(cfg, strat, names)
        eng.run(batches, progress=tick)
    if eng.events_seen == 0:  # a catalog without the asked symbols / day: nothing was tested
        d = cfg.data
        raise ValueError(f"no events to replay: catalog {cfg.resolve(d.get('catalog', 'catalog'))} has none "
                         f"for symbols {d.get('symbols') or 'all'} on {d.get('date') or 'any day'}")
    return finish_run(eng, cfg.strategy, strat, cfg.return_step_ns, out, report, sig_info,
                      data=cfg.data_report)


def finish_run(
    eng: Engine, name: str, strat, step_ns: int, out: Path, report: bool = True, signals: dict | None = None,
    data: dict | None = None,
) -> dict:
    """Metrics of a finished engine run, written with every output file (and the reports);
    ``data``: what was read from a raw data file (rows read / used / quarantined)."""
    m = summarize(eng, step_ns)
    if data is not None:
        m["data"] = data
    m["strategy"] = {"name": name, "params": strat.p.__dict__}
    m["lookahead_guard"] = lookahead_report(eng)
    m["risk_rejections"] = eng.risk.rejections
    m["kill_switch_events"] = eng.risk.kill_events
    m["events"] = eng.events_seen
    if eng.seed_info:
        m["opening_books"] = eng.seed_info
    m["strategy_callbacks"] = eng.callbacks
    m["callback_seconds"] = eng.callback_s
    if signals is not None:
        m["signals"] = signals
    paths = write_outputs(out, eng, m)
    if report:
        from quantedge.reports.backtest_report import write_reports

        paths.update(write_reports(out, eng, m))
        write_metrics(paths["metrics"], m)  # now with reports_skipped
    m["outputs"] = {k: str(v) for k, v in paths.items()}
    return m
