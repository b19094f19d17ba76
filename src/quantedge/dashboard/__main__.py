"""``python -m quantedge.dashboard dashboard [options]``: the dashboard command on its own."""

from __future__ import annotations

import typer

from quantedge.cli.dashboard_cmd import register

app = typer.Typer(add_completion=False, help="QuantEdge dashboard")


@app.callback()
def _root() -> None:
    """QuantEdge dashboard (the same command as ``quantedge dashboard``)."""


register(app)

if __name__ == "__main__":
    app()
