"""A chunk's preparation for the full-path kernel, done on the device: group its events by symbol and
find the snapshot row each one writes.

Why: with the preparation on the host (``rows_scan`` + ``group_by_symbol``, :mod:`gpu_path`) the host
spent 68 ns per event before every launch on the H200 machine, against 20 ns per event for the
kernel itself (BENCHMARKS.md, GPU section): the end-to-end rate was a fifth of the kernel's.  Here the
host only copies the chunk's raw 64-byte records to the device; the grouping and the row ranks are
computed there by the functions below, which give exactly the host's result:

1. ``prep_count``: the chunk is cut into ``T`` slices; thread t counts its slice's events per symbol
   into ``cnt[k * T + t]`` (unknown symbols in bucket ``ns``) and the unknown symbols' events of a
   worked kind (the CPU step's ``A_BAD_SYMBOL`` count) into ``bad[t]``.
2. an exclusive scan of ``cnt`` in (symbol, slice) order gives each slice its first place for each
   symbol (a stable counting sort: slices keep their order inside a symbol, events inside a slice);
   ``offsets[k]`` = ``cnt[k * T]``, the first grouped index of symbol k.
3. ``prep_place``: each slice moves its records to their places (eight 64-bit words each) and
   remembers where each came from (``perm``).
4. ``prep_rows``: thread s walks symbol s's grouped events with its sampling clock (kept on the
   device from chunk to chunk) and flags, at the stream position, each event that writes a row: the
   rule of ``rows_scan``.
5. an exclusive scan of the flags in stream order gives each row its index; ``prep_rank`` writes it
   at the grouped position (-1: no row).

Every step is written once as the work of one thread (``t``, ``g``, ``s``, ``k``: its index) and
compiled twice: in a loop over the threads on the CPU (:func:`prepare_cpu`, the tests' reference)
and as CUDA kernels (:class:`DevicePrep`), with basic CUDA only (no shared memory, no atomics).
Records are read as 64-bit words (``ts_event`` word 0, ``symbol`` the low half of word 6, ``kind``
byte 4 of word 7: EVENT_DTYPE's layout, checked at import) so that no kernel depends on record
support in the CUDA target.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, njit

from quantedge.events import EVENT_DTYPE
from quantedge.features.pipeline import clock_row, kind_worked

WORDS = 8  # 64-bit words per event record
if (EVENT_DTYPE.itemsize != WORDS * 8 or EVENT_DTYPE.fields["ts_event"][1] != 0
        or EVENT_DTYPE.fields["symbol"][1] != 48 or EVENT_DTYPE.fields["kind"][1] != 60):
    raise ImportError("gpu_prep reads EVENT_DTYPE as 64-bit words; its layout changed")
_LAYOUT = [(n, EVENT_DTYPE.fields[n][0], EVENT_DTYPE.fields[n][1]) for n in EVENT_DTYPE.names]


def event_layout(dtype: np.dtype) -> bool:
    """``dtype`` lays its fields out as EVENT_DTYPE does (the words are read by offset, not by name)."""
    return (dtype.names is not None and dtype.itemsize == EVENT_DTYPE.itemsize
            and [(n, dtype.fields[n][0], dtype.fields[n][1]) for n in dtype.names] == _LAYOUT)


@njit(cache=True, _nrt=False)
def word_symbol(w, i: int) -> int:
    """Event i's ``symbol`` (int32, the low half of word 6, little endian)."""
    lo = w[i * WORDS + 6] & 0xFFFFFFFF
    return lo - ((lo >> 31) & 1) * 4294967296


@njit(cache=True, _nrt=False)
def word_kind(w, i: int) -> int:
    """Event i's ``kind`` (uint8, byte 4 of word 7)."""
    return (w[i * WORDS + 7] >> 32) & 0xFF


@njit(cache=True, _nrt=False)
def prep_count(t: int, w, n: int, ns: int, per: int, kinds: int, cnt, bad, flag) -> None:
    """Slice t (events [t * per, (t + 1) * per) of the chunk): per-symbol counts, unknown symbols'
    worked events added to ``bad[t]``, row flags zeroed."""
    T = cnt.shape[0] // (ns + 1)
    for k in range(ns + 1):
        cnt[k * T + t] = 0
    b = 0
    for i in range(t * per, min(t * per + per, n)):
        flag[i] = 0
        s = word_symbol(w, i)
        if s >= 0 and s < ns:
            cnt[s * T + t] += 1
        else:
            cnt[ns * T + t] += 1
            if kind_worked(kinds, word_kind(w, i)):
                b += 1
    bad[t] += b


