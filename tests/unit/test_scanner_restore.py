"""A scanner state snapshot written before the rings' quiet-run columns existed still restores."""

from __future__ import annotations

import numpy as np

from quantedge.features.state import FS_NCOL, S_GAP
from quantedge.live.scanner import ScanConfig, ShardEngine


def test_a_snapshot_without_the_quiet_run_columns_restores_with_no_runs():
    cfg = ScanConfig()
    eng = ShardEngine(cfg)
    eng.slot("AAA")
    arrays = eng.arrays()
    arrays["f_fs"] = arrays["f_fs"].copy()
    arrays["f_fs"][:, :S_GAP] = np.arange(S_GAP)  # recognisable values in the old columns
    old = {**arrays, "f_fs": arrays["f_fs"][:, :S_GAP]}  # the 104-column layout of that build
    back = ShardEngine.restore(cfg, ["AAA"], old)
    fs = back.pipeline.features.fs[:1]
    assert fs.shape[1] == FS_NCOL
    assert (fs[:, :S_GAP] == np.arange(S_GAP)).all()
    assert (fs[:, S_GAP:] == 0).all()  # zero length: no quiet run, every ring slot written
