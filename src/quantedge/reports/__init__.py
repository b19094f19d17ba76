"""QuantEdge reports stage."""
