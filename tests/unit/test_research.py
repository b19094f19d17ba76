"""Research tools: the daily table on the real NEPT days, the tracker's streaks, and the pre-gap
analyzer against simulated days whose overnight gaps follow planted accumulation (ground truth)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from quantedge.cli.main import app
from quantedge.research.daily import SIGNALS, DailyTable, daily_table
from quantedge.research.pregap import gap_pairs, summarize
from quantedge.research.tracker import TrackerParams, track

runner = CliRunner()


def _table(rows: list[dict]) -> DailyTable:
    """A daily table from a few hand-written rows (every other column zero)."""
    base = {"events": 1, "trades": 1, "volume": 100.0, "vwap": 1.0, "off_exchange_share": 0.5, "open": 1.0,
            "high": 1.0, "low": 1.0, "close": 1.0, "return": 0.0, "close_location": 0.5, "scored_s": 10,
            "composite_last_hour_max": 0.0}
    for s in SIGNALS:
        base |= {f"{s}_max": 0.0, f"{s}_triggers": 0, f"{s}_active_s": 0}
    full = [base | r for r in rows]
    cols = {k: np.array([r[k] for r in full], dtype=object if k in ("date", "symbol") else None)
            for k in ["date", "symbol", *base]}
    return DailyTable(cols, "nbbo", 0.6)


def test_streaks_count_the_trailing_accumulation_days() -> None:
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    rows = []
    for d, a, b in zip(days, [1, 0, 1, 1], [0, 0, 0, 400], strict=True):
        rows.append({"date": d, "symbol": "AAA", "composite_triggers": a})
        rows.append({"date": d, "symbol": "BBB", "composite_active_s": b, "return": 0.10})
    ranked = track(_table(rows), TrackerParams(min_active_s=300, stealth_move=0.03))
    a, b = (next(r for r in ranked if r["symbol"] == s) for s in ("AAA", "BBB"))
    assert (a["streak"], a["accumulation_days"], a["stealth_days"], a["composite_triggers"]) == (2, 3, 3, 3)
    # BBB moved 10 % on its accumulation day: not stealthy
    assert (b["streak"], b["accumulation_days"], b["stealth_days"]) == (1, 1, 0)
    assert [r["symbol"] for r in ranked] == ["AAA", "BBB"] and a["rank"] == 1
    with pytest.raises(ValueError, match="stealth_move"):
        TrackerParams(stealth_move=1.5)


def test_gap_pairs_use_consecutive_catalog_days_and_classes() -> None:
    rows = [
        {"date": "2024-01-02", "symbol": "AAA", "close": 2.00, "composite_triggers": 1},
        {"date": "2024-01-03", "symbol": "AAA", "open": 2.20, "close": 3.00},  # +10 %: gap up
        {"date": "2024-01-04", "symbol": "AAA", "open": 2.85},  # -5 % exactly (2.85 / 3 - 1 = -0.04999...)
        {"date": "2024-01-02", "symbol": "BBB", "close": 5.00},
        {"date": "2024-01-04", "symbol": "BBB", "open": 6.00},  # 01-03 missing: no pair
    ]
    pairs = gap_pairs(_table(rows), gap=0.05)
    assert [(p["symbol"], p["date"], p["class"]) for p in pairs] == [
        ("AAA", "2024-01-02", "gap_up"), ("AAA", "2024-01-03", "gap_down")]
    assert pairs[0]["gap_pct"] == pytest.approx(10.0) and pairs[0]["accumulation_day"]
    s = summarize(pairs)
    assert s["counts"] == {"gap_up": 1, "flat": 0, "gap_down": 1} and s["base_gap_up_rate"] == 0.5
    lift = next(x for x in s["lifts"] if x["feature"] == "composite_triggered")
    assert (lift["gap_up_rate_with"], lift["gap_up_rate_without"], lift["lift"]) == (1.0, 0.0, 2.0)
    with pytest.raises(ValueError, match="gap"):
        gap_pairs(_table(rows), gap=0.0)


@pytest.mark.realdata
def test_real_nept_days_open_and_close_at_the_auctions(shared_data: Path, tmp_path: Path) -> None:
    """The real NEPT 2021-03-01..03 IQFeed days: open = the Nasdaq opening cross (code 8A42, e.g.
    45,291 shares at 1.60 at 09:30:01.57 on 03-01, after an ISO print at 1.63), close = the closing
    cross; high and low over the regular session equal those of the day's 1-second bar file."""
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    ticks = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    import_paths(Catalog(tmp_path / "c"), "iqfeed", [ticks])
    t = daily_table(tmp_path / "c", dt.date(2021, 3, 1), dt.date(2021, 3, 3))
    assert t.mode == "nbbo" and list(t["date"]) == ["2021-03-01", "2021-03-02", "2021-03-03"]
    assert list(t["open"]) == [1.60, 1.62, 1.63]
    assert list(t["close"]) == [1.59, 1.60, 1.51]
    assert list(t["high"]) == [1.64, 1.72, 1.63] and list(t["low"]) == [1.54, 1.59, 1.50]
    assert (t["scored_s"] > 4000).all() and (0.5 < t["off_exchange_share"]).all()
    assert (t["composite_triggers"] == 0).all()  # the calibrated composite stays quiet on these days
    assert int(t["events"].sum()) == 33_989


