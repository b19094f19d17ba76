"""Measured detection quality: simulated symbol-days with planted episodes, and false alarms on real days.

Simulated: :mod:`quantedge.synth` symbol-days (in memory) -> L2 books + features (1 s snapshots)
-> signals.  A trigger of signal X is a **true positive** when it falls inside a labelled episode of
X's kind on that symbol-day, from its start to ``TOLERANCE_S`` after its end (the feature windows
lag by up to 30 s); every other trigger is a false positive, including one inside an episode of
another kind.  **Precision** = true / all triggers; **recall** = episodes with at least one matching
trigger / all episodes of the kind; **lead time** = episode end - first matching trigger (how long
before the planted behaviour was over the detector fired; negative = fired in the tolerance after
it); **delay** = first matching trigger - episode start.  The composite counts every accumulation
kind; the exit signal counts ``dumping``.

Real days (no labels): triggers per symbol-hour of snapshot coverage on the LOBSTER AAPL/AMZN,
IQFeed NEPT and TAQ days — every trigger there is counted as a false alarm, an upper bound.

The thresholds were calibrated on seed 101 (20 symbols x 2 days); the evaluation uses another seed
(default 7), so the reported numbers are out of sample.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from quantedge.book.state import LV_SZ, SD_NLEV
from quantedge.book.venue import venue_event
from quantedge.features.sampling import Snapshots
from quantedge.signals.config import SignalConfig, load_config
from quantedge.signals.logic import N_SIG
from quantedge.signals.types import SIGNAL_NAMES

NS = 1_000_000_000
TOLERANCE_S = 30.0
CADENCE_NS = NS
#: label kind matched by each output column k (composite: any accumulation kind)
KIND_OF = ("absorption", "price_creep", "dark_pool", "sinkhole", "vol_contraction", "dumping")
ACCUMULATION = KIND_OF[:5]
SWEEP = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: intensity bands for the recall split (intensity is uniform in [0.15, 1])
BANDS = {"hard (0.15-0.43)": (0.0, 0.4333), "medium (0.43-0.72)": (0.4333, 0.7167),
         "easy (0.72-1)": (0.7167, 1.01)}
SIG_LABELS = tuple(SIGNAL_NAMES[k + 1] for k in range(N_SIG))


@dataclass
class Counts:
    """Match counts of one signal (at one threshold)."""

    tp: int = 0
    fp: int = 0
    hit: int = 0
    episodes: int = 0
    lead_s: list[float] = field(default_factory=list)
    delay_s: list[float] = field(default_factory=list)

    def add(self, o: Counts) -> None:
        self.tp += o.tp
        self.fp += o.fp
        self.hit += o.hit
        self.episodes += o.episodes
        self.lead_s += o.lead_s
        self.delay_s += o.delay_s

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.hit / self.episodes if self.episodes else float("nan")


def symbol_snapshots(seed: int, index: int, regime: str, days: int, start: dt.date
                     ) -> tuple[Snapshots, list[dict]]:
    """One simulated symbol over ``days`` days -> its 1 s feature snapshots (days in order) and labels."""
    from quantedge.book.l2 import L2Book
    from quantedge.features.pipeline import FeaturePipeline
    from quantedge.features.state import FeatureState
    from quantedge.synth.generate import business_days, simulate_symbol

    res = simulate_symbol(seed, index, regime, business_days(start, days), 0)
    p = FeaturePipeline("l2", FeatureState.allocate(1, cadence_ns=CADENCE_NS),
                        L2Book.allocate(1, capacity=256, tick=1))
    labels: list[dict] = []
    for day in res:
        p.step(day.events)
        labels += day.labels
    return p.snapshots(), labels


def match(ts: np.ndarray, trig: np.ndarray, labels: list[dict], k: int) -> Counts:
    """Count triggers of output column k against the labels of one symbol."""
    kinds = ACCUMULATION if k == N_SIG - 1 else (KIND_OF[k],)
    eps = [(lab["start_ns"], lab["end_ns"]) for lab in labels if lab["kind"] in kinds]
    tt = ts[trig == 1]
    c = Counts()
    tol = int(TOLERANCE_S * NS)
    inside = np.zeros(tt.shape[0], bool)
    for a, b in eps:
        m = (tt >= a) & (tt < b + tol)
        inside |= m
        c.episodes += 1
        if m.any():
            first = int(tt[m][0])
            c.hit += 1
            c.lead_s.append((b - first) / NS)
            c.delay_s.append((first - a) / NS)
    c.tp = int(inside.sum())
    c.fp = int((~inside).sum())
    return c


def score_rows(rows: Snapshots, config: SignalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Run the CPU signal path over one symbol's rows; returns (score, trig)."""
    from quantedge.signals.cpu import CpuSignals

    eng = CpuSignals(1, config.vector())
    n = len(rows)
    score, trig, _, _, _ = eng.step(np.ascontiguousarray(rows.ts, np.int64), np.zeros(n, np.int64),
                                    np.ascontiguousarray(rows.F, np.float64), n, config["trigger.emit_min"])
    return score.copy(), trig.copy()


