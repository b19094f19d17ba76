"""The full-path GPU arrangement (books + features + signals per symbol thread, per-symbol order
tables, host-kept sampling clocks, grouped chunks) gives exactly the CPU pipeline's outputs and state.

Run through ``device="cpu"``: the kernel's per-symbol body over the symbols on the CPU, with the same
host work (the CUDA simulator cannot run kernels that call compiled functions).  On a device,
``scripts/gpu_check.py`` compares the CUDA kernel the same way (results in BENCHMARKS.md)."""

from __future__ import annotations

import numpy as np
import pytest

from quantedge.book.l2 import L2Book
from quantedge.book.state import A_BAD_SYMBOL
from quantedge.catalog.importers.databento import read_databento_mbp10
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate
from quantedge.features.state import S_MARK, FeatureState
from quantedge.signals.config import load_config
from quantedge.signals.engine import SignalEngine, concat_outputs, take_rows
from quantedge.signals.gpu_path import GpuPath

LOBSTER_ZIP = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
DATABENTO = "databento/AAPL_2024-10-21_mbp10_premarket_excerpt.csv"


@pytest.fixture(scope="module")
def amzn(shared_data):
    return load_lobster_day(shared_data / LOBSTER_ZIP)


def _stream(day, ns: int, n: int) -> np.ndarray:
    ev = replicate(day.events[:n], ns)
    # a few events of unknown symbols: counted, never applied
    bad = ev[::997].copy()
    bad["symbol"] = ns + 3
    return np.sort(np.concatenate([ev, bad]), order=["ts_event", "seq"], kind="stable")


def _run_both(ref, eng, gp, ev, cuts):
    ro, go, rrows, grows = [], [], [], []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        ref.step(ev[a:b])
        rows = take_rows(ref.sampler)
        rrows.append(rows.F)
        ro.append(eng.step(rows))
        go.append(gp.step(ev[a:b]))
        grows.append(gp.rows.F)
    return ro, go, rrows, grows


def _assert_same(ref, eng, ro, go, rrows, grows, gp, ns, unknown: bool = False):
    r, g = concat_outputs(ro), concat_outputs(go)
    assert len(r) > 500 and len(r) == len(g)
    assert np.array_equal(r.ts, g.ts) and np.array_equal(r.symbol, g.symbol)
    assert np.array_equal(np.concatenate(rrows), np.concatenate(grows), equal_nan=True)
    assert np.array_equal(r.score, g.score) and np.array_equal(r.trig, g.trig)
    assert np.array_equal(r.ex_row >= 0, g.ex_row >= 0)
    assert np.array_equal(r.explain, g.explain, equal_nan=True)
    st = gp.download()
    book, f = ref.book, ref.features
    for name, want in (("lv", book.lv), ("sd", book.sd), ("bk", book.bk), ("rq", f.rq), ("pl", f.pl),
                       ("vap", f.vap)):
        assert np.array_equal(st[name], want), name
    assert (st["bk"][ns, A_BAD_SYMBOL] > 0) == unknown  # the unknown-symbol events were counted
    assert np.array_equal(st["fz"], f.fz, equal_nan=True)
    fs_gpu, fs_cpu = st["fs"].copy(), f.fs.copy()
    fs_gpu[:, S_MARK] = fs_cpu[:, S_MARK] = 0  # "touched since the last derive": the GPU path never derives
    assert np.array_equal(fs_gpu, fs_cpu)
    assert np.array_equal(st["st"], eng.st, equal_nan=True)


@pytest.mark.parametrize(("explain", "prep"), [("emitted", "host"), ("all", "host"), ("emitted", "device")])
def test_gpu_path_equals_cpu_pipeline(amzn, explain, prep):
    ns = 4
    ev = _stream(amzn, ns, 3000)
    cfg = load_config().with_values(absorption__persist_s=1.0, composite__persist_s=1.0)
    ref = lobster_pipeline(amzn, ns, max_orders=ns * 4096)
    eng = SignalEngine(ns, cfg, device="cpu", explain=explain)
    src = lobster_pipeline(amzn, ns, max_orders=ns * 4096)
    # small row capacity and chunks: chunks are cut by both limits
    gp = GpuPath("l3", src.book, src.features, cfg, device="cpu", orders_per_symbol=4096, row_capacity=97,
                 chunk_events=1500, explain=explain, keep_rows=True, host_threads=3, prep=prep)
    rng = np.random.default_rng(11)
    cuts = np.unique(np.concatenate([[0, 1, 2, ev.shape[0]], rng.integers(0, ev.shape[0], 6)]))
    ro, go, rrows, grows = _run_both(ref, eng, gp, ev, cuts)
    _assert_same(ref, eng, ro, go, rrows, grows, gp, ns, unknown=True)


