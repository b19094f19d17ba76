"""QuantEdge strategies stage: the Strategy base class and the templates, by name."""

from __future__ import annotations

from quantedge.strategies.base import Strategy


def registry() -> dict[str, type[Strategy]]:
    """Strategy classes by their config name."""
    from quantedge.strategies.accumulation import Accumulation
    from quantedge.strategies.rsi_reversion import RsiReversion
    from quantedge.strategies.sma_cross import SmaCross

    return {c.name: c for c in (SmaCross, RsiReversion, Accumulation)}
