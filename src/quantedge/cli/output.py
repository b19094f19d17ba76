"""The commands' Rich consoles.

A terminal gets its own width.  A pipe or a log file gets a wide one: Rich's default there is 80
columns, which cut file names, formats and quarantine reasons in the import summary to "NEPT_tick…".
The choice is made at each print from the stream written to then (a console created at import may
print to a captured or redirected stdout later), on the stream itself rather than Rich's terminal
detection (which ``FORCE_COLOR`` turns on).  ``COLUMNS`` set by the user wins.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

#: columns when the output is not a terminal and COLUMNS is not set
PIPE_WIDTH = 200


class CommandConsole(Console):
    """A Console whose width is PIPE_WIDTH while it writes to something that is not a terminal."""

    def _size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)
        if self._width is not None or self._environ.get("COLUMNS"):
            return dims
        isatty = getattr(self.file, "isatty", None)
        try:
            tty = bool(isatty()) if isatty is not None else False
        except ValueError:  # a closed stream
            tty = False
        return dims if tty else ConsoleDimensions(PIPE_WIDTH, dims.height)

    size = property(_size, Console.size.fset)


def new_console(*, stderr: bool = False) -> Console:
    """A console for a command's output (``stderr``: for progress and notes beside a data stream)."""
    return CommandConsole(stderr=stderr)


def widen_typer_boxes() -> None:
    """Give Typer's usage-error boxes (on stderr) the commands' width rule: Typer draws them with a
    console of its own, 80 columns on a pipe, where a long path in an error was split across boxed
    lines and could not be copied from a log.  Help keeps Typer's layout (a box as wide as the
    console would pad every line to 200 columns).  ``TERMINAL_WIDTH`` (Typer's setting) and
    ``COLUMNS`` still win."""
    import os

    from typer import rich_utils

    make = getattr(rich_utils, "_get_rich_console", None)
    if make is None or getattr(make, "_quantedge_wide", False) or rich_utils.MAX_WIDTH is not None:
        return

    def console(stderr: bool = False) -> Console:
        c = make(stderr=stderr)
        isatty = getattr(c.file, "isatty", None)
        if stderr and not os.environ.get("COLUMNS") and not (isatty is not None and isatty()):
            c.width = PIPE_WIDTH
        return c

    console._quantedge_wide = True  # type: ignore[attr-defined]
    rich_utils._get_rich_console = console
