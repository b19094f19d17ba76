"""Typed backtest configuration from YAML (see config/backtest_sma.yaml and docs/backtester.md).

Every section maps to a dataclass; unknown keys are errors naming the section and key, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from quantedge.backtest.bars import parse_interval
from quantedge.backtest.engine import EngineConfig
from quantedge.backtest.fees import FeeSchedule
from quantedge.backtest.fields import config_number
from quantedge.backtest.latency import latency_from_config
from quantedge.backtest.risk import RiskLimits
from quantedge.backtest.venue import ExecutionConfig

TOP_KEYS = {
    "data",
    "strategy",
    "cash",
    "feed_latency_us",
    "order_latency",
    "execution",
    "fees",
    "risk",
    "metrics",
    "output",
    "state_path",
    "signals",
}
SIGNAL_KEYS = {"config", "path", "mode", "device", "emit_min", "params"}
STRATEGY_KEYS = {"name", "params"}
METRICS_KEYS = {"return_step"}
DATA_KEYS = {"source", "path", "date", "symbols", "catalog", "batch_rows", "download"}
DOWNLOAD_KEYS = {"host", "lookup_port", "rate"}


@dataclass
class BacktestConfig:
    data: dict
    strategy: str
    params: dict
    engine: EngineConfig
    output: Path
    return_step_ns: int = 60_000_000_000
    base_dir: Path = field(default_factory=Path.cwd)
    #: ``{config: yaml}`` (run the signal pipeline on the replay) or ``{path: parquet}`` (precomputed)
    signals: dict | None = None
    #: what :func:`load_events` read from a raw file (rows read / used / quarantined and why); the
    #: run's metrics carry it so a dropped bad row is never silent
    data_report: dict | None = None

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> BacktestConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"{path}: cannot read backtest config: {e}") from e
        except ValueError as e:  # a value YAML reads as a date but is none (2021-13-01)
            raise ValueError(f"{path}: cannot read backtest config: {e} (dates are YYYY-MM-DD)") from e
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        for k, v in (overrides or {}).items():
            _set_dotted(raw, k, v)
        where = f"{path} with --set {', '.join(overrides)}" if overrides else str(path)
        return cls.from_dict(raw, base_dir=path.parent, where=where)

    @classmethod
    def from_dict(cls, raw: dict, base_dir: Path | None = None, where: str = "config") -> BacktestConfig:
        unknown = set(raw) - TOP_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(TOP_KEYS)}")
        data = dict(raw.get("data") or {})
        bad = set(data) - DATA_KEYS
        if bad:
            raise ValueError(f"{where}: data: unknown key(s) {sorted(bad)}")
        if data.get("source") not in ("iqfeed_ticks", "lobster", "catalog"):
            raise ValueError(f"{where}: data.source must be iqfeed_ticks, lobster or catalog")
        dl = data.get("download")
        if dl is not None:
            if data["source"] != "catalog" or not isinstance(dl, dict):
                raise ValueError(f"{where}: data.download is a mapping and only applies to source: catalog")
            if set(dl) - DOWNLOAD_KEYS:
                raise ValueError(f"{where}: data.download: unknown key(s) {sorted(set(dl) - DOWNLOAD_KEYS)}; "
                                 f"known: {sorted(DOWNLOAD_KEYS)}")
            if not data.get("symbols") or not data.get("date"):
                raise ValueError(f"{where}: data.download needs data.symbols and data.date (what to fetch)")
        if data.get("date") is not None:
            try:
                data["date"] = dt.date.fromisoformat(str(data["date"])).isoformat()
            except ValueError:
                raise ValueError(f"{where}: data.date: expected a date YYYY-MM-DD, "
                                 f"got {data['date']!r}") from None
        if "batch_rows" in data:
            data["batch_rows"] = int(_number(data["batch_rows"], "data.batch_rows", where, positive=True))
        if data["source"] != "catalog" and not data.get("path"):
            raise ValueError(f"{where}: data.path is required for source {data['source']}")
        st = raw.get("strategy") or {}
        if not isinstance(st, dict) or "name" not in st:
            raise ValueError(f"{where}: strategy.name is required")
        sections = (("strategy", st, STRATEGY_KEYS), ("metrics", raw.get("metrics"), METRICS_KEYS))
        for section, got, known in sections:
            if isinstance(got, dict) and set(got) - known:
                raise ValueError(f"{where}: {section}: unknown key(s) {sorted(set(got) - known)}; "
                                 f"known: {sorted(known)}")
        _check_strategy(str(st["name"]), st.get("params"), where)
        cash = _number(raw.get("cash", 100_000.0), "cash", where, positive=True)
        feed_us = _number(raw.get("feed_latency_us", 0), "feed_latency_us", where)
        try:
            eng = EngineConfig(
                cash=cash,
                feed_latency_ns=int(feed_us * 1000),
                order_latency=latency_from_config(raw.get("order_latency")),
                execution=ExecutionConfig.from_dict(raw.get("execution")),
                fees=FeeSchedule.from_dict(raw.get("fees")),
                risk=RiskLimits.from_dict(raw.get("risk")),
                state_path=raw.get("state_path"),
            )
            step = parse_interval((raw.get("metrics") or {}).get("return_step", "1min"))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from e
        sig = raw.get("signals")
        if sig is not None:
            sig = _check_signals(sig, where)
        return cls(
            signals=sig,
            data=data,
            strategy=str(st["name"]),
            params=dict(st.get("params") or {}),
            engine=eng,
            output=Path(raw.get("output", "backtest_out")),
            return_step_ns=step,
            base_dir=base_dir or Path.cwd(),
        )

    def check_data(self) -> None:
        """The configured data is there (a file for iqfeed_ticks / lobster, a catalog folder unless
        it is to be downloaded); a ValueError naming the key and both places looked in otherwise."""
        d = self.data
        if d["source"] == "catalog":
            root = self.resolve(d.get("catalog", "catalog"))
            if not root.is_dir() and d.get("download") is None:
                raise ValueError(f"data.catalog: {root}: no such catalog "
                                 "(import data first: quantedge import …)")
            return
        given = str(d["path"])
        if not self.resolve(given).exists():
            if Path(given).is_absolute():
                where = given
            elif given.startswith(PACKAGE_PREFIX):
                where = f"{given} ({self.resolve(given)})"
            elif given.startswith(SHARED_PREFIX):
                where = (f"{given} ({self.resolve(given)}; the real-data folder is QUANTEDGE_SHARED_DATA "
                         "when set, else shared/data beside the checkout, else ../shared/data)")
            else:
                where = f"{given} (looked in {Path.cwd()} and in the config's folder {self.base_dir})"
            raise ValueError(f"data.path: {where}: no such file")

    def resolve(self, p: str) -> Path:
        """A configured path: ``quantedge:<rel>`` names a file inside the installed package (the bundled
        samples: the same config works from a checkout and from a wheel); ``shared:<rel>`` a file in
        the real-data folder (:func:`shared_file`); otherwise as given when absolute or present from
        the working directory, else relative to the config's folder."""
        if p.startswith(PACKAGE_PREFIX):
            return package_file(p)
        if p.startswith(SHARED_PREFIX):
            return shared_file(p)
        q = Path(p)
        return q if q.is_absolute() or q.exists() else (self.base_dir / q)


