"""`quantedge calibrate-signals`: the coordinate search over simulated days keeps only improvements,
its result file loads as the config it reports, and bad grids are clear errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from quantedge.cli.main import app
from quantedge.signals.calibrate import (
    CalibrationError,
    coordinate_search,
    objective,
    parse_grid,
    quality,
    simulate_set,
    write_result,
)
from quantedge.signals.config import load_config


@pytest.fixture(scope="module")
def small_set():
    return simulate_set(n_symbols=3, days=1, seed=101, penny_share=0.67, workers=1)


def test_search_keeps_only_improvements_and_writes_a_loadable_file(small_set, tmp_path):
    base = load_config().with_values(dark_pool__on_score=0.95)  # a poor start: few triggers
    grid = parse_grid(["dark_pool.on_score=0.5,0.7,0.95", "creep.buy_share_lo=0.9"], "dark_pool")
    seen = []
    res = coordinate_search(small_set, base, "dark_pool", grid, rounds=2,
                            on_trial=lambda n, v, c: seen.append((n, v)))
    assert objective(res.best) >= objective(res.start)
    # every accepted step raised the objective, and the result is what the final config scores
    prev = objective(res.start)
    for s in res.steps:
        assert s.name in grid
        now = (min(s.precision, s.recall), s.precision + s.recall)
        assert now > prev
        prev = now
    assert quality(small_set, res.config, 2).tp == res.best.tp
    assert objective(quality(small_set, res.config, 2)) == objective(res.best) >= prev
    # creep.buy_share_lo = 0.9 would put the ramp's ends out of order (hi 0.8): skipped, not tried
    assert ("creep.buy_share_lo", 0.9) not in seen
    paths = write_result(tmp_path / "cal", res, small_set, "quantedge calibrate-signals ...")
    loaded = load_config(paths["yaml"])
    assert loaded.values == res.config.values
    text = (tmp_path / "cal" / "calibration.md").read_text()
    assert "| start |" in text and "| best |" in text


def test_bad_grids_are_named():
    for items, msg in ((["nope.on_score=1"], "unknown parameter"), (["creep.on_score"], "expected"),
                       (["creep.on_score=a"], "numbers"), (["creep.on_score=2"], r"outside \[0.01, 1\]"),
                       ([], "at least one")):
        with pytest.raises(CalibrationError, match=msg):
            parse_grid(items, "creep")


def test_command_rejects_an_unknown_signal():
    res = CliRunner().invoke(app, ["calibrate-signals", "--signal", "luck", "-g", "creep.on_score=0.3"])
    assert res.exit_code == 2 and "choose one of" in res.output
