"""The Strategy base class and the context it trades through: one class for backtest and live.

A strategy only ever talks to its :class:`Context`.  The engine (backtest) or the live runner
provides it, with the clock, the data and the execution venue injected, so the same class runs
unchanged on a replay and on the live feed.  Callbacks fire only on sparse events the strategy
asked for (signals, fills, timers, bars, chosen symbols' trades/quotes/book changes).

Parameters are a typed dataclass (``Params``) filled from YAML or CLI overrides; unknown or
ill-typed keys are errors that name the key.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from quantedge.backtest.orders import Fill


class LookAheadError(RuntimeError):
    """A strategy asked for data it could not have had at ``ctx.now``."""


@dataclass
class Params:
    """Base of every strategy's parameters."""


def build_params(cls: type, values: dict | None, where: str | None = None) -> Any:
    """Fill the dataclass ``cls`` from a dict, converting to each field's declared type.  Errors name
    the parameter as ``<where>.<name>`` (``where`` defaults to the class name)."""
    values = dict(values or {})
    where = where or cls.__qualname__
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {sorted(unknown)}; known: {sorted(fields)}")
    out = {}
    for k, v in values.items():
        typ = fields[k].type if isinstance(fields[k].type, type) else eval(str(fields[k].type), {})  # noqa: S307
        try:
            out[k] = typ(v) if typ in (int, float, str) else (v if typ is not bool else _to_bool(v))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}.{k}: cannot use {v!r} as {typ.__name__}") from e
    return cls(**out)


def _to_bool(v: Any) -> bool:
    if isinstance(v, str):
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(v)
    return bool(v)


@dataclass(frozen=True)
class MarketArrays:
    """Every symbol's book and tape as compiled code reads them (for observers, see
    :meth:`Context.observe_every`): ``lv``/``sd`` the book arrays (quantedge.book.state layout),
    ``last_px`` the last lit print ($0.0001), ``tape[row, symbol]`` the prints since the observer
    last reset the symbol's column (rows of quantedge.backtest.stops_nb: signed volume, volume,
    at-bid volume, high, low, events of any kind)."""

    lv: np.ndarray
    sd: np.ndarray
    last_px: np.ndarray
    tape: np.ndarray


