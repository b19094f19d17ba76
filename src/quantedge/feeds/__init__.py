"""QuantEdge feeds stage."""
