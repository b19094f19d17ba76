"""Bad-input bookkeeping shared by every importer and check.

Nothing the user gave is silently dropped: each rejected record becomes a :class:`Problem` naming
file, line and field, is counted by reason, and is written to a quarantine file (JSON lines) with
the raw text so it can be inspected or re-imported after a fix.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: Keep at most this many full Problem records in memory per report; counts are always exact.
MAX_KEPT = 10_000


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based physical line in the source file (0 when not line-based)
    field: str  # column / field name, or "" for whole-record problems
    reason: str  # short stable code, e.g. "non_numeric", "wrong_column_count"
    detail: str = ""  # human explanation
    raw: str = ""  # the offending text (truncated)

    def message(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        fld = f" field '{self.field}'" if self.field else ""
        extra = f": {self.detail}" if self.detail else ""
        return f"{where}{fld}: {self.reason}{extra}"


@dataclass
class ImportReport:
    """What an importer did with one source: rows read / imported / quarantined, with reasons."""

    source: str
    fmt: str
    rows_read: int = 0
    rows_imported: int = 0
    events_written: int = 0
    reasons: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: catalog sources (``format:path``) whose data this one replaced (a LOBSTER symbol-day's file)
    replaced: list[str] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.reasons.values())

    def quarantine(self, problem: Problem) -> None:
        self.reasons[problem.reason] += 1
        if len(self.problems) < MAX_KEPT:
            self.problems.append(problem)

    def balanced(self) -> bool:
        """Every row read is either imported or quarantined (the no-silent-loss invariant)."""
        return self.rows_read == self.rows_imported + self.rows_quarantined

    def merge(self, other: ImportReport) -> None:
        self.rows_read += other.rows_read
        self.rows_imported += other.rows_imported
        self.events_written += other.events_written
        self.reasons.update(other.reasons)
        room = MAX_KEPT - len(self.problems)
        if room > 0:
            self.problems.extend(other.problems[:room])
        self.notes.extend(other.notes)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "format": self.fmt,
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "rows_quarantined": self.rows_quarantined,
            "events_written": self.events_written,
            "reasons": dict(self.reasons),
            "notes": self.notes,
        }

    def write_quarantine(self, path: Path) -> int:
        """Append kept problems as JSON lines; returns how many were written."""
        if not self.problems:
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for p in self.problems:
                f.write(json.dumps(p.__dict__, ensure_ascii=False) + "\n")
        return len(self.problems)


def clip(text: str | bytes, n: int = 200) -> str:
    """Printable, bounded rendering of raw input for a quarantine record."""
    if isinstance(text, bytes):
        text = text.decode("latin-1", errors="replace")
    return text if len(text) <= n else text[:n] + "…"
