"""Venue (market center) ids.

The catalog's ``venue`` field uses IQFeed's Listed Market IDs for US equity venues (IQFeed is the
production feed, so its ids need no translation on the hot path).  Other sources map into them:
TAQ participant letters via :data:`TAQ_EXCHANGE_TO_VENUE`.  Level 2 market-maker ids (MMIDs such as
``NSDQ``) are not in that table; they get ids from :data:`MMID_BASE` upward through a catalog-kept
venue table (see :class:`quantedge.catalog.symbols.NameTable`).
"""

from __future__ import annotations

import numpy as np

#: IQFeed Listed Market ID -> short name (US equity and related venues; see docs/venues.md).
IQFEED_MARKETS: dict[int, str] = {
    1: "NGM", 2: "NCM", 3: "OTC", 4: "OTCBB", 5: "NASDAQ", 6: "NYSE_AMERICAN", 7: "NYSE",
    8: "CHX", 9: "PHLX", 10: "NSX", 11: "NYSE_ARCA", 12: "BX", 13: "CBOE", 14: "OPRA",
    15: "NASD_ADF", 16: "ISE", 17: "BOX", 18: "BATS", 19: "NTRF", 21: "NGSM", 24: "NYSE_TRF",
    25: "EDGA", 26: "EDGX", 27: "DTN", 28: "BYX", 80: "PSX", 88: "MIAX", 116: "BZX", 153: "IEX",
}

#: Off-exchange reporting facilities (FINRA ADF, FINRA/Nasdaq TRF, FINRA/NYSE TRF).
OFF_EXCHANGE_VENUES = frozenset({15, 19, 24})

#: Venue id used for TAQ's "D" (FINRA ADF/TRF, any facility): reported as NTRF.
VENUE_TRF = 19
VENUE_NASDAQ = 5
VENUE_UNKNOWN = 0

#: NYSE TAQ participant letter -> IQFeed listed-market id.
TAQ_EXCHANGE_TO_VENUE: dict[str, int] = {
    "A": 6,  # NYSE American
    "B": 12,  # Nasdaq BX
    "C": 10,  # NYSE National (NSX)
    "D": VENUE_TRF,  # FINRA ADF / TRF (off-exchange)
    "I": 16,  # ISE
    "J": 25,  # Cboe EDGA
    "K": 26,  # Cboe EDGX
    "M": 8,  # NYSE Chicago (CHX)
    "N": 7,  # NYSE
    "P": 11,  # NYSE Arca
    "Q": 5,  # Nasdaq
    "T": 5,  # Nasdaq (older letter)
    "S": 5,  # consolidated tape indicator / Nasdaq
    "V": 153,  # IEX
    "W": 13,  # CBOE (CBSX)
    "X": 80,  # Nasdaq PSX
    "Y": 28,  # Cboe BYX
    "Z": 18,  # Cboe BZX (BATS)
}

#: First id handed to Level 2 market-maker ids (MMIDs) in the catalog venue table.
MMID_BASE = 1000


def is_off_exchange(venue: int) -> bool:
    return venue in OFF_EXCHANGE_VENUES


def off_exchange_mask(venues: np.ndarray) -> np.ndarray:
    """Vectorized :func:`is_off_exchange`."""
    return np.isin(venues, np.fromiter(OFF_EXCHANGE_VENUES, dtype=np.int16))


def venue_name(venue: int) -> str:
    return IQFEED_MARKETS.get(venue, str(venue))
