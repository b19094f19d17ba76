"""IQFeed trade-condition codes and market centers -> catalog condition bits, and back."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.events import (
    COND_CLOSING,
    COND_CROSS,
    COND_EXTENDED_HOURS,
    COND_HIDDEN,
    COND_INTERMARKET_SWEEP,
    COND_ODD_LOT,
    COND_OFF_EXCHANGE,
    COND_OPENING,
    COND_OUT_OF_SEQUENCE,
    COND_REGULAR,
    COND_SPECIAL_TERMS,
    COND_TRADE_THROUGH_EXEMPT,
    COND_UNKNOWN_CODE,
)
from quantedge.feeds.iqfeed.conditions import (
    BIT_TO_CODE,
    CODE_BITS,
    CODE_NAMES,
    UNREPRESENTABLE_BITS,
    conditions_to_hex,
    describe_codes,
    hex_to_conditions,
    market_center_conditions,
    trade_letter,
    wire_conditions,
)


def test_codes_seen_in_real_nept_ticks():
    # every code combination that occurs in NEPT_ticks_2021-03-01_2021-03-03.csv
    assert hex_to_conditions("01") == (COND_REGULAR, True)
    assert hex_to_conditions("873D17") == (COND_ODD_LOT | COND_INTERMARKET_SWEEP | COND_EXTENDED_HOURS, True)
    assert hex_to_conditions("3D87") == (COND_INTERMARKET_SWEEP | COND_ODD_LOT, True)
    assert hex_to_conditions("8A42") == (COND_OPENING | COND_CROSS, True)
    assert hex_to_conditions("4042") == (COND_CLOSING | COND_CROSS, True)
    assert hex_to_conditions("1987") == (COND_OUT_OF_SEQUENCE | COND_ODD_LOT, True)
    assert hex_to_conditions("3A") == (COND_EXTENDED_HOURS | COND_OUT_OF_SEQUENCE, True)
    # trade-through exempt (47 TTEXEMPT, 89 qualified contingent); special terms that keep a print off
    # the last sale (06 CASH, 11 NEXTDAYCLR, 44 STKOPT_TRADE, 89 qualified contingent)
    tte, special = COND_TRADE_THROUGH_EXEMPT, COND_SPECIAL_TERMS
    assert hex_to_conditions("4706") == (tte | special, True)
    assert hex_to_conditions("470687") == (tte | special | COND_ODD_LOT, True)
    assert hex_to_conditions("8944") == (tte | special, True)
    assert hex_to_conditions("111747") == (tte | special | COND_EXTENDED_HOURS, True)
    assert hex_to_conditions("06") == (special, True) and hex_to_conditions("44") == (special, True)
    assert hex_to_conditions("20") == (0, True)  # AUTO: known to DTN, nothing the catalog models


def test_unknown_and_malformed_codes():
    assert hex_to_conditions("F0") == (COND_UNKNOWN_CODE, True)
    assert hex_to_conditions("01F0") == (COND_REGULAR | COND_UNKNOWN_CODE, True)
    assert hex_to_conditions("873") == (0, False)
    assert hex_to_conditions("8Z") == (0, False)
    assert hex_to_conditions("") == (0, True)
    assert hex_to_conditions("3d") == (COND_INTERMARKET_SWEEP, True)  # hex is case-insensitive


def test_lookup_table_matches_names():
    assert CODE_BITS.shape == (256,)
    defined = np.nonzero(CODE_BITS >= 0)[0]
    assert set(defined.tolist()) == set(CODE_NAMES)
    assert all(c in CODE_NAMES for c in range(0x01, 0x9C))
    assert CODE_BITS[0x00] == -1 and CODE_BITS[0xFF] == -1
    assert describe_codes("873D17") == ["ODDLOT", "INTRMRK_SWEEP", "FORMT"]
    assert describe_codes("F0") == ["?F0"]


def test_market_centers_15_19_24_are_off_exchange():
    mc = np.array([5, 11, 15, 19, 24, 26, 164, 0])
    got = market_center_conditions(mc)
    assert got.dtype == np.uint32
    assert got.tolist() == [0, 0, COND_OFF_EXCHANGE, COND_OFF_EXCHANGE, COND_OFF_EXCHANGE, 0, 0, 0]


def test_reverse_mapping_uses_one_code_per_bit():
    for bit, code in BIT_TO_CODE.items():
        assert hex_to_conditions(code) == (bit, True)
    assert conditions_to_hex(COND_REGULAR | COND_INTERMARKET_SWEEP) == "013D"
    # off-exchange is implied by a TRF venue and written as 85 (OTC) only when it is not
    assert conditions_to_hex(COND_OFF_EXCHANGE | COND_ODD_LOT, venue=19) == "87"
    assert conditions_to_hex(COND_OFF_EXCHANGE | COND_ODD_LOT, venue=11) == "8785"
    assert conditions_to_hex(COND_HIDDEN) == ""
    assert UNREPRESENTABLE_BITS & COND_HIDDEN


@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 5, 11, 15, 19, 24]))
def test_bits_survive_hex_round_trip(bits, venue):
    keep = bits & ~UNREPRESENTABLE_BITS
    text = conditions_to_hex(bits, venue)
    back, ok = hex_to_conditions(text)
    assert ok
    off = int(market_center_conditions(np.array([venue]))[0])
    assert back | off == keep | off
    assert len(text) % 2 == 0


@given(st.text(alphabet="0123456789ABCDEFabcdefXZ ,", max_size=12))
def test_scalar_parser_never_raises(text):
    bits, ok = hex_to_conditions(text)
    assert 0 <= bits < 2**32
    if not ok:
        assert bits == 0


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 5, 11, 15, 19, 24]))
def test_bits_survive_the_history_round_trip(bits, venue):
    """Catalog bits -> (Basis for Last, hex codes) as the simulator writes a tick row -> the history parser.

    Only COND_HIDDEN-like bits without an IQFeed code are lost; COND_OFF_EXCHANGE follows the venue.
    """
    from quantedge.feeds.iqfeed.history import parse_tick_lines, tick_conditions

    basis, codes = wire_conditions(bits, venue)
    assert len(codes) <= 8 and len(codes) % 2 == 0  # IQFeed's 1-4 codes
    line = f"2021-03-01 09:30:00.000001,1.0000,100,100,0.9000,1.1000,1,{basis},{venue},{codes},0,1,\r\n"
    rows, rep = parse_tick_lines(line.encode(), "t")
    assert rep.rows_imported == 1, rep.problems
    off = int(market_center_conditions(np.array([venue]))[0])
    back = int(tick_conditions(rows)[0]) | off
    want = (bits & ~UNREPRESENTABLE_BITS) | off
    on_wire = want & ~off & ~(COND_REGULAR if basis == "C" else 0)
    if bin(on_wire).count("1") <= 4:
        assert back == want
    else:  # more than IQFeed's four codes: four are kept, by priority, and the letter still holds
        assert back & ~want == 0 and len(codes) == 8
        assert trade_letter(back) == basis


def test_trade_type_follows_dtn():
    # the NEPT codes DTN marks O: cash, contingent, opening and closing reports, without the regular bit
    for code in ("4706", "8944", "39", "2E", "111747", "1787"):
        bits, _ = hex_to_conditions(code)
        assert trade_letter(bits) == "O"
    assert trade_letter(COND_REGULAR) == trade_letter(COND_REGULAR | COND_INTERMARKET_SWEEP) == "C"
    assert trade_letter(COND_REGULAR | COND_ODD_LOT) == "O"  # odd lots never update the last sale
    assert trade_letter(COND_EXTENDED_HOURS | COND_ODD_LOT) == "O"  # real: 1,110 odd lots in Form-T hours
    assert trade_letter(COND_EXTENDED_HOURS) == trade_letter(COND_REGULAR | COND_EXTENDED_HOURS) == "E"
    assert trade_letter(COND_EXTENDED_HOURS | COND_SPECIAL_TERMS) == "O"  # real: 111747
    # 01 alone, or beside codes only where the letter cannot say "regular"
    assert wire_conditions(COND_REGULAR) == ("C", "01")
    assert wire_conditions(COND_REGULAR | COND_INTERMARKET_SWEEP) == ("C", "3D")
    assert wire_conditions(COND_REGULAR | COND_ODD_LOT) == ("O", "0187")
    assert wire_conditions(COND_ODD_LOT | COND_INTERMARKET_SWEEP) == ("O", "3D87")
    # at most four codes: the ones that decide the letter first, then Form-T and ISO
    many = (COND_ODD_LOT | COND_OUT_OF_SEQUENCE | COND_EXTENDED_HOURS | COND_INTERMARKET_SWEEP | COND_OPENING
            | COND_TRADE_THROUGH_EXEMPT)
    assert wire_conditions(many) == ("O", "3D198717")


def test_real_nept_prints_get_dtns_letter_and_codes(shared_data):
    """Every real NEPT print, read into catalog bits and written back as IQFeed writes it: DTN's own
    Basis for Last, and code 01 exactly where DTN wrote it (alone, on 13,383 plain prints; never on
    the 6,256 last-qualified ISOs, whose letter says it)."""
    from quantedge.feeds.iqfeed.history import parse_tick_lines, tick_conditions

    path = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    rows, rep = parse_tick_lines(path.read_bytes(), path.name)
    assert rep.rows_imported == len(rows) > 30_000
    bits = tick_conditions(rows)
    raw = [line.split(",")[9] for line in path.read_text().splitlines() if line.count(",") >= 9]
    assert len(raw) == len(rows)
    pairs = {(int(b), int(v)) for b, v in zip(bits, rows.market_center, strict=True)}
    wire = {p: wire_conditions(*p) for p in pairs}
    for i in range(len(rows)):
        basis, codes = wire[(int(bits[i]), int(rows.market_center[i]))]
        assert basis == chr(rows.basis[i]), (i, raw[i])
        ours = [codes[k : k + 2] for k in range(0, len(codes), 2)]
        assert ("01" in ours) == (raw[i] == "01"), (i, raw[i], codes)
