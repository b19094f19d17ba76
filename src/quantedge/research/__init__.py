"""Research tools over the catalog: the daily table, the multi-day accumulation tracker and the
pre-gap pattern analyzer (docs/research.md)."""
