"""IQFeed trade-condition codes and market centers -> the catalog's ``COND_*`` bits.

IQFeed sends trade conditions as 1-4 concatenated two-digit **hex** codes (``01``, ``873D17``;
protocol reference §7) and market centers as decimal Listed Market IDs (§6).  The catalog keeps
one ``uint32`` bit set per trade, so this module owns the translation in both directions:

* :data:`CODE_BITS` — a 256-entry lookup table (code -> bits, ``-1`` for codes not in DTN's table)
  that the Numba line parser indexes directly, so no Python runs per trade;
* :func:`conditions_to_hex` — the reverse, one representative code per bit, for exporters and the
  IQConnect emulator.  ``hex -> bits -> hex -> bits`` is the identity on the bits.

Codes that DTN defines but that carry no information the catalog models (e.g. ``20`` AUTO) map to
0 bits and are *known*; only codes missing from DTN's table become ``COND_UNKNOWN_CODE``.
"""

from __future__ import annotations

import numpy as np

from quantedge.events import (
    COND_AVERAGE_PRICE,
    COND_CANCEL_CORRECTION,
    COND_CLOSING,
    COND_CROSS,
    COND_EXTENDED_HOURS,
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
from quantedge.venues import OFF_EXCHANGE_VENUES, off_exchange_mask

#: DTN's trade-condition table (``STC``), hex code -> short name.  Codes 0x01-0x9B are all defined.
CODE_NAMES: dict[int, str] = {
    0x01: "REGULAR", 0x02: "ACQ", 0x03: "CASHM", 0x04: "BUNCHED", 0x05: "AVGPRI", 0x06: "CASH",
    0x07: "DIST", 0x08: "NEXTDAY", 0x09: "BURSTBSKT", 0x0A: "BUNCHEDSOLD", 0x0B: "ORDETAIL",
    0x0C: "INTERDAY", 0x0D: "BSKTONCLOSE", 0x0E: "RULE127", 0x0F: "RULE155", 0x10: "SOLDLAST",
    0x11: "NEXTDAYCLR", 0x12: "LATEREP", 0x13: "PRP", 0x14: "SELLER", 0x15: "SPLIT", 0x16: "RSVD",
    0x17: "FORMT", 0x18: "CSTMBSKTX", 0x19: "SOLDOSEQ", 0x1A: "CANC", 0x1B: "CANCLAST",
    0x1C: "CANCOPEN", 0x1D: "CANCONLY", 0x1E: "OPEN", 0x1F: "OPNL", 0x20: "AUTO", 0x21: "HALT",
    0x22: "DELAYED", 0x23: "NON_BOARDLOT", 0x24: "POSIT", 0x25: "REOP", 0x26: "AJST", 0x27: "SPRD",
    0x28: "STDL", 0x29: "STPD", 0x2A: "CSTP", 0x2B: "BWRT", 0x2C: "CMBO", 0x2D: "UNSPEC",
    0x2E: "MC_OFCLCLOSE", 0x2F: "STPD_REGULAR", 0x30: "STPD_SOLDLAST", 0x31: "STPD_SOLDOSEQ",
    0x32: "BASIS", 0x33: "VWAP", 0x34: "STS", 0x35: "STT", 0x36: "CONTINGENT", 0x37: "INTERNALX",
    0x38: "MOC", 0x39: "MC_OFCLOPEN", 0x3A: "FORTMTSOLDOSEQ", 0x3B: "YELLOWFLAG", 0x3C: "AUTOEXEC",
    0x3D: "INTRMRK_SWEEP", 0x3E: "DERIVPRI", 0x3F: "REOPNING", 0x40: "CLSING", 0x41: "CAP_ELCTN",
    0x42: "CROSS_TRADE", 0x43: "PRICE_VAR", 0x44: "STKOPT_TRADE", 0x45: "SPIM", 0x46: "BNMT",
    0x47: "TTEXEMPT", 0x48: "LATE", 0x63: "VOL_ADJ", 0x64: "BLANK", 0x65: "SOLDLATE", 0x66: "BLKT",
    0x67: "EXPH", 0x85: "OTC", 0x86: "MS", 0x87: "ODDLOT", 0x88: "CORRCSLDLAST", 0x89: "QUALCONT",
    0x8A: "MC_OPEN", 0x8B: "CONFIRMED", 0x8C: "OUTAGE", 0x8D: "SPRD_LEG", 0x8E: "BNDL_SPRD_LEG",
}
# futures/options/misc/LSE ranges whose individual names the catalog never needs
for _c in list(range(0x49, 0x63)) + list(range(0x68, 0x85)) + list(range(0x8F, 0x9C)):
    CODE_NAMES.setdefault(_c, f"DTN_{_c:02X}")
del _c

#: Codes that set catalog bits.  Every other code in CODE_NAMES is known and sets none.
_CODE_TO_BITS: dict[int, int] = {
    0x01: COND_REGULAR,
    0x87: COND_ODD_LOT,
    0x23: COND_ODD_LOT,  # NON_BOARDLOT
    0x17: COND_EXTENDED_HOURS,  # Form-T
    0x3A: COND_EXTENDED_HOURS | COND_OUT_OF_SEQUENCE,  # Form-T sold out of sequence
    0x3D: COND_INTERMARKET_SWEEP,
    0x10: COND_OUT_OF_SEQUENCE,  # sold last (late report)
    0x12: COND_OUT_OF_SEQUENCE | COND_OPENING,  # late report of opening trade
    0x19: COND_OUT_OF_SEQUENCE,
    0x1E: COND_OUT_OF_SEQUENCE | COND_OPENING,  # late opening report, out of sequence
    0x1F: COND_OPENING,  # late opening report, in sequence
    0x30: COND_OUT_OF_SEQUENCE,
    0x31: COND_OUT_OF_SEQUENCE,
    0x65: COND_OUT_OF_SEQUENCE,  # late report, in sequence
    0x1A: COND_CANCEL_CORRECTION,
    0x1B: COND_CANCEL_CORRECTION,
    0x1C: COND_CANCEL_CORRECTION,
    0x1D: COND_CANCEL_CORRECTION,
    0x88: COND_CANCEL_CORRECTION,  # corrected consolidated last
    0x42: COND_CROSS,
    0x37: COND_CROSS,  # internal cross
    0x18: COND_CROSS,  # custom basket cross
    0x05: COND_AVERAGE_PRICE,
    0x33: COND_AVERAGE_PRICE,  # VWAP
    0x3E: COND_AVERAGE_PRICE,  # derivatively priced
    0x13: COND_AVERAGE_PRICE,  # prior reference price
    0x0B: COND_OPENING,
    0x25: COND_OPENING,  # reopen after halt
    0x39: COND_OPENING,  # market-center official open
    0x3F: COND_OPENING,  # reopening prints
    0x8A: COND_OPENING,  # market-center opening trade
    0x2E: COND_CLOSING,  # market-center official close
    0x38: COND_CLOSING,  # market on close
    0x40: COND_CLOSING,
    0x0D: COND_CLOSING,  # basket on close
    0x85: COND_OFF_EXCHANGE,  # OTC trade
    0x47: COND_TRADE_THROUGH_EXEMPT,  # TTEXEMPT
    0x89: COND_TRADE_THROUGH_EXEMPT | COND_SPECIAL_TERMS,  # qualified contingent trade (611 exempt)
    # settlement or contingency terms that keep a print off the last sale (real NEPT: 4706 CASH and
    # 8944 STKOPT_TRADE prints have basis O; 111747, next-day in Form-T hours, is O where 1747 is E)
    0x03: COND_SPECIAL_TERMS,  # CASHM
    0x06: COND_SPECIAL_TERMS,  # CASH
    0x08: COND_SPECIAL_TERMS,  # NEXTDAY
    0x11: COND_SPECIAL_TERMS,  # NEXTDAYCLR
    0x14: COND_SPECIAL_TERMS,  # SELLER (seller's option)
    0x36: COND_SPECIAL_TERMS,  # CONTINGENT
    0x44: COND_SPECIAL_TERMS,  # STKOPT_TRADE
}

#: code (0-255) -> catalog bits; -1 where DTN defines no such code.  Indexed by the Numba parser.
CODE_BITS = np.full(256, -1, dtype=np.int64)
for _code in CODE_NAMES:
    CODE_BITS[_code] = _CODE_TO_BITS.get(_code, 0)
del _code

#: One representative code per catalog bit, in the order exporters write them.  ``FF`` is not a
#: DTN code: it stands for "the source carried a code we could not map" and maps back to
#: COND_UNKNOWN_CODE, so the bit survives a round trip through text.
BIT_TO_CODE: dict[int, str] = {
    COND_REGULAR: "01",
    COND_OPENING: "8A",
    COND_CLOSING: "40",
    COND_CROSS: "42",
    COND_INTERMARKET_SWEEP: "3D",
    COND_AVERAGE_PRICE: "05",
    COND_OUT_OF_SEQUENCE: "19",
    COND_CANCEL_CORRECTION: "1A",
    COND_ODD_LOT: "87",
    COND_EXTENDED_HOURS: "17",
    COND_OFF_EXCHANGE: "85",
    COND_TRADE_THROUGH_EXEMPT: "47",
    COND_SPECIAL_TERMS: "06",
    COND_UNKNOWN_CODE: "FF",
}

#: Bits with no IQFeed code (lost when written as IQFeed hex conditions).
UNREPRESENTABLE_BITS = 0
for _bit in (1 << i for i in range(32)):
    if _bit not in BIT_TO_CODE:
        UNREPRESENTABLE_BITS |= _bit
del _bit

#: Listed Market IDs of the off-exchange reporting facilities (ADF 15, Nasdaq TRF 19, NYSE TRF 24).
OFF_EXCHANGE_MARKET_CENTERS = OFF_EXCHANGE_VENUES


def hex_to_conditions(text: str) -> tuple[int, bool]:
    """Bits for one conditions string (``"873D17"``) and whether it was well-formed.

    Malformed text (odd length, non-hex) returns ``(0, False)``; unmapped codes set
    ``COND_UNKNOWN_CODE``.  The bulk parsers use :data:`CODE_BITS` directly; this is the scalar
    form for live messages and tests.
    """
    t = text.strip()
    if len(t) % 2:
        return 0, False
    bits = 0
    for i in range(0, len(t), 2):
        pair = t[i : i + 2]
        if not all(c in "0123456789abcdefABCDEF" for c in pair):
            return 0, False
        b = int(CODE_BITS[int(pair, 16)])
        bits |= COND_UNKNOWN_CODE if b < 0 else b
    return bits, True


def conditions_to_hex(bits: int, venue: int = 0) -> str:
    """A representative IQFeed conditions string for catalog ``bits`` (exporters, emulator).

    COND_OFF_EXCHANGE is implied by an off-exchange ``venue`` (15/19/24), so it is written as
    ``85`` (OTC) only when the venue does not already say it.  Bits in
    :data:`UNREPRESENTABLE_BITS` (e.g. COND_HIDDEN) have no IQFeed code and are omitted.
    """
    bits = int(bits)
    if venue in OFF_EXCHANGE_MARKET_CENTERS:
        bits &= ~COND_OFF_EXCHANGE
    return "".join(code for bit, code in BIT_TO_CODE.items() if bits & bit)


#: Bits that keep a print out of the last sale even where the source called it regular-way: DTN marks
#: such prints ``O``, in Form-T hours too (real NEPT: every odd lot, late, average-price and
#: special-terms print is ``O``; the 1,110 odd lots in Form-T hours are ``O``, not ``E``).
NOT_LAST_ELIGIBLE = (COND_ODD_LOT | COND_OUT_OF_SEQUENCE | COND_AVERAGE_PRICE | COND_CANCEL_CORRECTION
                     | COND_SPECIAL_TERMS)


def trade_letter(bits: int) -> str:
    """IQFeed's verdict on a print with catalog ``bits``: ``C`` (last-qualified: updates last, open,
    high and low), ``E`` (extended hours, Form-T) or ``O`` (other).  The letter is the history tick's
    Basis for Last and the L1 Message Contents' trade identifier alike.

    ``C`` needs COND_REGULAR (which the parsers set for ``C``); any of :data:`NOT_LAST_ELIGIBLE` makes
    a print ``O`` in any session.
    (Deriving ``C`` from the absence of other bits wrote ``C`` for real NEPT prints without the regular
    bit: codes ``4706``, ``8944``, ``39``, ``2E`` with basis ``O``: cash, contingent, opening and closing
    reports, which then set the emulated open, high and low.)"""
    bits = int(bits)
    if bits & NOT_LAST_ELIGIBLE:
        return "O"
    if bits & COND_EXTENDED_HOURS:
        return "E"
    return "C" if bits & COND_REGULAR else "O"


#: IQFeed's conditions field holds 1-4 codes (docs/iqfeed-protocol: "1-4 concatenated 2-digit hex
#: codes").  A catalog print can carry more bits (a TAQ print with four condition letters in Form-T
#: hours, say); the wire then keeps the four first in WIRE_PRIORITY: ``01`` where it is written, the
#: codes that keep a print out of the last sale (they decide the letter ``O``), Form-T, ISO,
#: off-exchange, then the auction and exemption codes.
WIRE_MAX_CODES = 4
WIRE_PRIORITY = (COND_REGULAR, COND_ODD_LOT, COND_OUT_OF_SEQUENCE, COND_CANCEL_CORRECTION,
                 COND_AVERAGE_PRICE, COND_SPECIAL_TERMS, COND_EXTENDED_HOURS, COND_INTERMARKET_SWEEP,
                 COND_OFF_EXCHANGE, COND_OPENING, COND_CLOSING, COND_CROSS, COND_TRADE_THROUGH_EXEMPT,
                 COND_UNKNOWN_CODE)


def wire_conditions(bits: int, venue: int = 0) -> tuple[str, str]:
    """(trade type, conditions hex) as IQFeed writes a print, history tick or L1 update alike.

    DTN sends ``01`` (REGULAR) only alone: a last-qualified ISO is ``3D`` with type ``C`` (6,256 real
    NEPT prints), so COND_REGULAR travels in the type letter.  Where the letter cannot carry it
    (COND_REGULAR on a print the letter marks ``O`` or ``E``: one of :data:`NOT_LAST_ELIGIBLE`, or
    in extended hours, which LOBSTER, TAQ and simulated days carry) ``01`` is written beside the
    other codes.  At most :data:`WIRE_MAX_CODES` codes go out (by :data:`WIRE_PRIORITY`).  The
    parsers read COND_REGULAR from type ``C`` or code ``01``, so ``bits -> wire -> bits`` is the
    identity on representable bits that fit in four codes.
    """
    t = trade_letter(bits)
    b = int(bits) & ~UNREPRESENTABLE_BITS
    if venue in OFF_EXCHANGE_MARKET_CENTERS:  # the market center says it
        b &= ~COND_OFF_EXCHANGE
    if b & COND_REGULAR and t == "C" and b != COND_REGULAR:  # the letter says it
        b &= ~COND_REGULAR
    on_wire = [bit for bit in WIRE_PRIORITY if b & bit]
    if len(on_wire) > WIRE_MAX_CODES:
        b = sum(on_wire[:WIRE_MAX_CODES])
    return t, conditions_to_hex(b, venue)


def market_center_conditions(market_centers: np.ndarray) -> np.ndarray:
    """COND_OFF_EXCHANGE where the market center is a TRF/ADF, else 0 (vectorized)."""
    return np.where(off_exchange_mask(np.asarray(market_centers)), COND_OFF_EXCHANGE, 0).astype(np.uint32)


def describe_codes(text: str) -> list[str]:
    """DTN short names of the codes in a conditions string (unknown ones as ``?XX``)."""
    t = text.strip().upper()
    out = []
    for i in range(0, len(t) - 1, 2):
        try:
            code = int(t[i : i + 2], 16)
        except ValueError:
            out.append(f"?{t[i : i + 2]}")
            continue
        out.append(CODE_NAMES.get(code, f"?{t[i : i + 2]}"))
    return out
