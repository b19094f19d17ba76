"""Realism: simulated regimes against the real NEPT (IQFeed) and AMZN (LOBSTER) days, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from quantedge.cli.synth_cmd import register
from quantedge.synth import realism


@pytest.fixture(scope="module")
def nept(shared_data):
    return realism.nept_stats(shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv")


@pytest.fixture(scope="module")
def amzn(shared_data):
    return realism.lobster_stats(shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")


@pytest.fixture(scope="module")
def sims():
    return realism.sim_stats("penny", 3, seed=2), realism.sim_stats("large", 3, seed=2, first_index=3)


def _med(s, m):
    return float(np.median(s.samples[m]))


def test_real_day_statistics_are_what_the_files_say(nept, amzn):
    # NEPT trades a one-cent spread at ~$1.6 (about 63 bps); AMZN 2012 about 12 cents at ~$222
    assert _med(nept, "spread_cents") == pytest.approx(1.0)
    assert 55 < _med(nept, "spread_bps") < 70
    assert 8 <= _med(amzn, "spread_cents") <= 16
    assert "touch_depth" not in nept.samples and _med(amzn, "touch_depth") == 100
    assert 9_000 < nept.trades_per_day < 12_000 and amzn.off_exchange_share is None
    assert 0.45 < nept.off_exchange_share < 0.65


def test_penny_regime_resembles_nept(nept, sims):
    penny, _ = sims
    for m in ("spread_bps", "trade_size", "inter_arrival_ms"):
        ratio = _med(penny, m) / max(_med(nept, m), 1e-9)
        if m == "inter_arrival_ms":
            assert 0.1 < ratio < 20, m  # heavy-tailed, burst-dominated: order of magnitude
        else:
            assert 0.5 < ratio < 2.0, (m, ratio)
    assert 0.5 < penny.trades_per_day / nept.trades_per_day < 2.0
    assert abs(penny.off_exchange_share - nept.off_exchange_share) < 0.2


def test_large_regime_resembles_lobster_amzn(amzn, sims):
    _, large = sims
    for m in ("spread_bps", "trade_size", "touch_depth"):
        ratio = _med(large, m) / _med(amzn, m)
        assert 1 / 3 < ratio < 3, (m, ratio)
    q_sim = np.quantile(large.samples["trade_size"], 0.95)
    q_real = np.quantile(amzn.samples["trade_size"], 0.95)
    assert 0.5 < q_sim / q_real < 2


def test_compare_table_lists_every_source_and_metric(nept, amzn, sims):
    table = realism.compare_table([nept, sims[0], amzn, sims[1]])
    for label in ("spread (bps of mid)", "trade size", "inter-arrival", "touch depth", "off-exchange"):
        assert label in table
    assert "NEPT 2021-03-01" in table and "AMZN 2012-06-21" in table and "n/a" in table


def _flat(text: str) -> str:
    return " ".join(text.split())  # Rich wraps long lines at the terminal width


def _app():
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return app


def test_cli_generate_and_from_bars(tmp_path, shared_data):
    runner = CliRunner()
    cat = tmp_path / "cat"
    r = runner.invoke(_app(), ["synth", "generate", "-c", str(cat), "--symbols", "2", "--days", "1",
                               "--workers", "1", "--penny-share", "0.5"])
    assert r.exit_code == 0, r.output
    assert "2 symbols x 1 days" in _flat(r.output) and (cat / "labels" / "episodes.parquet").is_file()
    r = runner.invoke(_app(), ["synth", "generate", "-c", str(cat), "--start", "2024-13-01"])
    assert r.exit_code == 2 and "not a date" in _flat(r.output)
    bars = shared_data / "iqfeed" / "NEPT_bars_1s_2021-03-01_2021-03-03.csv"
    r = runner.invoke(_app(), ["synth", "from-bars", str(bars), "-c", str(cat)])
    assert r.exit_code == 0, r.output
    assert "NEPT: 7,949 of 7,949 bars" in _flat(r.output)
    r = runner.invoke(_app(), ["synth", "from-bars", str(tmp_path / "nope.csv"), "-c", str(cat)])
    assert r.exit_code == 2 and "no such file" in _flat(r.output)


def test_cli_compare_writes_markdown(tmp_path, shared_data):
    out = tmp_path / "table.md"
    lob = shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
    r = CliRunner().invoke(_app(), ["synth", "compare", "--nept",
                                    str(shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"),
                                    "--lobster", str(lob), "--sims", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "simulated penny (1 symbol-days)" in out.read_text()
    r = CliRunner().invoke(_app(), ["synth", "compare", "--nept", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and "missing real data" in _flat(r.output)