@njit(cache=True, _nrt=False)
def seg_total(g: int, a, m: int, L: int, sums) -> None:
    """Scan, part 1: the total of segment g (``a[g * L : (g + 1) * L]``, within the first m)."""
    acc = 0
    for i in range(g * L, min(g * L + L, m)):
        acc += a[i]
    sums[g] = acc


@njit(cache=True, _nrt=False)
def scan_totals(sums, nseg: int, total) -> None:
    """Scan, part 2 (one thread): the segment totals become each segment's start; ``total[0]``: the sum."""
    acc = 0
    for g in range(nseg):
        c = sums[g]
        sums[g] = acc
        acc += c
    total[0] = acc


@njit(cache=True, _nrt=False)
def seg_scan(g: int, a, m: int, L: int, sums) -> None:
    """Scan, part 3: segment g becomes its exclusive prefix sums, from the segment's start."""
    acc = sums[g]
    for i in range(g * L, min(g * L + L, m)):
        c = a[i]
        a[i] = acc
        acc += c


@njit(cache=True, _nrt=False)
def take_offset(k: int, cnt, T: int, offsets) -> None:
    """``offsets[k]``: symbol k's first grouped index (k = ns: where the unknown symbols start)."""
    offsets[k] = cnt[k * T]


@njit(cache=True, _nrt=False)
def prep_place(t: int, w, n: int, ns: int, per: int, cnt, grp, perm) -> None:
    """Slice t moves its events to their grouped places, in order, and records where each came from."""
    T = cnt.shape[0] // (ns + 1)
    for i in range(t * per, min(t * per + per, n)):
        s = word_symbol(w, i)
        k = s if (s >= 0 and s < ns) else ns
        j = cnt[k * T + t]
        cnt[k * T + t] = j + 1
        for q in range(WORDS):
            grp[j * WORDS + q] = w[i * WORDS + q]
        perm[j] = i


@njit(cache=True, _nrt=False)
def prep_rows(s: int, grp, offsets, perm, cad: int, kinds: int, lastt, lastb, flag) -> None:
    """Symbol s's events in order with its sampling clock (``lastt``/``lastb``, ``NO_TS_LO``: not
    started): ``flag[i]`` = 1 at the stream position i of each event that writes a snapshot row.
    The rule of ``rows_scan``: a worked event writes a row when its (monotone-clamped) time lies in a
    later cadence interval than the symbol's previous worked event; the first event only starts the
    clock."""
    for j in range(offsets[s], offsets[s + 1]):
        if not kind_worked(kinds, word_kind(grp, j)):
            continue
        t, k, due = clock_row(lastt, lastb, s, grp[j * WORDS], cad)
        if due < 0:
            continue
        if due == 1:
            lastb[s] = k
            flag[perm[j]] = 1
        lastt[s] = t


@njit(cache=True, _nrt=False)
def prep_rank(t: int, n: int, per: int, perm, rowidx, total, rank) -> None:
    """Grouped positions [t * per, (t + 1) * per): the row each event writes (its index among the
    chunk's rows in stream order, from the scanned flags), -1 for none."""
    for j in range(t * per, min(t * per + per, n)):
        i = perm[j]
        nxt = rowidx[i + 1] if i + 1 < n else total[0]
        rank[j] = rowidx[i] if nxt != rowidx[i] else -1


