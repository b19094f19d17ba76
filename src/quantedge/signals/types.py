"""The signal record: what every detector emits, and what strategies, Kafka and reports consume.

A signal is a fixed-size record so kernels (CPU and CUDA) can write them into preallocated arrays
and the backtester can merge them into the event stream by ``ts_recv``.  ``explain`` carries the
feature values that made the score, in the per-signal order of :data:`EXPLAIN_NAMES`.
"""

from __future__ import annotations

import numpy as np

N_EXPLAIN = 6

SIGNAL_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),  # ns UTC of the event that produced the signal
        ("ts_recv", np.int64),  # ns UTC when it could be known (== that event's ts_recv)
        ("seq", np.int64),  # seq of that event (ties, ids)
        ("symbol", np.int32),  # catalog symbol id
        ("signal", np.uint8),  # SIG_* below
        ("triggered", np.uint8),  # 1 when the score crossed the trigger threshold (rising edge)
        ("pad", np.uint16),
        ("score", np.float32),  # in [0, 1]
        ("pad2", np.float32),
        ("explain", np.float32, (N_EXPLAIN,)),  # feature values behind the score
    ]
)

SIG_ABSORPTION = 1  # sustained bid-side absorption with stable or narrowing spread
SIG_CREEP = 2  # controlled price creep on low relative volume
SIG_DARK_POOL = 3  # inferred dark-pool accumulation
SIG_SINKHOLE = 4  # sustained positive liquidity sinkhole
SIG_CONTRACTION = 5  # micro-volatility contraction with upward bias
SIG_EXIT = 6  # fleeing / dumping: exit signal
SIG_COMPOSITE = 7  # composite accumulation score

SIGNAL_NAMES = {
    SIG_ABSORPTION: "absorption",
    SIG_CREEP: "creep",
    SIG_DARK_POOL: "dark_pool",
    SIG_SINKHOLE: "sinkhole",
    SIG_CONTRACTION: "contraction",
    SIG_EXIT: "exit",
    SIG_COMPOSITE: "composite",
}
SIGNAL_BY_NAME = {v: k for k, v in SIGNAL_NAMES.items()}


def empty_signals(n: int) -> np.ndarray:
    return np.zeros(n, dtype=SIGNAL_DTYPE)
