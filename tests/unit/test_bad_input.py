"""Bad input to the backtest config and the commands: a clear error naming the key, option, file or
line, exit code 2 for usage errors, never a traceback, and no silent loss of rows.

The data is the bundled real NEPT 2021-03-01 IQFeed excerpt (with a few of its lines broken)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from quantedge import CONFIG_DIR
from quantedge.backtest.config import BacktestConfig
from quantedge.backtest.pipeline import IQFEED_SAMPLE
from quantedge.backtest.runner import run_backtest
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.cli import main as cli_main
from quantedge.cli.main import app

runner = CliRunner()
SMA = {"data": {"source": "iqfeed_ticks", "path": str(IQFEED_SAMPLE)},
       "strategy": {"name": "sma_cross", "params": {"fast": 3, "slow": 10, "interval": "1min"}}}


def _text(out: str) -> str:
    """A command's output with Rich's box drawing and line wrapping undone."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", out).split())


def _cfg(tmp_path: Path, **top) -> Path:
    raw = {**SMA, **top, "output": str(tmp_path / "out")}
    p = tmp_path / "bt.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize(("top", "named"), [
    ({"cash": -5000}, "cash: expected a number > 0, got -5000"),
    ({"cash": "lots"}, "cash: expected a number > 0, got 'lots'"),
    ({"cash": 0}, "cash: expected a number > 0"),
    ({"feed_latency_us": -1}, "feed_latency_us: expected a number >= 0"),
    ({"order_latency": {"constant_us": -500}}, "order_latency.constant_us: expected a number >= 0"),
    ({"order_latency": {"empirical_us": [100, -3]}}, "order_latency.empirical_us"),
    ({"order_latency": "fast"}, "order_latency: expected a mapping"),
    ({"risk": {"max_position": "abc"}}, "risk.max_position: expected a whole number, got 'abc'"),
    ({"risk": {"max_position": 10.5}}, "risk.max_position: expected a whole number"),
    ({"risk": {"max_daily_loss": -100}}, "risk.max_daily_loss: must be >= 0"),
    ({"fees": {"per_share": -1}}, "fees.per_share: must be >= 0"),
    ({"fees": {"tiers": [{"min_monthly_shares": "x", "per_share": 0.001}]}},
     "fees.tiers[0].min_monthly_shares: expected a whole number"),
    ({"fees": {"tiers": [{"per_share": 0.001}]}}, "fees.tiers[0]: expected {min_monthly_shares"),
    ({"execution": {"book": "pseudo", "unknown_touch_size": True}},
     "execution.unknown_touch_size: expected a whole number, got True"),
    ({"data": {**SMA["data"], "date": "2021-02-30"}}, "data.date: expected a date YYYY-MM-DD"),
    ({"data": {**SMA["data"], "batch_rows": 0}}, "data.batch_rows: expected a number > 0"),
    ({"data": {"source": "iqfeed_ticks"}}, "data.path is required"),
])
def test_config_values_are_checked_and_named(tmp_path: Path, top: dict, named: str) -> None:
    with pytest.raises(ValueError) as e:
        BacktestConfig.load(_cfg(tmp_path, **top))
    assert named in str(e.value) and str(tmp_path / "bt.yaml") in str(e.value)


def test_a_yaml_date_that_is_no_date_names_the_file(tmp_path: Path) -> None:
    p = _cfg(tmp_path)  # YAML itself reads an unquoted 2021-13-01 as a date, and fails
    p.write_text(p.read_text().replace("source: iqfeed_ticks", "source: iqfeed_ticks\n  date: 2021-13-01"))
    with pytest.raises(ValueError, match=r"bt\.yaml: cannot read backtest config: .*YYYY-MM-DD"):
        BacktestConfig.load(p)


def test_data_that_is_not_there_is_an_error_not_an_empty_run(tmp_path: Path) -> None:
    cfg = BacktestConfig.load(_cfg(tmp_path))
    missing = replace(cfg, data={**cfg.data, "path": str(tmp_path / "nope.csv")})
    with pytest.raises(ValueError, match=r"data\.path: .*nope\.csv: no such file"):
        run_backtest(missing, report=False)
    no_day = replace(cfg, data={**cfg.data, "date": "2021-03-05"})
    with pytest.raises(ValueError, match=r"data\.date: .* has no events on 2021-03-05"):
        run_backtest(no_day, report=False)
    no_cat = replace(cfg, data={"source": "catalog", "catalog": str(tmp_path / "nocat"),
                                "date": "2021-03-01"})
    with pytest.raises(ValueError, match=r"data\.catalog: .*nocat: no such catalog"):
        run_backtest(no_cat, report=False)
    (tmp_path / "empty_cat").mkdir()
    empty = replace(cfg, data={"source": "catalog", "catalog": str(tmp_path / "empty_cat"),
                               "date": "2021-03-01", "symbols": ["NEPT"]})
    with pytest.raises(ValueError, match=r"no events to replay: catalog .*empty_cat has none for symbols "
                                         r"\['NEPT'\] on 2021-03-01"):
        run_backtest(empty, report=False)