@pytest.mark.parametrize("prep", ["host", "device"])
def test_gpu_path_continues_from_a_pipelines_state(amzn, prep):
    """Started from the books and features of a pipeline that has already seen events, the path
    samples on those symbols' clocks: the same snapshot rows and state as the pipeline going on."""
    ns = 3
    ev = _stream(amzn, ns, 4000)
    k = ev.shape[0] // 3
    ev["ts_event"][k:] += 5_000_000_000  # each symbol's next event writes a row on its running clock
    ref = lobster_pipeline(amzn, ns, max_orders=ns * 4096)
    ref.step(ev[:k])
    take_rows(ref.sampler)
    gp = GpuPath("l3", ref.book, ref.features, device="cpu", orders_per_symbol=4096, row_capacity=500,
                 keep_rows=True, prep=prep)
    ref.step(ev[k:])
    want = take_rows(ref.sampler)
    gp.step(ev[k:])
    assert len(want.ts) > 100
    assert np.array_equal(gp.rows.ts, want.ts) and np.array_equal(gp.rows.symbol, want.symbol)
    assert np.array_equal(gp.rows.F, want.F, equal_nan=True)
    st = gp.download()
    for name, arr in (("lv", ref.book.lv), ("bk", ref.book.bk), ("rq", ref.features.rq)):
        assert np.array_equal(st[name], arr), name


def test_a_corrupt_event_kind_is_skipped_everywhere(amzn):
    """Events with a kind of 64 or more (corrupt: the kinds are 0-7) are skipped by the CPU steps, the
    row planning of the grouped CPU path and both GpuPath preparations alike: the same rows as the
    stream without them (a 64-bit shift by 64 or more read bit k mod 64 on x86, so such an event was
    given a row that no step wrote)."""
    ns = 3
    ev = _stream(amzn, ns, 3000)
    bad = np.zeros(ev.shape[0], bool)
    bad[5::23] = True
    ev["kind"][bad] = np.array([65, 67, 70, 200], np.uint8)[np.arange(bad.sum()) % 4]

    def cpu_rows(events):
        ref = lobster_pipeline(amzn, ns, max_orders=ns * 4096)
        ref.step(events)
        return take_rows(ref.sampler)

    want, got = cpu_rows(ev[~bad]), cpu_rows(ev)
    assert len(want.ts) > 300
    assert np.array_equal(got.ts, want.ts) and np.array_equal(got.symbol, want.symbol)
    assert np.array_equal(got.F, want.F, equal_nan=True)
    for prep in ("host", "device"):
        src = lobster_pipeline(amzn, ns, max_orders=ns * 4096)
        gp = GpuPath("l3", src.book, src.features, device="cpu", orders_per_symbol=4096, row_capacity=700,
                     keep_rows=True, prep=prep)
        gp.step(ev)
        assert np.array_equal(gp.rows.ts, want.ts) and np.array_equal(gp.rows.F, want.F, equal_nan=True), prep


def test_gpu_path_rejects_bad_setup(amzn):
    p = lobster_pipeline(amzn, 2, max_orders=1024)
    gp = GpuPath("l3", p.book, p.features, device="cpu", orders_per_symbol=1024)
    for n in (3, 0):  # a batch that writes no snapshot row, an empty batch
        out = gp.step(replicate(amzn.events[:n], 2))
        assert len(out) == 0 and out.score.shape == (0, 7) and out.ex_val.shape[0] == 0
    with pytest.raises(ValueError, match="device"):
        GpuPath("l3", p.book, p.features, device="tpu")
    with pytest.raises(ValueError, match="cadence"):
        GpuPath("l3", p.book, FeatureState.allocate(2, cadence_ns=0), device="cpu")
    with pytest.raises(ValueError, match="mode"):
        GpuPath("l4", p.book, p.features, device="cpu")
    with pytest.raises(ValueError, match="prep"):
        GpuPath("l3", p.book, p.features, device="cpu", prep="tpu")
    with pytest.raises(ValueError, match="row_capacity"):
        GpuPath("l3", p.book, p.features, device="cpu", prep="device", row_capacity=0)
    gd = GpuPath("l3", p.book, p.features, device="cpu", orders_per_symbol=1024, prep="device")
    other = np.zeros(4, [("symbol", "i4"), ("ts_event", "i8"), ("pad", "V52")])  # 64 bytes, other offsets
    with pytest.raises(ValueError, match="EVENT_DTYPE's layout"):
        gd.step(other)
    with pytest.raises(ValueError, match="L3Book"):
        GpuPath("l3", L2Book.allocate(2, capacity=8, tick=1), p.features, device="cpu")


