"""The commands' Rich consoles.

A terminal gets its own width.  A pipe or a log file gets a wide one: Rich's default there is 80
columns, which cut file names, formats and quarantine reasons in the import summary to "NEPT_tick…".
The choice is made at each print from the stream written to then (a console created at import may
print to a captured or redirected stdout later), on the stream itself rather than Rich's terminal
detection (which ``FORCE_COLOR`` turns on).  ``COLUMNS`` set by the user wins.
"""

from __future__ import annotations

import sys

from rich.console import Console, ConsoleDimensions

#: columns when the output is not a terminal and COLUMNS is not set
PIPE_WIDTH = 200


class CommandConsole(Console):
    """A Console whose width is PIPE_WIDTH while it writes to something that is not a terminal."""

    def _size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)
        if self._width is not None or self._environ.get("COLUMNS"):
            return dims
        return dims if _is_terminal(self.file) else ConsoleDimensions(PIPE_WIDTH, dims.height)

    size = property(_size, Console.size.fset)


def new_console(*, stderr: bool = False) -> Console:
    """A console for a command's output (``stderr``: for progress and notes beside a data stream)."""
    return CommandConsole(stderr=stderr)


def plain_errors_off_terminal() -> None:
    """Usage errors in click's plain form (usage line, hint, ``Error: <message>``) when stderr is not a
    terminal.  Typer draws them in a box of a console of its own, 80 columns on a pipe, where a long
    path in an error was split across boxed lines and could not be copied from a log (a wider box
    still splits a longer path and pads every line).  A terminal keeps Typer's box."""
    from typer import rich_utils

    boxed = getattr(rich_utils, "rich_format_error", None)
    if boxed is None or getattr(boxed, "_quantedge_plain", False):
        return

    def format_error(self) -> None:
        if self.__class__.__name__ != "NoArgsIsHelpError" and not _is_terminal(sys.stderr):
            self.show()  # click.ClickException.show: to stderr, unwrapped
            return
        boxed(self)

    format_error._quantedge_plain = True  # type: ignore[attr-defined]
    rich_utils.rich_format_error = format_error


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
