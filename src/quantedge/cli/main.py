"""The ``quantedge`` command: one Typer app; each stage registers its sub-commands here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="quantedge",
    help="QuantEdge: market-microstructure research and trading for US equities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """QuantEdge: market-microstructure research and trading for US equities."""


@app.command()
def version() -> None:
    """Print the QuantEdge version."""
    from quantedge import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    app()
