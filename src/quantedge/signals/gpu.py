"""GPU path: one CUDA thread per symbol runs that symbol's rows of a batch through the shared logic.

The device function is the very Python source of :func:`quantedge.signals.logic.update_row`
compiled with ``numba.cuda.jit(device=True)``; the kernel uses only ``cuda.grid(1)``, global memory
and scalar float64 arithmetic (no shared memory, atomics, cooperative groups or dynamic
parallelism), so it builds for old toolkits and compute capabilities.  Rows are grouped by symbol
on the host (an O(rows) stable counting sort, so each thread sees its rows in stream order); each
row's outputs land at the row's own index, so no two threads write the same place.

Tests run this module under ``NUMBA_ENABLE_CUDASIM=1`` (the simulator executes the same kernel in
Python), which needs no GPU.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, njit  # importing works without a GPU; kernels compile on first launch

from quantedge.signals.logic import init_state, update_row

_KERNELS: dict[str, object] = {}


def available() -> bool:
    """True when a CUDA device (or the CUDA simulator) can run the kernels."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver or toolkit means: no GPU path
        return False


def _kernels() -> tuple[object, object, object]:
    if not _KERNELS:
        row_dev = cuda.jit(device=True)(update_row.py_func)
        init_dev = cuda.jit(device=True)(init_state.py_func)

        @cuda.jit
        def step_kernel(st, cfg, ts, F, order, offsets, score, trig, ex_min, flag, expl):
            s = cuda.grid(1)
            if s < offsets.shape[0] - 1:
                for q in range(offsets[s], offsets[s + 1]):
                    r = order[q]
                    flag[r] = row_dev(F, r, ts[r], st, s, cfg, score, trig, ex_min, expl, r)

        @cuda.jit
        def init_kernel(st):
            s = cuda.grid(1)
            if s < st.shape[0]:
                init_dev(st, s)

        @cuda.jit
        def gather_kernel(expl, rows, out):
            i = cuda.grid(1)
            if i < rows.shape[0]:
                r = rows[i]
                for k in range(expl.shape[1]):
                    for c in range(expl.shape[2]):
                        out[i, k, c] = expl[r, k, c]

        _KERNELS["step"] = step_kernel
        _KERNELS["init"] = init_kernel
        _KERNELS["gather"] = gather_kernel
    return _KERNELS["step"], _KERNELS["init"], _KERNELS["gather"]


@njit(cache=True)
def _group(sym, ns, order, offsets) -> int:
    """Counting sort of row indices by symbol (stable); rows outside [0, ns) are left out."""
    for k in range(ns + 1):
        offsets[k] = 0
    bad = 0
    for i in range(sym.shape[0]):
        s = sym[i]
        if s < 0 or s >= ns:
            bad += 1
        else:
            offsets[s + 1] += 1
    for k in range(ns):
        offsets[k + 1] += offsets[k]
    for i in range(sym.shape[0]):
        s = sym[i]
        if s >= 0 and s < ns:
            order[offsets[s]] = i
            offsets[s] += 1
    for k in range(ns, 0, -1):
        offsets[k] = offsets[k - 1]
    offsets[0] = 0
    return bad


def _symbol_ids(sym: np.ndarray) -> np.ndarray:
    """Symbol ids as a contiguous int32 / int64 array (what ``_group`` is compiled for)."""
    sym = np.ascontiguousarray(sym)
    return sym if sym.dtype in (np.int32, np.int64) else sym.astype(np.int64)


