"""Opening books for LOBSTER days: the message file starts with a populated book it never shows.

A LOBSTER day opens with orders resting from before the first message; only the orderbook file
(the top N levels after each message) tells where they are.  Without them the L3 book starts empty:
market orders walk into levels that are not there and the first hours' spreads are wrong.  Row 1 of
the orderbook file is the book *after* message 1, so the book before it is row 1 with message 1
undone (:func:`book_before_first_message`); seeded with that, the replay applies every message.
Seeded volume belongs to orders the data never names: it is the levels' ``LV_AUX`` part, reduced by
cancels and executions of unknown order ids (book/l3.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from quantedge import events as ev


def find_seeds(cfg, names: list[str], date: str, symbols: Iterable[int] | None = None
               ) -> tuple[dict[int, tuple[np.ndarray, int]], str]:
    """symbol id -> (orderbook row 1 as (2, L, 2) [bid/ask][level][px, sz], L) for the LOBSTER days of
    a backtest config (``data.source`` lobster, or a catalog holding LOBSTER ground truth); and a note
    ("" when nothing went wrong)."""
    from quantedge.book.verify import lobster_truth

    out: dict[int, tuple[np.ndarray, int]] = {}
    d = cfg.data
    try:
        if d["source"] == "lobster":
            from quantedge.catalog.importers.lobster import lobster_files, read_lobster_orderbook

            for f in lobster_files(cfg.resolve(str(d["path"]))):
                if f.orderbook is not None and f.symbol in names:
                    row = lobster_truth(read_lobster_orderbook(f.orderbook)[:1])[0]
                    out[names.index(f.symbol)] = (row, f.levels)
        elif d["source"] == "catalog":
            import pyarrow.parquet as pq

            from quantedge.catalog.store import Catalog

            cat = Catalog(cfg.resolve(d.get("catalog", "catalog")))
            for s in range(len(names)) if symbols is None else symbols:
                sym = names[s]
                base = cat.root / "groundtruth" / "lobster" / f"date={date}"
                files = sorted(base.glob(f"symbol={sym}/orderbook_*.parquet"))
                if not files:
                    continue
                tbl = pq.ParquetFile(files[-1]).read_row_group(0).slice(0, 1)
                levels = int(files[-1].stem.split("_")[1])
                row = np.array(
                    [[tbl.column(f"{c}_{k}")[0].as_py() for c in ("ask_px", "ask_sz", "bid_px", "bid_sz")]
                     for k in range(1, levels + 1)],
                    dtype=np.int64,
                ).reshape(1, 4 * levels)
                out[int(s)] = (lobster_truth(row)[0], levels)
    except (OSError, ValueError, KeyError) as e:
        return out, f"no opening book seed: {e}"
    return out, ""


def book_before_first_message(row: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """Undo message 1 (``first``: its KIND_ORDER events) on orderbook row 1: the book the day opened
    with.  Returns (row (2, L, 2), per side whether the side is complete: every price of it shown)."""
    row = row.copy()
    n_lev = row.shape[1]
    complete = [int(np.count_nonzero(row[si, :, 0])) < n_lev for si in range(2)]
    for e in first:
        if e["kind"] != ev.KIND_ORDER or e["side"] not in (1, -1):
            continue
        si = 0 if e["side"] == 1 else 1
        px, q = int(e["price"]), int(e["size"])
        lv = [(int(p), int(z)) for p, z in row[si] if p]
        at = [i for i, (p, _z) in enumerate(lv) if p == px]
        a = int(e["action"])
        if a == ev.ACTION_ADD:
            if at:
                i = at[0]
                lv[i] = (px, lv[i][1] - q)
                if lv[i][1] <= 0:
                    del lv[i]  # a full side's level behind the window moved up: still unseen
        elif a in (ev.ACTION_CANCEL, ev.ACTION_DELETE, ev.ACTION_EXECUTE):
            if at:
                lv[at[0]] = (px, lv[at[0]][1] + q)
            else:
                lv.append((px, q))
                lv.sort(key=lambda x: -x[0] if si == 0 else x[0])
                if len(lv) > n_lev:
                    lv = lv[:n_lev]
                    complete[si] = False
        row[si] = 0
        for i, (p, z) in enumerate(lv[:n_lev]):
            row[si, i] = (p, z)
    return row, complete


def seed_l3(book, s: int, row: np.ndarray, levels: int, first: np.ndarray) -> None:
    """Seed symbol ``s`` of an L3 book with the opening book of a LOBSTER day (module docstring)."""
    from quantedge.book.state import B_WINDOW

    before, complete = book_before_first_message(row, first)
    book.bk[s, B_WINDOW] = levels
    for si in range(2):
        k = int(np.count_nonzero(before[si, :, 0]))
        book.seed_side(s, si, before[si, :k, 0], before[si, :k, 1], complete=complete[si], aux_is_size=True)


__all__ = ["find_seeds", "book_before_first_message", "seed_l3"]
