"""`quantedge sweep`: a backtest per grid point on the real NEPT days, ranked, with the deflated
Sharpe of the best trial and an out-of-sample rerun; bad grids and trial configs fail up front."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from quantedge.backtest.bias import deflated_sharpe
from quantedge.backtest.config import BacktestConfig
from quantedge.backtest.metrics import resample_equity, returns_from_equity
from quantedge.backtest.runner import run_backtest
from quantedge.backtest.sweep import SweepError, grid_points, parse_grid, run_sweep
from quantedge.cli.main import app

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "backtest_sma.yaml"


def test_grid_parsing_and_points():
    g = parse_grid(["strategy.params.fast=3,5", "strategy.params.slow= 20 ,40,60"])
    assert g == {"strategy.params.fast": ["3", "5"], "strategy.params.slow": ["20", "40", "60"]}
    pts = grid_points(g)
    assert len(pts) == 6 and pts[0] == {"strategy.params.fast": "3", "strategy.params.slow": "20"}
    assert pts[1] == {"strategy.params.fast": "3", "strategy.params.slow": "40"}  # last key fastest
    for bad, msg in ((["fast"], "expected dotted.key"), (["a="], "expected dotted.key"),
                     (["a=1", "a=2"], "already swept"), (["a=1,1"], "repeated value"), ([], "at least one")):
        with pytest.raises(SweepError, match=msg):
            parse_grid(bad)


@pytest.mark.realdata
def test_sweep_runs_ordinary_backtests_and_deflates_the_best(shared_data, tmp_path):
    nept = f"{shared_data}/iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
    grid = parse_grid(["strategy.params.fast=3,8", "strategy.params.slow=20,40"])
    seen = []
    res = run_sweep(CONFIG, grid, {"data.path": nept}, tmp_path / "sw", workers=1,
                    oos={"data.date": "2021-03-02"}, on_trial=lambda t: seen.append(t.name))
    assert seen == ["trial_000", "trial_001", "trial_002", "trial_003"]
    # ranked by Sharpe, best first
    sharpes = [res.trials[i].metrics["sharpe"] for i in res.ranking]
    assert sharpes == sorted(sharpes, reverse=True)
    # a trial is an ordinary backtest: same metrics as `quantedge backtest` with the same overrides
    t = res.trials[2]
    cfg = BacktestConfig.load(CONFIG, {"data.path": nept, **t.values, "output": str(tmp_path / "direct")})
    direct = run_backtest(cfg, report=False)
    for k in ("sharpe", "total_return", "trades", "fills", "final_equity"):
        assert t.metrics[k] == direct[k]
    # the deflated Sharpe is the bias module's, on the best trial's period returns
    best = res.best
    eq = pq.read_table(best.output / "equity.parquet")
    _, g = resample_equity(eq.column("ts").to_numpy(), eq.column("equity").to_numpy(), cfg.return_step_ns)
    r = returns_from_equity(g)
    assert np.allclose(best.returns, r)
    want = deflated_sharpe(r, [x.per_period_sharpe() for x in res.trials])
    assert res.deflated == pytest.approx(want)
    assert 0.0 <= res.deflated["dsr"] <= 1.0 and res.deflated["n_trials"] == 4
    # out of sample: the best parameters on the next day
    oos = res.out_of_sample
    assert oos["params"] == best.values and oos["metrics"]["events"] > 0
    assert oos["metrics"]["final_equity"] != best.metrics["final_equity"]
    # files: one CSV row per trial, a ranked Markdown table, strict JSON
    with open(res.outputs["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert [row["trial"] for row in rows] == ["trial_000", "trial_001", "trial_002", "trial_003"]
    assert {row["rank"] for row in rows} == {"1", "2", "3", "4"}
    md = Path(res.outputs["markdown"]).read_text()
    assert "Deflated Sharpe" in md and "Out of sample" in md and f"| 1 | {best.name} |" in md
    doc = json.loads(Path(res.outputs["json"]).read_text(), parse_constant=lambda c: pytest.fail(c))
    assert doc["best"] == best.name and len(doc["trials"]) == 4


def test_a_bad_config_stops_the_sweep_before_anything_runs(tmp_path):
    grid = parse_grid(["strategy.params.fast=5,8", "strategy.params.nope=1"])
    msg = r"trial_000 \(strategy.params.fast=5, strategy.params.nope=1\).*nope"
    with pytest.raises(SweepError, match=msg):
        run_sweep(CONFIG, grid, {}, tmp_path / "sw", workers=1)
    assert not (tmp_path / "sw").exists()
    grid = parse_grid(["strategy.params.fast=5,8"])
    with pytest.raises(SweepError, match="both swept"):
        run_sweep(CONFIG, grid, {"strategy.params.fast": "4"}, tmp_path / "sw", workers=1)
    with pytest.raises(SweepError, match="--rank"):
        run_sweep(CONFIG, grid, {}, tmp_path / "sw", rank_by="luck")


@pytest.mark.realdata
def test_a_trial_that_fails_at_start_is_reported_and_ranked_last(shared_data, tmp_path):
    """sma_cross checks fast < slow when it starts: that trial fails, the others run."""
    nept = f"{shared_data}/iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
    grid = parse_grid(["strategy.params.fast=5,30", "strategy.params.slow=20"])
    res = run_sweep(CONFIG, grid, {"data.path": nept}, tmp_path / "sw", workers=1)
    bad = res.trials[1]
    assert "fast=30 slow=20" in bad.error and not bad.metrics
    assert res.ranking == [0, 1] and res.best.error == ""
    assert res.deflated is not None and res.deflated["n_trials"] == 1
    assert "failed: ValueError: sma_cross" in Path(res.outputs["markdown"]).read_text()
    with pytest.raises(SweepError, match="every trial failed"):
        run_sweep(CONFIG, parse_grid(["strategy.params.fast=30,40"]), {"data.path": nept,
                  "strategy.params.slow": "20"}, tmp_path / "sw2", workers=1)


@pytest.mark.realdata
def test_sweep_command(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    nept = f"{shared_data}/iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["sweep", "-f", "config/backtest_sma.yaml", "-g",
                                     "strategy.params.fast=4,6", "--set", f"data.path={nept}", "-o", str(out),
                                     "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "deflated Sharpe of trial_00" in res.output
    assert (out / "sweep.csv").exists() and (out / "trial_001" / "trades.csv").exists()
    bad = CliRunner().invoke(app, ["sweep", "-f", "config/backtest_sma.yaml", "-g", "strategy.params.fast"])
    assert bad.exit_code == 2 and "expected dotted.key" in bad.output


def test_signal_parameters_are_swept_through_the_backtest_config(tmp_path):
    """``signals.params.<section>.<key>`` lays signal parameters over the config's signal file, so a
    sweep can search detector thresholds; a bad one stops the sweep up front (bundled NEPT excerpt)."""
    from quantedge.backtest.pipeline import signal_config

    acc = REPO / "config" / "backtest_accumulation.yaml"
    over = {"signals.params.composite.on_score": "0.4", "output": str(tmp_path / "x")}
    cfg = BacktestConfig.load(acc, over)
    conf, source = signal_config(cfg)
    assert conf["composite.on_score"] == 0.4 and source.endswith("strategy_params.yaml")
    res = run_sweep(acc, parse_grid(["signals.params.composite.on_score=0.4,0.6"]),
                    {"signals.params.composite.persist_s": "20"}, tmp_path / "sw", workers=1)
    low, default = res.trials
    assert low.metrics["trades"] >= 1 and default.metrics["trades"] == 0  # 0.6 triggers nothing here
    with pytest.raises(SweepError, match=r"composite.on_score = 1.5 is outside"):
        run_sweep(acc, parse_grid(["signals.params.composite.on_score=0.4,1.5"]), {}, tmp_path / "s2")
    with pytest.raises(ValueError, match="signals.params must be a mapping"):
        BacktestConfig.load(acc, {"signals.params": "0.4"})


def test_any_trial_failure_is_recorded_and_state_files_are_per_trial(shared_data, tmp_path, monkeypatch):
    """An unexpected exception in one trial marks that trial failed (the others run); a config that
    persists its portfolio state gets one state file per trial, never a shared one."""
    import quantedge.backtest.runner as runner

    real = runner.run_backtest

    def flaky(cfg, *a, **kw):
        if cfg.params.get("fast") == 8:
            raise RuntimeError("no CUDA device")
        return real(cfg, *a, **kw)

    monkeypatch.setattr(runner, "run_backtest", flaky)
    nept = f"{shared_data}/iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
    shared_state = tmp_path / "state.json"
    res = run_sweep(CONFIG, parse_grid(["strategy.params.fast=5,8"]),
                    {"data.path": nept, "state_path": str(shared_state)}, tmp_path / "sw", workers=1)
    assert res.trials[1].error == "RuntimeError: no CUDA device" and res.ranking == [0, 1]
    assert not shared_state.exists()
    assert (tmp_path / "sw" / "trial_000" / "portfolio_state.json").exists()
