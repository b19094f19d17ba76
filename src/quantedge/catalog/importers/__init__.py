"""Importers: one module per real source format, each yielding normalized events + a report."""
