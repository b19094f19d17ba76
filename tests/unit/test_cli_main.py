"""The main job and catalog commands end to end through the Typer app (bundled real samples)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from quantedge.catalog.store import Catalog
from quantedge.cli.main import app

runner = CliRunner()


def test_demo_runs_the_pipeline_on_the_bundled_sample(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--no-synthetic"])
    assert res.exit_code == 0, res.output
    cat = Catalog(tmp_path / "catalog")
    assert set(cat.symbols.names()) == {"AMZN", "NEPT"}
    # the bundled LOBSTER excerpt is 2,000 messages; the IQFeed excerpt 2,999 ticks
    imports = [json.loads(x) for x in (tmp_path / "catalog" / "imports.jsonl").read_text().splitlines()]
    by_fmt = {r["format"]: r for r in imports}
    assert by_fmt["lobster"]["rows_read"] == 2000
    assert sum(r["rows_read"] for r in imports) == sum(r["rows_imported"] + r["rows_quarantined"]
                                                         for r in imports)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["symbol"] for r in summary["runs"]} == {"AMZN", "NEPT"}
    for run in summary["runs"]:
        assert Path(run["outputs"]["html"]).exists()
    assert "report" in res.output
    # running the demo again replaces the same catalog parts instead of doubling them
    n1 = sum(r["rows"] for r in cat.ls())
    assert runner.invoke(app, ["demo", "--out", str(tmp_path), "--no-synthetic"]).exit_code == 0
    assert sum(r["rows"] for r in Catalog(tmp_path / "catalog").ls()) == n1


def test_import_unknown_format_and_missing_file(tmp_path):
    res = runner.invoke(app, ["import", "nosuch", str(tmp_path)])
    assert res.exit_code == 2 and "unknown format" in res.output
    res = runner.invoke(app, ["import", "lobster", str(tmp_path / "missing.zip"), "-c", str(tmp_path / "c")])
    assert res.exit_code == 1
    assert "missing.zip" in res.output and "Traceback" not in res.output


def test_catalog_ls_and_show(tmp_path, shared_data):
    nept = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    res = runner.invoke(app, ["import", "iqfeed", str(nept), "-c", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["catalog", "ls", "-c", str(tmp_path)])
    assert res.exit_code == 0 and "2021-03-03" in res.output and "NEPT" in res.output
    res = runner.invoke(app, ["catalog", "show", "NEPT", "2021-03-02", "-c", str(tmp_path), "--head", "5"])
    assert res.exit_code == 0 and "trade" in res.output
    res = runner.invoke(app, ["catalog", "show", "NEPT", "2021-03-09", "-c", str(tmp_path)])
    assert res.exit_code == 1 and "no events" in res.output


def test_export_then_import_round_trips(tmp_path):
    assert runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--no-synthetic"]).exit_code == 0
    cat_dir = tmp_path / "demo" / "catalog"
    res = runner.invoke(app, ["export", "NEPT", "--date", "2021-03-01", "--out", str(tmp_path / "csv"),
                              "-c", str(cat_dir)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["import", "csv", str(tmp_path / "csv"), "-c", str(tmp_path / "rt")])
    assert res.exit_code == 0, res.output
    a = Catalog(cat_dir).read("NEPT", "2021-03-01")
    b = Catalog(tmp_path / "rt").read("NEPT", "2021-03-01")
    assert a.shape == b.shape
    for f in ("ts_event", "price", "size", "kind", "side", "venue", "conditions"):
        assert (a[f] == b[f]).all(), f
    res = runner.invoke(app, ["export", "NOPE", "--date", "2021-03-01", "-c", str(cat_dir)])
    assert res.exit_code == 1 and "no events" in res.output


def test_bench_rejects_unknown_stage(tmp_path):
    res = runner.invoke(app, ["bench", "--only", "nosuch", "--data", str(tmp_path)])
    assert res.exit_code == 2 and "unknown benchmark" in res.output
    # a comma list is split: the known name passes, the unknown one is named
    res = runner.invoke(app, ["bench", "--only", "features,nosuch2", "--data", str(tmp_path)])
    assert res.exit_code == 2 and "nosuch2" in res.output and "features," not in res.output.split(";")[0]
    res = runner.invoke(app, ["bench", "--data", str(tmp_path / "missing")])
    assert res.exit_code == 1 and "not found" in res.output


def test_usage_error_keeps_a_long_path_on_one_line_in_a_log(tmp_path):
    """Typer's error box is 80 columns on a pipe: a long path was split across boxed lines."""
    import os
    import subprocess
    import sys

    bad = tmp_path.joinpath(*["a_rather_long_folder_name_" * 3] * 4, "catalog")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    proc = subprocess.run([sys.executable, "-m", "quantedge.cli.main", "research", "-c", str(bad)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert len(str(bad)) > 250 and str(bad) in proc.stderr
    assert "Error: Invalid value for --catalog: no catalog at" in proc.stderr and "Usage: " in proc.stderr
    # a name longer than the file system allows is a usage error too, not an unexpected one
    too_long = str(tmp_path / ("x" * 300))
    proc = subprocess.run([sys.executable, "-m", "quantedge.cli.main", "research", "-c", too_long],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
