"""QuantEdge signals stage."""
