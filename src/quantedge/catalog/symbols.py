"""Name tables: stable small-integer ids for symbols (and Level 2 market-maker ids).

Ids are assigned in first-seen order and never change once written, so Parquet files can store the
int32 id and stay valid as the table grows.  The table is a JSON file next to the catalog data.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class NameTable:
    """Bidirectional name <-> id map, append-only, persisted atomically as JSON."""

    def __init__(self, names: list[str] | None = None, base: int = 0) -> None:
        self.base = base
        self._names: list[str] = []
        self._ids: dict[str, int] = {}
        for n in names or []:
            self.id(n)

    def id(self, name: str) -> int:
        """The id of ``name``, assigning the next free id on first sight."""
        got = self._ids.get(name)
        if got is None:
            got = self.base + len(self._names)
            self._names.append(name)
            self._ids[name] = got
        return got

    def get(self, name: str) -> int | None:
        return self._ids.get(name)

    def name(self, ident: int) -> str:
        i = int(ident) - self.base
        if i < 0 or i >= len(self._names):
            raise KeyError(f"unknown id {ident}")
        return self._names[i]

    def names(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def merge(self, other: NameTable) -> dict[int, int]:
        """Add ``other``'s names; return the id remapping other-id -> self-id."""
        return {other.base + i: self.id(n) for i, n in enumerate(other._names)}

    # persistence ---------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"base": self.base, "names": self._names}, indent=0)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, base: int = 0) -> NameTable:
        if not path.exists():
            return cls(base=base)
        data = json.loads(path.read_text())
        return cls(data["names"], base=data.get("base", base))
