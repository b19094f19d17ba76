"""Calibrate detector parameters on simulated days with planted episodes (coordinate search).

This is how the defaults in ``config/strategy_params.yaml`` are chosen (docs/signals.md): simulate a
*calibration* set (seed 101 by default, never the evaluation seed), compute its books and features
once, then for one signal search its parameters one at a time over given values, keeping a change
when it raises the objective min(precision, recall) (ties: the higher sum), for a few rounds.  Only
the signal scoring reruns per trial (the feature rows are kept in memory), so a trial costs about a
second for 120 symbol-days.  The result is a full parameter file (the starting config with the best
values) and a log of every accepted step; check it on another seed with ``evaluate-signals``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from quantedge.features.sampling import Snapshots
from quantedge.signals.config import SignalConfig, SignalConfigError, render_yaml
from quantedge.signals.evaluate import Counts, match, score_rows, symbol_snapshots
from quantedge.signals.logic import INDEX, PARAMS
from quantedge.signals.types import SIGNAL_NAMES

#: signal name -> output column k
SIGNAL_K = {SIGNAL_NAMES[k + 1]: k for k in range(len(SIGNAL_NAMES))}


class CalibrationError(ValueError):
    """A bad signal name, grid or parameter value; the message names it."""


@dataclass
class CalibrationSet:
    """Feature snapshot rows and labels of simulated symbols (computed once, scored many times)."""

    rows: list[Snapshots]
    labels: list[list[dict]]
    seed: int
    symbol_days: int


def _job(args: tuple) -> tuple[Snapshots, list[dict]]:
    seed, index, regime, days, start = args
    return symbol_snapshots(seed, index, regime, days, start)


def simulate_set(n_symbols: int = 40, days: int = 3, seed: int = 101, penny_share: float = 0.8,
                 workers: int | None = None) -> CalibrationSet:
    """Simulate ``n_symbols`` x ``days`` (as ``evaluate-signals`` does) and keep their snapshot rows."""
    start = dt.date(2024, 1, 2)
    n_penny = round(penny_share * n_symbols)
    jobs = [(seed, i, "penny" if i < n_penny else "large", days, start) for i in range(n_symbols)]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if workers <= 1:
        res = [_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            res = list(pool.map(_job, jobs))
    return CalibrationSet([r for r, _ in res], [lab for _, lab in res], seed, n_symbols * days)


def signal_column(signal: str) -> int:
    """Output column k of a signal name; a clear error for an unknown one."""
    if signal not in SIGNAL_K:
        raise CalibrationError(f"--signal {signal!r}: choose one of {', '.join(SIGNAL_K)}")
    return SIGNAL_K[signal]


def quality(cs: CalibrationSet, config: SignalConfig, k: int) -> Counts:
    """Precision / recall counts of output column ``k`` at ``config`` over the whole set."""
    total = Counts()
    for rows, labels in zip(cs.rows, cs.labels, strict=True):
        _, trig = score_rows(rows, config)
        total.add(match(rows.ts, trig[:, k], labels, k))
    return total


def objective(c: Counts) -> tuple[float, float]:
    """min(precision, recall), then their sum (NaN -> 0)."""
    p = c.precision if c.precision == c.precision else 0.0
    r = c.recall if c.recall == c.recall else 0.0
    return min(p, r), p + r


@dataclass
class Step:
    round: int
    name: str
    value: float
    precision: float
    recall: float


@dataclass
class CalibrationResult:
    signal: str
    start: Counts
    best: Counts
    config: SignalConfig
    steps: list[Step] = field(default_factory=list)
    trials: int = 0


def parse_grid(items: Sequence[str], signal: str) -> dict[str, list[float]]:
    """``["creep.on_score=0.3,0.35"]`` -> ``{"creep.on_score": [0.3, 0.35]}``; names are checked."""
    grid: dict[str, list[float]] = {}
    for item in items:
        if "=" not in item:
            raise CalibrationError(f"--grid {item!r}: expected section.key=v1,v2,...")
        name, vals = (x.strip() for x in item.split("=", 1))
        if name not in INDEX:
            raise CalibrationError(f"--grid {item!r}: unknown parameter {name!r}")
        try:
            values = [float(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise CalibrationError(f"--grid {item!r}: values must be numbers") from None
        if not values:
            raise CalibrationError(f"--grid {item!r}: no values")
        p = PARAMS[INDEX[name]]
        bad = [v for v in values if not p.lo <= v <= p.hi]
        if bad:
            raise CalibrationError(f"--grid {item!r}: {bad[0]:g} is outside [{p.lo:g}, {p.hi:g}] ({p.unit})")
        grid[name] = values
    if not grid:
        raise CalibrationError(f"give at least one --grid {signal}.<key>=v1,v2,...")
    return grid


def coordinate_search(cs: CalibrationSet, config: SignalConfig, signal: str, grid: dict[str, list[float]],
                      rounds: int = 2, on_trial: Callable[[str, float, Counts], None] | None = None
                      ) -> CalibrationResult:
    """Search ``grid`` one parameter at a time from ``config``, keeping improvements of
    :func:`objective` for signal ``signal``; values that make the config invalid (a ramp's ends out
    of order) are skipped."""
    k = signal_column(signal)
    best_cfg = config
    start = best = quality(cs, config, k)
    res = CalibrationResult(signal, start, best, config)
    for rnd in range(rounds):
        changed = False
        for name, values in grid.items():
            for v in values:
                if best_cfg[name] == v:
                    continue
                try:
                    cand = best_cfg.with_values(**{name.replace(".", "__", 1): v})
                except SignalConfigError:
                    continue
                c = quality(cs, cand, k)
                res.trials += 1
                if on_trial:
                    on_trial(name, v, c)
                if objective(c) > objective(best):
                    best, best_cfg, changed = c, cand, True
                    res.steps.append(Step(rnd + 1, name, v, c.precision, c.recall))
        if not changed:
            break
    res.best, res.config = best, best_cfg
    return res


def write_result(out: Path, res: CalibrationResult, cs: CalibrationSet, command: str) -> dict[str, str]:
    """``calibrated.yaml`` (a complete parameter file) and ``calibration.md`` (start, steps, result)."""
    out.mkdir(parents=True, exist_ok=True)
    yml = out / "calibrated.yaml"
    head = (f"# Calibrated for {res.signal} on seed {cs.seed} ({cs.symbol_days} simulated symbol-days) by:\n"
            f"#   {command}\n# min(precision, recall) {objective(res.start)[0]:.3f} -> "
            f"{objective(res.best)[0]:.3f}; check it on another seed with quantedge evaluate-signals.\n")
    yml.write_text(head + render_yaml(res.config))
    def row(label: str, c: Counts) -> str:
        return f"| {label} | {c.precision:.3f} | {c.recall:.3f} | {c.tp + c.fp} | {c.episodes} |"

    lines = [f"# Calibration of {res.signal}", "", f"`{command}`", "",
             f"Seed {cs.seed}, {cs.symbol_days} symbol-days, {res.trials} trials.", "",
             "| | precision | recall | triggers | episodes |", "|---|---:|---:|---:|---:|",
             row("start", res.start), row("best", res.best), "", "Accepted steps:", "",
             "| round | parameter | value | precision | recall |", "|---:|---|---:|---:|---:|"]
    lines += [f"| {s.round} | {s.name} | {s.value:g} | {s.precision:.3f} | {s.recall:.3f} |"
              for s in res.steps]
    if not res.steps:
        lines.append("| | (none: the starting values were best) | | | |")
    md = out / "calibration.md"
    md.write_text("\n".join(lines) + "\n")
    return {"yaml": str(yml), "markdown": str(md)}
