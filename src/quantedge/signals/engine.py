"""The signal stage driver: ``SignalEngine.step(rows)`` on the GPU when one is present, else the CPU.

Input is the feature stream — snapshot rows ``(ts, symbol, F)`` from
:class:`quantedge.features.sampling.Snapshots` at the feature pipeline's event-time cadence.
Output per batch is dense (a score, trigger flag and explain values per row and signal, identical
on both paths) and, on request, ``SIGNAL_DTYPE`` records for the rows worth emitting.  The state
lives in arrays per symbol, so the result never depends on how the row stream was cut into batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

from quantedge.features.sampling import Sampler, Snapshots
from quantedge.signals.config import SignalConfig, load_config
from quantedge.signals.cpu import CpuSignals
from quantedge.signals.logic import INDEX, N_SIG
from quantedge.signals.types import N_EXPLAIN, SIGNAL_DTYPE

log = logging.getLogger("quantedge.signals")


@dataclass
class SignalOutput:
    """Outputs of one batch: row ``i`` is (``ts[i]``, ``symbol[i]``); columns k = SIG_* - 1.

    ``score`` and ``trig`` are dense.  Explain values exist for the rows worth emitting (any trigger
    or any score >= the engine's explain threshold; every row with ``explain="all"``): row ``i``'s
    are ``ex_val[ex_row[i]]`` (``ex_row[i]`` = -1: not computed).  :attr:`explain` gives the dense
    (rows, 7, N_EXPLAIN) view with NaN where not computed."""

    ts: np.ndarray
    symbol: np.ndarray
    score: np.ndarray  # (rows, 7) float64 in [0, 1]; -1 for rows of unknown symbols
    trig: np.ndarray  # (rows, 7) uint8, 1 on a rising edge
    ex_row: np.ndarray  # (rows,) int64 index into ex_val, -1 = none
    ex_val: np.ndarray  # (m, 7, N_EXPLAIN) float64
    row0: int = 0  # running row number of row 0 (record ``seq``)
    skipped: int = 0

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def explain(self) -> np.ndarray:
        """Dense explain values (rows, 7, N_EXPLAIN); NaN for rows whose values were not computed."""
        out = np.full((len(self), N_SIG, N_EXPLAIN), np.nan)
        have = self.ex_row >= 0
        out[have] = self.ex_val[self.ex_row[have]]
        return out

    def records(self, emit_min: float) -> np.ndarray:
        """``SIGNAL_DTYPE`` records for every trigger and every score >= ``emit_min`` (row order, then
        signal).  ``ts_event`` = ``ts_recv`` = the snapshot time; ``seq`` = the running row number.
        ``emit_min`` below the engine's explain threshold gives NaN explain values for rows it did
        not explain."""
        return records_of(self.ts, self.symbol, self.score, self.trig, self.ex_row, self.ex_val, len(self),
                          emit_min, self.row0)


@njit(cache=True, _nrt=False)
def _count_records(score, trig, n: int, emit_min: float) -> int:
    m = 0
    for r in range(n):
        for k in range(score.shape[1]):
            if trig[r, k] == 1 or score[r, k] >= emit_min:
                m += 1
    return m


@njit(cache=True, _nrt=False)
def _fill_records(ts, sym, score, trig, ex_row, ex_val, n: int, emit_min: float, row0: int, out) -> None:
    m = 0
    for r in range(n):
        for k in range(score.shape[1]):
            if not (trig[r, k] == 1 or score[r, k] >= emit_min):
                continue
            o = out[m]
            o.ts_event = ts[r]
            o.ts_recv = ts[r]
            o.seq = row0 + r
            o.symbol = sym[r]
            o.signal = k + 1
            o.triggered = trig[r, k]
            o.score = score[r, k]
            j = ex_row[r]
            for q in range(N_EXPLAIN):
                o.explain[q] = ex_val[j, k, q] if j >= 0 else np.nan
            m += 1


def records_of(ts: np.ndarray, sym: np.ndarray, score: np.ndarray, trig: np.ndarray, ex_row: np.ndarray,
               ex_val: np.ndarray, n: int, emit_min: float, row0: int) -> np.ndarray:
    """The ``SIGNAL_DTYPE`` records of scored rows ``[0, n)`` (see :meth:`SignalOutput.records`), in one
    compiled pass over the dense outputs (the NumPy version's masks and fancy indexing cost more than
    the scoring on a stream of thousands of symbols)."""
    out = np.zeros(_count_records(score, trig, n, float(emit_min)), dtype=SIGNAL_DTYPE)
    if out.shape[0]:
        _fill_records(ts, sym, score, trig, ex_row, ex_val, n, float(emit_min), int(row0), out)
    return out


def concat_outputs(outs: list[SignalOutput]) -> SignalOutput:
    """Consecutive outputs of one engine as one (explain rows re-indexed)."""
    if len(outs) == 1:
        return outs[0]
    shift, ex_rows = 0, []
    for o in outs:
        ex_rows.append(np.where(o.ex_row >= 0, o.ex_row + shift, -1))
        shift += o.ex_val.shape[0]
    return SignalOutput(
        np.concatenate([o.ts for o in outs]), np.concatenate([o.symbol for o in outs]),
        np.concatenate([o.score for o in outs]), np.concatenate([o.trig for o in outs]),
        np.concatenate(ex_rows), np.concatenate([o.ex_val for o in outs]), outs[0].row0,
        sum(o.skipped for o in outs),
    )


def take_rows(sampler: Sampler) -> Snapshots:
    """The snapshot rows sampled since the last call (the sampler forgets them)."""
    rows = sampler.collect()
    sampler._chunks.clear()
    return rows


def sampler_rows(sampler: Sampler) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(ts, symbol, F, n): the rows sampled since the last call — the buffer itself when it did not
    overflow, else every row collected — and the sampler emptied (the buffer keeps its contents
    until the feature kernels write again)."""
    if sampler._chunks:
        rows = take_rows(sampler)
        return rows.ts, rows.symbol, rows.F, int(rows.ts.shape[0])
    n = int(sampler.n[0])
    sampler.n[0] = 0
    return sampler.ts, sampler.symbol, sampler.F, n


class SignalEngine:
    """Signals for ``n_symbols`` symbols.  ``device``: ``"auto"`` (GPU when numba.cuda finds one,
    else CPU), ``"cpu"`` or ``"gpu"`` (an error when none is present).  Logs the path it runs on.

    ``explain``: ``"emitted"`` computes explain values only for rows with a trigger or a score >=
    ``trigger.emit_min`` (the fast default), ``"all"`` for every row.  ``reuse``: outputs are views
    of buffers the engine keeps (no allocation per batch; valid until the next ``step``) instead
    of fresh arrays."""

    def __init__(self, n_symbols: int, config: SignalConfig | None = None, device: str = "auto",
                 explain: str = "emitted", reuse: bool = False) -> None:
        if device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'gpu', got {device!r}")
        if explain not in ("emitted", "all"):
            raise ValueError(f"explain must be 'emitted' or 'all', got {explain!r}")
        self.config = config if config is not None else load_config()
        self.cfg = self.config.vector()
        self.n_symbols = int(n_symbols)
        self.rows_seen = 0
        self.reuse = reuse
        self.ex_min = -1.0 if explain == "all" else float(self.cfg[INDEX["trigger.emit_min"]])
        self._gpu = None
        if device != "cpu":
            from quantedge.signals import gpu

            if gpu.available():
                self._gpu = gpu.GpuSignals(self.n_symbols, self.cfg)
            elif device == "gpu":
                raise RuntimeError("device='gpu' but numba.cuda finds no CUDA device")
        self.device = "gpu" if self._gpu is not None else "cpu"
        if self.device == "gpu":
            log.info("signals: GPU path (numba.cuda, one thread per symbol) for %d symbols", self.n_symbols)
        else:
            why = "requested" if device == "cpu" else "no CUDA device found"
            log.info("signals: CPU path (Numba) for %d symbols (%s)", self.n_symbols, why)
        self._cpu = CpuSignals(self.n_symbols, self.cfg) if self._gpu is None else None

    @property
    def st(self) -> np.ndarray | None:
        return self._cpu.st if self._cpu is not None else None

    def _score_arrays(self, ts: np.ndarray, sym: np.ndarray, F: np.ndarray, n: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Score rows [0, n): (score, trig, ex_row, ex_val, rows skipped); on the CPU views of the
        engine's buffers, valid until the next call."""
        if self._gpu is not None:
            return self._gpu.step(ts[:n], sym[:n], F[:n], self.ex_min)
        return self._cpu.step(ts, sym, F, n, self.ex_min)

    def _score(self, ts: np.ndarray, sym: np.ndarray, F: np.ndarray, n: int) -> SignalOutput:
        score, trig, ex_row, ex_val, bad = self._score_arrays(ts, sym, F, n)
        if self._gpu is None and not self.reuse:
            score, trig, ex_row, ex_val = score.copy(), trig.copy(), ex_row.copy(), ex_val.copy()
        out = SignalOutput(ts[:n].copy(), sym[:n].astype(np.int32), score, trig, ex_row, ex_val,
                           self.rows_seen, bad)
        self.rows_seen += n
        return out

    def step(self, rows: Snapshots) -> SignalOutput:
        """Score one batch of snapshot rows (any cut of the row stream, time order per symbol)."""
        ts = np.ascontiguousarray(rows.ts, dtype=np.int64)
        sym = np.ascontiguousarray(rows.symbol)
        if sym.dtype != np.int32:
            sym = sym.astype(np.int64)
        F = np.ascontiguousarray(rows.F, dtype=np.float64)
        return self._score(ts, sym, F, int(ts.shape[0]))

    def step_sampler(self, sampler: Sampler) -> SignalOutput:
        """Score the rows a feature pipeline sampled since the last call, straight from the sampler's
        buffer (no collection copy when it did not overflow), and empty it."""
        return self._score(*sampler_rows(sampler))

    def records_sampler(self, sampler: Sampler, emit_min: float) -> tuple[np.ndarray, int]:
        """:meth:`step_sampler`, keeping only the records (:meth:`SignalOutput.records` with
        ``emit_min``), straight from the engine's output buffers: (records, rows scored)."""
        ts, sym, F, n = sampler_rows(sampler)
        score, trig, ex_row, ex_val, _bad = self._score_arrays(ts, sym, F, n)
        recs = records_of(ts, sym, score, trig, ex_row, ex_val, n, emit_min, self.rows_seen)
        self.rows_seen += n
        return recs, n

    def pin(self, sampler: Sampler) -> Sampler:
        """On the GPU path, move the sampler's row buffers to page-locked host memory, so that
        ``step_sampler`` copies rows to the device by DMA straight from where the feature kernels
        wrote them (no staging copy); a no-op on the CPU path.  Returns the sampler."""
        if self._gpu is not None:
            from numba import cuda

            for name in ("ts", "symbol", "F"):
                a = getattr(sampler, name)
                b = cuda.pinned_array(a.shape, a.dtype)
                b[...] = a
                setattr(sampler, name, b)
        return sampler

    def state(self) -> np.ndarray:
        """Per-symbol signal state (host copy)."""
        return self._gpu.state() if self._gpu is not None else self._cpu.st.copy()

    @property
    def emit_min(self) -> float:
        return float(self.cfg[INDEX["trigger.emit_min"]])


def empty_output() -> SignalOutput:
    return SignalOutput(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, N_SIG)),
                        np.zeros((0, N_SIG), np.uint8), np.zeros(0, np.int64),
                        np.zeros((0, N_SIG, N_EXPLAIN)))
