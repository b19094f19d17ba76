"""The full path on the GPU: books, features and signals in one CUDA kernel, one thread per symbol.

Why: on the CPU the full path is bound by the book and feature work (BENCHMARKS.md), while the
signal stage alone is a small part of it.  Here each thread applies its symbol's events in stream
order with the very functions the CPU step kernels use (``pre_event``, the mode's book event
function ``l3_event`` / ``l2_event`` / ``nbbo_event``, ``post_event``: the same Python source compiled
for the CUDA target) and scores each snapshot row with :func:`quantedge.signals.logic.update_row` right
after writing it.  Symbols share no state, so every output equals the CPU path's.

What differs is layout only: each symbol has its own order table (market-by-order; the CPU's is one
hash table for all symbols, on which threads would race), and the two counters the CPU keeps in one
shared cell (snapshot rows written, symbols touched) are per-symbol cells.  The kernel needs no shared memory,
atomics or other recent CUDA features.

Preparation of each chunk of events: which events write a snapshot row and where, and a stable
counting sort by symbol.  ``prep="host"``: on the host (``rows_scan`` with the symbols' sampling clocks
kept there, ``group_by_symbol``), then the grouped chunk is copied to the device; ``prep="device"``:
the raw chunk is copied and the same result computed there (:mod:`quantedge.signals.gpu_prep`).  Back
come the scores, trigger flags and the explain values of the rows worth emitting (and the snapshot rows
themselves with ``keep_rows``).

``device="cpu"`` runs the same per-symbol body through a compiled CPU loop over the symbols, with the
same host work: the test of this arrangement on machines without a GPU (the CUDA simulator cannot
run kernels that call compiled functions).  It is a check, not a fast path.
"""

from __future__ import annotations

import time

import numpy as np
from numba import cuda, njit, prange  # importing numba.cuda needs no GPU

from quantedge.book.l2 import l2_event
from quantedge.book.l3 import KIND_TRADE, OT_NCOL, OT_TAG, L3Book, l3_event, ot_insert
from quantedge.book.l3 import _bits as table_bits
from quantedge.book.state import A_BAD_SYMBOL, A_TABLE_FULL, B_FLAGS, FLAG_ANOM_BASE, LevelBook
from quantedge.features.pipeline import (
    MODE_KINDS,
    group_by_symbol,
    kind_worked,
    nbbo_event,
    post_event,
    pre_event,
    reload_mark,
    rows_scan,
)
from quantedge.features.sampling import Snapshots
from quantedge.features.state import CFG_CADENCE, CFG_SKIP_STALE, NF, S_INIT, S_TLAST, FeatureState
from quantedge.signals.config import SignalConfig, load_config
from quantedge.signals.engine import SignalOutput
from quantedge.signals.gpu import gather_explain
from quantedge.signals.gpu_prep import WORDS, DevicePrep
from quantedge.signals.logic import INDEX, N_SIG, N_ST, init_states, update_row
from quantedge.signals.types import N_EXPLAIN

#: "not started" for the host's sampling clocks (rows_scan)
_NO_TS = np.iinfo(np.int64).min


def aligned(dtype: np.dtype) -> np.dtype:
    """The same record layout declared aligned (EVENT_DTYPE's fields already sit at natural offsets):
    compiled code then loads each field whole instead of byte by byte."""
    return np.dtype({"names": list(dtype.names), "formats": [dtype.fields[n][0] for n in dtype.names],
                     "offsets": [dtype.fields[n][1] for n in dtype.names], "itemsize": dtype.itemsize},
                    align=True)


#: book modes of the path (as FeaturePipeline's ``mode``)
MODES = {"l3": 0, "l2": 1, "nbbo": 2}