def gather_explain(d_expl, rows: np.ndarray) -> np.ndarray:
    """The explain values of ``rows`` (row indices of the device array ``d_expl``, rows x signals x
    values), gathered on the device and copied back: only the rows worth emitting travel."""
    out = np.empty((rows.shape[0],) + tuple(d_expl.shape[1:]))
    if rows.shape[0]:
        d_out = cuda.device_array(out.shape, np.float64)
        d_rows = cuda.to_device(rows.astype(np.int64))
        _kernels()[2][max(1, (rows.shape[0] + 127) // 128), 128](d_expl, d_rows, d_out)
        d_out.copy_to_host(out)
    return out


def equality_rows(seed: int = 5, n_symbols: int = 4, n: int = 600):
    """Random feature rows (stream order over ``n_symbols``) whose values sweep every signal's ramps,
    and a config with short persistence so that triggers occur: the input of the CPU/GPU equality
    checks (the simulator test and ``scripts/gpu_check.py``).  Returns (Snapshots, SignalConfig)."""
    from quantedge.features.sampling import Snapshots
    from quantedge.features.state import COL, NF
    from quantedge.signals.config import load_config

    rng = np.random.default_rng(seed)
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
    sym = np.repeat(np.arange(n_symbols), n // n_symbols)
    rng.shuffle(sym)
    ts = 1_704_205_800 * 10**9 + np.arange(n, dtype=np.int64) * 250_000_000
    cfg = load_config().with_values(absorption__persist_s=1.0, dark_pool__persist_s=1.0,
                                    exit__persist_s=1.0, composite__persist_s=1.0)
    return Snapshots(ts, sym.astype(np.int32), F), cfg


def group_rows(sym: np.ndarray, n_symbols: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Row indices grouped by symbol (stable) and per-symbol offsets; rows with a symbol outside
    ``[0, n_symbols)`` are left out and counted.  O(rows) counting sort."""
    sym = _symbol_ids(sym)
    offsets = np.zeros(n_symbols + 1, np.int64)
    order = np.empty(sym.shape[0], np.int64)
    bad = _group(sym, n_symbols, order, offsets)
    return order[: sym.shape[0] - bad], offsets, int(bad)


class GpuSignals:
    """Signal state resident on the device; ``step`` moves one batch of rows there and the outputs back.

    Device buffers are kept and grown (no allocation per batch).  The state is stored column-major
    (one column of ``N_ST`` values per symbol next to the other symbols'): neighbouring threads read
    neighbouring addresses (~15 % faster kernel on an H200 than row-major).  Blocks of 32 threads
    spread 2,000 symbols over 63 multiprocessors (measured faster than 64 or 128 per block).  Only
    the outputs the host needs travel back: scores, trigger flags, the per-row emit flag, and the
    explain values of the flagged rows (gathered on the device)."""

    def __init__(self, n_symbols: int, cfg: np.ndarray, threads_per_block: int = 32) -> None:
        from quantedge.signals.logic import N_ST

        self.n_symbols = n_symbols
        self.tpb = threads_per_block
        self._step, init, _ = _kernels()
        self.st = cuda.device_array((n_symbols, N_ST), dtype=np.float64, order="F")
        self.cfg = cuda.to_device(np.ascontiguousarray(cfg, dtype=np.float64))
        init[self._blocks(n_symbols), self.tpb](self.st)
        self.cap = 0
        self._offsets = np.zeros(n_symbols + 1, np.int64)
        self.d_offsets = cuda.device_array(n_symbols + 1, np.int64)
        self._order = np.zeros(0, np.int64)

    def _blocks(self, n: int) -> int:
        return max(1, (n + self.tpb - 1) // self.tpb)

    def _grow(self, n: int, nf: int) -> None:
        from quantedge.signals.logic import N_SIG
        from quantedge.signals.types import N_EXPLAIN

        self.cap = n
        self.d_ts = cuda.device_array(n, np.int64)
        self.d_F = cuda.device_array((n, nf), np.float64)
        self.d_order = cuda.device_array(n, np.int64)
        self.d_score = cuda.device_array((n, N_SIG), np.float64)
        self.d_trig = cuda.device_array((n, N_SIG), np.uint8)
        self.d_flag = cuda.device_array(n, np.uint8)
        self.d_expl = cuda.device_array((n, N_SIG, N_EXPLAIN), np.float64)
        self._order = np.empty(n, np.int64)

    def step(self, ts: np.ndarray, sym: np.ndarray, F: np.ndarray, ex_min: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Score one batch of rows; returns (score, trig, ex_row, ex_val, rows skipped) like the CPU path.
        The kernel writes each row's outputs at the row's own index (no two threads share a place);
        the explain values of the flagged rows are gathered in row order on the device."""
        from quantedge.signals.logic import N_SIG

        n = F.shape[0]
        F = np.ascontiguousarray(F, dtype=np.float64)
        if self.cap == 0 or n > self.cap or F.shape[1] != self.d_F.shape[1]:
            self._grow(max(n, 2 * self.cap, 1024), F.shape[1])
        sym = _symbol_ids(sym)
        bad = _group(sym, self.n_symbols, self._order, self._offsets)
        score = np.empty((n, N_SIG))
        trig = np.empty((n, N_SIG), np.uint8)
        flag = np.zeros(n, np.uint8)
        if n - bad > 0:
            self.d_ts[:n].copy_to_device(np.ascontiguousarray(ts, dtype=np.int64))
            self.d_F[:n].copy_to_device(F)
            self.d_order[: n - bad].copy_to_device(self._order[: n - bad])
            self.d_offsets.copy_to_device(self._offsets)
            self._step[self._blocks(self.n_symbols), self.tpb](
                self.st, self.cfg, self.d_ts, self.d_F, self.d_order, self.d_offsets, self.d_score,
                self.d_trig, float(ex_min), self.d_flag, self.d_expl)
            self.d_score[:n].copy_to_host(score)
            self.d_trig[:n].copy_to_host(trig)
            self.d_flag[:n].copy_to_host(flag)
        if bad:
            out_of_range = (sym < 0) | (sym >= self.n_symbols)
            score[out_of_range] = -1.0
            trig[out_of_range] = 0
            flag[out_of_range] = 0
        rows = np.nonzero(flag > 0)[0]
        ex_val = gather_explain(self.d_expl, rows)
        ex_row = np.full(n, -1, np.int64)
        ex_row[rows] = np.arange(rows.shape[0])
        return score, trig, ex_row, ex_val, int(bad)

    def state(self) -> np.ndarray:
        """The per-symbol signal state, copied to the host (row-major, like the CPU path's)."""
        return np.ascontiguousarray(self.st.copy_to_host())
