"""``quantedge verify-book``: replay real order flow through the books and compare with the truth."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``verify-book`` command to the given Typer app."""

    @app.command("verify-book")
    def verify_book(
        paths: list[Path] = typer.Argument(..., help="LOBSTER zip(s), folder(s) or message file(s); "
                                           "Databento MBP-10 CSV(s)"),
        resync: bool = typer.Option(False, "--resync", help="re-set levels that enter the window from "
                                    "deeper from the truth file (counted)"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object per verified file"),
        bench: bool = typer.Option(False, "--bench", help="also time the L3 step kernel over each "
                                   "LOBSTER day (after warm-up) and report events/s"),
    ) -> None:
        """Seed each book from the first truth row, replay every message, compare after every message.

        Exit status 1 when any row has a fully-known level that disagrees with the truth (a mismatch),
        2 when an input cannot be read.
        """
        from quantedge.book.verify import verify_databento, verify_lobster

        failed = False
        for p in paths:
            if not p.exists():
                typer.echo(f"{p}: no such file or folder", err=True)
                raise typer.Exit(2)
            try:
                if p.suffix == ".csv" and "mbp" in p.name.lower():
                    results = verify_databento(p, resync=resync)
                else:
                    results = verify_lobster(p, resync=resync)
            except (ValueError, OSError) as exc:
                typer.echo(f"{p}: {exc}", err=True)
                raise typer.Exit(2) from None
            if not results:
                typer.echo(f"{p}: no message file with a matching orderbook file found", err=True)
                raise typer.Exit(2)
            for r in results:
                d = r.to_dict()
                if bench and "mbp" not in p.name.lower():
                    d["l3_events_per_s"] = _bench(p, r.source)
                failed |= r.mismatch > 0
                if as_json:
                    typer.echo(json.dumps(d))
                else:
                    _print(d)
        if failed:
            raise typer.Exit(1)


def _bench(path: Path, source: str) -> float:
    from quantedge.book.verify import lobster_truth, replay_rate
    from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook
    from quantedge.catalog.symbols import NameTable

    for f in lobster_files(path):
        if f.orderbook is not None and Path(str(f.message)).name in source:
            events, _ = read_lobster(f.message, NameTable(), date=f.date, symbol=f.symbol)
            events = events[events["seq"] >= 2].copy()
            events["symbol"] = 0
            return replay_rate(events, lobster_truth(read_lobster_orderbook(f.orderbook))[0])
    return 0.0


def _print(d: dict) -> None:
    mode = "resync" if d["resync"] else "no resync"
    typer.echo(f"{d['source']}  [{mode}]")
    typer.echo(f"  rows compared {d['rows']:,}: exact {d['exact']:,}  reveal {d['reveal']:,}  "
               f"mismatch {d['mismatch']:,}")
    if d["mismatch"]:
        typer.echo(f"  mismatching slots {d['mismatch_slots']:,}; "
                   f"first at truth row {d['first_mismatch_row']}")
    if d["resync"]:
        typer.echo(f"  re-synced sides {d['resync_sides']:,} ({d['resync_levels']:,} levels)")
    typer.echo(f"  events {d['events']:,}  halts {d['halts']}  hidden executions {d['hidden_trades']:,}  "
               f"cross trades {d['cross_trades']:,}  stale levels evicted {d.get('evicted', 0):,}")
    if d["anomalies"]:
        typer.echo("  book anomalies: " + ", ".join(f"{k} {v:,}" for k, v in d["anomalies"].items()))
    for n in d["notes"]:
        typer.echo(f"  note: {n}")
    if "l3_events_per_s" in d:
        typer.echo(f"  L3 step kernel: {d['l3_events_per_s'] / 1e6:.1f} M events/s (one core, warm)")