@njit(cache=True, _nrt=False)
def symbol_run(s, mode, kinds, lv, sd, bk, ot3, otn2, bits, fs, rq, pl, vap, fz, fcfg, s_ts, s_sym, s_F, s_n2,
               rank, marked2, n_marked2, ev, offsets, st, scfg, score, trig, ex_min, flag, expl) -> int:
    """Symbol s's events ``ev[offsets[s]:offsets[s + 1]]`` (grouped, stream order kept) through book,
    features and signals; returns the events worked.  ``mode``: 0 market-by-order (``l3_event``), 1
    market-by-price (``l2_event``), 2 NBBO only (``nbbo_event``), each exactly as its CPU step kernel
    does it; ``kinds``: the mode's worked event kinds (bit k = kind k).  ``rank[q]``: the snapshot row
    event q writes."""
    ot = ot3[s]
    otn = otn2[s]
    s_n = s_n2[s:s + 1]
    marked = marked2[s:s + 1]
    n_marked = n_marked2[s:s + 1]
    skip_stale = fcfg[CFG_SKIP_STALE] == 1 and mode != 2  # the NBBO path never skips stale levels
    worked = 0
    for q in range(offsets[s], offsets[s + 1]):
        e = ev[q]
        k = e.kind
        if not kind_worked(kinds, k):
            continue
        rows_before = s_n[0]
        t = pre_event(fs, rq, vap, fz, fcfg, lv, sd, s_ts, s_sym, s_F, s_n, rank, marked, n_marked, s,
                      e.ts_event, q)
        if t < 0:  # no row place: cannot happen, rows_scan gave every row-writing event a rank
            return worked
        if s_n[0] != rows_before:
            r = rank[q]
            flag[r] = update_row(s_F, r, s_ts[r], st, s, scfg, score, trig, ex_min, expl, r)
        if mode != 2:
            reload_mark(fs, lv, sd, s, t)
        if mode == 0:
            l3_event(lv, sd, bk, ot, otn, bits, s, k, e.action, e.side, e.price, e.size, e.order_id,
                     e.conditions, e.ts_event)
        elif mode == 1:
            if k != KIND_TRADE:
                l2_event(lv, sd, bk, s, k, e.action, e.side, e.level, e.price, e.size, e.ts_event)
        else:
            nbbo_event(lv, sd, bk, s, k, e.action, e.side, e.price, e.size, e.ts_event)
        post_event(fs, pl, vap, fcfg, lv, sd, s, t, k, e.flags, e.price, e.size, e.conditions, e.venue,
                   e.side, skip_stale)
        worked += 1
    return worked


@njit(cache=True, _nrt=False)
def _symbols_cpu(mode, kinds, lv, sd, bk, ot3, otn2, bits, fs, rq, pl, vap, fz, fcfg, s_ts, s_sym, s_F, s_n2,
                 rank, marked2, n_marked2, ev, offsets, st, scfg, score, trig, ex_min, flag, expl) -> int:
    """The kernel's work on the CPU, symbol after symbol (device="cpu")."""
    worked = 0
    for s in range(offsets.shape[0] - 1):
        worked += symbol_run(s, mode, kinds, lv, sd, bk, ot3, otn2, bits, fs, rq, pl, vap, fz, fcfg, s_ts,
                             s_sym, s_F, s_n2, rank, marked2, n_marked2, ev, offsets, st, scfg, score, trig,
                             ex_min, flag, expl)
    return worked


@njit(cache=True, _nrt=False)
def _unknown_symbols(batch, a: int, b: int, ns: int, kinds: int) -> int:
    """Events of batch[a:b] of a worked kind whose symbol is outside [0, ns) (the CPU step counts them
    as A_BAD_SYMBOL anomalies)."""
    bad = 0
    for i in range(a, b):
        e = batch[i]
        if kind_worked(kinds, e.kind) and (e.symbol < 0 or e.symbol >= ns):
            bad += 1
    return bad


