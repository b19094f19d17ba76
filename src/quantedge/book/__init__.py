"""QuantEdge book stage."""
