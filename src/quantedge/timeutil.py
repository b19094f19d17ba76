"""Time conversions at the edges: US/Eastern wall-clock text <-> int64 ns UTC.

Parsing is vectorized over fixed-width byte strings (no per-row ``datetime`` objects), because
importers convert millions of timestamps.  DST is resolved per distinct (date, hour) through
``zoneinfo``, so a day that changes offset at 02:00 ET is handled exactly.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
from numba import njit

ET = ZoneInfo("America/New_York")
UTC = dt.UTC
NS = 1_000_000_000

_EPOCH_DAYS_CACHE: dict[tuple[int, int, int], int] = {}


def _utc_offset_ns(year: int, month: int, day: int, hour: int) -> int:
    """Offset (ns) to add to an ET wall time to get UTC, for a given local date and hour."""
    local = dt.datetime(year, month, day, hour, 30, tzinfo=ET)
    return -int(local.utcoffset().total_seconds()) * NS  # type: ignore[union-attr]


@njit(cache=True)
def _days_from_civil(y: int, m: int, d: int) -> int:
    y = y - 1 if m <= 2 else y
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True)
def _parse_local(b: np.ndarray, local: np.ndarray, ok: np.ndarray, years: np.ndarray) -> None:
    """Fixed-layout ``YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}]`` bytes -> local wall-clock ns (as if UTC)."""
    mdays = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    for i in range(b.shape[0]):
        r = b[i]
        good = True
        for k in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18):
            if r[k] < 48 or r[k] > 57:
                good = False
        if not good or r[4] != 45 or r[7] != 45 or (r[10] != 32 and r[10] != 84) or r[13] != 58 \
                or r[16] != 58:
            ok[i] = False
            continue
        year = (r[0] - 48) * 1000 + (r[1] - 48) * 100 + (r[2] - 48) * 10 + (r[3] - 48)
        month = (r[5] - 48) * 10 + (r[6] - 48)
        day = (r[8] - 48) * 10 + (r[9] - 48)
        hour = (r[11] - 48) * 10 + (r[12] - 48)
        minute = (r[14] - 48) * 10 + (r[15] - 48)
        sec = (r[17] - 48) * 10 + (r[18] - 48)
        if month < 1 or month > 12 or day < 1 or day > mdays[month - 1] or hour > 23 or minute > 59 \
                or sec > 60:
            ok[i] = False
            continue
        if year < 1970 or year > 2100:  # outside any market data; keeps the DST table small
            ok[i] = False
            continue
        if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
            ok[i] = False
            continue
        frac = 0
        if r[19] == 46:  # '.', then 1..9 digits up to the end (NUL padding)
            nd = 0
            for k in range(20, 29):
                c = r[k]
                if c == 0:
                    break
                if c < 48 or c > 57:
                    good = False
                    break
                frac = frac * 10 + (c - 48)
                nd += 1
            if not good or nd == 0:
                ok[i] = False
                continue
            for _ in range(9 - nd):
                frac *= 10
        elif r[19] != 0:
            ok[i] = False
            continue
        days = _days_from_civil(year, month, day)
        local[i] = ((days * 24 + hour) * 60 + minute) * 60 * NS + sec * NS + frac
        years[i] = year
        ok[i] = True


@njit(cache=True)
def _apply_offsets(local: np.ndarray, ok: np.ndarray, t_local: np.ndarray, t_off: np.ndarray,
                   out: np.ndarray) -> None:
    hour_ns = 3600 * NS
    for i in range(local.shape[0]):
        if not ok[i]:
            out[i] = 0
            continue
        h = local[i] - local[i] % hour_ns
        j = np.searchsorted(t_local, h, side="right") - 1
        out[i] = local[i] + t_off[max(j, 0)]


_TRANSITIONS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _transitions(y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Local wall-clock hour starts where ET's UTC offset changes, for years y0..y1.

    Offsets are taken exactly as :func:`_utc_offset_ns` gives them for each (date, hour), so the
    compiled parser matches a per-hour ``zoneinfo`` evaluation (gap hours take the earlier offset,
    the repeated fall-back hour its first occurrence).
    """
    key = (y0, y1)
    if key in _TRANSITIONS:
        return _TRANSITIONS[key]
    t_local = [_days_from_civil(y0, 1, 1) * 24 * 3600 * NS]
    t_off = [_utc_offset_ns(y0, 1, 1, 0)]
    d = dt.date(y0, 1, 2)
    end = dt.date(y1, 12, 31)
    prev = _utc_offset_ns(y0, 1, 1, 12)
    while d <= end:
        cur = _utc_offset_ns(d.year, d.month, d.day, 12)
        if cur != prev:
            for h in range(24):
                if _utc_offset_ns(d.year, d.month, d.day, h) == cur:
                    t_local.append((_days_from_civil(d.year, d.month, d.day) * 24 + h) * 3600 * NS)
                    t_off.append(cur)
                    break
            prev = cur
        d += dt.timedelta(days=1)
    out = (np.array(t_local, np.int64), np.array(t_off, np.int64))
    _TRANSITIONS[key] = out
    return out