@njit(cache=True, parallel=True)
def group_by_symbol_parallel(batch, a: int, b: int, ns: int, cnt, out, rank_in, rank_out, offsets) -> None:
    """:func:`group_by_symbol` (stable counting sort of batch[a:b] by symbol, each event's snapshot row
    carried along; unknown symbols last) on ``cnt.shape[0]`` threads: each counts, then places, its own
    slice of the batch; slices keep their order within a symbol, so the result is the same.  Also
    writes ``offsets[s]`` = the first grouped index of symbol s (``offsets[ns]`` = the known ones' end)."""
    nt = cnt.shape[0]
    n = b - a
    per = (n + nt - 1) // nt
    for t in prange(nt):
        for k in range(ns + 1):
            cnt[t, k] = 0
        for i in range(a + t * per, min(a + (t + 1) * per, b)):
            s = batch[i].symbol
            cnt[t, s if (s >= 0 and s < ns) else ns] += 1
    pos = 0
    for k in range(ns + 1):  # cnt[t, k] becomes slice t's first place for symbol k
        offsets[k] = pos
        for t in range(nt):
            c = cnt[t, k]
            cnt[t, k] = pos
            pos += c
    for t in prange(nt):
        for i in range(a + t * per, min(a + (t + 1) * per, b)):
            s = batch[i].symbol
            k = s if (s >= 0 and s < ns) else ns
            j = cnt[t, k]
            cnt[t, k] = j + 1
            out[j] = batch[i]
            rank_out[j] = rank_in[i - a]


@njit(cache=True, _nrt=False)
def split_order_table(ot, ot3, otn2, bk, bits: int) -> None:
    """Move the orders of the shared table into per-symbol tables (a full one counts A_TABLE_FULL)."""
    for i in range(ot.shape[0]):
        tag = ot[i, OT_TAG]
        if tag != 0:
            s = (tag >> 1) - 1
            if not ot_insert(ot3[s], otn2[s], s, ot[i, 0], tag & 1, ot[i, 2], ot[i, 3], bits):
                bk[s, A_TABLE_FULL] += 1
                bk[s, B_FLAGS] |= FLAG_ANOM_BASE << A_TABLE_FULL


def path_kernel(mode, kinds, lv, sd, bk, ot3, otn2, bits, fs, rq, pl, vap, fz, fcfg, s_ts, s_sym, s_F, s_n2,
                rank, marked2, n_marked2, ev, offsets, st, scfg, score, trig, ex_min, flag, expl) -> None:
    """CUDA kernel (compiled by :func:`cuda_kernel`): thread s runs :func:`symbol_run` for symbol s."""
    s = cuda.grid(1)
    if s < offsets.shape[0] - 1:
        symbol_run(s, mode, kinds, lv, sd, bk, ot3, otn2, bits, fs, rq, pl, vap, fz, fcfg, s_ts, s_sym, s_F,
                   s_n2, rank, marked2, n_marked2, ev, offsets, st, scfg, score, trig, ex_min, flag, expl)


def retarget(fn, memo: dict | None = None, device: bool = True):
    """``fn`` (a Python function or an ``@njit`` dispatcher) compiled with ``numba.cuda.jit``, and the
    same for every ``@njit`` function it calls, recursively: the same source for both targets.

    Why not let numba.cuda compile the njit functions it meets: the CPU functions' IR-level inlining
    (``inline="always"``) does not carry over to the CUDA compiler of the numba-cuda package (an
    internal assertion fails); as CUDA device functions the calls are inlined by NVVM instead."""
    from types import FunctionType

    from numba.core.registry import CPUDispatcher

    from quantedge.book.state import move_levels, move_levels_loop

    # CPU-only overloads (a vectorized memmove) -> their plain versions
    substitutes = {move_levels: move_levels_loop}
    memo = {} if memo is None else memo
    py = fn.py_func if isinstance(fn, CPUDispatcher) else fn
    if py in memo:
        return memo[py]
    glb = dict(py.__globals__)
    for name in py.__code__.co_names:
        obj = glb.get(name)
        obj = substitutes.get(obj, obj) if callable(obj) else obj
        if isinstance(obj, CPUDispatcher):
            glb[name] = retarget(obj, memo)
    new = FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)
    out = cuda.jit(device=True)(new) if device else cuda.jit(new)
    memo[py] = out
    return out


_KERNEL: dict[str, object] = {}