#: prefix of a configured path that names a file inside the installed quantedge package
PACKAGE_PREFIX = "quantedge:"
#: prefix of a configured path that names a file in the real-data folder (``../shared/data``)
SHARED_PREFIX = "shared:"


def package_file(p: str) -> Path:
    """``quantedge:samples/x.csv`` -> that file in the installed package (checkout or wheel)."""
    import quantedge

    return Path(quantedge.__file__).resolve().parent / p[len(PACKAGE_PREFIX):].lstrip("/")


def shared_file(p: str) -> Path:
    """``shared:iqfeed/x.csv`` -> that file in the real-data folder, looked up when the path is used:
    ``QUANTEDGE_SHARED_DATA`` when set, else ``shared/data`` beside a source checkout, else
    ``../shared/data`` from the working directory.  A config that reads the real data this way works
    from a checkout, from an installed wheel and from any working directory (with the variable set
    where no checkout is near)."""
    from quantedge import shared_data_dir

    return shared_data_dir() / p[len(SHARED_PREFIX):].lstrip("/")


def _number(v: object, key: str, where: str, positive: bool = False) -> float:
    try:
        return config_number(v, key, positive)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _check_signals(sig: object, where: str) -> dict:
    """The ``signals`` section: exactly one of ``config`` (a signal YAML, or ``default``) and ``path``."""
    if not isinstance(sig, dict):
        raise ValueError(f"{where}: signals must be a mapping like {{config: config/strategy_params.yaml}}")
    bad = set(sig) - SIGNAL_KEYS
    if bad:
        raise ValueError(f"{where}: signals: unknown key(s) {sorted(bad)}; known: {sorted(SIGNAL_KEYS)}")
    if ("config" in sig) == ("path" in sig):
        raise ValueError(f"{where}: signals needs exactly one of 'config' (run the signal pipeline) "
                         "or 'path' (a Parquet file of signal records)")
    if sig.get("mode", "auto") not in ("auto", "l3", "l2", "nbbo"):
        raise ValueError(f"{where}: signals.mode must be auto, l3, l2 or nbbo, got {sig['mode']!r}")
    if sig.get("device", "auto") not in ("auto", "cpu", "gpu", "gpu-path"):
        raise ValueError(f"{where}: signals.device must be auto, cpu, gpu or gpu-path, got {sig['device']!r}")
    if "params" in sig:
        if "config" not in sig:
            raise ValueError(f"{where}: signals.params applies to the signal pipeline (signals.config), "
                             "not to precomputed records")
        prm = sig["params"]
        if not isinstance(prm, dict) or not all(isinstance(v, dict | None) for v in prm.values()):
            raise ValueError(f"{where}: signals.params must be a mapping {{section: {{key: number}}}} "
                             f"like config/strategy_params.yaml, got {prm!r}")
    if "emit_min" in sig:
        try:
            em = float(sig["emit_min"])
        except (TypeError, ValueError):
            em = -1.0
        if not 0.0 <= em <= 1.0:
            raise ValueError(f"{where}: signals.emit_min must be a number in [0, 1], got {sig['emit_min']!r}")
    return dict(sig)


