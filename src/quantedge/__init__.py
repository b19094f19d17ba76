"""QuantEdge: market-microstructure research and trading for US equities."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

__version__ = "0.1.0"

#: compiled-kernel caches kept side by side (older package states are pruned)
KEEP_CACHES = 4

#: the default configs (strategy parameters, backtest configs): in a checkout ``quantedge/config`` is a
#: link to the repository's ``config/``, so an installed wheel carries the same files as package data
CONFIG_DIR = Path(__file__).resolve().parent / "config"


def shared_data_dir() -> Path:
    """The real-data folder the commands default to: ``QUANTEDGE_SHARED_DATA`` (or the older
    ``QUANTEDGE_DATA``), else ``shared/data`` beside a source checkout, else ``../shared/data`` from
    the working directory (an installed package has no checkout to stand beside)."""
    env = os.environ.get("QUANTEDGE_SHARED_DATA") or os.environ.get("QUANTEDGE_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo.parent / "shared" / "data"
    return Path("..") / "shared" / "data"


#: default folder of the real market data at import (see shared_data_dir)
SHARED_DATA = shared_data_dir()


def _numba_cache_dir() -> None:
    """Point Numba's on-disk cache at a folder keyed by a fingerprint of this package's sources.

    Numba checks only the stamp of the file that holds a cached function, not of the files it calls
    into: after an edit or an upgrade, a cached kernel would keep an old copy of a helper from another
    module (a book kernel inlined into the backtest venue, say).  A folder per package state makes any
    change start from a clean cache.  ``NUMBA_CACHE_DIR`` set by the user wins.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = Path(__file__).resolve().parent
    h = hashlib.sha1(__version__.encode())
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quantedge" / "numba"
    here = base / h.hexdigest()[:16]
    try:
        here.mkdir(parents=True, exist_ok=True)
        os.utime(here)
        others = sorted((d for d in base.iterdir() if d.is_dir() and d != here),
                        key=lambda d: d.stat().st_mtime, reverse=True)
        for old in others[KEEP_CACHES - 1:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        return  # not writable: Numba keeps its default (next to the sources)
    os.environ["NUMBA_CACHE_DIR"] = str(here)
    if "numba" in sys.modules:  # imported before us: its config was already read
        sys.modules["numba"].config.CACHE_DIR = str(here)


_numba_cache_dir()