@pytest.mark.parametrize(("mode", "prep"), [("l2", "host"), ("nbbo", "host"), ("nbbo", "device")])
def test_gpu_path_price_level_and_nbbo_modes(shared_data, mode, prep):
    """Market-by-price (real Databento MBP-10 excerpt) and NBBO-only (real NEPT IQFeed ticks), three
    copies each, through the same per-symbol body: the CPU pipeline's outputs and state exactly."""
    ns = 3
    if mode == "l2":
        ev = replicate(read_databento_mbp10(shared_data / DATABENTO, NameTable())[0], ns, offset_ns=3_000_000)
    else:
        ticks = read_iqfeed_ticks(shared_data / "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv", NameTable())[0]
        ev = replicate(ticks[:12_000], ns, offset_ns=3_000_000)

    def book():
        return L2Book.allocate(ns, capacity=64, tick=1) if mode == "l2" else None

    cfg = load_config().with_values(absorption__persist_s=1.0, composite__persist_s=1.0)
    ref = FeaturePipeline(mode, FeatureState.allocate(ns, cadence_ns=100_000_000), book())
    eng = SignalEngine(ns, cfg, device="cpu")
    gp = GpuPath(mode, book(), FeatureState.allocate(ns, cadence_ns=100_000_000), cfg, device="cpu",
                 row_capacity=331, chunk_events=5000, keep_rows=True, prep=prep)
    cuts = np.array([0, 7, 4000, 4001, ev.shape[0] // 2, ev.shape[0]])
    ro, go, rrows, grows = _run_both(ref, eng, gp, ev, cuts)
    _assert_same(ref, eng, ro, go, rrows, grows, gp, ns)


def test_signal_pipeline_gpu_path_device(shared_data, monkeypatch):
    """``SignalPipeline(device="gpu-path")``: the whole path through GpuPath, same records as the split
    path; without a CUDA device it is an error, never a silent CPU run."""
    from quantedge.signals import gpu
    from quantedge.signals.run import SignalPipeline

    ticks = read_iqfeed_ticks(shared_data / "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv", NameTable())[0]
    ev = replicate(ticks[:8000], 2, offset_ns=5_000_000)
    split = SignalPipeline(2, "nbbo", device="cpu")
    whole = SignalPipeline(2, "nbbo", device="gpu-path", path_device="cpu")
    assert whole.features is None and whole.signals.emit_min == split.signals.emit_min
    for a, b in ((0, 5000), (5000, ev.shape[0])):
        r, g = split.step(ev[a:b]), whole.step(ev[a:b])
        em = split.signals.emit_min
        rr, gr = r.records(em), g.records(em)
        for name in rr.dtype.names:
            assert np.array_equal(rr[name], gr[name], equal_nan=rr[name].dtype.kind == "f"), name
        assert len(r) > 0
    monkeypatch.setattr(gpu, "available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        SignalPipeline(2, "nbbo", device="gpu-path")


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_parallel_grouping_equals_the_serial_sort(amzn, threads):
    """The GPU path's multi-threaded host grouping gives group_by_symbol's order, ranks and offsets."""
    from quantedge.features.pipeline import group_by_symbol
    from quantedge.signals.gpu_path import group_by_symbol_parallel

    ns = 7
    ev = replicate(amzn.events[:700], ns)
    ev["symbol"][::97] = ns + 2  # unknown symbols go last
    a, b = 13, ev.shape[0] - 5
    rank_in = np.arange(b - a, dtype=np.int64) * 3 - 1
    counts = np.zeros(ns + 2, np.int64)
    o1, r1 = np.empty(b - a, ev.dtype), np.empty(b - a, np.int64)
    group_by_symbol(ev, a, b, ns, counts, o1, rank_in, r1)
    o2, r2, offsets = np.empty(b - a, ev.dtype), np.empty(b - a, np.int64), np.zeros(ns + 1, np.int64)
    group_by_symbol_parallel(ev, a, b, ns, np.zeros((threads, ns + 1), np.int64), o2, rank_in, r2, offsets)
    assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    assert np.array_equal(offsets, np.concatenate([[0], counts[:ns]]))