def _check_strategy(name: str, params: Any, where: str) -> None:
    """The strategy exists and its parameters fit its Params (names and types), at load time: a typo
    is a configuration error, not a failed run."""
    from quantedge.strategies import registry
    from quantedge.strategies.base import build_params

    reg = registry()
    if name not in reg:
        raise ValueError(f"{where}: strategy.name: {name!r} unknown; available: {sorted(reg)}")
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"{where}: strategy.params: expected a mapping, got {params!r}")
    build_params(reg[name].Params, params, where=f"{where}: strategy.params")


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = yaml.safe_load(value) if isinstance(value, str) else value


def load_events(cfg: BacktestConfig) -> tuple[list[str], Iterator[np.ndarray], int]:
    """(symbol names, batches, total events or 0 when unknown) for the configured data."""
    from quantedge.catalog.symbols import NameTable
    from quantedge.timeutil import et_midnight_ns

    cfg.check_data()
    d = cfg.data
    src = d["source"]
    batch_rows = int(d.get("batch_rows", 1 << 18))
    if src == "catalog":
        from quantedge.catalog.store import Catalog

        root = cfg.resolve(d.get("catalog", "catalog"))
        cat = Catalog(root)
        date = d.get("date")
        if d.get("download") is not None:
            ensure_days(cat, d["symbols"], str(date), d["download"])
        stream = cat.stream(symbols=d.get("symbols"), start=date, end=date, batch_rows=batch_rows)
        return cat.symbols.names(), stream, 0
    names = NameTable()
    path = cfg.resolve(str(d["path"]))
    if src == "iqfeed_ticks":
        from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks

        ev_, rep = read_iqfeed_ticks(path, names)
    else:
        from quantedge.catalog.importers.lobster import read_lobster

        ev_, rep = read_lobster(path, names)
    if rep.rows_read == 0:
        raise ValueError(f"{path}: no rows read ({'; '.join(rep.notes) or 'empty or unreadable'})")
    cfg.data_report = {
        "source": str(path), "rows_read": rep.rows_read, "rows_used": rep.rows_imported,
        "rows_quarantined": rep.rows_quarantined, "reasons": dict(rep.reasons),
        "first_problems": [p.message() for p in rep.problems[:5]],
    }
    if d.get("date"):
        t0 = et_midnight_ns(dt.date.fromisoformat(str(d["date"])))
        ev_ = ev_[(ev_["ts_recv"] >= t0) & (ev_["ts_recv"] < t0 + 86_400 * 10**9)]
        if ev_.size == 0:
            raise ValueError(f"data.date: {path} has no events on {d['date']}")
    if ev_.size == 0:
        raise ValueError(f"{path}: no events to replay ({rep.rows_quarantined:,} of {rep.rows_read:,} rows "
                         "quarantined)")
    batches = (ev_[i : i + batch_rows] for i in range(0, ev_.size, batch_rows))
    return names.names(), batches, int(ev_.size)


def ensure_days(cat, symbols: list[str], date: str, download: dict) -> list[str]:
    """Auto-download: fetch each configured symbol-day the catalog lacks from the IQFeed (or simulator)
    lookup port named in ``data.download`` before the replay starts.  Returns the symbols fetched;
    a symbol-day that is still missing afterwards is an error naming it (a silent gap would skew the
    run)."""
    from quantedge.feeds.iqfeed.client import ClientConfig
    from quantedge.feeds.iqfeed.download import AutoDownloader

    ports = dict(ClientConfig().ports)
    ports["lookup"] = int(download.get("lookup_port", ports["lookup"]))
    client = ClientConfig(host=str(download.get("host", "127.0.0.1")), ports=ports,
                          history_rate=float(download.get("rate", 50.0)))
    auto = AutoDownloader(cat, client)
    fetched, missing = [], []
    for sym in symbols:
        had = auto.has(sym, date)
        try:
            ok = auto.ensure(sym, date)
        except OSError as e:
            raise ValueError(f"data.download: cannot reach the IQFeed lookup port {client.host}:"
                             f"{ports['lookup']} for {sym} {date}: {e}") from e
        if ok and not had:
            fetched.append(sym)
        elif not ok:
            missing.append(sym)
    if missing:
        raise ValueError(f"data.download: no tick history for {', '.join(missing)} on {date} "
                         f"from the lookup port {client.host}:{ports['lookup']}")
    return fetched
