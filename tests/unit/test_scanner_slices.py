"""The scanner's slice assembly: when an incomplete slice may be taken (no broker needed).

A slice's records travel on several raw topics.  Under a backlog one topic can be far behind
another; taking the slices it has not reached yet would drop their late records as replays."""

from __future__ import annotations

import heapq
import time
from types import SimpleNamespace

import numpy as np

from quantedge.live.scanner import Shard, _Pending

TOPICS = ("t.quotes", "t.trades")


def shard_with_quotes_only(n_slices: int, age_s: float) -> Shard:
    """Slices 1..n, each announced as 2 records, of which only the quotes record has arrived."""
    sh = Shard(0, SimpleNamespace(last_slice=np.full(1, -1, np.int64)), TOPICS)
    now = time.monotonic()
    for s in range(1, n_slices + 1):
        p = sh.waiting[s] = _Pending(2)
        p.batches.append(object())
        p.first_seen = now - age_s
        heapq.heappush(sh.order, s)
        sh.saw("t.quotes", s, now)
    return sh


def test_a_topic_that_is_behind_but_delivering_is_waited_for():
    sh = shard_with_quotes_only(5, age_s=60.0)
    sh.saw("t.trades", 0, time.monotonic())  # trades are still delivering earlier slices
    assert sh.take_ready(10.0) == []
    assert sh.engine.last_slice[0] == -1


def test_a_record_that_cannot_come_any_more_releases_the_slice():
    sh = shard_with_quotes_only(5, age_s=0.0)
    sh.saw("t.trades", 3, time.monotonic())  # trades went past slices 1 and 2: their records are gone
    got = [s for s, _ in sh.take_ready(10.0)]
    assert got == [1, 2]  # slice 3 may still get a second trades record; slices 4 and 5 wait behind it


def test_a_silent_topic_releases_old_slices_after_the_wait():
    sh = shard_with_quotes_only(3, age_s=60.0)
    sh.last_seen["t.trades"] = time.monotonic() - 60.0
    sh.max_seen["t.trades"] = 0
    got = [s for s, _ in sh.take_ready(10.0)]
    assert got == [1, 2]  # the last slice waits for a later one, as before
    assert sh.engine.last_slice[0] == 2


def test_a_silent_topic_with_records_left_on_the_broker_is_still_waited_for():
    sh = shard_with_quotes_only(3, age_s=60.0)
    sh.last_seen["t.trades"] = time.monotonic() - 60.0
    sh.max_seen["t.trades"] = 0
    sh.unread = lambda topic, _p: topic == "t.trades"  # the broker holds trades this worker has not read
    assert sh.take_ready(10.0) == []
