"""QuantEdge: market-microstructure research and trading for US equities."""

__version__ = "0.1.0"
