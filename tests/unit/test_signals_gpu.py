"""The CUDA kernels, run under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, in a subprocess so the
flag is set before numba.cuda is imported), give the same outputs as the CPU path; without a
device the engine falls back to the CPU and says so in one log line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np

from quantedge.signals.engine import SignalEngine

SCRIPT = textwrap.dedent("""
    import os, sys
    assert os.environ["NUMBA_ENABLE_CUDASIM"] == "1"
    import numpy as np
    from quantedge.features.sampling import Snapshots
    from quantedge.features.state import COL, NF
    from quantedge.signals.config import load_config
    from quantedge.signals.engine import SignalEngine

    rng = np.random.default_rng(5)
    n_sym, n = 4, 600
    F = np.full((n, NF), np.nan)
    F[:, COL["mid"]] = 2.0 + rng.normal(0, 0.01, n)
    F[:, COL["spread"]] = rng.choice([100.0, 200.0], n)
    for c in ("spread_avg_5s", "spread_avg_30s", "spread_avg_1h"):
        F[:, COL[c]] = rng.uniform(50, 200, n)
    F[:, COL["spread_ratio_5s_1h"]] = rng.uniform(0.1, 3.0, n)
    F[:, COL["volume_30s"]] = rng.uniform(0, 6000, n)
    F[:, COL["volume_1h"]] = 120_000.0
    sh = rng.uniform(0, 1, n)
    F[:, COL["sell_volume_30s"]] = F[:, COL["volume_30s"]] * sh
    F[:, COL["buy_volume_30s"]] = F[:, COL["volume_30s"]] * (1 - sh)
    F[:, COL["offex_volume_30s"]] = F[:, COL["volume_30s"]] * rng.uniform(0, 1, n)
    F[:, COL["mid_change_30s"]] = rng.normal(0, 0.005, n)
    F[:, COL["depth_imbalance"]] = rng.uniform(-1, 1, n)
    F[:, COL["touch_imbalance"]] = rng.uniform(-1, 1, n)
    F[:, COL["refills_30s"]] = rng.integers(0, 10, n)
    F[:, COL["mid_rvol_bps_1h"]] = 20.0
    F[:, COL["mid_rvol_bps_5s"]] = rng.uniform(0, 3, n)
    sym = np.repeat(np.arange(n_sym), n // n_sym)
    rng.shuffle(sym)
    ts = 1_704_205_800 * 10**9 + np.arange(n, dtype=np.int64) * 250_000_000
    rows = Snapshots(ts, sym.astype(np.int32), F)
    cfg = load_config().with_values(absorption__persist_s=1.0, dark_pool__persist_s=1.0,
                                    exit__persist_s=1.0, composite__persist_s=1.0)
    gpu = SignalEngine(n_sym, cfg, device="gpu")
    cpu = SignalEngine(n_sym, cfg, device="cpu")
    assert gpu.device == "gpu" and cpu.device == "cpu"
    for a, b in ((0, 250), (250, 251), (251, 600)):
        part = Snapshots(ts[a:b], rows.symbol[a:b], F[a:b])
        g, c = gpu.step(part), cpu.step(part)
        assert np.array_equal(g.trig, c.trig), "trigger flags differ"
        assert np.allclose(g.score, c.score, rtol=1e-12, atol=1e-12), "scores differ"
        assert np.allclose(g.explain, c.explain, rtol=1e-12, atol=1e-12, equal_nan=True), "explain differs"
        assert np.array_equal(g.ex_row >= 0, c.ex_row >= 0), "explained rows differ"
    assert np.allclose(gpu.state(), cpu.state(), rtol=1e-12, atol=1e-12, equal_nan=True)
    # an empty batch, then one with rows of unknown symbols (score -1, no trigger, not explained)
    empty = Snapshots(ts[:0], rows.symbol[:0], F[:0])
    g, c = gpu.step(empty), cpu.step(empty)
    assert len(g.score) == len(c.score) == 0
    bad_sym = np.array([1, 99, 2, -1], np.int32)
    g, c = gpu.step(Snapshots(ts[-4:], bad_sym, F[-4:])), cpu.step(Snapshots(ts[-4:], bad_sym, F[-4:]))
    assert g.skipped == c.skipped == 2, (g.skipped, c.skipped)
    assert np.array_equal(g.score, c.score) and np.array_equal(g.trig, c.trig)
    assert np.array_equal(g.ex_row >= 0, c.ex_row >= 0)
    print("triggers", int(c.trig.sum()), "ok")
""")


def test_cuda_kernels_match_cpu_under_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("ok")


def test_fallback_to_cpu_logs_the_path(caplog, monkeypatch):
    from quantedge.signals import gpu

    monkeypatch.setattr(gpu, "available", lambda: False)
    with caplog.at_level(logging.INFO, logger="quantedge.signals"):
        eng = SignalEngine(3, device="auto")
    assert eng.device == "cpu"
    assert any("CPU path" in r.message and "no CUDA device" in r.message for r in caplog.records)


def test_gpu_requested_without_device_is_an_error(monkeypatch):
    from quantedge.signals import gpu

    monkeypatch.setattr(gpu, "available", lambda: False)
    try:
        SignalEngine(1, device="gpu")
    except RuntimeError as e:
        assert "no CUDA device" in str(e)
    else:
        raise AssertionError("expected an error")


def test_group_rows_keeps_stream_order_per_symbol():
    from quantedge.signals.gpu import group_rows

    sym = np.array([2, 0, 2, 1, 0, 9, 2])
    order, offsets, bad = group_rows(sym, 3)
    assert bad == 1
    assert offsets.tolist() == [0, 2, 3, 6]
    assert order.tolist() == [1, 4, 3, 0, 2, 6]
