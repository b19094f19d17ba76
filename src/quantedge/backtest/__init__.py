"""QuantEdge backtest stage."""
