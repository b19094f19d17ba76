"""Data at rest: the Parquet catalog, its symbol table, importers, integrity checks and the merge."""