def _sim_job(args: tuple) -> dict:
    seed, index, regime, days, start, values = args
    config = SignalConfig(values)
    rows, labels = symbol_snapshots(seed, index, regime, days, start)
    _, trig = score_rows(rows, config)
    at_default = [match(rows.ts, trig[:, k], labels, k) for k in range(N_SIG)]
    sweep = []
    for th in SWEEP:
        off = min(config["trigger.off_score"], th / 2)
        cfg = config.with_values(trigger__on_score=th, trigger__off_score=off)
        _, tr = score_rows(rows, cfg)
        sweep.append([match(rows.ts, tr[:, k], labels, k) for k in range(N_SIG)])
    tol = int(TOLERANCE_S * NS)
    eps = []
    for lab in labels:
        k = KIND_OF.index(lab["kind"])
        tt = rows.ts[trig[:, k] == 1]
        hit = bool(((tt >= lab["start_ns"]) & (tt < lab["end_ns"] + tol)).any())
        eps.append((k, float(lab["intensity"]), hit))
    return {"regime": regime, "labels": labels, "default": at_default, "sweep": sweep, "episodes": eps}


@dataclass
class SimResult:
    symbol_days: int
    episodes: int
    default: list[Counts]
    sweep: list[list[Counts]]  # [threshold][signal]
    #: recall per signal (k < 6) by intensity band: band -> [[hits, episodes] per signal]
    by_intensity: dict[str, list[list[int]]]


def evaluate_simulated(n_symbols: int = 50, days: int = 4, seed: int = 7, penny_share: float = 0.8,
                       config: SignalConfig | None = None, workers: int | None = None,
                       on_symbol: Callable[[int], None] | None = None) -> SimResult:
    """Simulate ``n_symbols`` x ``days`` symbol-days, run books -> features -> signals, count matches."""
    config = config or load_config()
    start = dt.date(2024, 1, 2)
    n_penny = round(penny_share * n_symbols)
    jobs = [(seed, i, "penny" if i < n_penny else "large", days, start, dict(config.values))
            for i in range(n_symbols)]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    default = [Counts() for _ in range(N_SIG)]
    sweep = [[Counts() for _ in range(N_SIG)] for _ in SWEEP]
    by_int: dict[str, list[list[int]]] = {b: [[0, 0] for _ in range(N_SIG - 1)] for b in BANDS}
    n_eps = 0
    results = map(_sim_job, jobs) if workers <= 1 else ProcessPoolExecutor(workers).map(_sim_job, jobs)
    for res in results:
        n_eps += len(res["labels"])
        for k in range(N_SIG):
            default[k].add(res["default"][k])
            for j in range(len(SWEEP)):
                sweep[j][k].add(res["sweep"][j][k])
        for k, x, hit in res["episodes"]:
            band = next(b for b, (lo, hi) in BANDS.items() if lo <= x < hi)
            by_int[band][k][0] += int(hit)
            by_int[band][k][1] += 1
        if on_symbol:
            on_symbol(1)
    return SimResult(n_symbols * days, n_eps, default, sweep, by_int)


# --- real days -------------------------------------------------------------------------------------

def _nbbo_from_taq(quotes: np.ndarray) -> np.ndarray:
    """NBBO quote events (bid, ask with FLAG_LAST) from TAQ per-venue quotes, one pair per change."""
    from quantedge.book.venue import VenueBook

    book = VenueBook.allocate(1, capacity=32, n_venues=32, tick=1)
    q = quotes[quotes["kind"] == 5]
    out = np.empty(q.shape[0] * 2, dtype=q.dtype)
    n = _taq_nbbo_kernel(book.lv, book.sd, book.bk, book.vq, book.vslot, q, out)
    return out[:n]