def geometry(n: int, ns: int) -> tuple[int, int, int, int]:
    """(slices T, events per slice, scan segment length for the counts, for the flags) of a chunk of n
    events: slices of >= 256 events, at most 2,048 of them (the counts are (ns + 1) x T); scan
    segments of about sqrt(length), so both scan passes are short."""
    n = max(1, n)
    T = min(2048, -(-n // 256))
    per = -(-n // T)
    return T, per, _seg(T * (ns + 1)), _seg(n)


def _seg(m: int) -> int:
    return max(64, math.isqrt(max(1, m)) + 1)


@njit(cache=True, _nrt=False)
def _scan_cpu(a, m: int, L: int, sums, total) -> None:
    nseg = -(-m // L)
    for g in range(nseg):
        seg_total(g, a, m, L, sums)
    scan_totals(sums, nseg, total)
    for g in range(nseg):
        seg_scan(g, a, m, L, sums)


@njit(cache=True, _nrt=False)
def prepare_cpu(w, n: int, ns: int, cad: int, kinds: int, T: int, per: int, Lc: int, Lf: int, lastt, lastb,
                cnt, sums, flag, total, bad, grp, perm, rank, offsets) -> int:
    """The device's preparation of a chunk of n events (words ``w``), thread after thread on the CPU;
    returns the chunk's snapshot rows."""
    for t in range(T):
        prep_count(t, w, n, ns, per, kinds, cnt, bad, flag)
    m = T * (ns + 1)
    _scan_cpu(cnt, m, Lc, sums, total)
    for k in range(ns + 1):
        take_offset(k, cnt, T, offsets)
    for t in range(T):
        prep_place(t, w, n, ns, per, cnt, grp, perm)
    for s in range(ns):
        prep_rows(s, grp, offsets, perm, cad, kinds, lastt, lastb, flag)
    _scan_cpu(flag, n, Lf, sums, total)
    for t in range(T):
        prep_rank(t, n, per, perm, flag, total, rank)
    return total[0]


# ---- the same steps as CUDA kernels: thread index -> the step's body ----------------------------------

def k_count(w, n, ns, per, kinds, cnt, bad, flag):
    t = cuda.grid(1)
    if t < cnt.shape[0] // (ns + 1):
        prep_count(t, w, n, ns, per, kinds, cnt, bad, flag)


def k_seg_total(a, m, L, sums, nseg):
    g = cuda.grid(1)
    if g < nseg:
        seg_total(g, a, m, L, sums)


def k_scan_totals(sums, nseg, total):
    if cuda.grid(1) == 0:
        scan_totals(sums, nseg, total)


def k_seg_scan(a, m, L, sums, nseg):
    g = cuda.grid(1)
    if g < nseg:
        seg_scan(g, a, m, L, sums)


def k_take_offsets(cnt, T, offsets):
    k = cuda.grid(1)
    if k < offsets.shape[0]:
        take_offset(k, cnt, T, offsets)


def k_place(w, n, ns, per, cnt, grp, perm):
    t = cuda.grid(1)
    if t < cnt.shape[0] // (ns + 1):
        prep_place(t, w, n, ns, per, cnt, grp, perm)


def k_rows(grp, offsets, perm, cad, kinds, lastt, lastb, flag):
    s = cuda.grid(1)
    if s < offsets.shape[0] - 1:
        prep_rows(s, grp, offsets, perm, cad, kinds, lastt, lastb, flag)


def k_rank(n, per, perm, rowidx, total, rank, T):
    t = cuda.grid(1)
    if t < T:
        prep_rank(t, n, per, perm, rowidx, total, rank)


KERNELS = {f.__name__: f for f in (k_count, k_seg_total, k_scan_totals, k_seg_scan, k_take_offsets, k_place,
                                   k_rows, k_rank)}
_COMPILED: dict[str, object] = {}


def kernels() -> dict[str, object]:
    """The preparation kernels compiled for CUDA (once per process)."""
    if not _COMPILED:
        from quantedge.signals.gpu_path import retarget

        memo: dict = {}
        _COMPILED.update({name: retarget(fn, memo, device=False) for name, fn in KERNELS.items()})
    return _COMPILED


class DevicePrep:
    """The preparation's device buffers for chunks of up to ``max_events`` events of ``ns`` symbols,
    with the symbols' sampling clocks (``lastt``/``lastb``, host arrays to start from), and the
    launches.  ``device``: "gpu" (CUDA kernels on device arrays) or "cpu" (:func:`prepare_cpu` on
    host arrays: the same steps, for tests and machines without a GPU).

    A chunk goes through :meth:`stage` (its records into one of two page-locked host slots: the one
    host copy, which a caller can do for the next chunk while the device works on this one),
    :meth:`launch` (the copy to the device and the kernels, queued on ``stream``, not waited for) and,
    once the stream is synchronized, :meth:`rows`; :meth:`prepare` does all three."""

    def __init__(self, ns: int, max_events: int, cad: int, kinds: int, lastt: np.ndarray, lastb: np.ndarray,
                 device: str = "gpu", tpb: int = 128) -> None:
        self.ns, self.cad, self.kinds, self.device, self.tpb = ns, int(cad), int(kinds), device, tpb
        self.max_events = m = max(1, int(max_events))
        T, _, Lc, Lf = geometry(m, ns)
        n_sums = max(-(-(T * (ns + 1)) // Lc), -(-m // Lf)) + 1
        host = dict(lastt=lastt.astype(np.int64), lastb=lastb.astype(np.int64),
                    cnt=np.zeros(T * (ns + 1), np.int64), sums=np.zeros(n_sums, np.int64),
                    flag=np.zeros(m, np.int64), total=np.zeros(1, np.int64), bad=np.zeros(T, np.int64),
                    grp=np.zeros(m * WORDS, np.int64), perm=np.zeros(m, np.int64), rank=np.zeros(m, np.int64),
                    offsets=np.zeros(ns + 1, np.int64), w=np.zeros(m * WORDS, np.int64))
        if device == "gpu":
            self.d = {k: cuda.to_device(v) for k, v in host.items()}
            self.k = kernels()
            self._slots = [cuda.pinned_array(m * WORDS, np.int64) for _ in range(2)]
            self._total = cuda.pinned_array(1, np.int64)
        else:
            self.d = host
            self._slots = [host["w"], host["w"]]  # the CPU steps read the words where they are staged
            self._total = np.zeros(1, np.int64)
        self._n = [0, 0]

    def bad_symbols(self) -> int:
        """Events of unknown symbols of a worked kind, over every chunk prepared so far."""
        bad = self.d["bad"]
        return int((bad.copy_to_host() if self.device == "gpu" else bad).sum())

    def prepare(self, chunk: np.ndarray) -> int:
        """Stage, launch and wait: afterwards ``d["grp"]`` holds the chunk's events grouped by symbol (8
        words each), ``d["rank"]`` their rows, ``d["offsets"]`` the symbols' starts.  Returns the
        chunk's snapshot rows."""
        self.stage(chunk, 0)
        stream = cuda.stream() if self.device == "gpu" else None
        self.launch(0, stream)
        if stream is not None:
            stream.synchronize()
        return self.rows()

    def stage(self, chunk: np.ndarray, slot: int) -> None:
        """Copy ``chunk`` (EVENT_DTYPE records, at most ``max_events``) into host slot 0 or 1."""
        n = chunk.shape[0]
        if n > self.max_events:
            raise ValueError(f"chunk of {n} events, the buffers hold {self.max_events}")
        if not event_layout(chunk.dtype):
            raise ValueError(f"events must have EVENT_DTYPE's layout, got {chunk.dtype}")
        self._slots[slot][:n * WORDS] = np.ascontiguousarray(chunk).view(np.int64)
        self._n[slot] = n

    def launch(self, slot: int, stream) -> None:
        """Prepare the chunk staged in ``slot``: on the GPU, its copy to the device and the kernels are
        queued on ``stream`` (the row count comes back with them; read it with :meth:`rows` after the
        stream is synchronized); on the CPU, done here."""
        n, d, ns = self._n[slot], self.d, self.ns
        T, per, Lc, Lf = geometry(n, ns)
        cnt = d["cnt"][:T * (ns + 1)]
        if self.device == "cpu":
            prepare_cpu(d["w"], n, ns, self.cad, self.kinds, T, per, Lc, Lf, d["lastt"], d["lastb"], cnt,
                        d["sums"], d["flag"], self._total, d["bad"], d["grp"], d["perm"], d["rank"],
                        d["offsets"])
            return
        d["w"][:n * WORDS].copy_to_device(self._slots[slot][:n * WORDS], stream=stream)
        k, b = self.k, self.tpb

        def grid(threads: int) -> int:
            return max(1, -(-threads // b))

        k["k_count"][grid(T), b, stream](d["w"], n, ns, per, self.kinds, cnt, d["bad"], d["flag"])
        self._scan(cnt, T * (ns + 1), Lc, stream)
        k["k_take_offsets"][grid(ns + 1), b, stream](cnt, T, d["offsets"])
        k["k_place"][grid(T), b, stream](d["w"], n, ns, per, cnt, d["grp"], d["perm"])
        k["k_rows"][grid(ns), b, stream](d["grp"], d["offsets"], d["perm"], self.cad, self.kinds, d["lastt"],
                                         d["lastb"], d["flag"])
        self._scan(d["flag"], n, Lf, stream)
        k["k_rank"][grid(T), b, stream](n, per, d["perm"], d["flag"], d["total"], d["rank"], T)
        d["total"].copy_to_host(self._total, stream=stream)

    def rows(self) -> int:
        """The snapshot rows of the chunk last launched (after its stream is synchronized)."""
        return int(self._total[0])

    def _scan(self, a, m: int, L: int, stream) -> None:
        k, b, d = self.k, self.tpb, self.d
        nseg = -(-m // L)
        blocks = max(1, -(-nseg // b))
        k["k_seg_total"][blocks, b, stream](a, m, L, d["sums"], nseg)
        k["k_scan_totals"][1, 1, stream](d["sums"], nseg, d["total"])
        k["k_seg_scan"][blocks, b, stream](a, m, L, d["sums"], nseg)
