"""GPU path: one CUDA thread per symbol runs that symbol's rows of a batch through the shared logic.

The device function is the very Python source of :func:`quantedge.signals.logic.update_row`
compiled with ``numba.cuda.jit(device=True)``; the kernel uses only ``cuda.grid(1)``, global memory
and scalar float64 arithmetic (no shared memory, atomics, cooperative groups or dynamic
parallelism), so it builds for old toolkits and compute capabilities.  Rows are grouped by symbol
on the host (stable order, so each thread sees its rows in stream order); each row's outputs land
at the row's own index, so no two threads write the same place.

Tests run this module under ``NUMBA_ENABLE_CUDASIM=1`` (the simulator executes the same kernel in
Python), which needs no GPU.
"""

from __future__ import annotations

import numpy as np
from numba import cuda  # importing works without a GPU; kernels compile on first launch

from quantedge.signals.logic import init_state, update_row

_KERNELS: dict[str, object] = {}


def available() -> bool:
    """True when a CUDA device (or the CUDA simulator) can run the kernels."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver or toolkit means: no GPU path
        return False


def _kernels() -> tuple[object, object]:
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

        _KERNELS["step"] = step_kernel
        _KERNELS["init"] = init_kernel
    return _KERNELS["step"], _KERNELS["init"]


def group_rows(sym: np.ndarray, n_symbols: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Row indices grouped by symbol (stable) and per-symbol offsets; rows with a symbol outside
    ``[0, n_symbols)`` are left out and counted."""
    sym = np.asarray(sym, dtype=np.int64)
    good = (sym >= 0) & (sym < n_symbols)
    idx = np.nonzero(good)[0]
    order = idx[np.argsort(sym[idx], kind="stable")].astype(np.int64)
    counts = np.bincount(sym[idx], minlength=n_symbols)
    offsets = np.zeros(n_symbols + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return order, offsets, int((~good).sum())


class GpuSignals:
    """Signal state resident on the device; ``step`` moves one batch of rows there and back."""

    def __init__(self, n_symbols: int, cfg: np.ndarray, threads_per_block: int = 128) -> None:
        self.cuda = cuda
        self.n_symbols = n_symbols
        self.tpb = threads_per_block
        from quantedge.signals.logic import N_ST

        step, init = _kernels()
        self._step = step
        self.st = cuda.device_array((n_symbols, N_ST), dtype=np.float64)
        self.cfg = cuda.to_device(np.ascontiguousarray(cfg, dtype=np.float64))
        init[self._blocks(), self.tpb](self.st)

    def _blocks(self) -> int:
        return max(1, (self.n_symbols + self.tpb - 1) // self.tpb)

    def step(self, ts: np.ndarray, sym: np.ndarray, F: np.ndarray, ex_min: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Score one batch of rows; returns (score, trig, ex_row, ex_val, rows skipped) like the CPU path:
        the kernel writes explain values at the row's own index (no two threads share a place), the
        host keeps those of the flagged rows in row order."""
        from quantedge.signals.cpu import allocate_outputs

        cuda = self.cuda
        n = F.shape[0]
        score, trig, expl = allocate_outputs(n)
        order, offsets, bad = group_rows(sym, self.n_symbols)
        flag = np.zeros(n, np.int64)
        if bad:
            out_of_range = (sym < 0) | (sym >= self.n_symbols)
            score[out_of_range] = -1.0
        if n > 0:
            d_score = cuda.to_device(score)
            d_trig = cuda.to_device(trig)
            d_expl = cuda.to_device(expl)
            d_flag = cuda.to_device(flag)
            self._step[self._blocks(), self.tpb](
                self.st, self.cfg, cuda.to_device(np.ascontiguousarray(ts, dtype=np.int64)),
                cuda.to_device(np.ascontiguousarray(F, dtype=np.float64)), cuda.to_device(order),
                cuda.to_device(offsets), d_score, d_trig, float(ex_min), d_flag, d_expl)
            score, trig, expl, flag = (d_score.copy_to_host(), d_trig.copy_to_host(), d_expl.copy_to_host(),
                                       d_flag.copy_to_host())
        have = flag > 0
        ex_row = np.full(n, -1, np.int64)
        ex_row[have] = np.arange(int(have.sum()))
        return score, trig, ex_row, expl[have], bad

    def state(self) -> np.ndarray:
        """The per-symbol signal state, copied to the host."""
        return self.st.copy_to_host()
