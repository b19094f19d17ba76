"""Integrity checks: every check on hand-built symbol-days with exact counts, the quarantine
policy, the report formats, the ``quantedge check`` command, and real IQFeed / TAQ days."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from quantedge.catalog.importers import taq
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.integrity import (
    REASONS,
    CheckConfig,
    _session_codes,
    check_events,
    keep_in_order,
    render_table,
)
from quantedge.catalog.merge import sort_events
from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.cli.check_cmd import register
from quantedge.events import (
    ACTION_ADD,
    ACTION_CANCEL,
    COND_CANCEL_CORRECTION,
    COND_EXTENDED_HOURS,
    COND_ODD_LOT,
    COND_OUT_OF_SEQUENCE,
    COND_REGULAR,
    COND_TRADE_THROUGH_EXEMPT,
    EVENT_DTYPE,
    FLAG_FROM_TRADE,
    FLAG_LAST,
    KIND_ORDER,
    KIND_QUOTE,
    KIND_TRADE,
    empty,
)
from quantedge.timeutil import NS, et_dates, parse_et_datetimes

DAY = dt.date(2021, 3, 1)


def at(hms: str) -> int:
    """ns UTC of an ET wall time on DAY."""
    ns, ok = parse_et_datetimes(np.array([f"{DAY.isoformat()} {hms}"]))
    assert ok[0]
    return int(ns[0])


def build(rows: list[dict]) -> np.ndarray:
    """Events from row dicts; ``t`` is an ET time, ``px`` dollars; ts_event = ts_recv unless given."""
    ev = empty(len(rows))
    for i, r in enumerate(rows):
        ts = at(r["t"])
        ev["ts_recv"][i] = ts
        ev["ts_event"][i] = at(r["te"]) if "te" in r else ts
        ev["seq"][i] = r.get("seq", i)
        ev["kind"][i] = r.get("kind", KIND_TRADE)
        ev["price"][i] = round(r.get("px", 10.0) * 10_000)
        ev["size"][i] = r.get("sz", 100)
        ev["side"][i] = r.get("side", 0)
        ev["venue"][i] = r.get("venue", 5)
        ev["conditions"][i] = r.get("cond", COND_REGULAR)
        ev["flags"][i] = r.get("flags", FLAG_LAST)
        ev["action"][i] = r.get("action", 0)
    return ev


def quote(t: str, bid: float, ask: float, venue: int = 0, seq: int = 0, last: bool = True) -> list[dict]:
    """One NBBO update = a bid and an ask event forming one atomic group."""
    return [
        {"t": t, "kind": KIND_QUOTE, "side": 1, "px": bid, "sz": 100, "venue": venue, "seq": seq, "flags": 0},
        {"t": t, "kind": KIND_QUOTE, "side": -1, "px": ask, "sz": 100, "venue": venue, "seq": seq,
         "flags": FLAG_LAST if last else 0},
    ]


def trade(t: str, px: float, sz: int = 100, seq: int = 0, venue: int = 5, cond: int = COND_REGULAR) -> dict:
    return {"t": t, "kind": KIND_TRADE, "px": px, "sz": sz, "seq": seq, "venue": venue, "cond": cond}


# ---------------------------------------------------------------------------------------- clean


def test_clean_day_has_no_findings():
    rows = []
    for m in range(30, 60):  # a quote and a trade every minute 09:30..09:59
        rows += quote(f"09:{m:02d}:00", 10.00, 10.02, seq=2 * m)
        rows.append(trade(f"09:{m:02d}:30", 10.01, 200, seq=2 * m + 1))
    res = check_events(build(rows), symbol="XYZ", date=DAY, config=CheckConfig(gap_seconds=7 * 3600))
    c = res.counts
    assert res.n_bad == 0 and res.usable and res.good_events().shape[0] == len(rows)
    assert c["trades"] == 30 and c["quotes"] == 60
    for k in ("nbbo_crossed", "nbbo_locked", "duplicate_tick_id", "ts_event_backwards", "ts_recv_backwards",
              "odd_lot_trades", "trades_without_nbbo", "gaps"):
        assert c[k] == 0, k
    assert c["far_outside_nbbo"] == {"regular": 0, "extended_hours": 0, "out_of_sequence": 0,
                                     "special_price": 0}
    assert c["sessions"]["regular"] == {"trades": 30, "quotes": 60, "volume": 6000}
    assert res.problems() == []


# ----------------------------------------------------------------------------- value checks


def test_bad_values_are_quarantined_with_reason_and_field():
    rows = quote("10:00:00", 10.00, 10.02) + [
        trade("10:00:01", 0.0, seq=1),  # trade price 0
        trade("10:00:02", 10.01, 0, seq=2),  # trade size 0
        trade("10:00:03", -10.01, 100, seq=3),  # negative price (first reason wins)
        {"t": "10:00:04", "kind": KIND_QUOTE, "side": 1, "px": 10.0, "sz": -5},  # negative size
        {"t": "10:00:05", "kind": KIND_QUOTE, "side": 0, "px": 10.0, "sz": 100},  # quote without side
        {"t": "10:00:06", "kind": KIND_ORDER, "action": ACTION_ADD, "side": 1, "px": 0.0, "sz": 100},
        {"t": "10:00:07", "kind": KIND_ORDER, "action": ACTION_CANCEL, "side": 1, "px": 10.0, "sz": 0},
        {"t": "10:00:08", "kind": 9, "px": 10.0},  # unknown kind
        trade("10:00:09", 10.01, 100, seq=4),  # fine
    ]
    ev = build(rows)
    res = check_events(ev, symbol="XYZ", date=DAY)
    assert res.reasons() == {"trade_nonpositive_price": 1, "trade_nonpositive_size": 1, "negative_price": 1,
                             "negative_size": 1, "quote_bad_side": 1, "book_nonpositive_price": 1,
                             "book_nonpositive_size": 1, "unknown_kind": 1}
    assert res.n_bad == 8 and res.n_good == 3
    assert np.flatnonzero(res.bad).tolist() == list(range(2, 10))
    # the negative trade price counts under both checks but is quarantined once, as negative_price
    assert res.counts["negative_price"] == 1 and res.counts["trade_nonpositive_price"] == 2
    good = res.good_events()
    assert good.shape[0] == 3 and good["seq"][-1] == 4
    probs = res.problems()
    assert len(probs) == 8
    p = probs[0]
    assert (p.file, p.line, p.field, p.reason) == ("XYZ/2021-03-01", 3, "price", "trade_nonpositive_price")
    assert "seq 1 trade" in p.detail and "price=0.0000" in p.detail
    assert json.loads(p.raw)["seq"] == 1
    assert {q.field for q in probs} == {"price", "size", "side", "kind"}


def test_quote_zero_size_and_empty_side_are_flags_only():
    rows = [
        {"t": "10:00:00", "kind": KIND_QUOTE, "side": 1, "px": 10.0, "sz": 0, "flags": FLAG_FROM_TRADE},
        {"t": "10:00:00", "kind": KIND_QUOTE, "side": -1, "px": 10.02, "sz": 0,
         "flags": FLAG_FROM_TRADE | FLAG_LAST},
        {"t": "10:00:01", "kind": KIND_QUOTE, "side": 1, "px": 10.0, "sz": 0},
        {"t": "10:00:02", "kind": KIND_QUOTE, "side": -1, "px": 0.0, "sz": 0},  # ask side empty
        trade("10:00:03", 10.01),
    ]
    res = check_events(build(rows), symbol="XYZ", date=DAY)
    assert res.n_bad == 0
    assert res.counts["quote_size_unknown"] == 2
    assert res.counts["quote_zero_size"] == 1
    assert res.counts["quote_empty_side"] == 1
    assert res.counts["trades_without_nbbo"] == 1  # the ask side is empty when the trade prints


# ------------------------------------------------------------------------------ duplicates


def test_duplicate_trade_tick_ids_keep_the_first():
    rows = [
        trade("10:00:00", 10.0, seq=1, venue=5),
        trade("10:00:01", 10.0, seq=2, venue=5),
        trade("10:00:02", 10.0, seq=2, venue=5),  # repeat -> quarantined
        trade("10:00:03", 10.0, seq=2, venue=19),  # same id at another market center: distinct
        trade("10:00:04", 10.0, seq=1, venue=5, cond=COND_CANCEL_CORRECTION),  # correction reuses id
        trade("10:00:05", 10.0, seq=2, venue=5),  # second repeat
        {"t": "10:00:06", "kind": KIND_QUOTE, "side": 1, "px": 9.99, "seq": 2, "venue": 5},  # not a trade
    ]
    res = check_events(build(rows), symbol="XYZ", date=DAY)
    assert res.counts["duplicate_tick_id"] == 2
    assert np.flatnonzero(res.bad).tolist() == [2, 5]
    assert {p.field for p in res.problems()} == {"seq"}
    off = check_events(build(rows), symbol="XYZ", date=DAY, config=CheckConfig(unique_trade_ids=False))
    assert off.n_bad == 0


def test_prints_of_one_message_share_its_seq_and_are_not_duplicates():
    """A sweep (or an iceberg's fills) prints several times in one atomic group under the message's
    sequence number: distinct prints.  The same (venue, seq) in a later message is a repeat."""
    sweep = [dict(trade("10:00:00", 10.00 + 0.01 * k, seq=7), flags=0) for k in range(3)]
    sweep[-1]["flags"] = FLAG_LAST
    rows = [*sweep, trade("10:00:01", 10.02, seq=7)]  # the message's last print again, later: a repeat
    res = check_events(build(rows), symbol="XYZ", date=DAY)
    assert res.counts["duplicate_tick_id"] == 1
    assert np.flatnonzero(res.bad).tolist() == [3]


# ------------------------------------------------------------------------------ time order


def test_ts_event_backwards_is_flagged_not_quarantined():
    rows = [trade("10:00:00", 10.0, seq=1), trade("10:00:01", 10.0, seq=2),
            {**trade("10:00:02", 10.0, seq=3), "te": "09:59:58"},  # late exchange stamp: back 3 s
            trade("10:00:03", 10.0, seq=4)]
    res = check_events(build(rows), symbol="XYZ", date=DAY)
    assert res.counts["ts_event_backwards"] == 1
    assert res.counts["ts_event_max_back_ns"] == 3 * NS
    assert res.counts["ts_recv_backwards"] == 0 and res.n_bad == 0


def test_ts_recv_wild_row_costs_only_itself():
    rows = [trade(f"10:00:{s:02d}", 10.0, seq=s) for s in range(10)]
    ev = build(rows)
    ev["ts_recv"][3] = at("15:00:00")  # one wild stamp in the future
    ev["ts_recv"][7] = ev["ts_recv"][6] - 500_000  # 0.5 ms jitter: within the 1 ms tolerance
    res = check_events(ev, symbol="XYZ", date=DAY)
    assert res.counts["ts_recv_backwards"] == 2  # after the wild row, and the jitter
    assert res.counts["ts_recv_out_of_order"] == 1
    assert np.flatnonzero(res.bad).tolist() == [3]
    assert res.problems()[0].field == "ts_recv"
    strict = check_events(ev, symbol="XYZ", date=DAY, config=CheckConfig(ts_tolerance_ns=0))
    assert np.flatnonzero(strict.bad).tolist() == [3, 7]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=0, max_size=40))
def test_longest_nondecreasing_is_maximal_and_ordered(xs):
    ts = np.array(xs, np.int64)
    keep = keep_in_order(ts)
    kept = ts[keep]
    assert np.all(np.diff(kept) >= 0)
    best = [1] * len(xs)  # O(n^2) reference length
    for i in range(len(xs)):
        for j in range(i):
            if xs[j] <= xs[i]:
                best[i] = max(best[i], best[j] + 1)
    assert kept.size == (max(best) if xs else 0)
    if xs and not keep[0]:  # the first row is dropped only when no longest choice can keep it
        start = [1] * len(xs)  # longest non-decreasing run starting at i
        for i in range(len(xs) - 1, -1, -1):
            for j in range(i + 1, len(xs)):
                if xs[j] >= xs[i]:
                    start[i] = max(start[i], start[j] + 1)
        assert start[0] < kept.size


# ------------------------------------------------------------------------------------ NBBO


def test_crossed_and_locked_nbbo_from_venue_quotes():
    rows = (
        quote("10:00:00", 10.00, 10.02, venue=5)
        + quote("10:00:10", 10.03, 10.05, venue=11)  # 11's bid above 5's ask: crossed
        + quote("10:00:25", 10.00, 10.02, venue=11)  # uncrossed: crossed for 15 s
        + quote("10:00:30", 10.02, 10.04, venue=11)  # bid 10.02 = ask 10.02 at 5: locked
        + quote("10:00:40", 10.00, 10.01, venue=11)  # back to normal after 10 s locked
        + [trade("10:00:41", 10.005)]
        + quote("10:01:00", 10.00, 0.0, venue=5)  # venue 5 ask empty: NBBO 10.00 / 10.01 stays fine
        + quote("10:01:00", 10.05, 10.06, venue=19, last=False)  # group not finished: no evaluation
        + quote("10:01:00", 10.00, 10.06, venue=19)  # ...finished uncrossed
    )
    res = check_events(build(rows), symbol="XYZ", date=DAY)
    c = res.counts
    assert c["nbbo_crossed"] == 1 and c["nbbo_locked"] == 1
    assert c["nbbo_crossed_s"] == 15.0 and c["nbbo_locked_s"] == 10.0 and c["nbbo_longest_crossed_s"] == 15.0
    assert c["quote_empty_side"] == 1 and res.n_bad == 0


def test_crossed_until_end_of_day_counts_to_last_event():
    rows = quote("09:29:50", 10.00, 10.02, venue=5) + quote("09:29:50", 10.05, 10.06, venue=7) + [
        trade("09:30:30", 10.04)]
    res = check_events(build(rows), symbol="XYZ", date=DAY)
    assert res.counts["nbbo_crossed_s"] == 40.0 and res.counts["nbbo_crossed_regular_s"] == 30.0
    # each venue's pair is its own group (FLAG_LAST): venue 5 alone is fine, venue 7 then crosses
    assert res.counts["nbbo_crossed"] == 1
    assert res.counts["trades_without_nbbo"] == 1  # crossed NBBO cannot judge a trade


# ---------------------------------------------------------------------------- far outside


def test_trades_far_outside_nbbo_by_bucket():
    rows = [trade("07:59:00", 10.01, seq=1)]  # before any quote: no NBBO
    rows += quote("08:00:00", 10.00, 10.02, seq=2)
    rows += [
        trade("08:00:01", 11.00, seq=3, cond=COND_EXTENDED_HOURS),  # pre-market: extended bucket
        trade("10:00:01", 10.01, seq=4),  # inside
        trade("10:00:02", 10.03, seq=5),  # 1 cent outside: not far (5 spreads = 10 cents)
        trade("10:00:03", 10.13, seq=6),  # 11 cents above: > 5 spreads but < 5% -> not far
        trade("10:00:04", 11.00, seq=7),  # 98 cents above: far, regular
        trade("10:00:05", 9.00, seq=8),  # 1.00 below: far, regular
        trade("10:00:06", 11.00, seq=9, cond=COND_OUT_OF_SEQUENCE),  # far, out of sequence
        trade("10:00:07", 11.00, seq=10, cond=COND_TRADE_THROUGH_EXEMPT),  # far, 611 exempt: special
        trade("16:30:00", 9.00, seq=11),  # post-market by time: extended bucket
    ]
    res = check_events(build(rows), symbol="XYZ", date=DAY, config=CheckConfig(gap_seconds=1e6))
    assert res.counts["far_outside_nbbo"] == {"regular": 2, "extended_hours": 2, "out_of_sequence": 1,
                                              "special_price": 1}
    assert res.counts["trades_without_nbbo"] == 1
    tight = check_events(build(rows), symbol="XYZ", date=DAY, config=CheckConfig(outside_pct=0.0))
    assert tight.counts["far_outside_nbbo"]["regular"] == 3  # 10.13 now counts (spreads only)
    assert res.n_bad == 0


# ----------------------------------------------------------------------- gaps and sessions


def test_regular_session_gaps_include_open_and_close():
    rows = [trade("09:00:00", 10.0, seq=1),  # pre-market: does not end the opening gap
            trade("09:35:00", 10.0, seq=2),  # 300 s after the open: not more than 300
            trade("10:00:00", 10.0, seq=3),  # 1500 s gap
            trade("15:50:00", 10.0, seq=4),  # 21000 s gap (longest)
            trade("17:00:00", 10.0, seq=5)]  # 600 s from 15:50 to the close: gap
    res = check_events(build(rows), symbol="XYZ", date=DAY, config=CheckConfig(gap_seconds=300))
    assert res.counts["gaps"] == 3
    assert res.counts["longest_gap_s"] == 21000.0
    assert res.counts["longest_gap_start"] == "2021-03-01 10:00:00.000"


def test_sessions_and_odd_lots():
    rows = [trade("03:00:00", 10.0, 50, seq=1),  # overnight, odd
            trade("04:00:00", 10.0, 100, seq=2),  # pre (04:00 inclusive)
            trade("09:29:59", 10.0, 300, seq=3),  # pre
            trade("09:30:00", 10.0, 99, seq=4),  # regular, odd
            trade("15:59:59", 10.0, 200, seq=5, cond=COND_REGULAR | COND_ODD_LOT),  # regular, odd by flag
            trade("16:00:00", 10.0, 1000, seq=6),  # post
            trade("19:59:59", 10.0, 10, seq=7),  # post, odd
            trade("20:00:00", 10.0, 100, seq=8)]  # overnight
    rows += quote("12:00:00", 9.99, 10.01, seq=9)
    res = check_events(sort_events(build(rows)), symbol="XYZ", date=DAY)
    s = res.counts["sessions"]
    assert s["overnight"] == {"trades": 2, "quotes": 0, "volume": 150}
    assert s["pre"] == {"trades": 2, "quotes": 0, "volume": 400}
    assert s["regular"] == {"trades": 2, "quotes": 2, "volume": 299}
    assert s["post"] == {"trades": 2, "quotes": 0, "volume": 1010}
    assert res.counts["extended_hours_trades"] == 6
    assert res.counts["odd_lot_trades"] == 4 and res.counts["odd_lot_volume"] == 359
    # the per-day boundary fast path agrees with the per-row ET conversion (used for other days)
    ts = build(rows)["ts_event"]
    assert np.array_equal(_session_codes(ts, DAY), _session_codes(ts, DAY + dt.timedelta(days=1)))
    assert _session_codes(ts, DAY).tolist() == [0, 1, 1, 2, 2, 3, 3, 0, 2, 2]


# -------------------------------------------------------------------------- reports, fuzzing


def test_report_json_and_table():
    rows = quote("10:00:00", 10.00, 10.02) + [trade("10:00:01", 0.0, seq=1), trade("10:00:02", 10.01, seq=2)]
    res = check_events(build(rows), symbol="XYZ", date="2021-03-01")
    d = json.loads(json.dumps(res.to_dict()))
    assert d["symbol"] == "XYZ" and d["date"] == "2021-03-01"
    assert d["events"] == 4 and d["good"] == 3 and d["quarantined"] == 1
    assert d["quarantine_reasons"] == {"trade_nonpositive_price": 1}
    assert d["checks"]["trades"] == 1 and d["config"]["gap_seconds"] == 300.0
    console = Console(record=True, width=250)
    console.print(render_table([res]))
    text = console.export_text()
    assert "XYZ" in text and "2021-03-01" in text and "quarantined" in text


def test_empty_day():
    res = check_events(np.zeros(0, EVENT_DTYPE), symbol="XYZ", date=DAY)
    assert res.n_events == 0 and not res.usable and res.counts["gaps"] == 1
    assert res.counts["longest_gap_s"] == 6.5 * 3600


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_fuzz_never_crashes_and_accounts_for_every_row(data):
    n = data.draw(st.integers(0, 60))
    ev = empty(n)
    base = at("04:00:00")

    def col(strategy):
        return np.array(data.draw(st.lists(strategy, min_size=n, max_size=n)), np.int64)

    ev["ts_recv"] = base + col(st.integers(0, 16 * 3600 * NS))
    ev["ts_event"] = ev["ts_recv"] - col(st.integers(-NS, NS))
    ev["kind"] = col(st.integers(0, 7))
    ev["side"] = col(st.integers(-1, 1))
    ev["price"] = col(st.integers(-5, 200_000))
    ev["size"] = col(st.integers(-5, 500))
    ev["seq"] = col(st.integers(0, 10))
    ev["flags"] = col(st.sampled_from([0, FLAG_LAST, FLAG_FROM_TRADE]))
    ev["action"] = col(st.integers(0, 5))
    ordered = data.draw(st.booleans())
    if ordered:
        ev = sort_events(ev)
    res = check_events(ev, symbol="F", date=DAY)
    assert res.n_good + res.n_bad == n
    assert np.array_equal(res.bad, res.reason != 0)
    assert sum(res.reasons().values()) == res.n_bad
    assert len(res.problems()) == res.n_bad
    assert set(res.reasons()) <= {name for name, _ in REASONS.values()}
    good = res.good_events()
    assert good.shape[0] == res.n_good
    if ordered:
        assert res.counts["ts_recv_out_of_order"] == 0
    json.dumps(res.to_dict())


# ------------------------------------------------------------------------------ the command


WIDE = {"COLUMNS": "250"}


def cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def make_catalog(root) -> Catalog:
    cat = Catalog(root)
    sid = cat.symbols.id("XYZ")
    other = cat.symbols.id("ABC")
    rows = quote("10:00:00", 10.00, 10.02) + [trade("10:00:01", 0.0, seq=1), trade("10:00:02", 10.01, seq=2),
                                              trade("10:00:03", 10.01, seq=2)]
    ev = build(rows)
    ev["symbol"] = sid
    ev2 = build(quote("11:00:00", 20.00, 20.02) + [trade("11:00:01", 20.01, seq=1)])
    ev2["symbol"] = other
    cat.write(np.concatenate([ev, ev2]), source="test")
    return cat


def test_check_command_writes_table_json_and_quarantine(tmp_path):
    make_catalog(tmp_path / "cat")
    out_json = tmp_path / "report.json"
    out_q = tmp_path / "q.jsonl"
    r = CliRunner().invoke(cli_app(), ["check", "--catalog", str(tmp_path / "cat"), "--json", str(out_json),
                                       "--quarantine", str(out_q)], env=WIDE)
    assert r.exit_code == 0, r.output
    assert "XYZ" in r.output and "ABC" in r.output
    assert "2 symbol-days, 8 events: 6 good, 2 quarantined" in r.output
    rep = json.loads(out_json.read_text())
    by_sym = {d["symbol"]: d for d in rep["symbol_days"]}
    assert by_sym["XYZ"]["quarantine_reasons"] == {"trade_nonpositive_price": 1, "duplicate_tick_id": 1}
    assert by_sym["ABC"]["quarantined"] == 0 and rep["totals"]["good"] == 6 and rep["unreadable"] == []
    lines = [json.loads(x) for x in out_q.read_text().splitlines()]
    assert [(x["file"], x["field"], x["reason"]) for x in lines] == [
        ("XYZ/2021-03-01", "price", "trade_nonpositive_price"),
        ("XYZ/2021-03-01", "seq", "duplicate_tick_id")]
    only = CliRunner().invoke(cli_app(), ["check", "-c", str(tmp_path / "cat"), "--symbols", "ABC,NOPE",
                                          "--start", "2021-03-01", "--end", "20210301"], env=WIDE)
    assert only.exit_code == 0 and "1 symbol-days, 3 events" in only.output


def test_check_command_exit_codes_and_bad_options(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli_app(), ["check", "--catalog", str(tmp_path / "nope")], env=WIDE)
    assert missing.exit_code == 1 and "no catalog" in missing.output and not (tmp_path / "nope").exists()
    make_catalog(tmp_path / "cat")
    none = runner.invoke(cli_app(), ["check", "-c", str(tmp_path / "cat"), "--start", "2022-01-01"], env=WIDE)
    assert none.exit_code == 1 and "nothing usable" in none.output
    bad_date = runner.invoke(cli_app(), ["check", "-c", str(tmp_path / "cat"), "--start", "2021-13-45"])
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output
    assert "Traceback" not in bad_date.output
    neg = runner.invoke(cli_app(), ["check", "-c", str(tmp_path / "cat"), "--gap-seconds", "-1"])
    assert neg.exit_code == 2 and "must not be negative" in neg.output
    # a damaged part file is reported and the other days still count
    part = next((tmp_path / "cat" / "data").glob("kind=trade/date=*/symbol=ABC/*.parquet"))
    part.write_bytes(b"garbage")
    dam = runner.invoke(cli_app(), ["check", "-c", str(tmp_path / "cat")], env=WIDE)
    assert dam.exit_code == 0 and "could not read ABC 2021-03-01" in dam.output


# ------------------------------------------------------------------------------- real data


def split_days(events: np.ndarray) -> dict[dt.date, np.ndarray]:
    """One merge-ordered array per ET date, as the catalog would hand them out."""
    days = et_dates(events["ts_event"])
    out = {}
    for d in np.unique(days):
        date = dt.date(int(d) // 10000, int(d) // 100 % 100, int(d) % 100)
        out[date] = sort_events(events[days == d])
    return out


def test_real_iqfeed_nept_ticks(shared_data):
    """Every count checked against the raw tick lines, read here with plain Python."""
    path = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    raw = [ln.split(",") for ln in path.read_text().splitlines() if not ln.startswith("!ENDMSG!")]
    events, report = read_iqfeed_ticks(path, NameTable())
    assert report.rows_read == len(raw) == 32_627 and report.rows_quarantined == 0
    # independent model of the import: a bid/ask pair whenever the row's NBBO changes (file order)
    model: dict[str, list[tuple]] = {}
    prev = None
    for f in raw:
        ts, px, sz, bid, ask, tick = f[0], round(float(f[1]) * 1e4), int(f[2]), round(float(f[4]) * 1e4), \
            round(float(f[5]) * 1e4), int(f[6])
        evs = model.setdefault(ts[:10], [])
        if (bid, ask) != prev:
            evs += [(ts, tick, KIND_QUOTE, 1, bid, 0), (ts, tick, KIND_QUOTE, -1, ask, 0)]
            prev = (bid, ask)
        evs.append((ts, tick, KIND_TRADE, f[7], px, sz))
    cfg = CheckConfig()
    days = split_days(events)
    assert [d.isoformat() for d in days] == sorted(model)
    for day, ev in days.items():
        res = check_events(ev, symbol="NEPT", date=day, config=cfg)
        c = res.counts
        rows = [f for f in raw if f[0].startswith(day.isoformat())]
        good = [f for f in rows if int(f[2]) > 0]
        zero = len(rows) - len(good)
        assert zero == 4  # market-center official open/close reports (codes 39, 2E) carry no shares
        assert res.reasons() == {"trade_nonpositive_size": zero}
        assert res.n_events == len(model[day.isoformat()])
        assert c["duplicate_tick_id"] == 0  # tick ids repeat across market centers, never within one
        assert c["ts_event_backwards"] == 0 and c["ts_recv_backwards"] == 0
        hms = [f[0][11:] for f in good]
        ext = sum(1 for t in hms if t < "09:30" or t >= "16:00")
        assert c["extended_hours_trades"] == ext
        assert c["sessions"]["pre"]["trades"] == sum(1 for t in hms if "04:00" <= t < "09:30")
        assert c["sessions"]["regular"]["trades"] == len(good) - ext
        assert c["sessions"]["post"]["trades"] == sum(1 for t in hms if "16:00" <= t < "20:00")
        assert c["sessions"]["regular"]["volume"] == sum(int(f[2]) for f, t in zip(good, hms, strict=True)
                                                        if "09:30" <= t < "16:00")
        assert c["odd_lot_trades"] == sum(1 for f in good if int(f[2]) < 100 or "87" in
                                          [f[9][i:i + 2] for i in range(0, len(f[9]), 2)])
        # NBBO: walk the model in merge order (ts, tick id, kind); evaluate after each changed group
        seq_events = sorted(model[day.isoformat()], key=lambda e: (e[0], e[1], e[2]))
        bid = ask = 0
        dirty = False
        locked = crossed = 0
        far = 0
        for i, (ts, _tick, kind, side, px, sz) in enumerate(seq_events):
            if kind == KIND_QUOTE:
                bid, ask = (px, ask) if side == 1 else (bid, px)
                dirty = True
                continue
            if sz > 0 and 0 < bid <= ask and side == "C":  # basis C: regular-session last-sale print
                beyond = max(px - ask, bid - px, 0)
                ref = ask if px > ask else bid
                far += beyond > max(0.05 * ref, 5 * (ask - bid))
            if dirty:  # the trade ends the group (FLAG_LAST)
                locked += bid == ask
                crossed += bid > ask
                dirty = False
            assert i + 1 == len(seq_events) or seq_events[i + 1][0] >= ts
        assert c["nbbo_locked"] == locked and locked > 0
        assert c["nbbo_crossed"] == crossed == 0
        assert c["far_outside_nbbo"]["regular"] == far
        assert c["trades_without_nbbo"] == 0
        # gaps: regular-session stretches between event times, open and close included
        times = sorted({e[0] for e in seq_events if e[2] == KIND_QUOTE or e[5] > 0})
        inside = [t[11:] for t in times if "09:30" <= t[11:] < "16:00"]
        secs = [int(t[:2]) * 3600 + int(t[3:5]) * 60 + float(t[6:]) for t in inside]
        secs = [9.5 * 3600, *secs, 16 * 3600]
        diffs = np.diff(secs)
        assert c["gaps"] == int(np.sum(diffs > cfg.gap_seconds))
        assert c["longest_gap_s"] == pytest.approx(diffs.max(), abs=1e-6)
    assert sum(check_events(ev, symbol="NEPT", date=d).counts["trades"] for d, ev in days.items()) == 32_615


def test_real_taq_trades_and_quotes(shared_data):
    """TAQ: per-venue quotes build the NBBO; exact counts against the raw CSV read here."""
    import csv
    import gzip

    names = NameTable()
    trades, trep = taq.read_taq_trades(shared_data / "taq" / "sampleTDataRawMicroseconds.csv.gz", names)
    quotes, qrep = taq.read_taq_quotes(shared_data / "taq" / "sampleQDataRawMicroseconds.csv.gz", names)
    assert trep.balanced() and qrep.balanced()
    with gzip.open(shared_data / "taq" / "sampleTDataRawMicroseconds.csv.gz", "rt") as f:
        traw = list(csv.DictReader(f))
    days = split_days(np.concatenate([trades, quotes]))
    total_trades = 0
    for day, ev in days.items():
        res = check_events(ev, symbol="XXX", date=day)
        c = res.counts
        total_trades += c["trades"] + res.reasons().get("duplicate_tick_id", 0)
        rows = [r for r in traw if res.where.endswith(r["DT"][:10]) or r["DT"].startswith(day.isoformat())]
        seqs = [(r["EX"], r["TR_SEQNUM"]) for r in rows if r["TR_CORR"] in ("", "0", "00")]
        assert c["duplicate_tick_id"] == len(seqs) - len(set(seqs))
        assert c["quotes"] == int(np.count_nonzero(ev["kind"] == KIND_QUOTE))
        assert c["nbbo_crossed"] >= 0 and c["nbbo_locked"] >= 0
        assert c["trades_without_nbbo"] < c["trades"]  # the quote file covers the trading day
        assert sum(s["trades"] for s in c["sessions"].values()) == c["trades"]
    assert total_trades == trep.rows_imported