def test_a_package_path_works_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``quantedge:<file>`` names a file inside the installed package (the bundled sample of the
    accumulation config), wherever the config and the working directory are: checkout or wheel."""
    import quantedge

    monkeypatch.chdir(tmp_path)
    cfg = BacktestConfig.load(CONFIG_DIR / "backtest_accumulation.yaml")
    assert str(cfg.data["path"]).startswith("quantedge:")
    got = cfg.resolve(str(cfg.data["path"]))
    package = Path(quantedge.__file__).resolve().parent
    assert got == package / "samples/iqfeed/NEPT_ticks_2021-03-01_excerpt.csv"
    assert got.is_file()
    cfg.check_data()


def _broken_sample(tmp_path: Path) -> tuple[Path, int]:
    """The real excerpt with three lines broken: a negative size, a letter in a price, a cut line."""
    lines = IQFEED_SAMPLE.read_bytes().split(b"\n")
    for i, field, value in ((10, 2, b"-50"), (20, 1, b"1.6x5")):  # last_size, last
        f = lines[i].split(b",")
        f[field] = value
        lines[i] = b",".join(f)
    lines[30] = lines[30][:20]
    p = tmp_path / "NEPT_ticks_broken.csv"
    p.write_bytes(b"\n".join(lines))
    return p, 3


def test_a_raw_file_backtest_reports_the_rows_it_skipped(tmp_path: Path) -> None:
    broken, n_bad = _broken_sample(tmp_path)
    cfg = BacktestConfig.load(_cfg(tmp_path))
    m = run_backtest(replace(cfg, data={**cfg.data, "path": str(broken)}), report=False)
    d = m["data"]
    assert d["rows_quarantined"] == n_bad and d["rows_read"] == d["rows_used"] + n_bad
    assert all(str(broken) in p for p in d["first_problems"])
    res = runner.invoke(app, ["backtest", "-f", str(_cfg(tmp_path)), "--set", f"data.path={broken}",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    assert f"{n_bad} of" in res.output and "skipped as malformed" in res.output


def test_a_negative_number_is_quarantined_as_negative(tmp_path: Path) -> None:
    broken, _ = _broken_sample(tmp_path)
    _, rep = read_iqfeed_ticks(broken, NameTable())
    assert rep.balanced()
    assert rep.reasons["negative"] == 1 and rep.reasons["non_numeric"] == 1
    neg = next(p for p in rep.problems if p.reason == "negative")
    assert neg.line == 11 and neg.field == "last_size"


@pytest.mark.parametrize(("args", "says"), [
    (["catalog", "ls", "-c", "{tmp}/nocat"], "no catalog at"),
    (["catalog", "ls", "-c", "{tmp}", "--start", "foo"], "'foo' is not a date"),
    (["catalog", "show", "NEPT", "2021-3-1", "-c", "{tmp}"], "'2021-3-1' is not a date"),
    (["catalog", "show", "NEPT", "2021-03-01", "-c", "{tmp}", "--head", "-5"], "--head"),
    (["export", "NEPT", "--date", "2021-02-30", "-c", "{tmp}"], "'2021-02-30' is not a date"),
    (["export", "NEPT", "--date", "2021-03-01", "-c", "{tmp}", "--out", "{tmp}/f.txt"], "is a file"),
    (["signals", "2021-03-01", "-c", "{tmp}", "-o", "{tmp}"], "is a folder; give a file name"),
    (["signals", "20210301x", "-c", "{tmp}", "-o", "{tmp}/s.parquet"], "is not a date"),
    (["evaluate-signals", "--penny-share", "2"], "--penny-share"),
    (["sweep", "-f", "x.yaml", "-g", "cash=1,2", "--workers", "-1"], "--workers"),
    (["dashboard", "--attach", "redis://127.0.0.1:1/0", "--catalog", "{tmp}", "--date", "2021-03-01"],
     "--attach watches a running scanner; --catalog, --date only apply to a replay"),
])
def test_bad_command_values_are_usage_errors(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "f.txt").write_text("a file\n")
    res = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert res.exit_code == 2, res.output
    assert says in _text(res.output) and "Traceback" not in res.output
    assert not (tmp_path / "nocat").exists()  # reading never creates a catalog


def test_import_says_why_nothing_was_imported(tmp_path: Path) -> None:
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "msg.csv").write_text("34200.0,1,1,100,1000000,1\n")
    res = runner.invoke(app, ["import", "iqfeed", str(tmp_path / "emptydir"), "-c", str(tmp_path / "c")])
    assert "no files named like *.csv or *.txt in this folder" in _text(res.output)
    res = runner.invoke(app, ["import", "lobster", str(tmp_path / "msg.csv"), "-c", str(tmp_path / "c")])
    assert "skipped, not a lobster source by its name" in _text(res.output)


def test_an_unforeseen_error_is_one_line_not_a_traceback(monkeypatch, capsys) -> None:
    def boom() -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli_main, "app", boom)
    monkeypatch.delenv("QUANTEDGE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        cli_main.main()
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert "quantedge: RuntimeError: disk on fire" in out and "QUANTEDGE_DEBUG=1" in out
    monkeypatch.setenv("QUANTEDGE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli_main.main()


def test_a_bar_file_in_a_tick_import_is_named_not_quarantined(tmp_path: Path, shared_data: Path) -> None:
    """`import iqfeed` over the shared folder meets the real NEPT 1-second bar file: it is said to be
    bars (not 7,949 quarantined rows), and the tick file beside it imports as before."""
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    reps = import_paths(Catalog(tmp_path / "c"), "iqfeed", [shared_data / "iqfeed"])
    bars = next(r for r in reps if "bars" in Path(r.source).name)
    ticks = next(r for r in reps if "ticks" in Path(r.source).name)
    assert bars.rows_quarantined == 0 and bars.events_written == 0
    assert "interval-bar file" in bars.notes[0] and "synth from-bars" in bars.notes[0]
    assert ticks.rows_imported > 10_000 and ticks.events_written > 0


@pytest.fixture(scope="module")
def nept_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    root = tmp_path_factory.mktemp("live-cat") / "cat"
    import_paths(Catalog(root), "iqfeed", [IQFEED_SAMPLE])
    return root


@pytest.mark.parametrize(("args", "says"), [
    (["publish", "--start", "2021-13-01"], "'2021-13-01' is not a date"),
    (["publish", "--symbols", "ZZZZ"], "ZZZZ not in catalog"),
    (["publish", "--start", "2021-03-03", "--end", "2021-03-01"], "2021-03-01 is before --start 2021-03-03"),
    (["publish", "--start", "2020-01-01", "--end", "2020-01-02"], "has no data for any symbol"),
    (["publish", "--speed", "-1"], "--speed"),
    (["publish", "--slice-ms", "0"], "--slice-ms"),
    (["publish", "--group", "foo"], "'foo': choose partition or symbol"),
    (["scan", "--source", "catalog", "--mode", "foo"], "'foo': choose nbbo or l2"),
    (["scan", "--source", "catalog", "--sink", "foo"], "'foo': choose kafka or redis"),
    (["scan", "--source", "catalog", "--emit", "all"], "'all': choose triggers or scores"),
    (["scan", "--source", "catalog", "--signal-config", "{tmp}/missing.yaml"], "--signal-config"),
    (["scan", "--source", "catalog", "--features-parquet", "{tmp}"], "is a folder; give a file name"),
    (["scan", "--source", "catalog", "--metrics-port", "-5"], "--metrics-port"),
    (["simulate", "--dates", "2021-13-45", "--check"], "'2021-13-45' is not a date"),
    (["simulate", "--history-rate", "-1", "--check"], "--history-rate"),
])
def test_bad_stream_command_values_are_usage_errors(tmp_path: Path, nept_catalog: Path, args: list[str],
                                                    says: str) -> None:
    cat = ["--catalog", str(nept_catalog)]
    res = runner.invoke(app, [a.format(tmp=tmp_path) for a in args] + cat)
    assert res.exit_code == 2, res.output
    assert says in _text(res.output) and "Traceback" not in res.output
    res = runner.invoke(app, [args[0], "--catalog", str(tmp_path / "nocat")]
                        + (["--source", "catalog"] if args[0] == "scan" else []))
    assert res.exit_code == 2 and "no catalog at" in _text(res.output)
    assert not (tmp_path / "nocat").exists()


def test_scan_fails_when_redis_never_got_its_signals(nept_catalog: Path, monkeypatch) -> None:
    """Redis down for the whole run and the only sink: the signals are not silently lost."""
    monkeypatch.setenv("QUANTEDGE_REDIS_URL", "redis://127.0.0.1:1/0")
    res = runner.invoke(app, ["scan", "--source", "catalog", "-c", str(nept_catalog), "--sink", "redis",
                              "--emit", "scores"])
    assert res.exit_code == 1, res.output
    assert re.search(r"error: [\d,]+ signals were not written to Redis", _text(res.output))


def test_kafka_settings_log_masks_a_jaas_config() -> None:
    from quantedge.live.kafka_io import KafkaConfig

    cfg = KafkaConfig().with_settings({"sasl.jaas.config": "user=u password=secretjaas",
                                       "sasl.password": "p", "security.protocol": "SASL_SSL"})
    line = cfg.describe_settings()
    assert "secretjaas" not in line and "sasl.jaas.config=***" in line and "SASL_SSL" in line


def test_dashboard_on_a_port_in_use_says_so_before_any_banner(nept_catalog: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = runner.invoke(app, ["dashboard", "--catalog", str(nept_catalog), "--date", "2021-03-01",
                                  "--port", str(port)])
    assert res.exit_code == 2, res.output
    assert f"cannot listen on 127.0.0.1:{port}" in _text(res.output) and "dashboard: http" not in res.output


def test_an_unreachable_iqfeed_names_where_it_looked() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = runner.invoke(app, ["scan", "--source", "iqfeed", "--symbols", "NEPT", "--sink", "redis",
                              "--iqfeed-ports", f"level1={port}"])
    assert res.exit_code == 2, res.output
    assert f"cannot read IQFeed at 127.0.0.1 (--iqfeed-host), ports level1={port}" in _text(res.output)


def test_a_download_with_no_server_names_it_and_leaves_no_empty_catalog(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cat = tmp_path / "new_catalog"
    res = runner.invoke(app, ["download", "--symbols", "NEPT", "--start", "2021-03-01", "--end", "2021-03-01",
                              "--catalog", str(cat), "--lookup-port", str(port)])
    assert res.exit_code == 1, res.output
    assert f"NEPT 2021-03-01: FAILED nothing listens at 127.0.0.1:{port}" in _text(res.output)
    assert not cat.exists()  # a later command must not take an empty directory for a catalog
    kept = tmp_path / "kept"
    kept.mkdir()
    runner.invoke(app, ["download", "--symbols", "NEPT", "--start", "2021-03-01", "--end", "2021-03-01",
                        "--catalog", str(kept), "--lookup-port", str(port)])
    assert kept.is_dir()  # a directory the user made stays


def test_import_summary_is_not_cut_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    """Piped to a file or log, the import summary keeps whole file names, formats and reasons (Rich's
    80-column default cut them to 'NEPT_tick…'; a COLUMNS set by the user still wins)."""
    src = tmp_path / IQFEED_SAMPLE.name
    bad = "2021-03-01 15:59:59.000001,abc,100,1,1.5,1.6,9,E,11,01,0,1,\n"
    src.write_text(IQFEED_SAMPLE.read_text() + bad)
    res = runner.invoke(app, ["import", "iqfeed", str(src), "-c", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if IQFEED_SAMPLE.name in line and "│" in line)
    assert "iqfeed_ticks" in row and "non_numeric" in row and "…" not in res.output


def test_a_path_too_long_to_look_up_is_an_unreadable_source(tmp_path: Path) -> None:
    """A file name past the file system's limit is reported like a missing file (not an unexpected
    error), and its quarantine file gets a name the file system accepts."""
    too_long = tmp_path / ("y" * 300 + ".zip")
    res = CliRunner().invoke(app, ["import", "lobster", str(too_long), "-c", str(tmp_path / "cat")])
    assert res.exit_code == 1 and "nothing was imported" in res.output
    assert not isinstance(res.exception, OSError) and "unreadable_source" in res.output
    (q,) = (tmp_path / "cat" / "quarantine").iterdir()
    assert len(q.name) < 200 and q.read_text().count("unreadable_source") == 1
    res = CliRunner().invoke(app, ["research", "-c", str(tmp_path / ("x" * 300))])
    assert res.exit_code == 2 and "cannot read" in res.output


@pytest.mark.parametrize(("setting", "says"), [
    ("strategy.params.fast=abc", "strategy.params.fast: cannot use 'abc' as int"),
    ("strategy.params.nokey=3", "strategy.params: unknown parameter(s) ['nokey']"),
    ("strategy.paramz.fast=3", "strategy: unknown key(s) ['paramz']"),
    ("strategy.name=smacross", "strategy.name: 'smacross' unknown"),
    ("data.path=nope.csv", "data.path: nope.csv (looked in"),
    ("data.path=quantedge:samples/nope.csv", "data.path: quantedge:samples/nope.csv ("),
    ("data.path=shared:iqfeed/nope.csv", "the real-data folder is QUANTEDGE_SHARED_DATA when set"),
])
def test_a_bad_override_is_a_usage_error_naming_the_key(tmp_path: Path, setting: str, says: str) -> None:
    """Strategy parameters, unknown sections and missing data are checked when the config is read
    (exit 2 naming the key), not found by a failed run (exit 1) or silently ignored (a typo)."""
    res = CliRunner().invoke(app, ["backtest", "--config", str(_cfg(tmp_path)), "--set", setting,
                                   "-o", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.split())
    assert "--set" in res.output or setting.startswith("data.")
