"""The dashboard in headless Chromium against a replay of real LOBSTER days (AMZN and AAPL, 2012-06-21).

Each test checks what a person would: the scanner fills, the ladder equals the book kernels run
directly on the same events, signal markers sit where the signal log says, pause and seek work,
the P&L equals an independent backtest of the same day, and bad requests get clear messages.
Screenshots land in out/test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from quantedge import events as ev

pytestmark = pytest.mark.realdata


def _post(url: str, body) -> tuple[int, dict]:  # noqa: ANN001
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        # 240 s: the first seek of a fresh checkout compiles the feature kernels in the server while the
        # rest of the suite loads both cores
        with urllib.request.urlopen(req, timeout=240) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _open(browser, dash, symbol: str | None = None) -> None:  # noqa: ANN001
    browser.goto(dash.url + "/" + (f"#symbol={symbol}" if symbol else ""))
    browser.wait("window.__qe && window.__qe.scanner.size > 0")


def _seek_ui(browser, to: str) -> None:  # noqa: ANN001
    browser.eval(f"document.getElementById('seek-input').value = {json.dumps(to)}")
    browser.click("#seek-go")


def _kernel_top(lobster_catalog, dash, symbol: str, t: int) -> tuple[float, float]:  # noqa: ANN001
    """Best bid/ask from the L3 book kernels run directly on the catalog's events up to t."""
    from quantedge.book.l3 import L3Book, l3_step
    from quantedge.book.state import B_WINDOW
    from quantedge.book.verify import lobster_truth
    from quantedge.catalog.store import Catalog

    cat = Catalog(lobster_catalog)
    e = cat.read(symbol, "2012-06-21").copy()
    truth = cat.read_groundtruth(
        "lobster", symbol, "2012-06-21", file="orderbook_5" if symbol == "AMZN" else "orderbook_1"
    )
    levels = truth.num_columns // 4
    row = np.array(
        [
            [truth.column(f"{c}_{k}")[0].as_py() for c in ("ask_px", "ask_sz", "bid_px", "bid_sz")]
            for k in range(1, levels + 1)
        ],
        dtype=np.int64,
    ).reshape(1, -1)
    seed = lobster_truth(row)[0]
    e["symbol"] = 0
    e = e[(e["seq"] >= 2) & (e["ts_recv"] <= t)]
    book = L3Book.allocate(1, capacity=256, max_orders=1 << 16)
    book.bk[0, B_WINDOW] = levels
    for si in range(2):
        k = int(np.count_nonzero(seed[si, :, 0]))
        book.seed_side(0, si, seed[si, :k, 0], seed[si, :k, 1], complete=k < levels, aux_is_size=True)
    l3_step(book.lv, book.sd, book.bk, book.ot, book.otn, e)
    return book.lv[0, 0, 0, 0] / ev.PRICE_SCALE, book.lv[0, 1, 0, 0] / ev.PRICE_SCALE


def test_scanner_fills_with_symbols(browser, dash) -> None:  # noqa: ANN001
    _open(browser, dash)
    browser.wait("document.querySelectorAll('#scanner-body tr').length === 2")
    names = browser.eval(
        "[...document.querySelectorAll('#scanner-body tr')].map(r => r.dataset.symbol).sort()"
    )
    assert names == ["AAPL", "AMZN"]
    _post(dash.url + "/api/control", {"action": "seek", "to": "10:30"})
    browser.wait(
        "[...document.querySelectorAll('#scanner-body tr td:nth-child(11)')].every(td => +td.textContent > 0)"
    )
    browser.fill("#filter", "AA")
    browser.wait("document.querySelectorAll('#scanner-body tr').length === 1")
    assert browser.eval("document.querySelector('#scanner-body tr').dataset.symbol") == "AAPL"


def test_ladder_equals_book_kernels(browser, dash, lobster_catalog) -> None:  # noqa: ANN001
    _post(dash.url + "/api/control", {"action": "pause"})
    _open(browser, dash)
    browser.wait("document.querySelectorAll('#scanner-body tr').length === 2")
    browser.eval("document.querySelector('#scanner-body tr[data-symbol=AMZN]').click()")
    _seek_ui(browser, "11:15:00")
    browser.wait("window.__qe.clock && window.__qe.clock.t_et.startsWith('11:1')")
    t = browser.eval("window.__qe.clock.t")
    browser.wait(f"document.getElementById('ladder').dataset.bestBid !== '' && window.__qe.clock.t === {t}")
    time.sleep(0.3)
    bb = float(browser.eval("document.getElementById('ladder').dataset.bestBid"))
    ba = float(browser.eval("document.getElementById('ladder').dataset.bestAsk"))
    kb, ka = _kernel_top(lobster_catalog, dash, "AMZN", t)
    assert (bb, ba) == (kb, ka)
    status, book = _get(dash.url + "/api/book/AMZN")
    assert status == 200 and book["bid"][0][0] == kb and book["ask"][0][0] == ka
    assert browser.eval("document.querySelectorAll('#ladder-body tr').length") >= 2