@njit(cache=True)
def _taq_nbbo_kernel(lv, sd, bk, vq, vslot, q, out):
    n = 0
    pb = -1
    pbs = -1
    pa = -1
    pas = -1
    for i in range(q.shape[0]):
        e = q[i]
        venue_event(lv, sd, bk, vq, vslot, 0, e.kind, e.action, e.venue, e.side, e.price, e.size, e.ts_event)
        if (e.flags & 0x80) == 0:
            continue
        b = lv[0, 0, 0, 0] if sd[0, 0, SD_NLEV] > 0 else 0
        bs = lv[0, 0, 0, LV_SZ] if sd[0, 0, SD_NLEV] > 0 else 0
        a = lv[0, 1, 0, 0] if sd[0, 1, SD_NLEV] > 0 else 0
        asz = lv[0, 1, 0, LV_SZ] if sd[0, 1, SD_NLEV] > 0 else 0
        if b == pb and bs == pbs and a == pa and asz == pas:
            continue
        pb, pbs, pa, pas = b, bs, a, asz
        for j in range(2):
            out[n] = e
            out[n].venue = 0
            out[n].side = 1 if j == 0 else -1
            out[n].price = b if j == 0 else a
            out[n].size = bs if j == 0 else asz
            out[n].flags = 0 if j == 0 else 0x80
            n += 1
    return n


def real_days(data: Path) -> list[tuple[str, Snapshots]]:
    """Feature snapshots of the real days (1 s cadence), by name; sources absent from ``data`` are
    left out."""
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.catalog.importers.taq import read_taq_quotes, read_taq_trades
    from quantedge.catalog.symbols import NameTable
    from quantedge.features.pipeline import FeaturePipeline
    from quantedge.features.replay import load_lobster_day, lobster_pipeline
    from quantedge.features.state import FeatureState

    out: list[tuple[str, Snapshots]] = []
    lob = (("AAPL 2012-06-21 (LOBSTER)", "lobster/LOBSTER_SampleFile_AAPL_2012-06-21_1.zip"),
           ("AMZN 2012-06-21 (LOBSTER, 5 levels)", "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"))
    for name, rel in lob:
        if (data / rel).exists():
            day = load_lobster_day(data / rel)
            p = lobster_pipeline(day, 1, cadence_ns=CADENCE_NS)
            p.step(day.events)
            out.append((name, p.snapshots()))
    nept = data / "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
    if nept.exists():
        events, _ = read_iqfeed_ticks(nept, NameTable())
        p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=CADENCE_NS))
        p.step(events)
        out.append(("NEPT 2021-03-01..03 (IQFeed)", p.snapshots()))
    tq, tt = data / "taq/sampleQDataRawMicroseconds.csv.gz", data / "taq/sampleTDataRawMicroseconds.csv.gz"
    if tq.exists() and tt.exists():
        names = NameTable()
        quotes, _ = read_taq_quotes(tq, names)
        trades, _ = read_taq_trades(tt, names)
        quotes = quotes[quotes["symbol"] == 0]
        trades = trades[trades["symbol"] == 0]
        nbbo = _nbbo_from_taq(quotes)
        ev = np.concatenate([nbbo, trades])
        ev = ev[np.lexsort((ev["kind"], ev["seq"], ev["ts_recv"]))]
        p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=CADENCE_NS, every_event=False))
        p.step(ev)
        out.append((f"{names.names()[0]} 2018-01-02..03 (TAQ, NBBO from venue quotes)", p.snapshots()))
    return out


def regular_hours(ts: np.ndarray) -> np.ndarray:
    """Rows inside 09:30-16:00 ET (the simulated session; real pre/post-market rows are left out)."""
    from zoneinfo import ZoneInfo

    et = ZoneInfo("America/New_York")
    out = np.zeros(ts.shape[0], bool)
    if ts.shape[0] == 0:
        return out
    days = np.unique((ts - 6 * 3600 * NS) // (86400 * NS))
    for d in days:
        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(d))
        o = int(dt.datetime(date.year, date.month, date.day, 9, 30, tzinfo=et).timestamp()) * NS
        out |= (ts >= o) & (ts < o + 23_400 * NS)
    return out


