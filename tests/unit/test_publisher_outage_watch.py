"""The publisher's outage detection (no broker needed): silence while records wait is an outage,
an idle spell with nothing queued is not."""

from __future__ import annotations

from quantedge.live import publisher
from quantedge.live.publisher import OutageWatch


def clock(monkeypatch, t: list[float]) -> None:
    monkeypatch.setattr(publisher.time, "monotonic", lambda: t[0])


def test_records_waiting_without_acknowledgement_start_an_outage(monkeypatch):
    t = [100.0]
    clock(monkeypatch, t)
    w = OutageWatch(stall_s=2.0)
    w.tick(delivered=0, in_flight=0)
    w.tick(delivered=0, in_flight=5)
    t[0] += 2.5
    w.tick(delivered=0, in_flight=5)
    assert w.down and w.outages == 1 and "no acknowledgement for 2.5s" in w.log[0]
    t[0] += 1.0
    w.tick(delivered=5, in_flight=0)
    assert not w.down and "broker back after 1.0s" in w.log[1]


def test_an_idle_spell_before_the_first_record_is_not_an_outage(monkeypatch):
    """A publisher created long before its first record (waiting for a start signal) used to report
    the whole wait as an outage on its first look with records in flight."""
    t = [100.0]
    clock(monkeypatch, t)
    w = OutageWatch(stall_s=2.0)
    t[0] += 22.0  # created, then nothing looked at the queue for 22 s
    w.tick(delivered=0, in_flight=8)
    assert not w.down and w.outages == 0
    t[0] += 0.5
    w.tick(delivered=8, in_flight=0)
    assert not w.down and w.outages == 0 and w.log == []