def cuda_kernel():
    """The compiled kernel (once per process; compiling takes a while: it holds the whole path)."""
    if not _KERNEL:
        _KERNEL["path"] = retarget(path_kernel, device=False)
    return _KERNEL["path"]


class GpuPath:
    """Books + features + signals of ``n`` symbols on the device (``device="gpu"``), fed event batches.

    ``mode``: ``"l3"`` (market-by-order: an :class:`L3Book`), ``"l2"`` (market-by-price: an
    :class:`L2Book`) or ``"nbbo"`` (features from quotes and trades; ``book`` may be None), as in
    :class:`FeaturePipeline`.  Starts from the given (seeded) book and feature state, which it copies;
    ``step(batch)`` returns the batch's signal outputs (rows in stream order, as
    :class:`SignalEngine` gives them after a :class:`FeaturePipeline` step); :meth:`download` brings
    the state back for inspection.  ``orders_per_symbol`` (l3): each symbol's order table (rounded up
    to a power of two; 7/8 of it usable).  ``row_capacity``: snapshot rows per kernel launch (a chunk
    with more rows is cut).  ``keep_rows``: also return the snapshot rows (``self.rows`` after each
    step).  ``host_threads``: threads for the host's grouping of each chunk (1: the single-threaded
    sort).  More than 1 uses Numba's parallel layer, whose default (workqueue) must not be entered
    from two Python threads at once: opt in where one thread drives the path (the benchmarks do).
    ``prep``: where each chunk is grouped and its rows found, "host" or "device" (chunks are then at
    most ``row_capacity`` events, so that no chunk needs cutting by its rows).  ``profile``: wait for
    each step on the device so that ``timing`` splits the device time (slower; for measurements).
    ``device``, ``emit_min``: as a :class:`SignalEngine`'s, so it can stand in for one."""

    def __init__(self, mode: str, book: LevelBook | None, features: FeatureState,
                 config: SignalConfig | None = None, device: str = "gpu", orders_per_symbol: int = 8192,
                 row_capacity: int = 1 << 18, chunk_events: int = 1 << 22, explain: str = "emitted",
                 keep_rows: bool = False, threads_per_block: int = 32,
                 host_threads: int = 1, prep: str = "host", profile: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'l3', 'l2' or 'nbbo', got {mode!r}")
        if device not in ("gpu", "cpu"):
            raise ValueError(f"device must be 'gpu' or 'cpu', got {device!r}")
        if prep not in ("host", "device"):
            raise ValueError(f"prep must be 'host' or 'device', got {prep!r}")
        if row_capacity < 1 or chunk_events < 1:
            raise ValueError(f"row_capacity and chunk_events must be >= 1, got {row_capacity} and "
                             f"{chunk_events}")
        if explain not in ("emitted", "all"):
            raise ValueError(f"explain must be 'emitted' or 'all', got {explain!r}")
        if mode == "nbbo" and book is None:
            book = LevelBook.allocate(features.n_symbols, capacity=1, tick=0)
        if (mode == "l3") != isinstance(book, L3Book):
            raise ValueError(f"mode {mode!r} needs {'an L3Book' if mode == 'l3' else 'a price-level book'}")
        if features.cfg[CFG_CADENCE] <= 0:
            raise ValueError("the full path samples snapshot rows: the feature state needs a cadence > 0")
        if book.n_symbols != features.n_symbols:
            raise ValueError(f"book has {book.n_symbols} symbols, features {features.n_symbols}")
        self.mode = mode
        self.mode_id = MODES[mode]
        self.device = device
        self.n_symbols = ns = book.n_symbols
        self.cad = int(features.cfg[CFG_CADENCE])
        self.kinds = MODE_KINDS[mode]
        self.row_capacity = int(row_capacity)
        self.chunk_events = int(chunk_events)
        self.keep_rows = keep_rows
        self.tpb = threads_per_block
        self.rows: Snapshots | None = None
        self.rows_seen = 0
        #: seconds spent per part of the work: host grouping (prep="host"); for prep="device" the host's
        #: staging copy of the events and the preparation's launch (its device time is part of "kernel"
        #: unless ``profile``: then each chunk's preparation is waited for and counted here); copies in
        #: (of a host-grouped chunk); kernel (launch and wait, less the staging done meanwhile); copies out
        self.timing = {"host": 0.0, "stage": 0.0, "prep": 0.0, "to_device": 0.0, "kernel": 0.0,
                       "from_device": 0.0}
        self.profile = profile
        cfg = (config if config is not None else load_config()).vector()
        self.ex_min = -1.0 if explain == "all" else float(cfg[INDEX["trigger.emit_min"]])
        self.emit_min = float(cfg[INDEX["trigger.emit_min"]])
        cap = 1 << table_bits(max(2, int(orders_per_symbol))) if mode == "l3" else 2  # l2/nbbo: unused
        self.bits = table_bits(cap)
        ot3 = np.zeros((ns, cap, OT_NCOL), np.int64)
        otn2 = np.zeros((ns, 2), np.int64)
        bk = book.bk.copy()
        if mode == "l3":
            split_order_table(book.ot, ot3, otn2, bk, self.bits)
        st = np.zeros((ns, N_ST))
        init_states(st)
        R = self.row_capacity
        host = dict(lv=book.lv.copy(), sd=book.sd.copy(), bk=bk, ot3=ot3, otn2=otn2, fs=features.fs.copy(),
                    rq=features.rq.copy(), pl=features.pl.copy(), vap=features.vap.copy(),
                    fz=features.fz.copy(), fcfg=features.cfg.copy(), s_ts=np.zeros(R, np.int64),
                    s_sym=np.zeros(R, np.int32), s_F=np.full((R, NF), np.nan), s_n2=np.zeros(ns, np.int64),
                    marked2=np.zeros(ns, np.int64), n_marked2=np.zeros(ns, np.int64),
                    st=np.asfortranarray(st) if device == "gpu" else st,
                    scfg=np.ascontiguousarray(cfg, np.float64), score=np.zeros((R, N_SIG)),
                    trig=np.zeros((R, N_SIG), np.uint8), flag=np.zeros(R, np.uint8),
                    expl=np.zeros((R, N_SIG, N_EXPLAIN)))
        if device == "gpu":
            self.d = {k: cuda.to_device(v) for k, v in host.items()}
            self._kernel = cuda_kernel()
        else:
            self.d = host
        # the symbols' sampling clocks, from the state the path starts from (as rows_fit sets them)
        fs = features.fs
        started = fs[:, S_INIT] == 1
        self._lastt = np.where(started, fs[:, S_TLAST], _NO_TS).astype(np.int64)
        self._lastb = np.where(started, self._lastt // self.cad, 0).astype(np.int64)
        self.prep = prep
        self._prep: DevicePrep | None = None
        if prep == "device":
            self.chunk_events = min(self.chunk_events, self.row_capacity)
            self._prep = DevicePrep(ns, self.chunk_events, self.cad, self.kinds, self._lastt, self._lastb,
                                    device=device)
        self._stream = cuda.stream() if (prep == "device" and device == "gpu") else None
        self._counts = np.zeros(ns + 2, np.int64)
        self.host_threads = max(1, int(host_threads))
        self._cnt = np.zeros((self.host_threads, ns + 1), np.int64)
        self._offsets = np.zeros(ns + 1, np.int64)
        self._bad_symbol = 0
        self._grp = np.empty(0, np.uint8)
        self._rank_in = np.empty(0, np.int64)
        self._rank = np.empty(0, np.int64)

    def _scratch(self, n: int, dtype: np.dtype) -> None:
        if self._grp.shape[0] < n or self._grp.dtype != dtype:
            self._grp = np.empty(n, dtype)
            self._rank_in = np.empty(n, np.int64)
            self._rank = np.empty(n, np.int64)

    def step(self, batch: np.ndarray) -> SignalOutput:
        """Apply one batch of EVENT_DTYPE events (any cut of the stream); the signal outputs of the
        snapshot rows it wrote, in stream order."""
        from quantedge.signals.engine import concat_outputs

        outs: list[SignalOutput] = []
        rows: list[Snapshots] = []
        if self._prep is not None:
            self._step_device_prep(batch, outs, rows)
        else:
            self._step_host_prep(batch, outs, rows)
        res = concat_outputs(outs) if outs else self._empty()
        if self.keep_rows:
            if rows:
                cat = np.concatenate
                self.rows = Snapshots(cat([r.ts for r in rows]), cat([r.symbol for r in rows]),
                                      cat([r.F for r in rows]))
            else:
                self.rows = Snapshots(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, NF)))
        return res

    def _step_host_prep(self, batch: np.ndarray, outs: list, rows: list) -> None:
        """Chunks prepared on the host (rows_scan, then the counting sort), then copied and worked."""
        n = batch.shape[0]
        self._scratch(min(n, self.chunk_events), batch.dtype)
        ns = self.n_symbols
        a = 0
        while a < n:
            t0 = time.perf_counter()
            c = min(n - a, self.chunk_events)
            c = rows_scan(batch, a, a + c, ns, self.cad, self.kinds, self.row_capacity, 0, self._lastt,
                          self._lastb, self._rank_in) - a  # >= 1: row_capacity >= 1
            self._bad_symbol += _unknown_symbols(batch, a, a + c, ns, self.kinds)
            if self.host_threads > 1:
                group_by_symbol_parallel(batch, a, a + c, ns, self._cnt, self._grp, self._rank_in[:c],
                                         self._rank[:c], self._offsets)
            else:
                group_by_symbol(batch, a, a + c, ns, self._counts, self._grp, self._rank_in[:c],
                                self._rank[:c])
                self._offsets[1:] = self._counts[:ns]
            n_rows = int(np.count_nonzero(self._rank_in[:c] >= 0))
            self.timing["host"] += time.perf_counter() - t0
            ev = self._grp[:c].view(aligned(self._grp.dtype))
            out, snap = self._launch(ev, self._rank[:c], self._offsets, lambda n_rows=n_rows: n_rows, False)
            outs.append(out)
            if snap is not None:
                rows.append(snap)
            a += c

    def _step_device_prep(self, batch: np.ndarray, outs: list, rows: list) -> None:
        """Chunks prepared on the device: while the device works on a chunk, the host stages the next
        one (its only copy of the events); one stream carries the copy in, preparation and kernel."""
        p = self._prep
        n, ce = batch.shape[0], self.chunk_events
        starts = list(range(0, n, ce))
        if not starts:
            return
        t0 = time.perf_counter()
        p.stage(batch[:min(n, ce)], 0)
        self.timing["stage"] += time.perf_counter() - t0
        for i, a in enumerate(starts):
            c, slot = min(n - a, ce), i % 2
            t0 = time.perf_counter()
            p.launch(slot, self._stream)
            if self.profile and self._stream is not None:
                self._stream.synchronize()
            self.timing["prep"] += time.perf_counter() - t0
            nxt = None
            if i + 1 < len(starts):
                b = starts[i + 1]

                def nxt(b=b, slot=1 - slot):
                    p.stage(batch[b:min(n, b + ce)], slot)
            d = p.d
            ev = d["grp"][:c * WORDS].view(aligned(batch.dtype))
            out, snap = self._launch(ev, d["rank"][:c], d["offsets"], p.rows, True, self._stream, nxt)
            outs.append(out)
            if snap is not None:
                rows.append(snap)

    def _empty(self) -> SignalOutput:
        return SignalOutput(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, N_SIG)),
                            np.zeros((0, N_SIG), np.uint8), np.zeros(0, np.int64),
                            np.zeros((0, N_SIG, N_EXPLAIN)), self.rows_seen, 0)

    def kernel_args(self, ev, rank, offsets) -> tuple:
        """The kernel's arguments for a chunk: its events grouped by symbol (``ev``), their ranks and the
        symbols' offsets into them, with the path's state and buffers (device arrays on the GPU)."""
        d = self.d
        state = tuple(d[k] for k in ("lv", "sd", "bk", "ot3", "otn2"))
        feats = tuple(d[k] for k in ("fs", "rq", "pl", "vap", "fz", "fcfg", "s_ts", "s_sym", "s_F", "s_n2"))
        rest = (rank, d["marked2"], d["n_marked2"], ev, offsets, d["st"], d["scfg"], d["score"], d["trig"],
                self.ex_min, d["flag"], d["expl"])
        return (self.mode_id, self.kinds) + state + (self.bits,) + feats + rest

    def _launch(self, ev, rank, offsets, n_rows_of, on_device: bool, stream=None,
                stage_next=None) -> tuple[SignalOutput, Snapshots | None]:
        """The kernel over a prepared chunk (``on_device``: its arrays are already where the kernel runs;
        ``stream``: the one its preparation was queued on), ``stage_next()`` run while it works, then
        the outputs of its ``n_rows_of()`` rows."""
        d = self.d

        def get(a):  # rows [0, n_rows) of an output buffer (no device copy for an empty range)
            if a.shape[0] == 0:
                return np.empty(a.shape, a.dtype)
            return a.copy_to_host() if self.device == "gpu" else a.copy()

        t0 = time.perf_counter()
        if self.device == "gpu":
            if not on_device:
                ev, rank, offsets = cuda.to_device(ev), cuda.to_device(rank), cuda.to_device(offsets)
            args = self.kernel_args(ev, rank, offsets)
            t1 = time.perf_counter()
            blocks = max(1, (self.n_symbols + self.tpb - 1) // self.tpb)
            if stream is None:
                self._kernel[blocks, self.tpb](*args)
            else:
                self._kernel[blocks, self.tpb, stream](*args)
        else:
            t1 = t0
            _symbols_cpu(*self.kernel_args(ev, rank, offsets))
        staged = 0.0
        if stage_next is not None:
            ts = time.perf_counter()
            stage_next()
            staged = time.perf_counter() - ts
        if self.device == "gpu":
            if stream is None:
                cuda.synchronize()
            else:
                stream.synchronize()
        t2 = time.perf_counter()
        n_rows = n_rows_of()
        score, trig, flag = get(d["score"][:n_rows]), get(d["trig"][:n_rows]), get(d["flag"][:n_rows])
        ts, sym = get(d["s_ts"][:n_rows]), get(d["s_sym"][:n_rows])
        F = get(d["s_F"][:n_rows]) if self.keep_rows else None
        have = np.nonzero(flag > 0)[0]
        ex_val = gather_explain(d["expl"], have) if self.device == "gpu" else d["expl"][have].copy()
        self.timing["to_device"] += t1 - t0
        self.timing["stage"] += staged
        self.timing["kernel"] += t2 - t1 - staged
        self.timing["from_device"] += time.perf_counter() - t2
        ex_row = np.full(n_rows, -1, np.int64)
        ex_row[have] = np.arange(have.shape[0])
        out = SignalOutput(ts, sym, score, trig, ex_row, ex_val, self.rows_seen, 0)
        self.rows_seen += n_rows
        return out, (Snapshots(ts, sym, F) if F is not None else None)

    def download(self) -> dict[str, np.ndarray]:
        """Host copies of the state arrays (books: lv, sd, bk; features: fs, rq, pl, vap, fz; signals:
        st row-major), with the host's count of events for unknown symbols in ``bk[n, A_BAD_SYMBOL]``."""
        keep = ("lv", "sd", "bk", "fs", "rq", "pl", "vap", "fz", "st", "otn2")
        if self.device == "gpu":
            out = {k: self.d[k].copy_to_host() for k in keep}
        else:
            out = {k: self.d[k].copy() for k in keep}
        out["st"] = np.ascontiguousarray(out["st"])
        bad = self._bad_symbol + (self._prep.bad_symbols() if self._prep is not None else 0)
        if bad:
            out["bk"][self.n_symbols, A_BAD_SYMBOL] += bad
            out["bk"][self.n_symbols, B_FLAGS] |= FLAG_ANOM_BASE << A_BAD_SYMBOL
        return out
