"""What is injected to run one Strategy unchanged in backtest, paper and live.

* :class:`Clock` — ``now()`` in ns UTC.  Replay: the engine's clock is the stream's receive time
  (``ReplayClock``); live: the wall clock (``WallClock``).
* :class:`DataSource` — yields merge-ordered EVENT_DTYPE batches: the catalog stream in a backtest,
  socket reads / Kafka polls live.
* :class:`ExecutionVenue` — takes orders and cancels, reports fills.  ``SimVenue`` is the simulator;
  paper trading is the same simulator fed live batches through ``Engine.step`` (the engine's
  outputs do not depend on how the stream is cut into batches); a broker adapter implements the
  same methods.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from quantedge.backtest.orders import Fill, OrderRequest


@runtime_checkable
class Clock(Protocol):
    def now(self) -> int: ...


@runtime_checkable
class DataSource(Protocol):
    def batches(self) -> Iterator[np.ndarray]: ...


@runtime_checkable
class ExecutionVenue(Protocol):
    def new_order(self, req: OrderRequest, ts_submit: int, ts_arrive: int) -> int: ...

    def arrive(self, oid: int, ts: int) -> None: ...

    def cancel(self, oid: int) -> bool: ...

    def drain_fills(self) -> list[Fill]: ...

    def open_orders(self, symbol: int | None = None) -> list[int]: ...


class WallClock:
    """Live clock: ns since the epoch, UTC."""

    def now(self) -> int:
        return time.time_ns()


class ReplayClock:
    """Replay clock: follows the engine (the receive time of what was processed last)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def now(self) -> int:
        return int(self.engine.now)


class ArraySource:
    """A merge-ordered array (or list of batches) as a DataSource, cut into batches of ``rows``."""

    def __init__(self, events: np.ndarray, rows: int = 1 << 18) -> None:
        self.events, self.rows = events, rows

    def batches(self) -> Iterator[np.ndarray]:
        for i in range(0, self.events.shape[0], self.rows):
            yield self.events[i : i + self.rows]
