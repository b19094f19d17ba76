"""Signals over stored data: one catalog day of many symbols -> books -> features -> signal records.

Also the live-shaped driver :class:`SignalPipeline` (events in, signal outputs out, any batch size)
used by the CLI, the benchmarks and the backtest/live stages.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from quantedge import events as ev
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.state import FeatureState
from quantedge.signals.config import SignalConfig
from quantedge.signals.engine import SignalEngine, SignalOutput, concat_outputs
from quantedge.signals.logic import EXPLAIN_NAMES
from quantedge.signals.types import SIGNAL_NAMES

CADENCE_NS = 1_000_000_000
#: the event kind a book mode builds its books from, and its name (``nbbo``: quotes and trades)
BOOK_EVENTS = {"l3": (ev.KIND_ORDER, "market-by-order (L3)"), "l2": (ev.KIND_DEPTH, "depth (L2)")}
log = logging.getLogger("quantedge.signals")


class SignalPipeline:
    """Books + features + signals for ``n_symbols`` symbols: ``step(events)`` -> the batch's signal outputs.

    ``mode`` as in :class:`FeaturePipeline` (``l3`` / ``l2`` / ``nbbo``); the book is allocated here
    (L2 / NBBO) or passed in (an ``L3Book``).  ``device``: ``auto`` / ``cpu`` / ``gpu`` place the signal
    stage (books and features on the CPU); ``gpu-path`` runs books, features and signals all on the
    GPU (:class:`quantedge.signals.gpu_path.GpuPath`; an error without a CUDA device).  ``signals`` is
    the stage that scores the rows (a :class:`SignalEngine`, or the whole-path GpuPath, which has the
    same ``device`` and ``emit_min``).  ``path_device="cpu"`` runs the gpu-path's per-symbol body on
    the CPU instead (its test on machines without a GPU)."""

    def __init__(self, n_symbols: int, mode: str = "l2", config: SignalConfig | None = None,
                 device: str = "auto", cadence_ns: int = CADENCE_NS, book=None, n_levels: int = 10,
                 path_device: str = "gpu") -> None:
        if device not in ("auto", "cpu", "gpu", "gpu-path"):
            raise ValueError(f"device must be auto, cpu, gpu or gpu-path, got {device!r}")
        if mode == "l2" and book is None:
            from quantedge.book.l2 import L2Book

            book = L2Book.allocate(n_symbols, capacity=256, tick=1)
        elif mode == "l3" and book is None:
            from quantedge.book.l3 import L3Book

            book = L3Book.allocate(n_symbols, capacity=256, tick=1, max_orders=1 << 18)
        # the rows only feed the signals here: derive just their inputs (the rest of a row is NaN)
        fstate = FeatureState.allocate(n_symbols, n_levels=n_levels, cadence_ns=cadence_ns, rows="signals")
        self.path = None
        if device == "gpu-path":
            from quantedge.signals import gpu
            from quantedge.signals.gpu_path import GpuPath

            if path_device == "gpu" and not gpu.available():
                raise RuntimeError("device='gpu-path' but numba.cuda finds no CUDA device")
            self.features = None
            self.path = GpuPath(mode, book, fstate, config, device=path_device)
            self.signals = self.path
            log.info("signals: whole path on the %s (books, features and signals in one kernel) for %d "
                     "symbols", path_device.upper(), n_symbols)
            return
        self.features = FeaturePipeline(mode, fstate, book)
        self.signals = SignalEngine(n_symbols, config, device)

    def step(self, events: np.ndarray) -> SignalOutput:
        if self.path is not None:
            return self.path.step(events)
        # the signals score the snapshot rows in the sampler's buffer, also each time it fills
        # mid-batch: no copy of the (rows x features) matrix
        outs: list[SignalOutput] = []
        self.features.step(events, on_full=lambda sm: outs.append(self.signals.step_sampler(sm)))
        outs.append(self.signals.step_sampler(self.features.sampler))
        return concat_outputs(outs)

    def step_records(self, events: np.ndarray, emit_min: float) -> tuple[np.ndarray, int]:
        """``step(events).records(emit_min)`` without the dense outputs in between (the backtest's
        signal stage keeps only the records): (records, snapshot rows scored)."""
        if self.path is not None:
            out = self.path.step(events)
            return out.records(emit_min), len(out)
        recs: list[np.ndarray] = []
        rows = [0]

        def take(sm) -> None:
            r, n = self.signals.records_sampler(sm, emit_min)
            recs.append(r)
            rows[0] += n

        self.features.step(events, on_full=take)
        take(self.features.sampler)
        return (recs[0] if len(recs) == 1 else np.concatenate(recs)), rows[0]


def run_catalog_day(catalog: str | Path, date: str, symbols: list[str] | None, mode: str,
                    config: SignalConfig, device: str = "auto", emit_min: float | None = None,
                    batch_events: int = 1 << 20) -> tuple[np.ndarray, list[str], int]:
    """Signal records for every (or the given) symbol of one catalog day; symbol ids in the records
    index the returned name list."""
    from quantedge.catalog.store import Catalog

    cat = Catalog(catalog)
    parts = cat.partitions(symbols=symbols, start=date, end=date)
    names = sorted({p.symbol for p in parts})
    if not names:
        raise ValueError(f"no catalog data for {date}" + (f" and symbols {symbols}" if symbols else ""))
    evs = []
    for i, name in enumerate(names):
        e = cat.read(name, date)
        e["symbol"] = i
        evs.append(e)
    events = np.concatenate(evs)
    events = events[np.lexsort((events["kind"], events["seq"], events["symbol"], events["ts_recv"]))]
    need = BOOK_EVENTS.get(mode)
    if need is not None and not (events["kind"] == need[0]).any():
        raise ValueError(f"--mode {mode} builds books from {need[1]} events and {date} has none for "
                         f"{', '.join(names)}: choose the mode of the data (nbbo for quotes and trades, "
                         "l2 for depth, l3 for orders)")
    pipe = SignalPipeline(len(names), mode, config, device)
    em = pipe.signals.emit_min if emit_min is None else emit_min
    recs = []
    for a in range(0, events.shape[0], batch_events):
        recs.append(pipe.step(events[a:a + batch_events]).records(em))
    return np.concatenate(recs), names, int(events.shape[0])


def write_signals(recs: np.ndarray, names: list[str], path: str | Path) -> Path:
    """Signal records -> Parquet: ts_event, ts_recv, seq, symbol (name), signal (name), triggered, score,
    and explain_0..5 with the names of each signal's explain values in the file metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name_arr = np.array(names, dtype=object)
    cols = {
        "ts_event": recs["ts_event"], "ts_recv": recs["ts_recv"], "seq": recs["seq"],
        "symbol": pa.array(name_arr[recs["symbol"]] if recs.shape[0] else [], pa.string()),
        "signal": pa.array([SIGNAL_NAMES[int(k)] for k in recs["signal"]], pa.string()),
        "triggered": recs["triggered"].astype(bool), "score": recs["score"],
    }
    for j in range(recs["explain"].shape[1] if recs.shape[0] else 6):
        cols[f"explain_{j}"] = recs["explain"][:, j] if recs.shape[0] else np.zeros(0, np.float32)
    meta = {f"explain.{SIGNAL_NAMES[k + 1]}".encode(): ",".join(n).encode()
            for k, n in enumerate(EXPLAIN_NAMES)}
    tbl = pa.table(cols).replace_schema_metadata(meta)
    pq.write_table(tbl, path)
    return path