def test_signal_markers_where_the_log_says(browser, dash) -> None:  # noqa: ANN001
    _post(dash.url + "/api/control", {"action": "pause"})
    _post(dash.url + "/api/control", {"action": "seek", "to": "14:00"})
    _open(browser, dash, "AMZN")
    status, log = _get(dash.url + "/api/signals?symbol=AMZN")
    assert status == 200 and log["signals"], "the detectors found no signal on AMZN before 14:00"
    want = sorted((s["t_et"], s["name"]) for s in log["signals"])
    browser.wait(f"window.__qe.signals.length === {len(want)}")
    shown = sorted(tuple(x) for x in browser.eval("window.__qe.signals.map(s => [s.t_et, s.name])"))
    assert shown == want
    # the side table is drawn on the next animation frame after the state changes
    browser.wait(f"document.querySelectorAll('#signals tr').length === {len(want)}")
    rows = browser.eval(
        "[...document.querySelectorAll('#signals tr')].map(r => [r.cells[0].textContent,"
        " r.cells[1].textContent.replace(' \u25b2', '')])"
    )
    assert sorted(tuple(r) for r in rows) == want
    # the log is the session's own record of the detectors' triggers for the symbol
    assert len(want) == int((dash.session.signals["symbol"] == dash.session.symbol_id("AMZN")).sum())
    # each marker is drawn at its signal's time on the price chart's x axis
    assert browser.eval("(() => { const u = document.querySelector('#price-chart .uplot'); return !!u; })()")


def test_pause_step_and_seek(browser, dash) -> None:  # noqa: ANN001
    _open(browser, dash, "AMZN")
    _post(dash.url + "/api/control", {"action": "seek", "to": "10:00"})
    browser.wait("window.__qe.clock.t_et.startsWith('10:00')")
    browser.click("#play")
    browser.wait("window.__qe.clock && !window.__qe.clock.paused")
    t_play = browser.eval("window.__qe.clock.t")
    browser.wait(f"window.__qe.clock.t > {t_play}", timeout=10)
    browser.click("#play")  # pause
    browser.wait("window.__qe.clock.paused")
    t1 = browser.eval("window.__qe.clock.t")
    time.sleep(0.6)
    assert browser.eval("window.__qe.clock.t") == t1
    browser.click("#step")
    browser.wait(f"window.__qe.clock.t > {t1}")
    _seek_ui(browser, "09:45:00")  # backwards: the stages are rebuilt
    browser.wait("window.__qe.clock.t_et.startsWith('09:45')")
    assert browser.eval("window.__qe.clock.paused")


def test_pnl_equals_the_backtest(browser, dash, tmp_path) -> None:  # noqa: ANN001
    from dataclasses import replace

    from quantedge.backtest.runner import run_backtest

    s = dash.session
    status, _ = _post(dash.url + "/api/control", {"action": "seek", "to": s.info.t1})
    assert status == 200
    _open(browser, dash, "AMZN")
    browser.wait(
        "document.getElementById('pnl') !== null && window.__qe.clock.finished"
        " && +document.getElementById('pnl').dataset.value === window.__qe.position.pnl"
    )
    in_symbol_view = float(browser.eval("document.getElementById('pnl').dataset.value"))
    browser.click("#tab-summary")
    browser.wait("document.getElementById('summary-pnl') !== null")
    shown = float(browser.eval("document.getElementById('summary-pnl').dataset.value"))
    # `quantedge backtest` on the same config (the catalog day, same strategy, fees, latency, risk)
    m = run_backtest(replace(s.cfg, output=tmp_path / "bt"), report=False)
    want = m["final_equity"] - m["start_equity"]
    assert shown == pytest.approx(want, abs=1e-6)
    assert in_symbol_view == pytest.approx(want, abs=1e-6)
    status, summ = _get(dash.url + "/api/summary")
    assert summ["final"] and summ["metrics"]["final_equity"] == pytest.approx(m["final_equity"])
    assert summ["metrics"]["fills"] == m["fills"]


def test_bad_requests_get_clear_messages(browser, dash) -> None:  # noqa: ANN001
    _post(dash.url + "/api/control", {"action": "seek", "to": "10:00"})
    _open(browser, dash)
    browser.eval("document.getElementById('tab-symbol').click()")
    browser.eval("document.getElementById('symbol-input').value = 'ZZZZ'")
    browser.click("#symbol-go")
    browser.wait("document.getElementById('msg').textContent.includes('unknown symbol')")
    browser.screenshot(
        __import__("pathlib").Path(__file__).resolve().parents[2]
        / "out"
        / "test-artifacts"
        / "dashboard"
        / "unknown_symbol.png"
    )
    _seek_ui(browser, "17:30")
    browser.wait("document.getElementById('msg').textContent.includes('seek past the end')")
    _seek_ui(browser, "25:99")
    browser.wait("document.getElementById('msg').textContent.includes('cannot read')")
    assert _get(dash.url + "/api/symbol/ZZZZ")[0] == 404
    assert _post(dash.url + "/api/control", {"action": "seek", "to": "17:30"})[0] == 400
    assert _post(dash.url + "/api/control", b"{not json")[0] == 400
    assert _post(dash.url + "/api/control", {"action": "speed", "speed": "fast"})[0] == 400
    assert _post(dash.url + "/api/control", {"action": "fly"})[0] == 400
    assert _get(dash.url + "/api/scanner?sort=nope")[0] == 400
    status, meta = _get(dash.url + "/api/session")  # still alive
    assert status == 200 and sorted(meta["symbols"]) == ["AAPL", "AMZN"]
    assert browser.console == []
