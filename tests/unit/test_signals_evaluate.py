"""Evaluation plumbing on a small simulated set (2 symbols x 1 day): counts add up, the Markdown and
the PNG are written, and trigger matching follows the documented rules."""

from __future__ import annotations

import numpy as np

from quantedge.signals import evaluate as E
from quantedge.signals.logic import N_SIG

NS = 1_000_000_000


def test_match_rules():
    labels = [{"kind": "absorption", "start_ns": 100 * NS, "end_ns": 200 * NS},
              {"kind": "dark_pool", "start_ns": 300 * NS, "end_ns": 400 * NS}]
    ts = np.array([50, 150, 160, 220, 240, 350], np.int64) * NS
    trig = np.array([1, 1, 1, 1, 1, 1], np.uint8)
    c = E.match(ts, trig, labels, 0)  # absorption
    # 150, 160 inside; 220 within the 30 s tolerance; 50, 240 (beyond 230) and 350 (other kind) false
    assert (c.tp, c.fp, c.hit, c.episodes) == (3, 3, 1, 1)
    assert c.lead_s == [50.0] and c.delay_s == [50.0]
    comp = E.match(ts, trig, labels, N_SIG - 1)  # composite: any accumulation kind
    assert (comp.tp, comp.hit, comp.episodes) == (4, 2, 2)


def test_small_simulated_evaluation(tmp_path):
    sim = E.evaluate_simulated(n_symbols=2, days=1, seed=3, penny_share=0.5, workers=1)
    assert sim.symbol_days == 2
    assert sim.episodes >= 10
    for k in range(N_SIG - 1):
        assert sim.default[k].episodes == sum(n for _, n in (sim.by_intensity[b][k] for b in E.BANDS))
    assert sim.default[N_SIG - 1].episodes == sum(sim.default[k].episodes for k in range(5))
    md = E.markdown(sim, [("test day", 2.0, np.arange(N_SIG))], "cmd")
    assert "| absorption | absorption |" in md and "| test day | 2.0 | 0.00 | 0.50 |" in md
    png = E.chart(sim, tmp_path / "q.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
