"""Building a dashboard session from CLI-style options and serving it (used by the CLI, tests, bench)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantedge.backtest.config import BacktestConfig
from quantedge.dashboard.session import ReplaySession, SessionError
from quantedge.signals.types import SIGNAL_BY_NAME, SIGNAL_DTYPE

SAMPLE_LOBSTER = (
    Path(__file__).resolve().parents[1]
    / "samples"
    / "lobster"
    / "AMZN_2012-06-21_34200000_57600000_message_5.csv"
)
DEFAULT_STRATEGY = "rsi_reversion"
DEFAULT_PARAMS = {"interval": "1s", "qty": 100}


def build_config(
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    lobster: Path | None = None,
    iqfeed: Path | None = None,
    catalog: Path | None = None,
    date: str | None = None,
    symbols: list[str] | None = None,
    strategy: str | None = None,
    params: dict[str, Any] | None = None,
    output: Path | None = None,
) -> BacktestConfig:
    """The same typed config ``quantedge backtest`` reads; options fill or override its data and
    strategy sections.  With nothing given: the bundled LOBSTER AMZN excerpt."""
    if config is not None:
        cfg = BacktestConfig.load(config, overrides)
        raw_data = dict(cfg.data)
    else:
        cfg = None
        raw_data = {}
    if sum(x is not None for x in (lobster, iqfeed, catalog)) > 1:
        raise ValueError("choose one data source: --lobster, --iqfeed or --catalog")
    if lobster is not None:
        raw_data = {"source": "lobster", "path": str(lobster)}
    elif iqfeed is not None:
        raw_data = {"source": "iqfeed_ticks", "path": str(iqfeed)}
    elif catalog is not None:
        raw_data = {"source": "catalog", "catalog": str(catalog)}
    if not raw_data:
        raw_data = {"source": "lobster", "path": str(SAMPLE_LOBSTER)}
    if date:
        raw_data["date"] = date
    if symbols:
        raw_data["symbols"] = list(symbols)
    if raw_data["source"] == "catalog" and not raw_data.get("date"):
        raise ValueError("a catalog replay needs --date YYYY-MM-DD (one day is played)")
    if cfg is None:
        book = "pseudo" if raw_data["source"] == "iqfeed_ticks" else "l3"
        raw = {
            "data": raw_data,
            "strategy": {
                "name": strategy or DEFAULT_STRATEGY,
                "params": dict(DEFAULT_PARAMS if not strategy else {}),
            },
            "execution": {"book": book},
            "output": str(output or Path("out") / "dashboard"),
        }
        for k, v in (overrides or {}).items():
            from quantedge.backtest.config import _set_dotted

            _set_dotted(raw, k, v)
        cfg = BacktestConfig.from_dict(raw, base_dir=Path.cwd(), where="dashboard options")
    else:
        cfg.data = raw_data
        if strategy:
            cfg.strategy = strategy
            cfg.params = {}
        if output:
            cfg.output = output
    if params:
        cfg.params = {**cfg.params, **params}
    for key in ("path", "catalog"):
        if key in cfg.data:
            p = cfg.resolve(str(cfg.data[key]))
            if not p.exists():
                raise ValueError(f"data.{key}: {p} does not exist")
    return cfg


def load_signals(path: Path, names: list[str]) -> np.ndarray:
    """A signal log: ``.npy`` of SIGNAL_DTYPE, or Parquet/CSV with columns ts_recv, symbol (name),
    signal (name), score, and optional ts_event, seq, triggered, explain_0..explain_5."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"signal log {path} does not exist")
    if path.suffix == ".npy":
        a = np.load(path, allow_pickle=False)
        if a.dtype != SIGNAL_DTYPE:
            raise ValueError(f"{path}: dtype is not SIGNAL_DTYPE")
        return a
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    tbl = pq.read_table(path) if path.suffix == ".parquet" else pcsv.read_csv(path)
    cols = set(tbl.column_names)
    need = {"ts_recv", "symbol", "signal", "score"}
    if not need <= cols:
        raise ValueError(f"{path}: missing column(s) {sorted(need - cols)}")
    n = tbl.num_rows
    out = np.zeros(n, SIGNAL_DTYPE)
    d = {c: tbl.column(c).to_pylist() for c in tbl.column_names}
    for i in range(n):
        sym, sig = d["symbol"][i], d["signal"][i]
        if isinstance(sym, str):
            if sym not in names:
                raise ValueError(f"{path}: row {i + 1}: field symbol: {sym!r} is not in this session's data")
            sym = names.index(sym)
        if isinstance(sig, str):
            if sig not in SIGNAL_BY_NAME:
                raise ValueError(f"{path}: row {i + 1}: field signal: unknown signal {sig!r}")
            sig = SIGNAL_BY_NAME[sig]
        out[i]["ts_recv"] = int(d["ts_recv"][i])
        out[i]["ts_event"] = int(d.get("ts_event", d["ts_recv"])[i])
        out[i]["seq"] = int(d.get("seq", [0] * n)[i])
        out[i]["symbol"] = int(sym)
        out[i]["signal"] = int(sig)
        out[i]["score"] = float(d["score"][i])
        out[i]["triggered"] = int(d.get("triggered", [0] * n)[i])
        for k in range(6):
            if f"explain_{k}" in d:
                out[i]["explain"][k] = float(d[f"explain_{k}"][i])
    return out


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A uvicorn server on a background thread (tests and the benchmark)."""

    server: Any
    thread: threading.Thread
    url: str
    session: ReplaySession
    app: Any

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(session: ReplaySession, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start the app on host:port (0 = a free port) in a daemon thread; returns once it listens."""
    import uvicorn

    from quantedge.dashboard.server import create_app

    port = port or free_port(host)
    app = create_app(session)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", ws="websockets-sansio")
    )
    th = threading.Thread(target=server.run, daemon=True, name="dashboard-server")
    th.start()
    t_end = time.monotonic() + 20
    while not server.started:
        if not th.is_alive() or time.monotonic() > t_end:
            raise RuntimeError(f"dashboard server did not start on {host}:{port}")
        time.sleep(0.02)
    return RunningServer(server, th, f"http://{host}:{port}", session, app)


__all__ = ["build_config", "load_signals", "serve_in_thread", "free_port", "ReplaySession", "SessionError"]