class Context(ABC):
    """What a strategy may do and see.  Implemented by the backtest engine and the live runner."""

    now: int  # ns UTC: the strategy's clock (never before the receive time of anything it saw)
    n_symbols: int  # symbol ids are 0 .. n_symbols - 1

    # orders -------------------------------------------------------------------------------------
    @abstractmethod
    def submit(
        self,
        symbol: int,
        side: int,
        qty: int,
        *,
        type: str = "market",
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "day",
        tag: str = "",
    ) -> int:
        """Send an order (prices in dollars); returns its id, or 0 when risk rejected it."""
        ...

    def buy(self, symbol: int, qty: int, **kw: Any) -> int:
        return self.submit(symbol, 1, qty, **kw)

    def sell(self, symbol: int, qty: int, **kw: Any) -> int:
        return self.submit(symbol, -1, qty, **kw)

    @abstractmethod
    def cancel(self, order_id: int) -> None: ...

    @abstractmethod
    def modify(self, order_id: int, qty: int | None = None, limit: float | None = None) -> int:
        """Cancel/replace: a new order (new queue position) for the remaining or given quantity."""
        ...

    @abstractmethod
    def flatten(self, symbol: int | None = None, tag: str = "flatten") -> None: ...

    # state --------------------------------------------------------------------------------------
    @abstractmethod
    def position(self, symbol: int) -> int: ...

    @property
    @abstractmethod
    def cash(self) -> float: ...

    @property
    @abstractmethod
    def equity(self) -> float: ...

    @abstractmethod
    def open_orders(self, symbol: int | None = None) -> list[int]: ...

    @abstractmethod
    def order_status(self, order_id: int) -> str:
        """pending | active | filled | cancelled | rejected | expired."""
        ...

    @abstractmethod
    def book(self, symbol: int, levels: int = 5) -> dict: ...

    @abstractmethod
    def last_price(self, symbol: int) -> float: ...

    @abstractmethod
    def bars(self, symbol: int, interval: str | int) -> np.ndarray: ...

    @abstractmethod
    def features(self, symbol: int) -> dict[str, float]: ...

    # signal records -----------------------------------------------------------------------------
    @abstractmethod
    def last_signal(self, symbol: int, kind: int) -> tuple[int, float, bool] | None:
        """The latest record of signal ``kind`` (a SIG_* code) for ``symbol`` that the strategy can
        know now, delivered to ``on_signal`` or not: (time it became visible, score, triggered);
        None before the first."""
        ...

    @abstractmethod
    def follow_signals(self, symbol: int, on: bool = True) -> None:
        """Every record of a followed symbol reaches ``on_signal`` (every symbol is followed at the
        start); of the others only what :meth:`gate_signals` lets through.  The records not
        delivered cost no Python: they only update :meth:`last_signal`.  A strategy unfollows a
        symbol while no record of it but the gated ones could change a decision."""
        ...

    @abstractmethod
    def gate_signals(self, min_score: dict[int, float], need_trigger: dict[int, bool] | None = None) -> None:
        """Records of unfollowed symbols that still reach ``on_signal``: kind k when its score is at
        least ``min_score[k]`` (kinds not named: never) and, where ``need_trigger[k]``, it triggered."""
        ...

    # subscriptions and timers -------------------------------------------------------------------
    @abstractmethod
    def subscribe_bars(self, interval: str | int, symbols: list[int] | None = None) -> None: ...

    @abstractmethod
    def subscribe(self, symbol: int, kinds: tuple[str, ...] = ("trade",)) -> None: ...

    @abstractmethod
    def unsubscribe(self, symbol: int, kinds: tuple[str, ...] = ("trade",)) -> None: ...

    @abstractmethod
    def schedule(self, name: str, every: str | int | None = None, at: int | None = None) -> None: ...

    @abstractmethod
    def observe_every(self, name: str, every: str | int, observer: Any) -> None:
        """Dense work over all symbols without a Python call per symbol: at each ``every`` boundary
        T, ``observer(T, market)`` runs with every symbol's book and tape at T (a
        :class:`MarketArrays`; the observer should hand them to a compiled kernel), then
        ``on_timer(name)`` fires when that observation is visible to the strategy (T + feed latency)
        — unless the observer returned a false value other than None (nothing to act on), which
        spares a Python callback per tick."""
        ...

    # names and logging --------------------------------------------------------------------------
    @abstractmethod
    def symbol_id(self, name: str) -> int: ...

    @abstractmethod
    def symbol_name(self, symbol: int) -> str: ...

    @abstractmethod
    def log(self, msg: str) -> None: ...


class Strategy:
    """Subclass and override the callbacks you need; ``Params`` is your typed configuration."""

    name: ClassVar[str] = "base"
    Params: ClassVar[type] = Params

    def __init__(self, params: dict | Any | None = None) -> None:
        if params is None or isinstance(params, dict):
            self.p = build_params(self.Params, params)
        else:
            self.p = params

    def on_start(self, ctx: Context) -> None:
        """Subscribe to bars / symbols and schedule timers here."""

    def on_signal(self, ctx: Context, sig: np.void) -> None:
        """A SIGNAL_DTYPE record (any detector; the strategy does not care how it was made)."""

    def on_bar(self, ctx: Context, bar: np.void) -> None:
        """A closed BAR_DTYPE bar of a subscribed interval."""

    def on_trade(self, ctx: Context, event: np.void) -> None:
        """A print of a subscribed symbol (EVENT_DTYPE)."""

    def on_quote(self, ctx: Context, event: np.void) -> None:
        """A quote of a subscribed symbol (EVENT_DTYPE)."""

    def on_book(self, ctx: Context, event: np.void) -> None:
        """A depth/order event of a subscribed symbol; read the book with ctx.book()."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """One of our orders executed (possibly partly)."""

    def on_order(self, ctx: Context, order_id: int, status: str, reason: str) -> None:
        """An order was rejected, cancelled or expired."""

    def on_timer(self, ctx: Context, name: str) -> None:
        """A timer set with ctx.schedule fired."""

    def on_stop(self, ctx: Context) -> None:
        """End of the run (or of the live session)."""