def parse_et_datetimes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``YYYY-MM-DD HH:MM:SS[.f{1,9}]`` ET strings to ns UTC.

    Returns ``(ns, ok)``; rows that do not match the layout, name an impossible date, or lie
    outside the years 1970-2100 have ``ok`` False and ns 0.  Accepts a ``T`` instead of the
    space.  One compiled pass over the bytes, then a per-row lookup in a table of DST
    transitions built once per year range.
    """
    s = np.ascontiguousarray(np.asarray(values, dtype="S29"))
    n = s.shape[0]
    ns = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    if n == 0:
        return ns, ok
    local = np.zeros(n, np.int64)
    years = np.zeros(n, np.int64)
    _parse_local(s.view(np.uint8).reshape(n, 29), local, ok, years)
    if ok.any():
        yv = years[ok]
        t_local, t_off = _transitions(int(yv.min()), int(yv.max()))
        _apply_offsets(local, ok, t_local, t_off, ns)
    return ns, ok


def et_midnight_ns(date: dt.date) -> int:
    """ns UTC of 00:00 ET on ``date``."""
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=ET).timestamp()) * NS


def ns_to_et_date(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ns / NS, tz=ET).date()


def _utc_offsets(ns: np.ndarray) -> np.ndarray:
    """ET UTC offset (ns, negative) of each ns UTC timestamp, evaluated once per distinct UTC hour."""
    hours = ns // (3600 * NS)
    uh, inv = np.unique(hours, return_inverse=True)
    offs = np.empty(uh.shape[0], np.int64)
    for i, h in enumerate(uh):
        d = dt.datetime.fromtimestamp(int(h) * 3600, tz=ET)
        offs[i] = int(d.utcoffset().total_seconds()) * NS  # type: ignore[union-attr]
    return offs[inv.reshape(ns.shape)]


def et_local_ns(ns: np.ndarray) -> np.ndarray:
    """ns UTC -> ET wall-clock ns (as if the wall clock were UTC): dates and times of day in ET."""
    ns = np.asarray(ns, dtype=np.int64)
    return ns + _utc_offsets(ns) if ns.size else ns.copy()


def et_dates(ns: np.ndarray) -> np.ndarray:
    """Vectorized ET calendar date (as int YYYYMMDD) for ns UTC timestamps."""
    if np.asarray(ns).size == 0:
        return np.zeros(0, np.int64)
    days = et_local_ns(ns) // (86400 * NS)
    ud, inv = np.unique(days, return_inverse=True)
    out = np.empty(ud.shape[0], np.int64)
    epoch = dt.date(1970, 1, 1)
    for i, d in enumerate(ud):
        x = epoch + dt.timedelta(days=int(d))
        out[i] = x.year * 10000 + x.month * 100 + x.day
    return out[inv]


def format_et(ns: int, digits: int = 6) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` ET for one ns UTC timestamp (exporters, reports)."""
    sec, frac = divmod(int(ns), NS)
    d = dt.datetime.fromtimestamp(sec, tz=ET)
    base = d.strftime("%Y-%m-%d %H:%M:%S")
    if digits <= 0:
        return base
    return f"{base}.{frac // 10 ** (9 - digits):0{digits}d}"


def seconds_since_midnight_et(ns: np.ndarray) -> np.ndarray:
    """Float seconds after ET midnight of each timestamp's own ET date (session classification)."""
    if np.asarray(ns).size == 0:
        return np.zeros(0, np.float64)
    return (et_local_ns(ns) % (86400 * NS)) / NS


def et_wall(ns: np.ndarray) -> np.ndarray:
    """ns UTC -> naive ``datetime64[ns]`` of US/Eastern wall-clock time (for chart axes)."""
    return et_local_ns(ns).astype("datetime64[ns]")
