"""Exactness of the L3 and L2 books on real Nasdaq data (LOBSTER 2012-06-21, Databento MBP-10)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from quantedge.book.verify import verify_databento, verify_lobster
from quantedge.cli.book_cmd import register

pytestmark = pytest.mark.realdata

# (file, resync) -> (rows, exact, reveal); mismatch must be 0 in every case
EXPECTED = {
    ("LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", True): (155_934, 122_094, 33_840),
    ("LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", False): (155_934, 33, 155_901),
    ("LOBSTER_SampleFile_AMZN_2012-06-21_1.zip", True): (57_514, 43_561, 13_953),
    ("LOBSTER_SampleFile_AMZN_2012-06-21_1.zip", False): (57_514, 5, 57_509),
    ("LOBSTER_SampleFile_AAPL_2012-06-21_1.zip", True): (118_496, 88_425, 30_071),
    ("LOBSTER_SampleFile_AAPL_2012-06-21_1.zip", False): (118_496, 2, 118_494),
    ("excerpts", True): (998, 680, 318),
    ("excerpts", False): (998, 20, 978),
}


@pytest.mark.parametrize(("name", "resync"), list(EXPECTED))
def test_lobster_book_matches_orderbook_file(shared_data, name, resync):
    results = verify_lobster(shared_data / "lobster" / name, resync=resync)
    assert len(results) == 1  # the 50-level excerpt has no orderbook file and is not verified
    r = results[0]
    rows, exact, reveal = EXPECTED[(name, resync)]
    assert (r.rows, r.exact, r.reveal, r.mismatch) == (rows, exact, reveal, 0)
    assert r.first_mismatch_row == 0
    assert "order_table_full" not in r.anomalies
    if resync:
        # every reveal is one side re-set from the truth file, one level at a time
        assert r.resync_sides == reveal
        assert r.resync_levels == reveal


def test_lobster_hidden_executions_leave_book_alone(shared_data):
    r = verify_lobster(shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", resync=True)[0]
    assert r.hidden_trades == 2444  # type-5 messages of the file
    assert r.mismatch == 0


@pytest.mark.parametrize("resync", [False, True])
def test_databento_mbp10_book_matches_rows(shared_data, resync):
    path = shared_data / "databento" / "AAPL_2024-10-21_mbp10_premarket_excerpt.csv"
    (r,) = verify_databento(path, resync=resync)
    assert r.rows > 4800
    assert r.mismatch == 0
    assert r.exact + r.reveal == r.rows
    if resync:
        assert r.resync_sides == r.reveal
        assert r.exact > 3000


def test_verify_book_command(shared_data):
    app = typer.Typer()
    register(app)

    @app.command()
    def _other() -> None:  # a second command keeps Typer in sub-command mode
        pass

    res = CliRunner().invoke(app, ["verify-book", str(shared_data / "lobster" / "excerpts"), "--resync"])
    assert res.exit_code == 0, res.output
    assert "exact 680" in res.output and "reveal 318" in res.output and "mismatch 0" in res.output
    res = CliRunner().invoke(app, ["verify-book", str(shared_data / "nope.zip")])
    assert res.exit_code == 2
    assert "no such file" in res.output
