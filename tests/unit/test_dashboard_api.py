"""Dashboard session and API on the bundled real LOBSTER AMZN excerpt (no browser).

Checks that the replay's state does not depend on how playback cuts the stream, that memory stays
bounded, and that every bad request is a clear 4xx (HTTP) or error message (WebSocket), never a crash.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.sync.client import connect

from quantedge.dashboard.app import build_config, load_signals, serve_in_thread
from quantedge.dashboard.session import DetectorStage, ReplaySession, SessionError


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory):
    return build_config(output=tmp_path_factory.mktemp("dash-unit"))


@pytest.fixture(scope="module")
def server(cfg):
    srv = serve_in_thread(ReplaySession(cfg, signal_stage=DetectorStage()))
    yield srv
    srv.stop()


def _req(url: str, body: bytes | dict | None = None) -> tuple[int, dict | bytes]:
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw) if r.headers.get_content_type() == "application/json" else raw
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_state_does_not_depend_on_playback_cuts(cfg) -> None:
    a = ReplaySession(cfg, signal_stage=DetectorStage())
    a.seek(a.info.t1)
    b = ReplaySession(cfg, signal_stage=DetectorStage())
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.integers(b.info.t0, b.info.t1, 150))
    for t in cuts:
        b.advance_to(int(t))
    b.advance_to(b.info.t1)
    assert a.finished and b.finished
    assert np.array_equal(a.pipeline.features.F, b.pipeline.features.F, equal_nan=True)
    assert a.ladder(0) == b.ladder(0)
    assert np.array_equal(a.signals, b.signals)
    assert a.account() == b.account()
    assert a.summary()["metrics"] == b.summary()["metrics"]


def test_seek_back_rebuilds_the_same_state(cfg) -> None:
    s = ReplaySession(cfg, signal_stage=DetectorStage())
    s.seek("09:33:00")
    ladder, acct, f = s.ladder(0), s.account(), s.pipeline.features.F.copy()
    s.seek("09:35:00")
    s.seek("09:33:00")
    assert s.ladder(0) == ladder and s.account() == acct
    assert np.array_equal(s.pipeline.features.F, f, equal_nan=True)
    assert s.version == 1


def test_memory_is_bounded(cfg) -> None:
    s = ReplaySession(cfg, history_points=64, tape_len=20, heat_cols=10)
    s.watch(0)
    cuts = np.linspace(s.info.t0, s.info.t1, 400).astype(np.int64)
    for t in cuts:
        s.advance_to(int(t))
    t, _ = s.hist.get(0)
    assert 32 <= t.shape[0] <= 64
    assert t[0] <= s.info.t0 + (s.info.t1 - s.info.t0) // 8  # still covers the start of the day
    assert np.all(np.diff(t) >= 0)
    rows, total = s.tape.get(0)
    assert rows.shape[0] == 20 and total > 20
    assert len(s.heat[0]) == 10


def test_bad_session_requests_are_clear(cfg) -> None:
    s = ReplaySession(cfg)
    with pytest.raises(SessionError, match="unknown symbol 'ZZZZ'"):
        s.symbol_id("ZZZZ")
    with pytest.raises(SessionError, match="seek past the end: the day ends at 09:35:40"):
        s.seek("12:00")
    with pytest.raises(SessionError, match="cannot read 'noon' as a time"):
        s.seek("noon")
    with pytest.raises(SessionError, match="speed must be a number between"):
        s.set_speed(0)
    assert s.parse_time("50%") == s.info.t0 + (s.info.t1 - s.info.t0) // 2


def test_api_status_codes_and_messages(server) -> None:
    u = server.url
    st, meta = _req(u + "/api/session")
    assert st == 200 and meta["symbols"] == ["AMZN"] and meta["book"] == "l3"
    st, body = _req(u + "/api/symbol/NOPE")
    assert st == 404 and "unknown symbol 'NOPE'" in body["error"]
    st, body = _req(u + "/api/control", b"{oops")
    assert st == 400 and "JSON" in body["error"]
    st, body = _req(u + "/api/control", {"action": "seek", "to": "23:00"})
    assert st == 400 and "seek past the end" in body["error"]
    st, body = _req(u + "/api/control", {"action": "seek"})
    assert st == 400 and "seek needs" in body["error"]
    st, body = _req(u + "/api/control", {"action": "play", "speed": "NaN"})
    assert st == 400 and "finite" in body["error"]
    st, body = _req(u + "/api/control", {"action": "step", "events": "many"})
    assert st == 400 and "integer" in body["error"]
    st, body = _req(u + "/api/signals?symbol=NOPE")
    assert st == 404
    st, body = _req(u + "/api/nothing-here")
    assert st == 404 and "no such page" in body["error"]
    st, body = _req(u + "/api/control", {"action": "seek", "to": "09:32:00"})
    assert st == 200 and body["t_et"].startswith("09:32:00")
    st, body = _req(u + "/api/scanner?sort=volume")
    assert st == 200 and body["rows"][0]["symbol"] == "AMZN" and body["rows"][0]["volume"] > 0
    st, body = _req(u + "/api/report")
    assert st == 409 and "played to the end" in body["error"]


def test_websocket_snapshot_then_deltas_and_errors(server) -> None:
    u = server.url.replace("http", "ws") + "/ws"
    _req(server.url + "/api/control", {"action": "seek", "to": "09:31:00"})
    with connect(u, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        ws.send("not json")
        ws.send(json.dumps({"op": "watch", "symbol": "NOPE"}))
        ws.send(json.dumps({"op": "watch", "symbol": "AMZN"}))
        _req(server.url + "/api/control", {"action": "play", "speed": 200})
        seen: dict[str, list] = {}
        for _ in range(200):
            m = json.loads(ws.recv(timeout=10))
            seen.setdefault(m["type"], []).append(m)
            if len(seen.get("delta", [])) >= 30:
                break
        _req(server.url + "/api/control", {"action": "pause"})
    errors = [m["message"] for m in seen["error"]]
    assert any("JSON objects" in e for e in errors) and any("unknown symbol 'NOPE'" in e for e in errors)
    snap = seen["snapshot"][0]
    assert snap["symbol"] == "AMZN" and snap["ladder"]["bid"] and snap["tape"]
    assert any(d["tape"] for d in seen["delta"])  # prints arrive as increments, not whole tapes
    assert all(len(d["tape"]) < len(snap["tape"]) + 300 for d in seen["delta"])
    assert seen["scanner"][0]["rows"][0]["symbol"] == "AMZN"


def test_report_after_the_end(server) -> None:
    st, _ = _req(server.url + "/api/control", {"action": "seek", "to": "100%"})
    assert st == 200
    st, html = _req(server.url + "/api/report")
    assert st == 200 and b"<html" in html[:2000].lower()
    st, summ = _req(server.url + "/api/summary")
    assert summ["final"] and summ["metrics"]["final_equity"] == pytest.approx(summ["account"]["equity"])


def test_signal_log_file_errors_name_row_and_field(tmp_path: Path) -> None:
    p = tmp_path / "sig.csv"
    p.write_text(
        "ts_recv,symbol,signal,score\n1340285400000000000,AMZN,creep,0.5\n1340285400000000001,MSFT,creep,0.5\n"
    )
    with pytest.raises(ValueError, match=r"row 2: field symbol: 'MSFT'"):
        load_signals(p, ["AMZN"])
    p.write_text("ts_recv,symbol,signal,score\n1340285400000000000,AMZN,jump,0.5\n")
    with pytest.raises(ValueError, match=r"row 1: field signal: unknown signal 'jump'"):
        load_signals(p, ["AMZN"])
    p.write_text("ts_recv,symbol,signal,score\n1340285400000000000,AMZN,creep,0.5\n")
    sig = load_signals(p, ["AMZN"])
    assert sig.shape == (1,) and sig["signal"][0] == 2 and sig["score"][0] == pytest.approx(0.5)


def test_attach_to_a_scanners_redis_state() -> None:
    """Attach mode on the real Redis the streaming services start (skips when it is not running)."""
    import os
    import uuid

    import redis

    from quantedge.dashboard.attach import AttachSession
    from quantedge.live.redis_state import DEFAULT_REDIS_URL, RedisStateConfig, RedisStateSink

    url = os.environ.get("QUANTEDGE_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {url} (start it with scripts/services.sh start redis)")
    prefix = f"qe-dash-{uuid.uuid4().hex[:8]}"
    sink = RedisStateSink(RedisStateConfig(url=url, prefix=prefix))
    try:
        sink.update_state(
            "NEPT",
            {
                "mid": 1.505,
                "spread_bps": 66.4,
                "volume_30s": 1200.0,
                "last_signal": "creep",
                "last_signal_ts": 1614607200000000000,
                "last_signal_score": 0.8,
            },
        )
        sink.add_signal(
            "sig-1",
            {
                "symbol": "NEPT",
                "signal": "creep",
                "score": 0.8,
                "triggered": 1,
                "ts_event": 1614607200000000000,
                "ts_recv": 1614607200000000000,
            },
        )
        sink.flush(force=True)
        s = AttachSession(url, prefix=prefix)
        s.tick(0.04, 0)
        rows = s.scanner_rows()
        assert [r["symbol"] for r in rows] == ["NEPT"]
        assert rows[0]["last"] == pytest.approx(1.505) and rows[0]["scores"]["creep"] == pytest.approx(0.8)
        assert rows[0]["last_signal"]["name"] == "creep" and rows[0]["last_signal"]["t_et"] == "09:00:00.000"
        assert s.signal_log(s.symbol_id("NEPT"))[0]["name"] == "creep"
        srv = serve_in_thread(s)
        try:
            st, body = _req(srv.url + "/api/control", {"action": "seek", "to": "10:00"})
            assert st == 400 and "live scanner" in body["error"]
            st, body = _req(srv.url + "/api/scanner")
            assert st == 200 and body["rows"][0]["symbol"] == "NEPT"
        finally:
            srv.stop()
    finally:
        r = redis.Redis.from_url(url)
        for k in r.scan_iter(match=f"{prefix}:*"):
            r.delete(k)
        sink.close()


def test_pnl_equals_quantedge_backtest(cfg, tmp_path: Path) -> None:
    """Without detectors the session is exactly `quantedge backtest` on the same config."""
    from dataclasses import replace

    from quantedge.backtest.runner import run_backtest

    s = ReplaySession(cfg)
    for t in np.linspace(s.info.t0, s.info.t1, 37).astype(np.int64):
        s.advance_to(int(t))
    s.advance_to(s.info.t1)  # float linspace can round the last point below t1
    m = run_backtest(replace(cfg, output=tmp_path / "bt"), report=False)
    summ = s.summary()
    assert summ["final"]
    assert summ["account"]["equity"] == pytest.approx(m["final_equity"], abs=1e-9)
    assert summ["metrics"]["fills"] == m["fills"] and summ["metrics"]["trades"] == m["trades"]


def _accumulation_cfg(tmp_path: Path):
    """The accumulation config with a more sensitive composite trigger (on_score 0.4, 20 s): at the
    calibrated defaults the composite never triggers on the short NEPT excerpt, and these tests
    need trades to compare (they check paths agree, not detection quality)."""
    from quantedge.backtest.config import BacktestConfig

    repo = Path(__file__).resolve().parents[2]
    sens = tmp_path / "sensitive_signals.yaml"
    sens.write_text("signals:\n  composite: {on_score: 0.4, persist_s: 20}\n")
    return BacktestConfig.load(
        repo / "config" / "backtest_accumulation.yaml",
        {"output": str(tmp_path / "d"), "signals.config": str(sens)},
    )


def test_accumulation_with_the_backtests_signal_stage(tmp_path: Path) -> None:
    """A config with a ``signals`` section: the session runs the backtest's own signal stage, so
    the accumulation strategy's P&L and the signals shown equal `quantedge backtest`'s (the NEPT
    excerpt fits one slice, as it fits one backtest batch)."""
    from dataclasses import replace

    from quantedge.backtest.runner import run_backtest

    cfg = _accumulation_cfg(tmp_path)
    s = ReplaySession(cfg, signal_stage=DetectorStage())
    s.seek(s.info.t1)
    m = run_backtest(replace(cfg, output=tmp_path / "bt"), report=False)
    assert s.summary()["account"]["equity"] == pytest.approx(m["final_equity"], abs=1e-9)
    assert s.summary()["metrics"]["fills"] == m["fills"]
    triggers = sum(m["signals"]["triggers"].values())
    assert s.signals.shape[0] == triggers and triggers > 0


def test_accumulation_pnl_independent_of_playback_cuts(tmp_path: Path) -> None:
    """23 playback slices and one seek give the same signals and account (the engine's batch-cut rule)."""
    cfg = _accumulation_cfg(tmp_path)
    a = ReplaySession(cfg)
    a.seek(a.info.t1)
    b = ReplaySession(cfg)
    for t in np.linspace(b.info.t0, b.info.t1, 23).astype(np.int64):
        b.advance_to(int(t))
    b.advance_to(b.info.t1)
    assert np.array_equal(a.signals, b.signals)
    assert a.account() == b.account()
