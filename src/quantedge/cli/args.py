"""Checks of command-line values shared by the sub-commands: a bad value is a usage error naming
the option (exit code 2), never a traceback from deep inside a stage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer


def parse_date(value: str | None, option: str) -> dt.date | None:
    """``YYYY-MM-DD`` (or ``YYYYMMDD``) as a date; None stays None."""
    if value is None:
        return None
    s = str(value).strip()
    try:
        if len(s) == 8 and s.isdigit():
            return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
        return dt.date.fromisoformat(s)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def output_file(path: Path, option: str) -> Path:
    """A file the command may write: not a folder, and no file where its folder should be."""
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file name", param_hint=option)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise typer.BadParameter(f"{parent} is a file, so {path} cannot be created", param_hint=option)
    return path


def output_dir(path: Path, option: str) -> Path:
    """A folder the command may write into (created later): not an existing file."""
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise typer.BadParameter(f"{p} is a file, not a folder", param_hint=option)
    return path


def existing_catalog(path: Path, option: str = "--catalog") -> Path:
    """A catalog a read-only command reads: it must exist (reading never creates one)."""
    try:
        found = path.is_dir()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise typer.BadParameter(f"cannot read {path}: {e.strerror}", param_hint=option) from None
    if not found:
        raise typer.BadParameter(f"no catalog at {path} (import data first: quantedge import …)",
                                 param_hint=option)
    return path


def choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    """``value`` when it is one of ``allowed``; else a usage error naming the option."""
    if value not in allowed:
        raise typer.BadParameter(f"{value!r}: choose {' or '.join(allowed)}", param_hint=option)
    return value
