"""Time conversions at the edges: US/Eastern wall-clock text <-> int64 ns UTC.

Parsing is vectorized over fixed-width byte strings (no per-row ``datetime`` objects), because
importers convert millions of timestamps.  DST is resolved per distinct (date, hour) through
``zoneinfo``, so a day that changes offset at 02:00 ET is handled exactly.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

ET = ZoneInfo("America/New_York")
UTC = dt.UTC
NS = 1_000_000_000

_EPOCH_DAYS_CACHE: dict[tuple[int, int, int], int] = {}


def _utc_offset_ns(year: int, month: int, day: int, hour: int) -> int:
    """Offset (ns) to add to an ET wall time to get UTC, for a given local date and hour."""
    local = dt.datetime(year, month, day, hour, 30, tzinfo=ET)
    return -int(local.utcoffset().total_seconds()) * NS  # type: ignore[union-attr]


def parse_et_datetimes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``YYYY-MM-DD HH:MM:SS[.f{1,9}]`` ET strings to ns UTC.

    Returns ``(ns, ok)``; rows that do not match the layout have ``ok`` False and ns 0.  Accepts a
    ``T`` instead of the space.  Fractions of any length up to 9 digits are accepted.
    """
    s = np.asarray(values, dtype="S29")
    n = s.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    b = s.view(np.uint8).reshape(n, 29).astype(np.int64)
    digits = b - 48
    isdig = (digits >= 0) & (digits <= 9)
    ok = (
        isdig[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]].all(axis=1)
        & (b[:, 4] == 45)
        & (b[:, 7] == 45)
        & ((b[:, 10] == 32) | (b[:, 10] == 84))
        & (b[:, 13] == 58)
        & (b[:, 16] == 58)
    )
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 5] * 10 + digits[:, 6]
    day = digits[:, 8] * 10 + digits[:, 9]
    hour = digits[:, 11] * 10 + digits[:, 12]
    minute = digits[:, 14] * 10 + digits[:, 15]
    second = digits[:, 17] * 10 + digits[:, 18]
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour < 24) & (minute < 60)
    ok &= second < 61
    # fraction: optional '.' then 1..9 digits, then end of string (NUL padding)
    frac = np.zeros(n, np.int64)
    has_dot = b[:, 19] == 46
    end_ok = (b[:, 19] == 0) | has_dot
    scale = np.full(n, NS, np.int64)
    in_frac = has_dot.copy()
    for k in range(20, 29):
        col_dig = isdig[:, k] & in_frac
        frac = np.where(col_dig, frac * 10 + digits[:, k], frac)
        scale = np.where(col_dig, scale // 10, scale)
        in_frac &= isdig[:, k]
        bad_tail = ~isdig[:, k] & (b[:, k] != 0) & has_dot
        end_ok &= ~bad_tail
    ok &= end_ok & ~(has_dot & (scale == NS))
    frac_ns = np.where(has_dot, frac * scale, 0)
    ns = np.zeros(n, np.int64)
    if not ok.any():
        return ns, ok
    # days since epoch via a civil-from-days formula (vectorized, proleptic Gregorian)
    y = np.where(month <= 2, year - 1, year)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    local_ns = ((days * 24 + hour) * 60 + minute) * 60 * NS + second * NS + frac_ns
    # offsets per distinct (date, hour)
    key = (year * 10000 + month * 100 + day) * 100 + hour
    key = np.where(ok, key, -1)
    uniq, inv = np.unique(key, return_inverse=True)
    offs = np.zeros(uniq.shape[0], np.int64)
    for i, k in enumerate(uniq):
        if k < 0:
            continue
        kk = int(k)
        yy, rest = divmod(kk, 1_000_000)
        mm, rest = divmod(rest, 10_000)
        dd, hh = divmod(rest, 100)
        try:
            offs[i] = _utc_offset_ns(yy, mm, dd, hh)
        except ValueError:  # e.g. Feb 30
            offs[i] = 0
            ok &= key != k
    ns = np.where(ok, local_ns + offs[inv], 0)
    return ns, ok


def et_midnight_ns(date: dt.date) -> int:
    """ns UTC of 00:00 ET on ``date``."""
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=ET).timestamp()) * NS


def ns_to_et_date(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ns / NS, tz=ET).date()


def et_dates(ns: np.ndarray) -> np.ndarray:
    """Vectorized ET calendar date (as int YYYYMMDD) for ns UTC timestamps."""
    if ns.size == 0:
        return np.zeros(0, np.int64)
    # ET is UTC-4 or UTC-5: compute with both, pick by the zone's rule per distinct UTC hour.
    hours = ns // (3600 * NS)
    uh, inv = np.unique(hours, return_inverse=True)
    out = np.empty(uh.shape[0], np.int64)
    for i, h in enumerate(uh):
        d = dt.datetime.fromtimestamp(int(h) * 3600, tz=ET)
        out[i] = d.year * 10000 + d.month * 100 + d.day
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
    if ns.size == 0:
        return np.zeros(0, np.float64)
    hours = ns // (3600 * NS)
    uh, inv = np.unique(hours, return_inverse=True)
    offs = np.empty(uh.shape[0], np.int64)
    for i, h in enumerate(uh):
        d = dt.datetime.fromtimestamp(int(h) * 3600, tz=ET)
        offs[i] = int(d.utcoffset().total_seconds()) * NS  # type: ignore[union-attr]
    local = ns + offs[inv]
    return (local % (86400 * NS)) / NS
