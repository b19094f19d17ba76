"""`quantedge backtest --config` end to end on the real NEPT day: outputs, formats, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from quantedge.cli.backtest_cmd import register

REPO = Path(__file__).resolve().parents[2]


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.command()
    def noop() -> None:
        """Second command so Typer keeps sub-command names."""

    return a


@pytest.mark.realdata
def test_backtest_command_writes_every_output(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app(),
        [
            "backtest",
            "--config",
            "config/backtest_sma.yaml",
            "-o",
            str(out),
            "--set",
            f"data.path={shared_data}/iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv",
        ],
    )
    assert res.exit_code == 0, res.output
    with open(out / "trades.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "symbol", "action", "qty", "price", "notional", "cash", "equity"]
    assert len(rows) > 5 and rows[1][1] == "NEPT" and rows[1][2] in ("BUY", "SELL")
    assert rows[1][0].startswith("2021-03-01T") and rows[1][0].endswith("Z")
    with open(out / "fills.csv") as fh:
        fills = list(csv.DictReader(fh))
    assert {f["reason"] for f in fills} <= {
        "market_walk",
        "limit_take",
        "queue",
        "trade_through",
        "quote_through",
        "stop_walk",
        "bar_close",
        "last_trade",
    }
    m = json.loads((out / "metrics.json").read_text())
    assert m["lookahead_guard"]["ok"] and m["fills"] == len(fills)
    assert m["fee_breakdown"]["sec"] > 0 and m["fee_breakdown"]["commission"] > 0
    eq = pq.read_table(out / "equity.parquet")
    assert eq.column_names == ["ts", "equity", "cash", "gross_exposure"] and eq.num_rows > 100
    assert eq.column("equity")[-1].as_py() == pytest.approx(m["final_equity"])
    if (out / "report.html").exists():
        page = (out / "report.html").read_text()
        assert "Trades (round trips)" in page and "Drawdown" in page
        assert (out / "equity.png").stat().st_size > 1000


def test_backtest_command_bad_config_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {source: iqfeed_ticks, path: x.csv}\nstrategy: {name: sma_cross}\nfeez: {}\n")
    res = CliRunner().invoke(app(), ["backtest", "--config", str(bad)])
    assert res.exit_code == 2 and "feez" in res.output
    bad.write_text(
        "data: {source: iqfeed_ticks, path: nope.csv}\nstrategy: {name: sma_cross, params: {fats: 3}}\n"
    )
    res = CliRunner().invoke(app(), ["backtest", "--config", str(bad)])
    assert res.exit_code == 2 and "strategy.params: unknown parameter(s) ['fats']" in res.output
    bad.write_text("data: {source: iqfeed_ticks, path: nope.csv}\nstrategy: {name: sma_cross}\n")
    res = CliRunner().invoke(app(), ["backtest", "--config", str(bad)])
    assert res.exit_code == 2 and "data.path: nope.csv" in res.output and "no such file" in res.output


@pytest.mark.parametrize(("name", "rel"), [
    ("backtest_sma.yaml", "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"),
    ("backtest_rsi_lobster.yaml", "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"),
])
def test_shipped_configs_find_the_real_data_through_the_variable(tmp_path, monkeypatch, name, rel):
    """The shipped configs name the real data ``shared:<file>``: looked up in QUANTEDGE_SHARED_DATA
    from any working directory (an installed wheel has no ../shared/data beside its config folder)."""
    from quantedge import CONFIG_DIR
    from quantedge.backtest.config import BacktestConfig

    data = tmp_path / "realdata"
    (data / rel).parent.mkdir(parents=True)
    (data / rel).write_bytes(b"")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("QUANTEDGE_SHARED_DATA", str(data))
    cfg = BacktestConfig.load(CONFIG_DIR / name)
    assert cfg.data["path"] == f"shared:{rel}"
    assert cfg.resolve(cfg.data["path"]) == data / rel
    cfg.check_data()
    (data / rel).unlink()
    with pytest.raises(ValueError, match="QUANTEDGE_SHARED_DATA"):
        cfg.check_data()