@pytest.mark.slow
def test_pregap_finds_the_planted_accumulation_before_gaps(tmp_path: Path) -> None:
    """Simulated days: half the symbol-days plant accumulation, and the day after one opens 4-8 %
    higher (--gap 0.08).  Every pair the analyzer calls a gap up follows a planted accumulation day,
    each planted day with a gap of at least 5 % is a gap up, and the signals flag the day before
    most gaps."""
    import pyarrow.parquet as pq

    from quantedge.synth.generate import generate_to_catalog

    cat = tmp_path / "sim"
    generate_to_catalog(cat, 4, 3, dt.date(2024, 1, 2), seed=3, penny_share=0.5, workers=1, gap=0.08,
                        accumulation_share=0.5)
    labels = pq.read_table(cat / "labels" / "episodes.parquet").to_pylist()
    planted: dict[tuple[str, str], float] = {}
    for r in labels:
        if r["kind"] != "dumping":
            key = (r["symbol"], r["date"])
            planted[key] = max(planted.get(key, 0.0), r["intensity"])
    assert 0 < len(planted) < 12  # some symbol-days with, some without

    res = runner.invoke(app, ["research", "-c", str(cat), "-o", str(tmp_path / "out"), "--gap", "0.05"])
    assert res.exit_code == 0, res.output
    import csv

    pairs = list(csv.DictReader((tmp_path / "out" / "pregap_pairs.csv").open()))
    assert len(pairs) == 8  # 4 symbols x 2 consecutive-day pairs
    for p in pairs:
        x = planted.get((p["symbol"], p["date"]))
        if p["class"] == "gap_up":
            assert x is not None
        if x is None:
            assert abs(float(p["gap_pct"])) < 2.0, p
        elif 0.08 * (0.5 + 0.5 * x) >= 0.052:
            assert p["class"] == "gap_up", p
    ups = [p for p in pairs if p["class"] == "gap_up"]
    assert ups and sum(p["accumulation_day"] == "True" for p in ups) >= 0.75 * len(ups)
    # the tracker's accumulation days against the planted ones (all 12 symbol-days)
    days = list(csv.DictReader((tmp_path / "out" / "daily.csv").open()))
    flagged = {(d["symbol"], d["date"]) for d in days
               if int(d["composite_triggers"]) > 0 or int(d["composite_active_s"]) >= 300}
    hit = len(flagged & planted.keys())
    assert len(days) == 12 and hit >= 0.8 * len(planted) and hit >= 0.6 * len(flagged)
    for f in ("pregap.md", "pregap.png", "daily.csv", "tracker.md", "tracker.csv", "tracker.png"):
        assert (tmp_path / "out" / f).stat().st_size > 100


