"""Deterministic time ordering of events: the merge key and a compiled k-way merge.

Merge order (documented in docs/catalog.md): ascending ``ts_recv``, then ``seq`` (feed sequence),
then ``kind`` (kind numbers are ranks: clear < status < order < depth < quote < trade), then the
order of the sources (sorted partition paths) and finally the position inside a source.  Every
tie is broken, so the order is a pure function of the data.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge.events import EVENT_DTYPE


@njit(cache=True)
def _gather(src: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
    for i in range(order.shape[0]):
        out[i] = src[order[i]]


def take_events(events: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``events[order]`` for record arrays; NumPy's fancy indexing of structured dtypes is ~15x slower."""
    out = np.empty(order.shape[0], events.dtype)
    _gather(events, order.astype(np.int64, copy=False), out)
    return out


def concat_events(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate`` for event arrays as raw bytes (NumPy re-promotes every field otherwise)."""
    if len(arrays) == 1:
        return arrays[0]
    raw = np.concatenate([np.ascontiguousarray(a).view(np.uint8) for a in arrays])
    return raw.view(EVENT_DTYPE)


def sort_events(events: np.ndarray) -> np.ndarray:
    """Stable sort of one array by the merge key (ties keep their input order)."""
    if events.shape[0] < 2 or is_sorted(events):
        return events
    order = np.lexsort((events["kind"], events["seq"], events["ts_recv"]))
    return take_events(events, order)


@njit(cache=True)
def _is_sorted(ts: np.ndarray, seq: np.ndarray, kind: np.ndarray) -> bool:
    for i in range(1, ts.shape[0]):
        if ts[i] < ts[i - 1]:
            return False
        if ts[i] == ts[i - 1]:
            if seq[i] < seq[i - 1]:
                return False
            if seq[i] == seq[i - 1] and kind[i] < kind[i - 1]:
                return False
    return True


def is_sorted(events: np.ndarray) -> bool:
    return bool(_is_sorted(events["ts_recv"], events["seq"], events["kind"]))


def merge_sorted_runs(runs: list[np.ndarray]) -> np.ndarray:
    """Merge already-sorted event arrays into one array in merge order (stable by run order)."""
    runs = [r for r in runs if r.shape[0]]
    if not runs:
        return np.zeros(0, EVENT_DTYPE)
    if len(runs) == 1:
        return runs[0]
    pool = concat_events(runs)
    lens = np.array([r.shape[0] for r in runs], np.int64)
    tail = np.cumsum(lens)
    head = tail - lens
    out = np.empty(pool.shape[0], EVENT_DTYPE)
    n, _ = merge_pool_into(pool, head, tail, np.zeros(len(runs), np.bool_), out, 0)
    assert n == out.shape[0]
    return out


@njit(cache=True, nogil=True, inline="always", _nrt=False)
def _head_before(kts, kseq, kkind, dead, a, b) -> bool:
    # "source a's head before source b's head"; equal keys keep source order.  The timestamps
    # decide almost every comparison, so the tie-breaks cost nothing on the common path.  A finished
    # source (or padding leaf) has the largest timestamp and loses every tie by its ``dead`` flag,
    # so even an event at the largest timestamp sorts before it.
    if kts[a] != kts[b]:
        return kts[a] < kts[b]
    if dead[a] != dead[b]:
        return dead[b]
    if kseq[a] != kseq[b]:
        return kseq[a] < kseq[b]
    if kkind[a] != kkind[b]:
        return kkind[a] < kkind[b]
    return a < b


_DONE = np.iinfo(np.int64).max  # timestamp key of a finished source (ties broken by ``dead``)


@njit(cache=True, nogil=True)
def merge_pool_into(pool, head, tail, more, out, n0):
    """Merge the buffered sources of ``pool`` into ``out[n0:]`` in merge order, copying records once.

    Source ``r`` holds ``pool[head[r]:tail[r]]`` (sorted); ``more[r]`` says its file has unread rows.
    Stops when ``out`` is full or when a source with unread rows runs dry (its next rows may sort
    before anything still buffered).  Returns ``(n, dry)``: ``out[:n]`` is filled and ``dry`` is the
    source to refill, or -1.  The caller refills every source with ``more`` and an empty buffer
    before calling, so a call never starts with a dry source.

    A loser tree (tournament tree) picks the next source: after each pop only the path from the
    popped source's leaf to the root is replayed, one comparison per level (a binary heap needs two
    per level and ~20-30 % more time over 200 interleaved sources).
    """
    k = head.shape[0]
    width = 1
    while width < k:
        width *= 2
    kts = np.full(width, _DONE, np.int64)  # padding leaves and finished sources never win
    kseq = np.zeros(width, np.int64)
    kkind = np.zeros(width, np.int64)
    dead = np.ones(width, np.bool_)
    live = 0
    for r in range(k):
        if head[r] < tail[r]:
            e = pool[head[r]]
            kts[r] = e.ts_recv
            kseq[r] = e.seq
            kkind[r] = e.kind
            dead[r] = False
            live += 1
    # build: win[node] is the winner of node's subtree, tree[node] the loser kept at the node
    win = np.empty(2 * width, np.int64)
    tree = np.empty(width, np.int64)
    for r in range(width):
        win[width + r] = r
    for node in range(width - 1, 0, -1):
        a = win[2 * node]
        b = win[2 * node + 1]
        if _head_before(kts, kseq, kkind, dead, a, b):
            win[node] = a
            tree[node] = b
        else:
            win[node] = b
            tree[node] = a
    w = win[1] if width > 1 else 0
    return _merge_loop(pool, head, tail, more, out, n0, kts, kseq, kkind, dead, tree, width, live, w)


@njit(cache=True, nogil=True, _nrt=False)
def _merge_loop(pool, head, tail, more, out, n0, kts, kseq, kkind, dead, tree, width, live, w):
    """The merge itself (see :func:`merge_pool_into`), apart from the tree's allocation so that it
    compiles without reference counting: one pop per output record."""
    n = n0
    cap = out.shape[0]
    while live > 0 and n < cap:
        i = head[w]
        out[n] = pool[i]
        n += 1
        i += 1
        head[w] = i
        if i < tail[w]:
            e = pool[i]
            kts[w] = e.ts_recv
            kseq[w] = e.seq
            kkind[w] = e.kind
        elif more[w]:
            return n, w
        else:
            kts[w] = _DONE
            kseq[w] = 0
            kkind[w] = 0
            dead[w] = True
            live -= 1
        # replay w's path; the step is written as selects (no branch on the outcome, which is a
        # coin flip over interleaved sources): the full key is only read on a timestamp tie
        tw = kts[w]
        node = (w + width) >> 1
        while node > 0:
            lo = tree[node]
            tl = kts[lo]
            c = tl < tw
            if tl == tw:
                c = _head_before(kts, kseq, kkind, dead, lo, w)
            nw = lo if c else w
            tree[node] = w if c else lo
            tw = tl if c else tw
            w = nw
            node >>= 1
    return n, -1
