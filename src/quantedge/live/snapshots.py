"""Per-partition state snapshots so a restarted or rebalanced scanner rebuilds its state.

A snapshot of partition ``p`` holds everything the scanner's kernels keep for the symbols of that
partition (books, feature windows, signal state, the partition's last processed publisher slice)
and, per raw topic, the *safe offset*: the first message whose slice was not yet processed.  A worker
that takes the partition over loads the snapshot, seeks each raw topic-partition to its safe offset
and replays; messages of slices already in the state are skipped by slice number, so the rebuilt
state equals an uninterrupted run's and re-emitted signals carry the same ids (consumers dedupe).

A snapshot is written only after the outputs it covers are flushed (Kafka acknowledged, Redis
written or buffered), so no signal can fall between a snapshot and a crash.

Storage: one ``.npz`` per (group, partition) under ``root`` written atomically (temp file +
``os.replace``), plus the previous one kept as ``.prev.npz``.  Workers on several hosts need ``root``
on a shared volume (see docs/streaming.md).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: 2: one last-processed slice per partition (QEB2); 3: book sides carry the changed-level range;
#: 4: feature windows hold running totals (rings of the totals at bucket starts)
FORMAT = 4


class SnapshotError(RuntimeError):
    """An unreadable or incompatible snapshot file (the message names the file)."""


@dataclass
class Snapshot:
    partition: int
    arrays: dict[str, np.ndarray]
    names: list[str]
    offsets: dict[str, int]
    meta: dict[str, object]


class SnapshotStore:
    """Directory of per-partition snapshots of one consumer group."""

    def __init__(self, root: str | Path, group_id: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in group_id)
        self.dir = Path(root) / safe
        self.dir.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def path(self, partition: int) -> Path:
        return self.dir / f"partition-{partition:04d}.npz"

    def save(self, partition: int, arrays: dict[str, np.ndarray], names: list[str], offsets: dict[str, int],
             meta: dict[str, object] | None = None) -> Path:
        """Write atomically; the previous snapshot stays as ``.prev.npz``."""
        header = {"format": FORMAT, "partition": partition, "names": names, "offsets": offsets,
                  "written_ns": time.time_ns(), "meta": meta or {}}
        buf = io.BytesIO()
        np.savez(buf, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
        target = self.path(partition)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            if target.exists():
                os.replace(target, target.with_suffix(".prev.npz"))
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.written += 1
        return target

    def load(self, partition: int) -> Snapshot | None:
        """The latest snapshot of ``partition``, or None when there is none."""
        p = self.path(partition)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                header = json.loads(bytes(z["__header__"]).decode())
                arrays = {k: z[k] for k in z.files if k != "__header__"}
        except (OSError, ValueError, KeyError) as exc:
            raise SnapshotError(f"{p}: unreadable snapshot ({exc})") from exc
        if header.get("format") != FORMAT:
            raise SnapshotError(f"{p}: snapshot format {header.get('format')} (this build reads {FORMAT})")
        return Snapshot(int(header["partition"]), arrays, list(header["names"]),
                        {k: int(v) for k, v in header["offsets"].items()}, dict(header.get("meta", {})))

    def clear(self) -> None:
        for f in self.dir.glob("partition-*.npz"):
            f.unlink()
