"""Deterministic agent-based market simulator with labelled episodes, and ticks from real bars.

See docs/simulator.md.  Entry points: :func:`quantedge.synth.generate.generate_to_catalog`
(many symbol-days into a catalog, labels beside them), :func:`quantedge.synth.generate.simulate_symbol`
(in memory), :func:`quantedge.synth.from_bars.ticks_from_bars` and
:func:`quantedge.synth.realism.compare_table`.
"""
