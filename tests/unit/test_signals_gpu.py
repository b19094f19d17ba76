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
    from quantedge.signals.engine import SignalEngine
    from quantedge.signals.gpu import equality_rows

    n_sym = 4
    rows, cfg = equality_rows(seed=5, n_symbols=n_sym, n=600)
    ts, F = rows.ts, rows.F
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
