"""ET text -> ns UTC parsing against a per-row zoneinfo reference, DST edges included."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.timeutil import ET, NS, format_et, parse_et_datetimes


def reference(text: str) -> int | None:
    """Slow, obviously-right parse: fold=0 (first occurrence / earlier offset), like the table."""
    try:
        head, _, frac = text.replace("T", " ").partition(".")
        d = dt.datetime.strptime(head, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    if frac and (not frac.isdigit() or len(frac) > 9):
        return None
    if "." in text and not frac:
        return None
    if not 1970 <= d.year <= 2100:
        return None
    local = d.replace(minute=30, second=0, tzinfo=ET)
    off = int(local.utcoffset().total_seconds())
    naive_s = int((d - dt.datetime(1970, 1, 1)).total_seconds())
    return (naive_s - off) * NS + int(frac.ljust(9, "0") or 0)


EDGES = [
    "2021-03-14 01:59:59.999999", "2021-03-14 02:30:00", "2021-03-14 03:00:00.000001",
    "2021-11-07 00:59:59", "2021-11-07 01:30:00.5", "2021-11-07 02:00:00", "2021-03-01 04:00:00.028010",
    "2012-06-21 09:30:00.004241176", "2024-02-29 12:00:00", "2023-02-29 12:00:00", "2021-13-01 00:00:00",
    "2021-03-01T09:30:00", "2021-03-01 09:30:00.", "2021-03-01 09:30:00.12a", "garbage", "",
    "1969-12-31 23:59:59", "2021-03-01 24:00:00", "2021-04-31 10:00:00",
]


def test_edges_match_reference():
    ns, ok = parse_et_datetimes(np.array(EDGES, dtype="S29"))
    for text, v, good in zip(EDGES, ns, ok, strict=True):
        ref = reference(text)
        assert good == (ref is not None), text
        if good:
            assert int(v) == ref, text


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2060, 12, 31)),
       st.integers(0, 6))
def test_random_times_match_reference(d, digits):
    text = d.strftime("%Y-%m-%d %H:%M:%S")
    if digits:
        text += "." + f"{d.microsecond:06d}"[:digits].ljust(digits, "7")
    ns, ok = parse_et_datetimes(np.array([text], dtype="S29"))
    assert bool(ok[0]) and int(ns[0]) == reference(text)


def test_format_round_trip():
    text = "2021-03-01 09:30:00.123456"
    ns, ok = parse_et_datetimes(np.array([text], dtype="S29"))
    assert ok[0] and format_et(int(ns[0])) == text
