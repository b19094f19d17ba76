"""QuantEdge live stage."""