def false_alarms(rows: Snapshots, config: SignalConfig) -> tuple[float, np.ndarray]:
    """(symbol-hours covered, triggers per signal) over the regular-hours rows of one real series."""
    keep = regular_hours(rows.ts)
    sub = Snapshots(rows.ts[keep], rows.symbol[keep], rows.F[keep])
    if len(sub) == 0:
        return 0.0, np.zeros(N_SIG, np.int64)
    _, trig = score_rows(sub, config)
    hours = 0.0
    for d in np.unique((sub.ts - 6 * 3600 * NS) // (86400 * NS)):
        t = sub.ts[(sub.ts - 6 * 3600 * NS) // (86400 * NS) == d]
        hours += (t[-1] - t[0]) / NS / 3600.0
    return hours, trig.sum(axis=0).astype(np.int64)


# --- report -------------------------------------------------------------------------------------------

def markdown(sim: SimResult, real: list[tuple[str, float, np.ndarray]], command: str) -> str:
    """The quality tables as Markdown."""
    lines = [f"Produced by `{command}`.", "",
             f"Simulated: {sim.symbol_days} symbol-days, {sim.episodes} labelled episodes "
             "(intensity uniform in [0.15, 1]); default thresholds; match tolerance "
             f"{TOLERANCE_S:.0f} s after the episode end.", "",
             "| signal | matches label kind | triggers | precision | episodes | recall | median lead (s) "
             "| median delay (s) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for k in range(N_SIG):
        c = sim.default[k]
        kind = "any accumulation kind" if k == N_SIG - 1 else KIND_OF[k]
        lead = f"{np.median(c.lead_s):.0f}" if c.lead_s else "n/a"
        delay = f"{np.median(c.delay_s):.0f}" if c.delay_s else "n/a"
        lines.append(f"| {SIG_LABELS[k]} | {kind} | {c.tp + c.fp} | {c.precision:.2f} | {c.episodes} | "
                     f"{c.recall:.2f} | {lead} | {delay} |")
    lines += ["", "Recall by episode intensity:", "", "| signal | " + " | ".join(BANDS) + " |",
              "|---|" + "---:|" * len(BANDS)]
    for k in range(N_SIG - 1):
        cells = [f"{h / n:.2f} ({n})" if n else "n/a" for h, n in (sim.by_intensity[b][k] for b in BANDS)]
        lines.append(f"| {SIG_LABELS[k]} | " + " | ".join(cells) + " |")
    lines += ["", "Precision / recall sweep over the trigger threshold (every signal's `on_score` set to "
              "the column value, other parameters at defaults; the composite row moves its inputs' "
              "thresholds too, which anchor its rescaling, so it reads differently from the others):", "",
              "| signal | " + " | ".join(f"{th:.1f}" for th in SWEEP) + " |",
              "|---|" + "---:|" * len(SWEEP)]
    for k in range(N_SIG):
        cells = [f"{sim.sweep[j][k].precision:.2f} / {sim.sweep[j][k].recall:.2f}" for j in range(len(SWEEP))]
        lines.append(f"| {SIG_LABELS[k]} | " + " | ".join(cells) + " |")
    if real:
        lines += ["", "False alarms on real days (regular hours; every trigger counted as false):", "",
                  "| day | symbol-hours | " + " | ".join(SIG_LABELS) + " |",
                  "|---|---:|" + "---:|" * N_SIG]
        for name, hours, trig in real:
            cells = [f"{t / hours:.2f}" if hours > 0 else "n/a" for t in trig]
            lines.append(f"| {name} | {hours:.1f} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("(cells: triggers per symbol-hour)")
    return "\n".join(lines) + "\n"


def chart(sim: SimResult, path: Path) -> Path:
    """PNG: precision and recall per signal at defaults, and the precision-recall sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(N_SIG)
    a1.bar(x - 0.2, [c.precision for c in sim.default], 0.4, label="precision")
    a1.bar(x + 0.2, [c.recall for c in sim.default], 0.4, label="recall")
    a1.axhline(0.8, color="k", lw=0.8, ls="--")
    a1.set_xticks(x, SIG_LABELS, rotation=30)
    a1.set_ylim(0, 1.05)
    a1.set_title(f"At default thresholds ({sim.symbol_days} simulated symbol-days)")
    a1.legend()
    for k in range(N_SIG):
        p = [sim.sweep[j][k].precision for j in range(len(SWEEP))]
        r = [sim.sweep[j][k].recall for j in range(len(SWEEP))]
        a2.plot(r, p, marker="o", label=SIG_LABELS[k])
    a2.set_xlabel("recall")
    a2.set_ylabel("precision")
    a2.set_xlim(0, 1.05)
    a2.set_ylim(0, 1.05)
    a2.set_title("Sweep of on_score 0.2 .. 0.9")
    a2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
