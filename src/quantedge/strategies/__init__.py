"""QuantEdge strategies stage."""
