"""LOBSTER days open with a populated book: the venue's L3 book is seeded with the orderbook file's
first row with message 1 undone, so after every message its visible levels equal the file's."""

from __future__ import annotations

import numpy as np
import pytest

from quantedge import events as ev
from quantedge.backtest.seeds import book_before_first_message, seed_l3
from quantedge.book.l3 import L3Book
from quantedge.book.verify import lobster_truth
from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook
from quantedge.catalog.symbols import NameTable


def _order(action: int, side: int, px: int, sz: int) -> np.ndarray:
    e = ev.empty(1)
    e["kind"], e["action"], e["side"], e["price"], e["size"] = ev.KIND_ORDER, action, side, px, sz
    e["seq"] = 1
    return e


def test_undoing_message_one() -> None:
    row = np.zeros((2, 3, 2), np.int64)
    row[0] = [[100, 5], [99, 7], [98, 1]]  # a full bid side (3 of 3 levels shown)
    row[1] = [[101, 4], [0, 0], [0, 0]]  # the whole ask side
    before, complete = book_before_first_message(row, _order(ev.ACTION_ADD, 1, 100, 5))
    assert before[0].tolist() == [[99, 7], [98, 1], [0, 0]] and complete == [False, True]
    before, complete = book_before_first_message(row, _order(ev.ACTION_EXECUTE, -1, 101, 2))
    assert before[1].tolist() == [[101, 6], [0, 0], [0, 0]] and complete == [False, True]
    before, complete = book_before_first_message(row, _order(ev.ACTION_DELETE, -1, 102, 3))
    assert before[1].tolist() == [[101, 4], [102, 3], [0, 0]] and complete == [False, True]
    before, complete = book_before_first_message(row, _order(ev.ACTION_CANCEL, 1, 101, 3))
    assert before[0].tolist() == [[101, 3], [100, 5], [99, 7]] and complete == [False, True]


@pytest.mark.parametrize("name", ["LOBSTER_SampleFile_AMZN_2012-06-21_5.zip",
                                  "LOBSTER_SampleFile_AAPL_2012-06-21_1.zip"])
def test_seeded_book_equals_the_verified_replay(shared_data, name) -> None:
    """Seeding with row 1 minus message 1 and applying every message gives, after each message, the
    book of `quantedge verify-book` (row 1 as seed, message 1 skipped: 0 mismatches with the file)."""
    from quantedge.book.verify import _seed

    f = next(iter(lobster_files(shared_data / "lobster" / name)))
    events, _ = read_lobster(f.message, NameTable(), date=f.date, symbol=f.symbol)
    events = events.copy()
    events["symbol"] = 0
    truth = lobster_truth(read_lobster_orderbook(f.orderbook))
    ours = L3Book.allocate(1, capacity=256, max_orders=1 << 16, known_from_start=False)
    seed_l3(ours, 0, truth[0], f.levels, events[events["seq"] == 1])
    ref = L3Book.allocate(1, capacity=256, window=f.levels, max_orders=1 << 16)
    _seed(ref, truth[0], aux_is_size=True)
    msg = events["seq"].astype(np.int64)
    checks = [1, 2, 3, 10, 100, *range(1_000, int(msg.max()), 997)]
    done = 0
    for k in checks:
        end = int(np.searchsorted(msg, k, "right"))  # every event of messages 1..k
        part = events[done:end]
        ours.step(part)
        ref.step(part[part["seq"] >= 2])
        done = end
        for si in range(2):
            n = int(ours.sd[0, si, 0])
            assert n == int(ref.sd[0, si, 0]), (name, k, si)
            assert np.array_equal(ours.lv[0, si, :n, :2], ref.lv[0, si, :n, :2]), (name, k, si)
        if k == 1:  # right after message 1: the file's first row
            for si in range(2):
                shown = int(np.count_nonzero(truth[0][si, :, 0]))
                assert np.array_equal(ours.lv[0, si, :shown, :2], truth[0][si, :shown])
