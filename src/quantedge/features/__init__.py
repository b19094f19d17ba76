"""QuantEdge features stage."""
