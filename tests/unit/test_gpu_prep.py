"""The GPU path's device-side chunk preparation (quantedge.signals.gpu_prep) gives exactly the host's:
the stable grouping by symbol (``group_by_symbol``), each event's snapshot row (``rows_scan``), the
symbols' starts, the sampling clocks carried from chunk to chunk and the unknown-symbol count.

Its steps run on the CPU here (the same functions the CUDA kernels call, thread after thread), on
random streams; and as CUDA kernels under the simulator in a subprocess (the flag must be set
before numba.cuda is imported), against the CPU run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.events import EVENT_DTYPE
from quantedge.features.pipeline import group_by_symbol, rows_scan
from quantedge.signals.gpu_path import _NO_TS, _unknown_symbols
from quantedge.signals.gpu_prep import WORDS, DevicePrep, geometry

CAD = 1_000


def random_stream(seed: int, n: int, ns: int) -> np.ndarray:
    """Events of ns symbols and a few unknown ones (negative, >= ns), every kind, times mostly rising
    with backward steps (clamped by the sampling rule), some far apart."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["symbol"] = rng.integers(-2, ns + 2, n)
    ev["kind"] = rng.integers(0, 8, n)
    steps = rng.choice([-300, 0, 1, 40, 700, 2_500], n, p=[0.05, 0.2, 0.3, 0.3, 0.1, 0.05])
    ev["ts_event"] = 10_000 + np.cumsum(steps)
    ev["ts_event"][rng.random(n) < 0.01] -= 4_000_000_000_000  # a negative time: floor division
    ev["price"] = rng.integers(1, 10**9, n)  # other words travel along untouched
    ev["flags"] = rng.integers(0, 256, n)
    return ev


def host_prepare(ev, a, b, ns, kinds, lastt, lastb):
    rank_in = np.empty(b - a, np.int64)
    assert rows_scan(ev, a, b, ns, CAD, kinds, b - a, 0, lastt, lastb, rank_in) == b
    counts = np.zeros(ns + 2, np.int64)
    grp, rank = np.empty(b - a, ev.dtype), np.empty(b - a, np.int64)
    group_by_symbol(ev, a, b, ns, counts, grp, rank_in, rank)
    offsets = np.concatenate([[0], counts[:ns]])
    return grp, rank, offsets, int((rank_in >= 0).sum()), _unknown_symbols(ev, a, b, ns, kinds)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 3000), ns=st.integers(1, 40),
       kinds=st.integers(1, 255), n_cuts=st.integers(0, 6))
def test_device_prep_equals_host_grouping(seed, n, ns, kinds, n_cuts):
    ev = random_stream(seed, n, ns)
    rng = np.random.default_rng(seed + 1)
    cuts = np.unique(np.concatenate([[0, n], rng.integers(0, n + 1, n_cuts)]))
    lastt, lastb = np.full(ns, _NO_TS, np.int64), np.zeros(ns, np.int64)
    lastt[::3] = 9_000  # some symbols start with a running clock
    lastb[::3] = 9
    prep = DevicePrep(ns, max(1, n), CAD, kinds, lastt.copy(), lastb.copy(), device="cpu")
    bad = 0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        grp, rank, offsets, rows, unknown = host_prepare(ev, a, b, ns, kinds, lastt, lastb)
        bad += unknown
        assert prep.prepare(ev[a:b]) == rows
        d, m = prep.d, b - a
        assert np.array_equal(d["grp"][:m * WORDS].view(EVENT_DTYPE), grp)
        assert np.array_equal(d["rank"][:m], rank)
        assert np.array_equal(d["offsets"], offsets)
        assert np.array_equal(d["lastt"], lastt) and np.array_equal(d["lastb"], lastb)
    assert prep.bad_symbols() == bad


def test_geometry_bounds():
    for n, ns in ((1, 1), (255, 3), (256, 3), (10**6, 2000), (5 * 10**7, 2000)):
        T, per, lc, lf = geometry(n, ns)
        assert 1 <= T <= 2048 and per >= 1 and T * per >= n  # every event in a slice (the last may be empty)
        assert lc * lc >= T * (ns + 1) and lf * lf >= n and min(lc, lf) >= 64


SIM = textwrap.dedent("""
    import os
    assert os.environ["NUMBA_ENABLE_CUDASIM"] == "1"
    import numpy as np
    from numba import cuda
    from quantedge.signals.gpu_path import _NO_TS
    from quantedge.signals.gpu_prep import WORDS, DevicePrep
    sys_path_test = {test_dir!r}
    import sys; sys.path.insert(0, sys_path_test)
    from test_gpu_prep import CAD, random_stream

    ns, kinds = 6, 0b1111010
    ev = random_stream(3, 1400, ns)
    lastt, lastb = np.full(ns, _NO_TS, np.int64), np.zeros(ns, np.int64)
    gpu = DevicePrep(ns, 1000, CAD, kinds, lastt, lastb, device="gpu", tpb=16)
    cpu = DevicePrep(ns, 1000, CAD, kinds, lastt, lastb, device="cpu")
    rows = 0
    cuts = ((0, 600), (600, 601), (601, 1400))
    stream = cuda.stream()
    gpu.stage(ev[0:600], 0)
    for i, (a, b) in enumerate(cuts):  # as GpuPath drives it: the next chunk staged while one is worked
        gpu.launch(i % 2, stream)
        if i + 1 < len(cuts):
            gpu.stage(ev[cuts[i + 1][0]:cuts[i + 1][1]], 1 - i % 2)
        stream.synchronize()
        g, c = gpu.rows(), cpu.prepare(ev[a:b])
        assert g == c, (g, c)
        rows += g
        m = b - a
        for k, size in (("grp", m * WORDS), ("rank", m), ("offsets", ns + 1), ("lastt", ns), ("lastb", ns)):
            assert np.array_equal(gpu.d[k].copy_to_host()[:size], cpu.d[k][:size]), k
    assert gpu.bad_symbols() == cpu.bad_symbols() > 0
    assert rows > 50, rows
    print("rows", rows, "ok")
""")


def test_prep_kernels_under_the_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    script = SIM.format(test_dir=os.path.dirname(__file__))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("ok")
