"""A replay session: one catalog day played through books -> features -> signals -> strategy + venue.

The session owns the replay clock (data time, ns UTC) and advances every stage by the same slices
of the merge-ordered stream, so what the browser shows is exactly what the backtest computes:

* ``FeaturePipeline`` (the project's fused book + features kernels) gives the display book (ladder,
  depth heat-map, NBBO) and the scanner's feature columns;
* an optional :class:`SignalStage` turns each slice into SIGNAL_DTYPE records (the detectors'
  engine plugs in here); signals may also be given up front (a signal log);
* the backtest :class:`~quantedge.backtest.engine.Engine` (the same object ``quantedge backtest``
  runs, built from the same typed config) trades the strategy against its simulated venue.

Stage outputs do not depend on how the stream is cut, so playing at 1x in 40 ms slices and seeking
in 64k-event slices give the same state.  Memory is bounded: the day's events (file sources) or a
streaming cursor (catalog), fixed-size rings per symbol for history and prints, and the engine's
sparse records (orders, fills, equity samples).  Seeking backwards rebuilds the stages from the
start of the day (the compiled kernels replay a LOBSTER day in well under a second).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from quantedge import events as ev
from quantedge.backtest.config import BacktestConfig, load_events
from quantedge.backtest.engine import Engine
from quantedge.backtest.metrics import summarize
from quantedge.backtest.orders import (
    OD_AHEAD,
    OD_FILLED,
    OD_ID,
    OD_LIMIT,
    OD_QTY,
    OD_SIDE,
    OD_STATUS,
    OD_STOP,
    OD_SYM,
    OD_TS_SUBMIT,
    OD_TYPE,
    ORDER_TYPES,
    STATUS_NAMES,
)
from quantedge.backtest.runner import make_strategy
from quantedge.backtest.seeds import seed_l3
from quantedge.book.l2 import L2Book
from quantedge.book.l3 import L3Book
from quantedge.book.state import LevelBook, top_n_into
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.sampling import Snapshots
from quantedge.features.state import COL, FeatureState
from quantedge.signals.types import SIGNAL_BY_NAME, SIGNAL_DTYPE, SIGNAL_NAMES
from quantedge.timeutil import et_midnight_ns

#: the five accumulation detectors shown as scanner columns, then the composite
DETECTORS = ("absorption", "creep", "dark_pool", "sinkhole", "contraction")
SCORE_COLUMNS = (*DETECTORS, "composite", "exit")
LEVELS = 10  # ladder / heat-map depth per side
SLICE_ROWS = 1 << 16  # events per stage call during seeks
_ORDER_TYPE_NAMES = {v: k for k, v in ORDER_TYPES.items()}
_NAN = float("nan")


class SessionError(ValueError):
    """A request the session cannot honour (unknown symbol, seek outside the day...): a 4xx."""


class SignalStage(Protocol):
    """Turns each slice of the stream into signals (the detectors' engine plugs in here).

    ``step`` is called after the feature pipeline applied ``batch`` (``rows``: the feature snapshot
    rows it sampled) and before the strategy engine sees it; it returns the SIGNAL_DTYPE records
    whose ``ts_recv`` lies in the batch.  ``reset`` starts a new day (seeking backwards rebuilds
    every stage)."""

    def step(self, batch: np.ndarray, rows: Snapshots) -> np.ndarray: ...

    def reset(self, n_symbols: int) -> None: ...


class DetectorStage:
    """The project's signal engine as a session stage: feature snapshot rows -> SIGNAL_DTYPE records.

    A snapshot row is stamped with its cadence boundary, but it can only be known when the symbol's
    first event after the boundary arrives; records therefore get ``ts_recv`` = the receive time of
    that event (never earlier than the data that made them), so the strategy engine sees no
    look-ahead and the result does not depend on how the stream was cut."""

    def __init__(self, config_path: str | Path | None = None, device: str = "cpu") -> None:
        from quantedge.signals.config import load_config

        self.config = load_config(config_path)
        self.device = device
        self.engine = None

    def reset(self, n_symbols: int) -> None:
        from quantedge.signals.engine import SignalEngine

        self.engine = SignalEngine(n_symbols, self.config, device=self.device)
        self._tlast = np.full(n_symbols, np.iinfo(np.int64).min, np.int64)  # per-symbol event clocks

    def step(self, batch: np.ndarray, rows: Snapshots) -> np.ndarray:
        from quantedge.backtest.pipeline import stamp_known

        if self.engine is None:
            return np.zeros(0, SIGNAL_DTYPE)
        rec = (self.engine.step(rows).records(self.engine.emit_min) if len(rows)
               else np.zeros(0, SIGNAL_DTYPE))
        return stamp_known(batch, self._tlast, rec)[0]  # every batch: the clocks stay in step


def _fmt_et(ns: int) -> str:
    """HH:MM:SS.mmm in US/Eastern for labels and messages."""
    from quantedge.timeutil import et_dates

    d = int(et_dates(np.array([ns], np.int64))[0])
    midnight = et_midnight_ns(dt.date(d // 10000, d // 100 % 100, d % 100))
    s = (ns - midnight) / 1e9
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{sec:06.3f}"


# -------------------------------------------------------------------------------------------------
# the event source: the whole day in memory (files) or a re-startable catalog stream
# -------------------------------------------------------------------------------------------------
class _Cursor:
    """Merge-ordered events with a read position; ``take_until`` hands out the next slice."""

    def __init__(self, factory: Callable[[], Iterable[np.ndarray]]) -> None:
        self.factory = factory
        self.reset()

    def reset(self) -> None:
        self._it: Iterator[np.ndarray] = iter(self.factory())
        self._buf = ev.empty(0)
        self._pos = 0
        self.consumed = 0

    def _fill(self) -> bool:
        while self._pos >= self._buf.shape[0]:
            nxt = next(self._it, None)
            if nxt is None:
                return False
            self._buf, self._pos = nxt, 0
        return True

    def next_ts(self) -> int | None:
        return int(self._buf["ts_recv"][self._pos]) if self._fill() else None

    def take_until(self, t: int, max_rows: int) -> np.ndarray:
        """Events with ts_recv <= t, at most max_rows (within the current buffered batch)."""
        if not self._fill():
            return ev.empty(0)
        ts = self._buf["ts_recv"]
        end = min(self._pos + max_rows, self._buf.shape[0])
        k = self._pos + int(np.searchsorted(ts[self._pos : end], t, side="right"))
        out = self._buf[self._pos : k]
        self._pos = k
        self.consumed += out.shape[0]
        return out


@dataclass
class DayInfo:
    names: list[str]
    t0: int  # first ts_recv
    t1: int  # last ts_recv
    n_events: int
    kinds: set[int]
    date: str


def _scan(batches: Iterable[np.ndarray]) -> tuple[int, int, int, set[int], np.ndarray]:
    t0, t1, n, kinds, syms = None, 0, 0, set(), set()
    for b in batches:
        if b.shape[0] == 0:
            continue
        t0 = int(b["ts_recv"][0]) if t0 is None else t0
        t1 = int(b["ts_recv"][-1])
        n += b.shape[0]
        kinds.update(int(k) for k in np.unique(b["kind"]))
        syms.update(int(s) for s in np.unique(b["symbol"]))
    if t0 is None:
        raise SessionError("the selected data holds no events")
    return t0, t1, n, kinds, np.array(sorted(syms), np.int32)


# -------------------------------------------------------------------------------------------------
# bounded per-symbol history
# -------------------------------------------------------------------------------------------------
class _History:
    """Per-symbol ring of (t, bid, ask, last) points; when full, every other point is dropped and
    the sampling stride doubles, so a whole day fits at a resolution that degrades gracefully."""

    def __init__(self, n_symbols: int, capacity: int) -> None:
        self.cap = capacity
        self.t = np.zeros((n_symbols, capacity), np.int64)
        self.v = np.zeros((n_symbols, capacity, 3), np.float32)
        self.n = np.zeros(n_symbols, np.int64)
        self.stride = np.ones(n_symbols, np.int64)
        self.skip = np.zeros(n_symbols, np.int64)

    def add(self, syms: np.ndarray, t: int, vals: np.ndarray) -> np.ndarray:
        """Append one point for each symbol in syms; returns the mask of points actually kept."""
        kept = np.zeros(syms.shape[0], bool)
        for j, s in enumerate(syms):
            self.skip[s] += 1
            if self.skip[s] < self.stride[s]:
                continue
            self.skip[s] = 0
            if self.n[s] >= self.cap:
                half = self.cap // 2
                self.t[s, :half] = self.t[s, 0 : self.cap : 2][:half]
                self.v[s, :half] = self.v[s, 0 : self.cap : 2][:half]
                self.n[s] = half
                self.stride[s] *= 2
            k = self.n[s]
            self.t[s, k] = t
            self.v[s, k] = vals[j]
            self.n[s] = k + 1
            kept[j] = True
        return kept

    def get(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        k = int(self.n[s])
        return self.t[s, :k], self.v[s, :k]


class _Tape:
    """Last ``cap`` prints per symbol: ts, price, size, aggressor side, conditions, venue."""

    def __init__(self, n_symbols: int, cap: int) -> None:
        self.cap = cap
        self.rows = np.zeros((n_symbols, cap, 6), np.int64)
        self.n = np.zeros(n_symbols, np.int64)  # total prints ever (ring position = n % cap)

    def add(self, trades: np.ndarray) -> None:
        sym = trades["symbol"]
        cols = (
            trades["ts_recv"],
            trades["price"],
            trades["size"],
            trades["side"].astype(np.int64),
            trades["conditions"].astype(np.int64),
            trades["venue"].astype(np.int64),
        )
        for i in range(trades.shape[0]):
            s = sym[i]
            k = self.n[s] % self.cap
            for c in range(6):
                self.rows[s, k, c] = cols[c][i]
            self.n[s] += 1

    def get(self, s: int, since: int = 0) -> tuple[np.ndarray, int]:
        """Prints numbered >= since (oldest first, at most cap) and the next number."""
        total = int(self.n[s])
        first = max(since, total - self.cap, 0)
        idx = np.arange(first, total) % self.cap
        return self.rows[s, idx], total


def trade_rows(rows: np.ndarray) -> list[list]:
    """Tape rows as JSON lists: [ts_ns, price $, size, side, off_exchange 0/1, conditions]."""
    return [
        [
            int(r[0]),
            r[1] / ev.PRICE_SCALE,
            int(r[2]),
            int(r[3]),
            1 if int(r[4]) & ev.COND_OFF_EXCHANGE else 0,
            ev.condition_names(int(r[4])),
        ]
        for r in rows
    ]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# -------------------------------------------------------------------------------------------------
# the session
# -------------------------------------------------------------------------------------------------
class ReplaySession:
    """Plays one configured day (see module docstring).  Thread-safe: every public method takes
    the session lock, so the web server's replay task and its request handlers never interleave."""

    def __init__(
        self,
        cfg: BacktestConfig,
        signals: np.ndarray | None = None,
        signal_stage: SignalStage | None = None,
        history_points: int = 4000,
        tape_len: int = 300,
        heat_cols: int = 600,
        output_dir: Path | None = None,
        signal_cadence_ns: int = 1_000_000_000,
    ) -> None:
        if signals is not None and signals.dtype != SIGNAL_DTYPE:
            raise SessionError("signals must be a SIGNAL_DTYPE array")
        self.cfg = cfg
        self.lock = threading.RLock()
        self.signal_stage = signal_stage
        self.signal_cadence_ns = signal_cadence_ns
        self.given_signals = (
            np.sort(signals, order=("ts_recv", "seq")) if signals is not None else np.zeros(0, SIGNAL_DTYPE)
        )
        self.output_dir = Path(output_dir) if output_dir else Path(cfg.output)
        names, batches, total = load_events(cfg)
        if signals is None and cfg.signals and "path" in cfg.signals:
            from quantedge.backtest.pipeline import read_signal_file

            self.given_signals = read_signal_file(cfg.resolve(str(cfg.signals["path"])), names)[0]
        day = np.concatenate(list(batches)) if total else None
        self._events: np.ndarray | None = day

        def factory() -> Iterable[np.ndarray]:
            if day is None:  # catalog: a fresh bounded-memory stream each time the day restarts
                return load_events(cfg)[1]
            return (day[i : i + SLICE_ROWS] for i in range(0, day.shape[0], SLICE_ROWS))

        t0, t1, n, kinds, present = _scan(factory())
        present_names = [names[i] for i in present if 0 <= i < len(names)]
        from quantedge.timeutil import et_dates

        d = int(et_dates(np.array([t0], np.int64))[0])
        self.info = DayInfo(
            names=names,
            t0=t0,
            t1=t1,
            n_events=n,
            kinds=kinds,
            date=f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}",
        )
        self.present = present
        self.present_names = present_names
        self.ns = max(len(names), 1)
        self.book_mode = "l3" if ev.KIND_ORDER in kinds else "l2" if ev.KIND_DEPTH in kinds else "nbbo"
        self.seeds = self._find_seeds()
        self.cursor = _Cursor(factory)
        self.hist_cap, self.tape_len, self.heat_cap = history_points, tape_len, heat_cols
        self.speed = 10.0
        self.paused = True
        self._build()

    # ------------------------------------------------------------------ set-up
    def _find_seeds(self) -> dict[int, tuple[np.ndarray, int]]:
        """LOBSTER days open with a populated book the message file lacks: the first orderbook
        row seeds the display book (symbol id -> (truth row (2, L, 2), levels)) and, with message 1
        undone, the backtest venue's book (as `quantedge backtest` does)."""
        from quantedge.backtest.seeds import find_seeds

        out, self.seed_note = find_seeds(self.cfg, self.info.names, self.info.date, self.present)
        return out

    def _new_book(self) -> LevelBook | None:
        if self.book_mode == "nbbo":
            return None
        if self.book_mode == "l2":
            return L2Book.allocate(self.ns, capacity=128)
        mo = int(min(1 << 22, max(1 << 16, self.ns * 8192)))
        book = L3Book.allocate(self.ns, capacity=256, max_orders=mo)
        for s, (row, levels) in self.seeds.items():
            seed_l3(book, s, row, levels, first=ev.empty(0))  # row 1 as is: the display skips message 1
        return book

    def _build(self) -> None:
        """Fresh stages at the start of the day."""
        self.cursor.reset()
        cadence = self.signal_cadence_ns
        fstate = FeatureState.allocate(self.ns, n_levels=LEVELS, cadence_ns=cadence)
        self.pipeline = FeaturePipeline(self.book_mode, fstate, self._new_book())
        self.engine = Engine(
            make_strategy(self.cfg.strategy, self.cfg.params), self.ns, self.cfg.engine, self.info.names
        )
        self.engine.seed_opening_books(self.seeds, self.seed_note)
        self.bt_stage = None
        if self.cfg.signals and "path" not in self.cfg.signals:
            from quantedge.backtest.pipeline import signal_inputs

            self.bt_stage = signal_inputs(self.cfg, self.info.names)[0]
        if self.signal_stage is not None and self.bt_stage is None:
            self.signal_stage.reset(self.ns)
        self.signals = np.zeros(0, SIGNAL_DTYPE)  # signals known so far (ts_recv <= now)
        self._sig_chunks: list[np.ndarray] = []
        self._given_pos = -1
        self.scores = np.full((self.ns, len(SCORE_COLUMNS)), np.nan, np.float32)
        self.last_signal = np.zeros(self.ns, np.int64)  # index + 1 into signal list, 0 = none
        self.now = self.info.t0 - 1
        self.finished = False
        self.metrics: dict | None = None
        self.hist = _History(self.ns, self.hist_cap)
        self.tape = _Tape(self.ns, self.tape_len)
        self.heat: dict[int, list] = {}  # watched symbol -> ring of (t, bid px/sz, ask px/sz)
        self.watched: dict[int, int] = {}  # symbol -> number of watchers
        self.dirty = np.zeros(self.ns, bool)  # touched since the last scanner update
        self.version = 0  # bumps on every rebuild (clients resynchronise)
        self._pending_seps = 0
        self.n_done = 0
        self._top_px = np.zeros((self.ns, 2, LEVELS), np.int64)
        self._top_sz = np.zeros((self.ns, 2, LEVELS), np.int64)
        self._top_kn = np.zeros((self.ns, 2, LEVELS), np.int64)
        self._fills_seen = 0

    # ------------------------------------------------------------------ driving
    def _apply(self, batch: np.ndarray) -> None:
        """One slice through every stage, in the order the live pipeline runs them."""
        if batch.shape[0] == 0:
            return
        feed = batch
        if self.seeds and self.n_done < 8:
            # the LOBSTER row-1 message is inside the seed row: the display book skips it
            first = np.zeros(batch.shape[0], bool)
            for s in self.seeds:
                first |= (batch["symbol"] == s) & (batch["seq"] < 2)
            if first.any():
                feed = batch[~first]
        self.pipeline.step(feed)
        new = self._signals_for(batch)
        self.engine.step(batch)
        trades = batch[batch["kind"] == ev.KIND_TRADE]
        if trades.shape[0]:
            self.tape.add(trades)
        self.dirty[np.unique(batch["symbol"])] = True
        if new.shape[0]:
            self._record_signals(new)
        self.n_done += batch.shape[0]
        self.now = max(self.now, int(batch["ts_recv"][-1]))

    def _signals_for(self, batch: np.ndarray) -> np.ndarray:
        """Signals of this slice: the backtest config's own signal stage or file records go to the
        engine exactly as ``quantedge backtest`` hands them over (``run_with_signals``); the
        display-only detector stage feeds the scanner and the markers, never the strategy."""
        t = int(batch["ts_recv"][-1])
        parts = []
        g = self.given_signals
        if g.shape[0]:
            if self._given_pos < 0:  # records before the first event are not delivered (as the backtest)
                self._given_pos = int(np.searchsorted(g["ts_recv"], int(batch["ts_recv"][0]), side="left"))
            k = int(np.searchsorted(g["ts_recv"], t, side="right"))
            if k > self._given_pos:
                recs = g[self._given_pos : k]
                self.engine.add_signals(recs)
                parts.append(recs)
                self._given_pos = k
        rows = self.pipeline.sampler.collect()
        self.pipeline.sampler._chunks.clear()
        self._history_rows(rows)
        if self.bt_stage is not None:
            recs = self.bt_stage.step(batch)
            if recs.shape[0]:
                self.engine.add_signals(recs)
                parts.append(recs)
        elif self.signal_stage is not None:
            made = self.signal_stage.step(batch, rows)
            if made.shape[0]:
                parts.append(made)
        if not parts:
            return np.zeros(0, SIGNAL_DTYPE)
        recs = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts), order=("ts_recv", "seq"))
        self._update_scores(recs)
        return recs[recs["triggered"] == 1]  # the log and the markers keep the triggers

    def _history_rows(self, rows: Snapshots) -> None:
        """Watched symbols get every feature snapshot row (1 s cadence) in their price history."""
        if not self.watched or len(rows) == 0:
            return
        for s in self.watched:
            m = rows.symbol == s
            if not m.any():
                continue
            F = rows.F[m]
            vals = np.stack([F[:, COL["bid"]], F[:, COL["ask"]], F[:, COL["last_price"]]], axis=1)
            k = int(self.hist.n[s])
            last = int(self.hist.t[s, k - 1]) if k else 0
            for t, v in zip(rows.ts[m], vals.astype(np.float32), strict=True):
                self.hist.add(np.array([s]), max(int(t), last), v[None, :])

    def _update_scores(self, rec: np.ndarray) -> None:
        """Latest score per symbol and signal (rows are in time order, so the last write wins)."""
        for k, name in enumerate(SCORE_COLUMNS):
            m = rec["signal"] == SIGNAL_BY_NAME[name]
            if m.any():
                self.scores[rec["symbol"][m], k] = rec["score"][m]
        self.dirty[np.unique(rec["symbol"])] = True

    def _record_signals(self, new: np.ndarray) -> None:
        base = self.signals.shape[0]
        self.signals = np.concatenate([self.signals, new])
        for i in range(new.shape[0]):
            s = int(new["symbol"][i])
            if not 0 <= s < self.ns:
                continue
            name = SIGNAL_NAMES.get(int(new["signal"][i]), "")
            if name in SCORE_COLUMNS:
                self.scores[s, SCORE_COLUMNS.index(name)] = new["score"][i]
            self.last_signal[s] = base + i + 1
            self.dirty[s] = True

    def advance_to(self, t: int, max_rows: int = 1 << 20) -> int:
        """Play every event with ts_recv <= t; returns the number of events applied."""
        with self.lock:
            if self.finished:
                return 0
            done = 0
            touched = np.zeros(self.ns, bool)
            while done < max_rows:
                b = self.cursor.take_until(t, min(SLICE_ROWS, max_rows - done))
                if b.shape[0] == 0:
                    break
                self._apply(b)
                touched[np.unique(b["symbol"])] = True
                done += b.shape[0]
                if b.shape[0] >= SLICE_ROWS:
                    self._sample(np.flatnonzero(touched))
                    self._sample_heat()
                    touched[:] = False
            if self.cursor.next_ts() is None:
                self.now = max(self.now, self.info.t1)
                self._finish()
            elif done < max_rows:
                self.now = max(self.now, min(t, self.info.t1))
            self._sample(np.flatnonzero(touched))
            if done:
                self._sample_heat()
            return done

    def _finish(self) -> None:
        if not self.finished:
            self.engine.finish()
            self.finished = True
            self.metrics = summarize(self.engine, self.cfg.return_step_ns)
            self.dirty[:] = True

    def _sample(self, syms: np.ndarray) -> None:
        if syms.shape[0] == 0:
            return
        if self.watched:  # watched symbols get the 1 s feature snapshot rows instead
            syms = syms[~np.isin(syms, list(self.watched))]
        F = self.pipeline.features.F
        vals = np.stack([F[syms, COL["bid"]], F[syms, COL["ask"]], F[syms, COL["last_price"]]], axis=1)
        self.hist.add(syms, self.now, vals.astype(np.float32))

    def _sample_heat(self) -> None:
        for s in self.heat:
            self._heat_add(s)

    def _ladder_arrays(self) -> None:
        b = self.pipeline.book
        top_n_into(b.lv, b.sd, LEVELS, self._top_px, self._top_sz, self._top_kn)

    def _heat_add(self, s: int) -> None:
        b = self.pipeline.book
        ring = self.heat[s]
        lv = b.lv[s, :, :LEVELS, :2]
        nl = b.sd[s, :, 0]
        col = [self.now] + [
            [[int(lv[si, i, 0]) / ev.PRICE_SCALE, int(lv[si, i, 1])] for i in range(min(LEVELS, int(nl[si])))]
            for si in range(2)
        ]
        ring.append(col)
        if len(ring) > self.heat_cap:
            del ring[: len(ring) - self.heat_cap]

    def tick(self, dt_s: float, max_rows: int) -> None:
        """One server frame: advance the clock by speed x wall time while playing."""
        with self.lock:
            if not self.paused and not self.finished:
                target = min(self.now + int(dt_s * self.speed * 1e9), self.info.t1)
                self.advance_to(max(target, self.info.t0), max_rows=max_rows)

    def new_cursor(self, s: int) -> dict:
        """A delta cursor positioned after what :meth:`symbol_snapshot` returns now."""
        with self.lock:
            t, _ = self.hist.get(s)
            return {
                "hist_t": int(t[-1]) if t.shape[0] else -1,
                "tape_next": int(self.tape.n[s]),
                "n_signals": int(self.signals.shape[0]),
                "n_fills": len(self.engine.fills),
                "od_sig": self._order_sig(s),
            }

    # ------------------------------------------------------------------ controls
    def play(self, speed: float | None = None) -> None:
        with self.lock:
            if speed is not None:
                self.set_speed(speed)
            self.paused = False

    def pause(self) -> None:
        with self.lock:
            self.paused = True

    def set_speed(self, speed: float) -> None:
        if not isinstance(speed, (int, float)) or not math.isfinite(speed) or not 0.1 <= speed <= 100_000:
            raise SessionError(f"speed must be a number between 0.1 and 100000 (x real time), got {speed!r}")
        self.speed = float(speed)

    def step(self, events: int = 0, seconds: float = 0.0) -> int:
        """Paused stepping: to the next receive time (default), by ``seconds`` of data, or by
        ``events`` events (whole timestamps)."""
        with self.lock:
            if self.finished:
                raise SessionError("the day has been played to the end; seek back to step again")
            if seconds:
                if not (isinstance(seconds, (int, float)) and 0 < seconds <= 86_400):
                    raise SessionError(f"step seconds must be in (0, 86400], got {seconds!r}")
                return self.advance_to(self.now + int(seconds * 1e9))
            if events and not (isinstance(events, int) and 0 < events <= 10_000_000):
                raise SessionError(f"step events must be an integer in 1..10000000, got {events!r}")
            nt = self.cursor.next_ts()
            if nt is None:
                self._finish()
                return 0
            if not events:
                return self.advance_to(nt)
            done = 0
            while done < events and (nt := self.cursor.next_ts()) is not None:
                done += self.advance_to(nt)
            return done

    def parse_time(self, value: str | int | float) -> int:
        """A seek target: ns since the epoch, 'HH:MM[:SS[.fff]]' ET on the session's day, or a
        fraction 0..1 of the day written as '50%'."""
        if isinstance(value, bool):
            raise SessionError(f"cannot read {value!r} as a time")
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise SessionError(f"cannot read {value!r} as a time")
            return int(value)
        v = str(value).strip()
        try:
            if v.endswith("%"):
                f = float(v[:-1]) / 100
                if not 0 <= f <= 1:
                    raise ValueError
                return self.info.t0 + int(f * (self.info.t1 - self.info.t0))
            if ":" in v:
                parts = v.split(":")
                if len(parts) not in (2, 3):
                    raise ValueError
                h, m = int(parts[0]), int(parts[1])
                sec = float(parts[2]) if len(parts) == 3 else 0.0
                if not (0 <= h < 24 and 0 <= m < 60 and 0 <= sec < 60):
                    raise ValueError
                mid = et_midnight_ns(dt.date.fromisoformat(self.info.date))
                return mid + int(((h * 60 + m) * 60 + sec) * 1e9)
            return int(v)
        except ValueError:
            raise SessionError(
                f"cannot read {value!r} as a time: use HH:MM:SS (ET), ns since the epoch, "
                "or a percentage of the day like 50%"
            ) from None

    def seek(self, target: str | int | float) -> int:
        """Jump to a replay time; backwards rebuilds the stages from the day's start."""
        with self.lock:
            t = self.parse_time(target)
            if t > self.info.t1:
                raise SessionError(
                    f"seek past the end: the day ends at {_fmt_et(self.info.t1)} ET (asked {_fmt_et(t)} ET)"
                )
            if t < self.info.t0 - 60 * 10**9 * 60 * 24:
                raise SessionError(f"seek before the day: it starts at {_fmt_et(self.info.t0)} ET")
            if t < self.now:
                watched = dict(self.watched)
                speed, paused = self.speed, self.paused
                version = self.version + 1
                self._build()
                self.version = version
                self.speed, self.paused = speed, paused
                for s, k in watched.items():
                    self.watched[s] = k
                    self.heat[s] = []
            return self.advance_to(t, max_rows=1 << 62)

    # ------------------------------------------------------------------ watching
    def symbol_id(self, name: str) -> int:
        if not isinstance(name, str) or name not in self.info.names:
            known = ", ".join(self.present_names[:20])
            raise SessionError(f"unknown symbol {name!r}; this session has: {known}")
        return self.info.names.index(name)

    def watch(self, s: int) -> None:
        with self.lock:
            self.watched[s] = self.watched.get(s, 0) + 1
            self.heat.setdefault(s, [])

    def unwatch(self, s: int) -> None:
        with self.lock:
            k = self.watched.get(s, 0) - 1
            if k <= 0:
                self.watched.pop(s, None)
                self.heat.pop(s, None)
            else:
                self.watched[s] = k

    # ------------------------------------------------------------------ views
    def clock(self) -> dict:
        return {
            "t": int(self.now),
            "t_et": _fmt_et(max(self.now, self.info.t0)),
            "speed": self.speed,
            "paused": self.paused,
            "finished": self.finished,
            "version": self.version,
            "progress": (max(self.now, self.info.t0) - self.info.t0) / max(1, self.info.t1 - self.info.t0),
            "events_done": int(self.n_done),
        }

    def meta(self) -> dict:
        with self.lock:
            return {
                "source": self.cfg.data.get("source"),
                "date": self.info.date,
                "symbols": self.present_names,
                "t0": self.info.t0,
                "t1": self.info.t1,
                "t0_et": _fmt_et(self.info.t0),
                "t1_et": _fmt_et(self.info.t1),
                "n_events": self.info.n_events,
                "book": self.book_mode,
                "strategy": self.cfg.strategy,
                "params": self.engine.strategy.p.__dict__,
                "start_cash": self.engine.pf.start_cash,
                "score_columns": list(SCORE_COLUMNS),
                "levels": LEVELS,
                **self.clock(),
            }

    def scanner_rows(self, only_dirty: bool = False) -> list[dict]:
        """One row per symbol: features, signal scores, last signal; ``only_dirty`` = changed ones."""
        with self.lock:
            syms = self.present
            if only_dirty:
                syms = syms[self.dirty[syms]]
            self.dirty[syms] = False
            F = self.pipeline.features.F
            rows = []
            for s in syms:
                f = F[s]
                last = self.last_signal[s]
                ls = None
                if last:
                    r = self.signals[last - 1]
                    ls = {
                        "t": int(r["ts_recv"]),
                        "t_et": _fmt_et(int(r["ts_recv"])),
                        "name": SIGNAL_NAMES.get(int(r["signal"]), str(int(r["signal"]))),
                        "score": float(r["score"]),
                    }
                sc = self.scores[s]
                rows.append(
                    {
                        "symbol": self.info.names[s],
                        "composite": _num(sc[SCORE_COLUMNS.index("composite")]),
                        "scores": {n: _num(sc[i]) for i, n in enumerate(SCORE_COLUMNS)},
                        "bid": _num(f[COL["bid"]]),
                        "ask": _num(f[COL["ask"]]),
                        "last": _num(f[COL["last_price"]]),
                        "spread": _num(f[COL["spread"]] / ev.PRICE_SCALE),
                        "spread_bps": _num(f[COL["spread_bps"]]),
                        "volume": _num(f[COL["session_volume"]]),
                        "vwap": _num(f[COL["vwap"]]),
                        "ofi_30s": _num(f[COL["ofi_30s"]]),
                        "offex_share": _num(1 - f[COL["lit_share_1h"]]),
                        "last_signal": ls,
                    }
                )
            return rows

    def ladder(self, s: int) -> dict:
        """Top LEVELS of the display book: prices in dollars, sizes in shares, known flags."""
        with self.lock:
            b = self.pipeline.book
            if b is None:
                return {"bid": [], "ask": []}
            lv, sd = b.lv, b.sd
            out = {}
            for si, name in ((0, "bid"), (1, "ask")):
                k = min(int(sd[s, si, 0]), LEVELS)
                out[name] = [
                    [int(lv[s, si, i, 0]) / ev.PRICE_SCALE, int(lv[s, si, i, 1]), int(lv[s, si, i, 3])]
                    for i in range(k)
                ]
            return out

    def orders(self, s: int | None = None) -> list[dict]:
        """The strategy's orders at the venue, with the estimated queue position of resting limits."""
        with self.lock:
            v = self.engine.venue
            od = v.od[: v.n_od]
            if s is not None:
                od = od[od[:, OD_SYM] == s]
            out = []
            for r in od:
                st = int(r[OD_STATUS])
                out.append(
                    {
                        "id": int(r[OD_ID]),
                        "symbol": self.info.names[int(r[OD_SYM])],
                        "side": "buy" if r[OD_SIDE] > 0 else "sell",
                        "type": _ORDER_TYPE_NAMES.get(int(r[OD_TYPE]), "?"),
                        "qty": int(r[OD_QTY]),
                        "filled": int(r[OD_FILLED]),
                        "limit": int(r[OD_LIMIT]) / ev.PRICE_SCALE or None,
                        "stop": int(r[OD_STOP]) / ev.PRICE_SCALE or None,
                        "status": STATUS_NAMES.get(st, str(st)),
                        "queue_ahead": int(r[OD_AHEAD]) if st == 2 and r[OD_LIMIT] else None,
                        "t": int(r[OD_TS_SUBMIT]),
                        "tag": v.tags.get(int(r[OD_ID]), ""),
                        "reason": v.reject_reasons.get(int(r[OD_ID]), ""),
                    }
                )
            return out

    def fills(self, s: int | None = None, since: int = 0) -> list[dict]:
        with self.lock:
            out = []
            for f in self.engine.fills[since:]:
                if s is None or f.symbol == s:
                    out.append(
                        {
                            "t": f.ts,
                            "symbol": self.info.names[f.symbol],
                            "side": "buy" if f.side > 0 else "sell",
                            "qty": f.qty,
                            "price": f.price_usd,
                            "fee": f.fee,
                            "reason": f.reason,
                            "liquidity": f.liquidity,
                            "tag": f.tag,
                            "order_id": f.order_id,
                        }
                    )
            return out

    def position(self, s: int) -> dict:
        with self.lock:
            pf = self.engine.pf
            p = pf.positions.get(s)
            qty = p.qty if p else 0
            avg = p.avg_px if p else 0.0
            mark = pf.mark_px(s)  # an open position: the engine marks it at every print
            return {
                "qty": int(qty),
                "avg_px": avg,
                "mark": mark,
                "unrealized": (mark - avg) * qty if (qty and mark is not None) else 0.0,
                **self.account(),
            }

    def account(self) -> dict:
        pf = self.engine.pf
        eq = float(pf.equity)
        return {
            "equity": eq,
            "cash": float(pf.cash),
            "pnl": eq - pf.start_cash,
            "fees": float(pf.fees),
            "realized": float(pf.realized()),
            "n_fills": len(self.engine.fills),
            "halted": bool(pf.halted),
        }

    def signal_log(self, s: int | None = None) -> list[dict]:
        with self.lock:
            sig = self.signals if s is None else self.signals[self.signals["symbol"] == s]
            return [signal_dict(r, self.info.names) for r in sig]

    def history(self, s: int) -> dict:
        with self.lock:
            t, v = self.hist.get(s)
            return {"t": t.tolist(), "bid": _clean(v[:, 0]), "ask": _clean(v[:, 1]), "last": _clean(v[:, 2])}

    def symbol_snapshot(self, s: int) -> dict:
        """Everything a newly opened symbol view needs; later changes come as deltas."""
        with self.lock:
            rows, nxt = self.tape.get(s)
            return {
                "type": "snapshot",
                "symbol": self.info.names[s],
                "clock": self.clock(),
                "history": self.history(s),
                "ladder": self.ladder(s),
                "heat": list(self.heat.get(s, [])),
                "tape": trade_rows(rows),
                "tape_next": nxt,
                "signals": self.signal_log(s),
                "orders": self.orders(s),
                "fills": self.fills(s),
                "position": self.position(s),
                "n_signals": int(self.signals.shape[0]),
                "n_fills": len(self.engine.fills),
            }

    def symbol_delta(self, s: int, cursor: dict) -> dict:
        """What changed for symbol s since ``cursor`` (updated in place): history points, prints,
        the ladder, new signals, orders, fills, position."""
        with self.lock:
            t, v = self.hist.get(s)
            h0 = cursor.get("hist_t", -1)
            k = int(np.searchsorted(t, h0, side="right")) if t.shape[0] else 0
            if k > t.shape[0]:
                k = t.shape[0]
            cursor["hist_t"] = int(t[-1]) if t.shape[0] else h0
            rows, nxt = self.tape.get(s, cursor.get("tape_next", 0))
            cursor["tape_next"] = nxt
            out = {
                "type": "delta",
                "symbol": self.info.names[s],
                "clock": self.clock(),
                "points": [
                    [int(t[i]), _num(v[i, 0]), _num(v[i, 1]), _num(v[i, 2])] for i in range(k, t.shape[0])
                ],
                "tape": trade_rows(rows),
                "ladder": self.ladder(s),
                "position": self.position(s),
            }
            ns_ = int(self.signals.shape[0])
            if ns_ > cursor.get("n_signals", 0):
                new = self.signals[cursor.get("n_signals", 0) :]
                out["signals"] = [signal_dict(r, self.info.names) for r in new[new["symbol"] == s]]
                cursor["n_signals"] = ns_
            nf = len(self.engine.fills)
            n_od = int(self.engine.venue.n_od)
            od_sig = self._order_sig(s)
            if nf != cursor.get("n_fills", 0) or od_sig != cursor.get("od_sig"):
                out["fills"] = self.fills(s, cursor.get("n_fills", 0))
                out["orders"] = self.orders(s)
                cursor["n_fills"], cursor["od_sig"], cursor["n_od"] = nf, od_sig, n_od
            return out

    def _order_sig(self, s: int) -> int:
        v = self.engine.venue
        od = v.od[: v.n_od]
        m = od[:, OD_SYM] == s
        return hash(od[m][:, [OD_STATUS, OD_FILLED, OD_AHEAD]].tobytes()) if m.any() else 0

    def summary(self) -> dict:
        """Equity and drawdown curves plus the backtest metrics (final once the day is played)."""
        with self.lock:
            curve = list(self.engine.equity_curve)
            eq_now = self.engine.pf.equity
            if not self.finished:
                curve.append((self.now, eq_now, self.engine.pf.cash, self.engine.pf.gross_exposure()))
            a = np.array([c[:2] for c in curve], dtype=np.float64) if curve else np.zeros((0, 2))
            eq = a[:, 1]
            peak = np.maximum.accumulate(eq) if eq.shape[0] else eq
            dd = eq / peak - 1 if eq.shape[0] else eq
            if self.finished:
                m = self.metrics or {}
            else:
                m = (
                    summarize(self.engine, self.cfg.return_step_ns)
                    if len(self.engine.equity_curve) > 1
                    else {}
                )
            return {
                "t": a[:, 0].astype(np.int64).tolist(),
                "equity": eq.tolist(),
                "drawdown": dd.tolist(),
                "metrics": {k: _jsonable(v) for k, v in m.items()},
                "final": self.finished,
                "account": self.account(),
                "trades": len(self.engine.trade_log),
            }

    def write_report(self) -> dict[str, Path]:
        """The backtest's own output files and HTML report for the played day (needs the end)."""
        with self.lock:
            if not self.finished:
                raise SessionError(
                    "the report is written once the day has been played to the end "
                    "(seek to the end or play on)"
                )
            from quantedge.backtest.outputs import write_outputs
            from quantedge.reports.backtest_report import write_reports

            m = dict(self.metrics or {})
            out = self.output_dir
            paths = write_outputs(out, self.engine, m)
            paths.update(write_reports(out, self.engine, m))
            return paths


def signal_dict(r: np.void, names: list[str]) -> dict:
    sid = int(r["signal"])
    s = int(r["symbol"])
    return {
        "t": int(r["ts_recv"]),
        "t_et": _fmt_et(int(r["ts_recv"])),
        "symbol": names[s] if 0 <= s < len(names) else str(s),
        "name": SIGNAL_NAMES.get(sid, str(sid)),
        "score": float(r["score"]),
        "triggered": bool(r["triggered"]),
        "explain": [_num(float(x)) for x in r["explain"]],
    }


def _clean(a: np.ndarray) -> list:
    return [None if not math.isfinite(float(x)) or x == 0 else float(x) for x in a]


def _jsonable(v):  # noqa: ANN001, ANN202
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v