def test_research_usage_errors_name_the_option(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    cases = [
        (["research", "-c", str(tmp_path / "nope")], "no catalog"),
        (["research", "-c", str(tmp_path / "c"), "--mode", "l9"], "--mode"),
        (["research", "-c", str(tmp_path / "c")], "holds no data"),
        (["research", "-c", str(tmp_path / "c"), "--gap", "1.5"], "--gap"),
        (["research", "--stealth-move", "2"], "stealth_move"),
    ]
    for args, text in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert text in " ".join(res.output.replace("│", " ").split()), (args, res.output)


def _day_catalog(root: Path, prints: list[tuple[str, float, int]]) -> Path:
    """A catalog of one symbol-day of prints (ET time, price, conditions) with a quote before them."""
    from quantedge import events as ev
    from quantedge.catalog.store import Catalog
    from quantedge.timeutil import et_midnight_ns

    cat = Catalog(root)
    sid = cat.symbols.id("XYZ")
    t0 = et_midnight_ns(dt.date(2024, 1, 2))
    e = ev.empty(len(prints) + 2)
    for i, (side, px) in enumerate(((ev.SIDE_BID, 0.99), (ev.SIDE_ASK, 1.01))):
        e[i]["ts_event"] = e[i]["ts_recv"] = t0 + 9 * 3600 * 10**9
        e[i]["kind"], e[i]["side"], e[i]["size"] = ev.KIND_QUOTE, side, 100
        e[i]["price"] = ev.price_to_fixed(px)
    for i, (hms, px, cond) in enumerate(prints, 2):
        h, m, s = (float(x) for x in hms.split(":"))
        e[i]["ts_event"] = e[i]["ts_recv"] = t0 + int((h * 3600 + m * 60 + s) * 1e9)
        e[i]["kind"], e[i]["size"], e[i]["conditions"] = ev.KIND_TRADE, 100, cond
        e[i]["price"] = ev.price_to_fixed(px)
    e["symbol"], e["seq"] = sid, np.arange(len(e))
    e["flags"] = ev.FLAG_LAST
    cat.write(e, source="t")
    return root


def test_open_and_close_are_the_auctions_and_lie_within_the_range(tmp_path: Path) -> None:
    """The open is an opening-coded print of the first ten minutes only (a reopening at 11:00 is
    not the open); the closing cross after 16:00 is the close and counts in high, low and volume."""
    from quantedge import events as ev

    root = _day_catalog(tmp_path / "c", [
        ("09:30:05", 5.00, ev.COND_REGULAR),
        ("11:00:00", 7.00, ev.COND_OPENING | ev.COND_CROSS),  # reopening after a halt
        ("12:00:00", 5.50, ev.COND_REGULAR),
        ("16:00:00.4", 6.00, ev.COND_CLOSING | ev.COND_CROSS),
        ("16:30:00", 9.00, ev.COND_REGULAR),  # after hours: not in the day's prices
    ])
    t = daily_table(root, dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    assert (t["open"][0], t["close"][0], t["high"][0], t["low"][0]) == (5.00, 6.00, 7.00, 5.00)
    assert t["volume"][0] == 400 and 0 <= t["close_location"][0] <= 1
    assert t["return"][0] == pytest.approx(0.2)


def test_each_symbol_runs_through_the_book_its_data_supports(tmp_path: Path) -> None:
    """A catalog of order-book symbols (LOBSTER) and quote symbols (IQFeed ticks): --mode auto runs
    one pipeline per book and merges the tables; --mode l3 on quote data is an error (its signals
    would all be zero), and so is a symbol with no data."""
    from quantedge.backtest.pipeline import IQFEED_SAMPLE, LOBSTER_SAMPLE
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    cat = Catalog(tmp_path / "c")
    import_paths(cat, "lobster", [LOBSTER_SAMPLE])
    import_paths(cat, "iqfeed", [IQFEED_SAMPLE])
    c = str(tmp_path / "c")
    res = runner.invoke(app, ["research", "-c", c, "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    t = daily_table(c, dt.date(2012, 6, 21), dt.date(2021, 3, 1))
    assert t.mode == "l3+nbbo" and list(t["symbol"]) == ["AMZN", "NEPT"]
    assert (t["scored_s"] > 0).all() and (t["open"] > 0).all()
    alone = daily_table(c, dt.date(2021, 3, 1), dt.date(2021, 3, 1), ["NEPT"])
    same = [k in ("date", "symbol") or np.array_equal(alone[k], t[k][1:], equal_nan=True) for k in t.columns]
    assert all(same)  # NEPT's row is what a run of NEPT alone gives
    res = runner.invoke(app, ["research", "-c", c, "-s", "NEPT", "--mode", "l3", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--mode l3" in res.output, res.output
    res = runner.invoke(app, ["research", "-c", c, "-s", "ZZZZ", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "ZZZZ" in res.output, res.output
