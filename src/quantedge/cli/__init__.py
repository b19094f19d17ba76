"""QuantEdge cli stage."""
