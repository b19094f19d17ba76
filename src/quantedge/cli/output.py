"""The commands' Rich consoles.

A terminal gets its own width.  A pipe or a log file gets a wide one: Rich's default there is 80
columns, which cut file names, formats and quarantine reasons in the import summary to "NEPT_tick…".
``COLUMNS`` set by the user wins.
"""

from __future__ import annotations

import os

from rich.console import Console

#: columns when the output is not a terminal and COLUMNS is not set
PIPE_WIDTH = 200


def new_console(*, stderr: bool = False) -> Console:
    """A console for a command's output (``stderr``: for progress and notes beside a data stream)."""
    con = Console(stderr=stderr)
    if not con.is_terminal and not os.environ.get("COLUMNS"):
        con.width = PIPE_WIDTH
    return con
