"""QuantEdge dashboard: a local web app that replays a day through the pipeline (docs/dashboard.md)."""
