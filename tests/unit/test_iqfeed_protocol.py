"""IQFeed protocol module: real lines from the reference, real NEPT history, round trips, fuzz, events."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_MODIFY,
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
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_TS_RECV_MODELED,
    KIND_CLEAR,
    KIND_DEPTH,
    KIND_ORDER,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
    empty,
)
from quantedge.feeds.iqfeed import history
from quantedge.feeds.iqfeed.protocol import (
    ALL_FIELDS,
    DEFAULT_FIELDS,
    DEFAULT_FIELDSET,
    FIELD_TYPES,
    FUNDAMENTAL_FIELDS,
    ClearDepth,
    DepthCommand,
    DerivativeBar,
    EndMsg,
    ErrorMessage,
    EventContext,
    Fieldset,
    Fundamental,
    HistoryRequest,
    L1Update,
    L2LegacyMM,
    L2Order,
    L2PriceLevel,
    LineWriter,
    LookupDailyRow,
    LookupErrorLine,
    LookupIntervalRow,
    LookupOtherRow,
    LookupTickRow,
    MarketMakerInfo,
    NewsHeadline,
    NotFound,
    OtherMessage,
    ParseError,
    Regional,
    SymbolCommand,
    SystemMessage,
    Timestamp,
    TimestampRequest,
    TradeCorrection,
    error_response,
    et_to_ns,
    format_current_protocol,
    format_message,
    format_set_protocol,
    is_ask_update,
    is_bid_update,
    is_extended,
    is_trade,
    make_update,
    mmid_position,
    ns_to_et,
    parse_command,
    parse_line,
    rejected_protocol,
    system_fields,
    to_events,
    trade_type,
)
from quantedge.timeutil import parse_et_datetimes
from quantedge.venues import MMID_BASE

PORTS = ("level1", "level2", "lookup", "admin", "derivative")


def et_ns(text: str) -> int:
    ns, ok = parse_et_datetimes(np.array([text], dtype="S29"))
    assert ok[0]
    return int(ns[0])


def parsed(line: str, port: str, protocol: str = "6.2", fieldset: Fieldset = DEFAULT_FIELDSET):
    m = parse_line(line, port, protocol, fieldset)
    assert not isinstance(m, ParseError), m.message()
    return m


def stable(line: str, port: str, protocol: str = "6.2", fieldset: Fieldset = DEFAULT_FIELDSET) -> None:
    """parse(format(parse(line))) == parse(line)."""
    m = parsed(line, port, protocol, fieldset)
    again = parse_line(format_message(m, protocol), port, protocol, fieldset)
    assert again == m


# --- every example line quoted in the reference ------------------------------------------------------

REAL_Q = "Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5000,6400,48.5100,900,48.1200,48.6450,48.0000,48.0600,ba,01,"  # noqa: E501


def test_real_q_line_values_and_exact_round_trip():
    m = parsed(REAL_Q, "level1")
    assert isinstance(m, L1Update) and m.msg_type == "Q"
    assert m.symbol == "ATVI"
    assert m["Most Recent Trade"] == 485100 and m["Most Recent Trade Size"] == 135
    assert m["Most Recent Trade Time"] == ((11 * 60 + 13) * 60 + 25) * 1_000_000 + 175857
    assert m["Most Recent Trade Market Center"] == 18 and m["Total Volume"] == 1394955
    assert (m["Bid"], m["Bid Size"], m["Ask"], m["Ask Size"]) == (485000, 6400, 485100, 900)
    assert (m["Open"], m["High"], m["Low"], m["Close"]) == (481200, 486450, 480000, 480600)
    assert m.contents == "ba" and m["Most Recent Trade Conditions"] == "01"
    assert not m.is_trade and m.is_bid_update and m.is_ask_update and not m.is_extended
    assert format_message(m) == REAL_Q + "\r\n"
    assert parse_line(REAL_Q.encode() + b"\r\n", "5009", "6.1") == m


def test_real_p_line_with_extra_trailing_fields():
    line = "P,AAPL,188.3500,52500,19:59:14.503633,19,0,188.2500,100,188.3600,100,,,,187.9700,Cbacv,8801,2,17"
    m = parsed(line, "level1")
    assert m.msg_type == "P" and m["Most Recent Trade"] == 1883500 and m["Total Volume"] == 0
    assert m["Open"] is None and m["High"] is None and m["Close"] == 1879700
    assert m.contents == "Cbacv" and m.is_trade and trade_type(m.contents) == "C"
    assert m["Most Recent Trade Conditions"] == "8801" and m.extra == ("2", "17")
    stable(line, "level1")


def test_real_fundamental_line():
    line = (
        "F,MSFT,5,65.6,28624000,97.9500,67.1400,97.9500,83.8300,,,,,,1.49,,0.06,06,MICROSOFT,MSFT,76.800,"
        "1.27,,159851.0,64527.0,03/31/2018,76073.0,7683198,0.50 02/18/2003,0.50 03/29/1999,14,4,7372,24.82,"
        "1,21,05/10/2018,05/18/2017,05/10/2018,02/09/2018,85.5400,,,,,511210,,,,09:00:00,17:00:00,USD,125000,"
        "HMUZ,0.1,01/01/2016,TEST,1,"
    )
    m = parsed(line, "level1")
    assert isinstance(m, Fundamental) and len(m.values) == len(FUNDAMENTAL_FIELDS) == 57
    assert m.symbol == "MSFT" and m.company_name == "MICROSOFT" and m.listed_market == 21
    assert m.security_type == 1 and m.precision == 4 and m.get("Split Factor 1") == "0.50 02/18/2003"
    assert m.get("FIGI") == "TEST" and m.get("Security SubType") == "1" and m.extra == ()
    assert format_message(m) == line + "\r\n"


def test_regional_quote_seconds_or_microseconds():
    m = parsed("R,AAPL,X,1.23,100,13:00:00,1.24,200,13:00:01,0,1,2,", "level1")
    assert isinstance(m, Regional)
    assert (m.bid, m.bid_size, m.ask, m.ask_size, m.market_center) == (12300, 100, 12400, 200, 2)
    assert m.bid_time_us == 13 * 3600 * 1_000_000 and m.ask_time_us == (13 * 3600 + 1) * 1_000_000
    m2 = parsed("R,AAPL,X,1.2300,100,13:00:00.000000,1.2400,200,13:00:01.000000,0,1,2,", "level1")
    assert m2 == m
    stable("R,AAPL,X,1.23,100,13:00:00,1.24,200,13:00:01,0,1,2,", "level1")


@pytest.mark.parametrize("line, ctype, ttype, date, conds, mc, tick", [
    ("C,SPY,X,,,,619.0500,15000,1296380724,,19,", "X", "", None, "", 19, 1296380724),
    ("C,SPY,I,O,07/16/2025,,619.0500,15000,859256116,198944,24,", "I", "O", 20250716, "198944", 24,
     859256116),
    ("C,GLD,X,,,,309.3200,52000,859326789,,24,", "X", "", None, "", 24, 859326789),
    ("C,SLV,X,,,,34.4200,250,909457745,,19,", "X", "", None, "", 19, 909457745),
])  # fmt: skip
def test_real_trade_corrections(line, ctype, ttype, date, conds, mc, tick):
    m = parsed(line, "level1")
    assert isinstance(m, TradeCorrection)
    assert (m.correction_type, m.trade_type, m.date, m.time_us) == (ctype, ttype, date, None)
    assert (m.conditions, m.market_center, m.tick_id) == (conds, mc, tick)
    assert format_message(m) == line + "\r\n"


@pytest.mark.parametrize("line", [
    "S,KEY,99999", "S,SERVER CONNECTED", "S,IP,a.b.c.d 60004", "S,CURRENT PROTOCOL,6.2",
    "S,CUST,real_time,66.112.156.224,60002,73QEupj,4.7.2.0,0,INDEX DTNNEWS NASDAQ NYSE,,500,QT_API,,",
    "S,STATS,,,0,0,1,0,0,0,,,Not Connected,6.0.0.4,474614,0,0,,0.02,0.02,,", "S,KEYOK",
    "S,SERVER DISCONNECTED", "S,SYMBOL LIMIT REACHED,AAPL", "S,REPLACED PREVIOUS WATCH,AAPL",
    "S,CURRENT UPDATE FIELDNAMES,Symbol,Most Recent Trade,Bid",
])  # fmt: skip
def test_system_lines_round_trip_exactly(line):
    for port in ("level1", "level2", "admin", "derivative"):
        m = parsed(line, port)
        assert isinstance(m, SystemMessage)
        assert format_message(m) == line + "\r\n"


def test_system_field_names():
    stats = parsed("S,STATS,,,0,0,1,0,0,0,,,Not Connected,6.0.0.4,474614,0,0,,0.02,0.02,,", "admin")
    named = system_fields(stats)
    assert named["status"] == "Not Connected" and named["iqfeed_version"] == "6.0.0.4"
    assert named["login_id"] == "474614" and named["avg_kb_per_sec_sent"] == ""
    cust = system_fields(
        parsed("S,CUST,real_time,66.112.156.224,60002,73QEupj,4.7.2.0,0,INDEX NYSE,,500,QT_API,,", "level1")
    )
    assert cust["service_type"] == "real_time" and cust["max_symbols"] == "500" and cust["flags"] == "QT_API"


@pytest.mark.parametrize(
    "line, text",
    [
        ("T,20170308 11:13:30", "2017-03-08 11:13:30"),
        ("T,20180709 14:18:31", "2018-07-09 14:18:31"),
        ("T,20191018 12:49:55", "2019-10-18 12:49:55"),
    ],
)
def test_real_timestamps_convert_to_utc(line, text):
    m = parsed(line, "level1")
    assert isinstance(m, Timestamp) and m.ts == et_ns(text)
    assert format_message(m) == line + "\r\n"


def test_not_found_and_errors():
    assert parsed("n,AAPL", "level1") == NotFound("AAPL")
    assert format_message(NotFound("AAPL")) == "n,AAPL\r\n"
    e = parsed("E,Disconnected from server", "level1")
    assert e == ErrorMessage("Disconnected from server") and rejected_protocol(e) is None
    assert parsed("E,!SYNTAX_ERROR!", "level2") == ErrorMessage("!SYNTAX_ERROR!")


def test_protocol_version_rejection_on_every_port():
    line = "E,6.2 is not a valid protocol.,"
    for port in PORTS:
        m = parsed(line, port)
        assert isinstance(m, ErrorMessage | LookupErrorLine)
        assert m.text == "6.2 is not a valid protocol." and rejected_protocol(m) == "6.2"
    assert format_current_protocol("5.0") == "E,5.0 is not a valid protocol.,\r\n"
    assert format_current_protocol("6.1") == "S,CURRENT PROTOCOL,6.1\r\n"
    assert format_set_protocol("6.2") == "S,SET PROTOCOL,6.2\r\n"
    with pytest.raises(ValueError, match="unsupported IQFeed protocol"):
        format_set_protocol("7.0")
    with pytest.raises(ValueError, match="unsupported IQFeed protocol"):
        parse_line(REAL_Q, "level1", "7.0")
    with pytest.raises(ValueError, match="unknown IQFeed port"):
        parse_line(REAL_Q, "1234", "6.2")


L2_REAL = [
    ("5,@ESZ21,648907593934,,A,20:32:47.333543,2021-10-24,", L2Order(
        "5", "@ESZ21", 648907593934, "", "A", time_us=73967333543, date=20211024)),
    ("6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-04-01,", L2Order(
        "6", "QQQ", None, "AMEX", "A", 4088400, 100, None, 4, 64358059128, 20220401)),
    ("5,TSLA,,CHXE,B,,2022-04-01,", L2Order("5", "TSLA", None, "CHXE", "B", date=20220401)),
    ("5,QQQ,,MEMX,B,,2022-04-06,", L2Order("5", "QQQ", None, "MEMX", "B", date=20220406)),
    ("3,@ESM19,12345678,MD01,A,2938.25,65,10,2,20:31:04.876740,2019-04-23,", L2Order(
        "3", "@ESM19", 12345678, "MD01", "A", 29382500, 65, 10, 2, 73864876740, 20190423)),
    ("7,@ESM19,B,2938.25,65,11,2,20:31:04.876740,2019-04-23,", L2PriceLevel(
        "7", "@ESM19", "B", 29382500, 65, 11, 2, 73864876740, 20190423)),
    ("9,@ESM19,A,2938.25,20:31:04.876740,2019-04-23,", L2PriceLevel(
        "9", "@ESM19", "A", 29382500, time_us=73864876740, date=20190423)),
    ("S,CLEAR DEPTH,@ESZ22,B,", ClearDepth("@ESZ22", "B")),
    ("M,MD02,Market depth 2", MarketMakerInfo("MD02", "Market depth 2")),
]  # fmt: skip


@pytest.mark.parametrize("line, expect", L2_REAL)
def test_real_level2_lines(line, expect):
    assert parsed(line, "level2") == expect
    stable(line, "level2")
    if not line.startswith("9"):  # 9 carries no Precision field, so it is written with 4 decimals
        assert format_message(expect) == line + "\r\n"


def test_legacy_level2_line():
    line = "Z,@ES#,MD01,2982.25,2982.5,99,238,12:49:52.696621,2019-10-18,52,12:49:52.541104,T,T,F,"
    m = parsed(line, "level2", "6.1")
    assert isinstance(m, L2LegacyMM)
    assert (m.symbol, m.mmid, m.bid, m.ask, m.bid_size, m.ask_size) == (
        "@ES#",
        "MD01",
        29822500,
        29825000,
        99,
        238,
    )
    assert (m.date, m.condition_code, m.bid_valid, m.ask_valid, m.end_of_group) == (
        20191018,
        "52",
        True,
        True,
        False,
    )
    assert format_message(m, "6.1") == line + "\r\n"
    assert mmid_position("MD01") == 0 and mmid_position("MD10") == 9 and mmid_position("NSDQ") is None


LOOKUP_REAL = [
    "XYZ,LH,2018-04-17 17:51:22.123456,96.0700,1061909,0,0.0000,0.0000,4145784264,O,19,143A,2,17",
    "I,LH,2023-06-28 00:00:00,4411.50,4411.25,4411.25,4411.50,42885,55,0,",
    "O,LH,2022-08-02,4167.25,4160.00,4167.25,4160.00,3,1103,",
    "!ENDMSG!,",
    "E,!NO_DATA!,",
    "E,!NO_DATA!,,",
    "123,E,!NO_DATA!,,",
    "E,Unauthorized user ID.,",
    "E,Too many simultaneous history requests,",
    "LS,2,NCM,National Capital Market,5,NASDAQ,",
]


def test_real_lookup_lines():
    tick = parsed(LOOKUP_REAL[0], "lookup")
    assert tick == LookupTickRow(
        "XYZ",
        et_ns("2018-04-17 17:51:22.123456"),
        960700,
        1061909,
        0,
        0,
        0,
        4145784264,
        "O",
        19,
        "143A",
        2,
        17,
    )
    bar = parsed(LOOKUP_REAL[1], "lookup")
    assert bar == LookupIntervalRow(
        "I", et_ns("2023-06-28 00:00:00"), 44115000, 44112500, 44112500, 44115000, 42885, 55, 0
    )
    day = parsed(LOOKUP_REAL[2], "lookup")
    assert day == LookupDailyRow("O", 20220802, 41672500, 41600000, 41672500, 41600000, 3, 1103)
    assert format_message(day, decimals=2) == LOOKUP_REAL[2] + "\r\n"
    assert format_message(bar, decimals=2) == LOOKUP_REAL[1] + "\r\n"
    assert parsed("!ENDMSG!,", "lookup") == EndMsg(None)
    assert parsed("E,!NO_DATA!,,", "lookup") == LookupErrorLine(None, "!NO_DATA!")
    assert parsed("123,E,!NO_DATA!,,", "lookup") == LookupErrorLine("123", "!NO_DATA!")
    assert parsed("E,Unauthorized user ID.,", "lookup") == LookupErrorLine(None, "Unauthorized user ID.")
    assert parsed(LOOKUP_REAL[-1], "lookup") == LookupOtherRow(
        None, "LS", ("2", "NCM", "National Capital Market", "5", "NASDAQ")
    )
    assert parsed("S,SERVER CONNECTED", "lookup") == SystemMessage("SERVER CONNECTED")
    for line in LOOKUP_REAL:
        stable(line, "lookup")
    assert error_response("R1", "!NO_DATA!") == "R1,E,!NO_DATA!,\r\nR1,!ENDMSG!,\r\n"


def test_lookup_rows_61_have_no_lh_and_62_do():
    row = parsed(LOOKUP_REAL[0], "lookup")
    l61, l62 = format_message(row, "6.1"), format_message(row, "6.2")
    assert l61.startswith("XYZ,2018-04-17 ") and l62.startswith("XYZ,LH,2018-04-17 ")
    assert parse_line(l61, "lookup", "6.1") == row == parse_line(l62, "lookup", "6.2")
    anon = LookupTickRow(None, row.ts, *[getattr(row, f) for f in LookupTickRow.__slots__[2:]])
    assert format_message(anon, "6.1").startswith("2018-04-17 17:51:22.123456,96.0700,")
    assert format_message(anon, "6.2").startswith("LH,2018-04-17 17:51:22.123456,")
    assert format_message(EndMsg("XYZ"), "6.2") == "XYZ,!ENDMSG!,\r\n"  # never an LH on the terminator


def test_derivative_bar():
    line = "BC,AAPL,2018-01-01 09:30:00,100.01,101.23,99.98,100.93,143562,745,0"
    m = parsed(line, "derivative")
    assert m == DerivativeBar(
        None, "BC", "AAPL", et_ns("2018-01-01 09:30:00"), 1000100, 1012300, 999800, 1009300, 143562, 745, 0
    )
    stable(line, "derivative")
    stable("TEST,BH,AAPL,2018-01-01 09:30:00,100.01,101.23,99.98,100.93,143562,745,0,", "derivative")


REQUESTS = [
    "HTX,APPL,500,1,TEST,500",
    "HTD,AAPL,180,2000,093000,160000,0,TEST,500",
    "HTT,AAPL,20000101 093000,20010101 160000,100000,093000,160000,1,TEST,500",
    "HIX,AAPL,5,10000,0,TEST,25000,v,0",
    "HID,AAPL,15,25,25000,093000,160000,1,TEST,25000,t,1",
    "HIT,APPL,5,20000101 093000,20010101 160000,25000,093000,160000,1,TEST,15000,s,0",
    "HDX,AAPL,180,0,TEST,500",
    "HDT,AAPL,20000101,20100101,15000,1,TEST,25000",
    "HWX,AAPL,35000,0,TEST,100",
    "HMX,AAPL,1000,1,TEST,10000",
    "HTX,SYM,100,1,T",
]


@pytest.mark.parametrize("line", REQUESTS)
def test_history_requests_round_trip_exactly(line):
    req = parse_command(line + "\r\n", "lookup")
    assert isinstance(req, HistoryRequest)
    assert format_message(req) == line + "\r\n"


def test_history_request_values_and_validation():
    req = parse_command(REQUESTS[2], "lookup")
    assert req.begin == "20000101 093000" and req.begin_ns() == et_ns("2000-01-01 09:30:00")
    assert req.end_ns() == et_ns("2001-01-01 16:00:00") and req.max_datapoints == 100000
    assert req.direction == 1 and req.request_id == "TEST" and req.row_kind == "tick"
    bad = parse_command("HIX,AAPL,5,10000,0,TEST,25000,q,0", "lookup")
    assert isinstance(bad, ParseError) and bad.field == "interval_type"
    bad = parse_command("HTT,AAPL,20001301 093000,,,,,,", "lookup")
    assert isinstance(bad, ParseError) and bad.field == "begin" and bad.reason == "bad_date"
    with pytest.raises(ValueError, match="reserved"):
        format_message(HistoryRequest("HTX", "AAPL", request_id="LH"))
    with pytest.raises(ValueError, match="takes no"):
        format_message(HistoryRequest("HTX", "AAPL", interval=5))


def test_client_commands():
    assert parse_command("wAAPL\r\n", "level1") == SymbolCommand("w", "AAPL")
    assert parse_command("t@ESZ21", "level1") == SymbolCommand("t", "@ESZ21")
    assert parse_command("mMD02", "level2") == SymbolCommand("m", "MD02")
    assert parse_command("T", "level1") == TimestampRequest()
    assert parse_command("WPL,@ES#,10", "level2") == DepthCommand("WPL", "@ES#", 10)
    assert parse_command("ROR,@ESZ21", "level2") == DepthCommand("ROR", "@ESZ21")
    assert parse_command("S,SET PROTOCOL,6.2", "lookup") == SystemMessage("SET PROTOCOL", ("6.2",))
    assert parse_command("SBF,s,AAPL,,,R1", "lookup") == OtherMessage("SBF", ("s", "AAPL", "", "", "R1"))
    sel = parse_command(DEFAULT_FIELDSET.select_command(), "level1")
    assert Fieldset.from_system_args(sel.args) == DEFAULT_FIELDSET
    for cmd in (
        SymbolCommand("r", "AAPL"),
        DepthCommand("WPL", "AAPL", 5),
        DepthCommand("WOR", "@ES#"),
        TimestampRequest(),
    ):
        port = "level2" if isinstance(cmd, DepthCommand) else "level1"
        assert parse_command(format_message(cmd), port) == cmd
    assert isinstance(parse_command("w", "level1"), ParseError)
    assert isinstance(parse_command("zzz,1", "level1"), ParseError)


# --- fieldsets and message contents -----------------------------------------------------------------


def test_fieldset_rules():
    assert len(ALL_FIELDS) == 70 and set(FIELD_TYPES) == set(ALL_FIELDS)
    assert DEFAULT_FIELDSET.names == DEFAULT_FIELDS and DEFAULT_FIELDS[0] == "Symbol"
    fs = Fieldset(("Bid", "Symbol", "Ask"))
    assert fs.names == ("Symbol", "Bid", "Ask") and Fieldset(("Bid", "Ask")) == fs
    assert fs.select_command() == "S,SELECT UPDATE FIELDS,Symbol,Bid,Ask\r\n"
    with pytest.raises(ValueError, match="unknown IQFeed update field"):
        Fieldset(("Bid", "Bogus"))
    reply = parsed(fs.current_fieldnames_line(), "level1")
    assert reply.name == "CURRENT UPDATE FIELDNAMES" and Fieldset.from_system_args(reply.args) == fs
    m = parsed("Q,AAPL,1.5000,1.5100,", "level1", fieldset=fs)
    assert m.get("Bid") == 15000 and m.get("Ask") == 15100 and m.get("Last") is None
    assert parsed(REAL_Q, "level1", fieldset=Fieldset(ALL_FIELDS[:3])).extra  # extra fields kept


def test_contents_helpers():
    assert is_trade("Cbacv") and is_trade("E") and is_trade("Ov") and not is_trade("ba") and not is_trade("")
    assert is_bid_update("ba") and is_ask_update("ba") and not is_bid_update("a") and not is_ask_update(None)
    assert is_extended("Ev") and not is_extended("Cv")
    assert trade_type("bCv") == "C" and trade_type("ba") == ""


@pytest.mark.parametrize("line, field, reason", [
    (REAL_Q.replace("48.5000", "48.5x00"), "Bid", "not_a_number"),
    (REAL_Q.replace("11:13:25.175857", "11:73:25.175857"), "Most Recent Trade Time", "bad_time"),
    (REAL_Q.replace(",6400,", ",64.5,"), "Bid Size", "not_an_integer"),
    (REAL_Q.replace("48.5000", "nan"), "Bid", "out_of_range"),
    ("Q,ATVI,48.5100,135", "Most Recent Trade Time", "missing_field"),
    ("6,QQQ,,AMEX,X,408.8400,100,,4,17:52:38.059128,2022-04-01,", "Side", "bad_side"),
    ("6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-02-30,", "Date", "bad_date"),
    ("5,QQQ,,,A,17:52:38.059128,2022-04-01,", "OrderID", "missing_field"),
    ("C,SPY,Q,,,,619.0500,15000,1,,19,", "Correction Type", "bad_value"),
    ("Z,@ES#,MD01,2982.25,2982.5,99,238,12:49:52.696621,2019-10-18,52,12:49:52.541104,T,Y,F,",
     "Ask Info Valid", "bad_flag"),
    ("Y,1,2", "type", "unknown_message_type"),
])  # fmt: skip
def test_parse_errors_name_the_field(line, field, reason):
    port = "level1" if line[0] in "QC" else "level2"
    got = parse_line(line, port)
    assert isinstance(got, ParseError), got
    assert (got.field, got.reason) == (field, reason)
    assert field in got.message() and got.line.startswith(line[:20])


def test_bad_date_in_a_selected_field_is_named():
    fs = Fieldset(("Most Recent Trade", "Most Recent Trade Date", "Bid"))
    ok = parsed("Q,AAPL,1.5000,02/28/2024,1.4900,", "level1", fieldset=fs)
    assert ok["Most Recent Trade Date"] == 20240228
    got = parse_line("Q,AAPL,1.5000,02/30/2024,1.4900,", "level1", fieldset=fs)
    assert isinstance(got, ParseError) and (got.field, got.reason) == ("Most Recent Trade Date", "bad_date")


def test_lookup_parse_errors():
    bad = parse_line("LH,2018-04-17 17:51:22.123456,96.0700,x,0,0,0,1,O,19,143A,2,17,", "lookup")
    assert isinstance(bad, ParseError) and bad.field == "Last Size"
    bad = parse_line("LH,2018-04-17 17:51:22.123456,96.07,1,0,0,0,1,Q,19,143A,2,17,", "lookup")
    assert isinstance(bad, ParseError) and bad.field == "Basis For Last"
    bad = parse_line("LH,2018-04-17 17:51:22.123456,96.07,1,0,0,0,1,O,19,14Z,2,17,", "lookup")
    assert isinstance(bad, ParseError) and bad.field == "Trade Conditions"
    bad = parse_line("LH,2022-08-02,1,1,1,1,3,1103,99,", "lookup")
    assert isinstance(bad, ParseError) and bad.reason == "too_many_fields"
    assert parse_line("", "lookup") == ParseError("", "empty_line", "", "")


# --- the real NEPT history (protocol 6.1 lookup output) -----------------------------------------------


@pytest.mark.realdata
def test_real_nept_ticks_parse_and_reformat_exactly(shared_data):
    path = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    raw = path.read_bytes()
    lines = raw.decode("latin-1").splitlines()
    msgs = [parse_line(x, "lookup", "6.1") for x in lines]
    errors = [m for m in msgs if isinstance(m, ParseError)]
    assert errors == []
    assert msgs[-1] == EndMsg(None)
    rows = msgs[:-1]
    assert all(isinstance(r, LookupTickRow) and r.request_id is None for r in rows)
    assert len(rows) == 32627
    # exact text back (6.1 has no LH) and the 6.2 form parses to the same values
    for line, row in zip(lines[:-1], rows, strict=True):
        assert format_message(row, "6.1") == line + "\r\n"
    for row in rows[::97]:
        assert parse_line(format_message(row, "6.2"), "lookup", "6.2") == row
    # agrees with the bulk history parser on every value it produces
    bulk, report = history.parse_tick_lines(raw, str(path))
    assert report.rows_imported == len(rows)
    assert np.array_equal(bulk.ts, [r.ts for r in rows])
    assert np.array_equal(bulk.last, [r.last for r in rows])
    assert np.array_equal(bulk.bid, [r.bid for r in rows]) and np.array_equal(bulk.ask, [r.ask for r in rows])
    assert np.array_equal(bulk.tick_id, [r.tick_id for r in rows])
    assert np.array_equal(bulk.market_center, [r.market_center for r in rows])
    assert bytes(bulk.basis.astype(np.uint8)) == "".join(r.basis for r in rows).encode()


@pytest.mark.realdata
def test_real_nept_bars_parse_and_reformat_exactly(shared_data):
    lines = (
        (shared_data / "iqfeed" / "NEPT_bars_1s_2021-03-01_2021-03-03.csv").read_text("latin-1").splitlines()
    )
    msgs = [parse_line(x, "lookup", "6.1") for x in lines]
    assert [m for m in msgs if isinstance(m, ParseError)] == []
    assert msgs[-1] == EndMsg(None)
    first = msgs[0]
    assert first == LookupIntervalRow(
        None, et_ns("2021-03-01 04:00:00"), 15200, 15200, 15200, 15200, 1000, 1000, 0
    )
    for line, row in zip(lines[:-1], msgs[:-1], strict=True):
        assert format_message(row, "6.1") == line + "\r\n"


# --- hypothesis round trips, both protocol versions -----------------------------------------------------

PROTOCOL = st.sampled_from(["6.1", "6.2"])
text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@#.+-=$ ", min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s not in ("LH", "LS", "LC", "LM", "E", "S")
)
symbol = text
opt_int = st.none() | st.integers(0, 10**12)
opt_price = st.none() | st.integers(0, 10**9)
opt_time = st.none() | st.integers(0, 86_400 * 1_000_000 - 1)
dates = st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)).map(
    lambda d: d.year * 10000 + d.month * 100 + d.day
)
opt_date = st.none() | dates
rid = st.none() | text


def _unambiguous(ns: int) -> bool:
    """ET wall time is ambiguous in the repeated 01:00-02:00 hour of each November; the wire cannot
    say which occurrence (both the protocol and timeutil read it as the first)."""
    return et_to_ns(*ns_to_et(ns)) == ns


timestamps = st.integers(631_152_000, 2_200_000_000).map(lambda s: s * 10**9).filter(_unambiguous)
tick_ts = (
    st.tuples(timestamps, st.integers(0, 999_999)).map(lambda t: t[0] + t[1] * 1000).filter(_unambiguous)
)


def _value(kind: str):
    return {
        "price": opt_price | st.integers(-(10**8), 0),
        "int": opt_int,
        "time": opt_time,
        "date": opt_date,
        "str": st.none() | text,
    }[kind]


@st.composite
def l1_updates(draw):
    names = draw(st.lists(st.sampled_from(ALL_FIELDS[1:]), unique=True, max_size=20))
    fs = Fieldset(tuple(names))
    vals = {n: draw(_value(FIELD_TYPES[n])) for n in fs.names[1:]}
    vals["Symbol"] = draw(symbol)
    upd = make_update(draw(st.sampled_from("QP")), fs, vals)
    extra = tuple(draw(st.lists(st.text(alphabet="xyz012", max_size=3), max_size=3)))
    return L1Update(upd.msg_type, fs, upd.values, extra)


@settings(max_examples=300, deadline=None)
@given(l1_updates(), PROTOCOL)
def test_l1_update_round_trip(msg, protocol):
    assert parse_line(format_message(msg, protocol), "level1", protocol, msg.fieldset) == msg


def _fixed(precision: int):
    unit = 10 ** max(0, 4 - precision)
    return st.integers(0, 10**8).map(lambda v: v * unit)


@st.composite
def l2_orders(draw):
    t = draw(st.sampled_from("03456"))
    mm = draw(st.booleans())
    oid = None if mm else draw(st.integers(0, 10**15))
    mmid = draw(text) if mm else draw(st.sampled_from(["", "MD01"]))
    side = draw(st.sampled_from("AB"))
    if t == "5":
        return L2Order(t, draw(symbol), oid, mmid, side, time_us=draw(opt_time), date=draw(opt_date))
    prec = draw(st.none() | st.integers(0, 6))
    price = draw(st.none() | _fixed(4 if prec is None else prec))
    return L2Order(
        t,
        draw(symbol),
        oid,
        mmid,
        side,
        price,
        draw(opt_int),
        draw(opt_int),
        prec,
        draw(opt_time),
        draw(opt_date),
    )


@st.composite
def l2_levels(draw):
    t = draw(st.sampled_from("789"))
    side = draw(st.sampled_from("AB"))
    if t == "9":
        return L2PriceLevel(
            t, draw(symbol), side, draw(st.none() | _fixed(4)), time_us=draw(opt_time), date=draw(opt_date)
        )
    prec = draw(st.none() | st.integers(0, 6))
    return L2PriceLevel(
        t,
        draw(symbol),
        side,
        draw(st.none() | _fixed(4 if prec is None else prec)),
        draw(opt_int),
        draw(opt_int),
        prec,
        draw(opt_time),
        draw(opt_date),
    )


legacy = st.builds(
    L2LegacyMM,
    st.sampled_from("Z2"),
    symbol,
    text,
    opt_price,
    opt_price,
    opt_int,
    opt_int,
    opt_time,
    opt_date,
    st.sampled_from(["", "52", "O"]),
    opt_time,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


def _fundamental_values(v: list[str]) -> tuple[str, ...]:
    """Random text, except the fields the parser types (Listed Market, Security Type, Precision)."""
    out = ["SYM", *v[1:]]
    for name in ("Listed Market", "Security Type", "Precision"):
        i = FUNDAMENTAL_FIELDS.index(name)
        out[i] = str(len(out[i]))
    return tuple(out)


level1_msgs = st.one_of(
    st.builds(
        Regional,
        symbol,
        st.sampled_from(["", "X"]),
        opt_price,
        opt_int,
        opt_time,
        opt_price,
        opt_int,
        opt_time,
        opt_int,
        opt_int,
        opt_int,
    ),
    st.builds(
        TradeCorrection,
        symbol,
        st.sampled_from("IX"),
        st.sampled_from(["", "C", "E", "O"]),
        opt_date,
        opt_time,
        opt_price,
        opt_int,
        opt_int,
        st.sampled_from(["", "01", "198944", "873D17"]),
        opt_int,
    ),
    st.builds(
        Fundamental,
        st.lists(st.text(alphabet="AB1. /", max_size=6), min_size=57, max_size=57).map(_fundamental_values),
        st.lists(text, max_size=2).map(tuple),
    ),
    st.builds(
        NewsHeadline,
        text,
        text,
        st.lists(text, max_size=3).map(tuple),
        dates,
        st.integers(0, 86_399).map(lambda s: s * 1_000_000),
        st.text(alphabet="ab, c.", max_size=20),
    ),
    st.builds(Timestamp, dates, st.integers(0, 86_399).map(lambda s: s * 1_000_000)),
    st.builds(NotFound, symbol),
    st.builds(
        ErrorMessage, st.text(alphabet="ab !.,_", min_size=1, max_size=20).map(lambda s: s.rstrip(",") or "x")
    ),
    st.builds(
        SystemMessage,
        st.sampled_from(["SERVER CONNECTED", "STATS", "KEY", "WATCHES"]),
        st.lists(st.text(alphabet="ab1. ", max_size=5), max_size=6).map(tuple),
    ),
    st.builds(ClearDepth, symbol, st.sampled_from(["A", "B", ""])),
)


@settings(max_examples=300, deadline=None)
@given(level1_msgs, PROTOCOL)
def test_level1_other_messages_round_trip(msg, protocol):
    assert parse_line(format_message(msg, protocol), "level1", protocol) == msg


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        l2_orders(),
        l2_levels(),
        legacy,
        st.builds(ClearDepth, symbol, st.sampled_from("AB")),
        st.builds(MarketMakerInfo, text, st.text(alphabet="ab ,1", max_size=10)),
    ),
    PROTOCOL,
)
def test_level2_round_trip(msg, protocol):
    assert parse_line(format_message(msg, protocol), "level2", protocol) == msg


lookup_msgs = st.one_of(
    st.builds(
        LookupTickRow,
        rid,
        tick_ts,
        opt_price,
        opt_int,
        opt_int,
        opt_price,
        opt_price,
        opt_int,
        st.sampled_from("CEOS"),
        opt_int,
        st.sampled_from(["", "01", "873D17", "3D"]),
        st.none() | st.integers(0, 3),
        st.none() | st.integers(1, 31),
    ),
    st.builds(
        LookupIntervalRow,
        rid,
        timestamps,
        opt_price,
        opt_price,
        opt_price,
        opt_price,
        opt_int,
        opt_int,
        opt_int,
    ),
    st.builds(LookupDailyRow, rid, dates, opt_price, opt_price, opt_price, opt_price, opt_int, opt_int),
    st.builds(EndMsg, rid),
    st.builds(
        LookupErrorLine,
        rid,
        st.sampled_from(
            [
                "!NO_DATA!",
                "!SYNTAX_ERROR!",
                "Unauthorized user ID.",
                "Invalid symbol.",
                "Too many simultaneous history requests",
            ]
        ),
    ),
)


@settings(max_examples=300, deadline=None)
@given(lookup_msgs, PROTOCOL)
def test_lookup_round_trip(msg, protocol):
    line = format_message(msg, protocol)
    assert ("LH," in line) == (protocol == "6.2" and not isinstance(msg, EndMsg | LookupErrorLine))
    assert parse_line(line, "lookup", protocol) == msg


@st.composite
def history_requests(draw):
    from quantedge.feeds.iqfeed.protocol_lookup import REQUEST_LAYOUTS

    cmd = draw(st.sampled_from(sorted(REQUEST_LAYOUTS)))
    gen = {
        "interval": st.integers(1, 3600),
        "days": st.integers(1, 400),
        "max_datapoints": st.integers(0, 10**6),
        "begin": timestamps.map(lambda ns: _hist_stamp(ns)),
        "end": timestamps.map(lambda ns: _hist_stamp(ns)),
        "begin_filter": st.sampled_from(["093000", "000000", "235959"]),
        "end_filter": st.sampled_from(["160000", "120000"]),
        "begin_date": dates.map(str),
        "end_date": dates.map(str),
        "direction": st.sampled_from([0, 1]),
        "request_id": text,
        "datapoints_per_send": st.integers(1, 1000),
        "interval_type": st.sampled_from("svt"),
        "label_at_beginning": st.sampled_from([0, 1]),
        "include_partial": st.sampled_from([0, 1]),
    }
    kw = {n: draw(st.none() | gen[n]) for n in REQUEST_LAYOUTS[cmd][1:]}
    return HistoryRequest(cmd, draw(symbol), **kw)


def _hist_stamp(ns: int) -> str:
    d, tod = ns_to_et(ns)
    s = tod // 1_000_000
    return f"{d} {s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"


@settings(max_examples=200, deadline=None)
@given(history_requests())
def test_history_request_round_trip(req):
    assert parse_command(format_message(req), "lookup") == req


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        DerivativeBar,
        rid,
        st.sampled_from(["BH", "BU", "BC"]),
        symbol,
        timestamps,
        opt_price,
        opt_price,
        opt_price,
        opt_price,
        opt_int,
        opt_int,
        opt_int,
    )
)
def test_derivative_bar_round_trip(bar):
    assert parse_line(format_message(bar), "derivative") == bar


@settings(max_examples=200, deadline=None)
@given(tick_ts)
def test_et_conversion_round_trip(ns):
    d, tod = ns_to_et(ns)
    assert et_to_ns(d, tod) == ns


def test_et_conversion_matches_timeutil_including_dst_edges():
    for text in (
        "2014-11-02 01:30:00.000001",
        "2014-11-02 00:59:59",
        "2014-11-02 02:00:00",
        "2021-03-14 01:59:59.999999",
        "2021-03-14 03:00:00",
        "2021-03-01 04:00:00.028010",
    ):
        ymd = int(text[:10].replace("-", ""))
        h, m, s = text[11:19].split(":")
        frac = int((text[20:] + "000000")[:6]) if len(text) > 19 else 0
        tod = ((int(h) * 60 + int(m)) * 60 + int(s)) * 1_000_000 + frac
        assert et_to_ns(ymd, tod) == et_ns(text), text
    first = et_to_ns(20141102, 90 * 60 * 1_000_000)  # 01:30 ET on fall-back day = the EDT occurrence
    assert ns_to_et(first) == (20141102, 90 * 60 * 1_000_000)
    assert ns_to_et(first + 3600 * 10**9) == (20141102, 90 * 60 * 1_000_000)  # EST occurrence reads the same


# --- fuzz: never raises --------------------------------------------------------------------------------

REAL_LINES = [
    REAL_Q,
    *[x for x, _ in L2_REAL],
    *LOOKUP_REAL,
    *REQUESTS,
    "Z,@ES#,MD01,2982.25,2982.5,99,238,12:49:52.696621,2019-10-18,52,12:49:52.541104,T,T,F,",
    "C,SPY,I,O,07/16/2025,,619.0500,15000,859256116,198944,24,",
    "T,20191018 12:49:55",
    "BC,AAPL,2018-01-01 09:30:00,100.01,101.23,99.98,100.93,143562,745,0",
    "N,DTN,1,AAPL:MSFT,20240101 093000,x",
]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(PORTS), PROTOCOL)
def test_fuzz_random_bytes_never_raise(data, port, protocol):
    got = parse_line(data, port, protocol)
    assert got is not None
    assert parse_command(data, port) is not None


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(REAL_LINES),
    st.integers(0, 200),
    st.sampled_from(PORTS),
    PROTOCOL,
    st.sampled_from(["", ",", "x", "\x00", "9" * 30, "-", "é"]),
)
def test_fuzz_truncated_and_spliced_lines_never_raise(line, cut, port, protocol, junk):
    cut = min(cut, len(line))
    for variant in (line[:cut], line[:cut] + junk + line[cut:], line[:cut] + junk):
        got = parse_line(variant, port, protocol)
        assert got is not None
        if not isinstance(got, ParseError):  # whatever parses must format and parse back the same
            again = parse_line(format_message(got, protocol), port, protocol)
            assert again == got or isinstance(got, LookupOtherRow | OtherMessage | SystemMessage)


# --- messages -> events -> lines ------------------------------------------------------------------------


def test_q_trade_and_quote_events():
    ctx = EventContext(NameTable())
    line = REAL_Q.replace(",18,", ",19,").replace(",ba,01,", ",Cbav,3D,")
    ev, problems = to_events([parsed("T,20170308 11:13:30", "level1"), parsed(line, "level1")], ctx)
    assert problems == [] and ctx.date == 20170308
    assert list(ev["kind"]) == [KIND_TRADE, KIND_QUOTE, KIND_QUOTE]
    t = ev[0]
    assert t["ts_event"] == et_ns("2017-03-08 11:13:25.175857") and t["price"] == 485100 and t["size"] == 135
    assert t["venue"] == 19 and t["conditions"] & COND_OFF_EXCHANGE and t["flags"] & FLAG_TS_RECV_MODELED
    bid, ask = ev[1], ev[2]
    assert (bid["side"], bid["price"], bid["size"]) == (SIDE_BID, 485000, 6400)
    assert (ask["side"], ask["price"], ask["size"]) == (SIDE_ASK, 485100, 900)
    assert ask["flags"] & FLAG_LAST and not bid["flags"] & FLAG_LAST
    assert bid["ts_event"] == ctx.clock  # no quote time selected: the latest T line
    assert ctx.symbols.name(int(t["symbol"])) == "ATVI" and (ev["level"] == -1).all()
    ev2, _ = to_events([parsed(line.replace("Cbav", "Ev"), "level1")], ctx, ts_recv=123)
    assert len(ev2) == 1 and ev2[0]["conditions"] & COND_EXTENDED_HOURS and ev2[0]["ts_recv"] == 123


def test_q_without_date_is_a_problem_not_a_guess():
    ev, problems = to_events([parsed(REAL_Q.replace(",ba,", ",C,"), "level1")], EventContext(NameTable()))
    assert len(ev) == 0 and [p.reason for p in problems] == ["no_date"]


def test_level2_events():
    ctx = EventContext(NameTable())
    msgs = [parsed(x, "level2") for x, _ in L2_REAL[:7]] + [parsed("S,CLEAR DEPTH,@ESZ22,B,", "level2")]
    ev, problems = to_events(msgs, ctx, ts_recv=[10**18 + i for i in range(len(msgs))])
    assert problems == []
    kinds = list(ev["kind"])
    assert kinds == [
        KIND_ORDER,
        KIND_DEPTH,
        KIND_DEPTH,
        KIND_DEPTH,
        KIND_ORDER,
        KIND_DEPTH,
        KIND_DEPTH,
        KIND_CLEAR,
    ]
    assert (
        ev[0]["action"] == ACTION_DELETE and ev[0]["order_id"] == 648907593934 and ev[0]["side"] == SIDE_ASK
    )
    amex = ev[1]
    assert amex["venue"] == ctx.mmids.id("AMEX") >= MMID_BASE and amex["flags"] & FLAG_SNAPSHOT
    assert (amex["price"], amex["size"], amex["action"]) == (4088400, 100, ACTION_MODIFY)
    assert ev[2]["action"] == ACTION_DELETE and ev[2]["size"] == 0 and ev[2]["ts_event"] == 10**18 + 2
    assert ev[4]["action"] == ACTION_ADD and ev[4]["order_id"] == 12345678
    assert ev[5]["flags"] & FLAG_SNAPSHOT and ev[5]["size"] == 65 and ev[5]["venue"] == 0
    assert ev[6]["action"] == ACTION_DELETE and ev[6]["size"] == 0
    assert ev[7]["side"] == SIDE_BID and ev[7]["ts_event"] == 10**18 + 7


def test_legacy_position_depth_events():
    line = "Z,@ES#,MD02,2982.25,2982.5,99,238,12:49:52.696621,2019-10-18,52,12:49:52.541104,T,F,T,"
    ev, problems = to_events([parsed(line, "level2", "6.1")], EventContext(NameTable()))
    assert problems == [] and list(ev["level"]) == [1, 1] and list(ev["venue"]) == [0, 0]
    assert list(ev["action"]) == [ACTION_MODIFY, ACTION_DELETE] and ev[1]["flags"] & FLAG_LAST
    assert ev[0]["ts_event"] == et_ns("2019-10-18 12:49:52.696621")


def test_correction_events():
    ctx = EventContext(NameTable(), date=20250716)
    ev, problems = to_events(
        [
            parsed("C,SPY,I,O,07/16/2025,,619.0500,15000,859256116,198944,24,", "level1"),
            parsed("C,SPY,X,,,,619.0500,15000,1296380724,,19,", "level1"),
        ],
        ctx,
        ts_recv=5,
    )
    assert problems == []
    assert list(ev["action"]) == [ACTION_ADD, ACTION_DELETE] and (ev["kind"] == KIND_TRADE).all()
    assert (ev["conditions"] & COND_CANCEL_CORRECTION).all() and list(ev["seq"]) == [859256116, 1296380724]


def test_corrections_are_written_as_iqfeed_writes_them():
    """An inserted print carries its letter, date, time and codes; a delete names the print by price,
    size, tick id and market center only, like the real ``C,SPY,X,,,,619.0500,15000,1296380724,,19,``."""
    ts = et_ns("2025-07-16 10:00:00.000001")
    evs = np.concatenate([
        _event(ts, 0, KIND_TRADE, price=6190500, size=15000, venue=24, seq=859256116, action=ACTION_ADD,
               conditions=COND_CANCEL_CORRECTION | COND_OUT_OF_SEQUENCE | COND_TRADE_THROUGH_EXEMPT),
        _event(ts + 1000, 0, KIND_TRADE, price=6190500, size=15000, venue=19, seq=1296380724,
               action=ACTION_DELETE, conditions=COND_CANCEL_CORRECTION | COND_REGULAR),
    ])
    lines, problems = LineWriter(NameTable(["SPY"]), protocol="6.2").lines(evs)
    assert problems == []
    assert lines == ["C,SPY,I,O,07/16/2025,10:00:00.000001,619.0500,15000,859256116,1947,24,\r\n",
                     "C,SPY,X,,,,619.0500,15000,1296380724,,19,\r\n"]


def _event(ts, sym, kind, **kw):
    e = empty(1)
    e["ts_event"] = e["ts_recv"] = ts
    e["symbol"], e["kind"] = sym, kind
    for k, v in kw.items():
        e[k] = v
    return e


def test_events_to_lines_and_back():
    syms = NameTable(["NEPT"])
    mmids = NameTable(["NSDQ"], base=MMID_BASE)
    ts = et_ns("2021-03-01 10:00:00.000001")
    evs = np.concatenate(
        [
            _event(ts, 0, KIND_QUOTE, side=SIDE_BID, price=15000, size=300),
            _event(ts, 0, KIND_QUOTE, side=SIDE_ASK, price=15100, size=200, flags=FLAG_LAST),
            _event(
                ts + 1000,
                0,
                KIND_TRADE,
                price=15100,
                size=100,
                venue=19,
                seq=7,
                conditions=COND_REGULAR | COND_OFF_EXCHANGE,
            ),
            _event(
                ts + 2000, 0, KIND_ORDER, order_id=42, side=SIDE_BID, price=15000, size=500, action=ACTION_ADD
            ),
            _event(ts + 3000, 0, KIND_ORDER, order_id=42, side=SIDE_BID, size=200, action=ACTION_CANCEL),
            _event(
                ts + 4000,
                0,
                KIND_DEPTH,
                venue=MMID_BASE,
                side=SIDE_ASK,
                price=15200,
                size=900,
                action=ACTION_MODIFY,
            ),
            _event(ts + 5000, 0, KIND_DEPTH, side=SIDE_BID, price=14900, size=800, action=ACTION_MODIFY),
            _event(ts + 6000, 0, KIND_CLEAR, side=SIDE_ASK),
        ]
    )
    writer = LineWriter(syms, mmids, "6.2")
    lines, problems = writer.lines(evs)
    assert problems == []
    assert lines[0] == "Q,NEPT,,,,,0,1.5000,300,1.5100,200,,,,,ba,,\r\n"
    assert lines[1].startswith(
        "Q,NEPT,1.5100,100,10:00:00.000002,19,100,1.5000,300,1.5100,200,1.5100,1.5100,"
    )
    assert lines[2:] == [
        "3,NEPT,42,,B,1.5000,500,,4,10:00:00.000003,2021-03-01,\r\n",
        "4,NEPT,42,,B,1.5000,300,,4,10:00:00.000004,2021-03-01,\r\n",
        "4,NEPT,,NSDQ,A,1.5200,900,,4,10:00:00.000005,2021-03-01,\r\n",
        "8,NEPT,B,1.4900,800,,4,10:00:00.000006,2021-03-01,\r\n",
        "S,CLEAR DEPTH,NEPT,A,\r\n",
    ]
    port = ["level1", "level1"] + ["level2"] * 5
    back = [parsed(x, p) for x, p in zip(lines, port, strict=True)]
    ctx = EventContext(NameTable(["NEPT"]), mmids=NameTable(["NSDQ"], base=MMID_BASE), date=20210301)
    ev, problems = to_events(back, ctx, ts_recv=[int(e) for e in evs["ts_recv"][[1, 2, 3, 4, 5, 6, 7]]])
    assert problems == []
    trade = ev[ev["kind"] == KIND_TRADE][0]
    assert (trade["price"], trade["size"], trade["venue"], trade["ts_event"]) == (15100, 100, 19, ts + 1000)
    assert trade["conditions"] & COND_REGULAR and trade["conditions"] & COND_OFF_EXCHANGE
    depth = ev[ev["kind"] == KIND_DEPTH]
    assert list(depth["venue"]) == [MMID_BASE, 0] and list(depth["size"]) == [900, 800]
    orders = ev[ev["kind"] == KIND_ORDER]
    assert list(orders["size"]) == [500, 300] and list(orders["action"]) == [ACTION_ADD, ACTION_MODIFY]


def test_events_not_representable_in_61_are_reported():
    syms = NameTable(["ES"])
    ts = et_ns("2021-03-01 10:00:00")
    evs = np.concatenate(
        [
            _event(ts, 0, KIND_ORDER, order_id=1, side=SIDE_BID, price=1, size=1, action=ACTION_ADD),
            _event(ts, 0, KIND_DEPTH, side=SIDE_BID, price=1, size=1, action=ACTION_MODIFY),
            _event(
                ts,
                0,
                KIND_DEPTH,
                side=SIDE_BID,
                level=0,
                price=29822500,
                size=5,
                action=ACTION_MODIFY,
                flags=FLAG_LAST,
            ),
        ]
    )
    lines, problems = LineWriter(syms, protocol="6.1").lines(evs)
    assert [p.reason for p in problems] == ["not_representable", "not_representable"]
    assert lines == ["2,ES,MD01,2982.25,,5,,10:00:00.000000,2021-03-01,,,T,F,T,\r\n"]


_TRADE_BITS = [COND_REGULAR, COND_OFF_EXCHANGE, COND_EXTENDED_HOURS, COND_ODD_LOT, COND_INTERMARKET_SWEEP,
               COND_OUT_OF_SEQUENCE, COND_AVERAGE_PRICE, COND_OPENING, COND_CLOSING, COND_CROSS,
               COND_CANCEL_CORRECTION, COND_TRADE_THROUGH_EXEMPT, COND_SPECIAL_TERMS, COND_UNKNOWN_CODE]
_RICH = ("Most Recent Trade Date", "TickID", "Most Recent Trade Aggressor", "Bid Time", "Ask Time")
RICH_FIELDSET = Fieldset((*DEFAULT_FIELDS, *_RICH))


@st.composite
def event_streams(draw):
    """Trades, NBBO pairs, price levels and market-maker rows for two symbols, time-ordered."""
    n = draw(st.integers(1, 12))
    base = et_ns("2021-03-01 09:30:00")
    ts = sorted(draw(st.lists(st.integers(0, 6 * 3600 * 10**6), min_size=n, max_size=n)))
    parts = []
    for i, us in enumerate(ts):
        t = base + us * 1000
        sym = draw(st.sampled_from([0, 1]))
        what = draw(st.sampled_from(["trade", "quote", "level", "mm"]))
        price = draw(st.integers(1, 10**7))
        size = draw(st.integers(1, 10**6))
        side = draw(st.sampled_from([SIDE_BID, SIDE_ASK]))
        if what == "trade":
            bits = 0
            for b in draw(st.lists(st.sampled_from(_TRADE_BITS), max_size=4)):
                bits |= b
            parts.append(
                _event(
                    t,
                    sym,
                    KIND_TRADE,
                    price=price,
                    size=size,
                    seq=i + 1,
                    side=side,
                    venue=draw(st.sampled_from([0, 5, 11, 19, 24])),
                    conditions=bits,
                )
            )
        elif what == "quote":
            bid = draw(st.integers(0, 10**7))
            parts.append(_event(t, sym, KIND_QUOTE, side=SIDE_BID, price=bid, size=size if bid else 0))
            parts.append(_event(t, sym, KIND_QUOTE, side=SIDE_ASK, price=price, size=size, flags=FLAG_LAST))
        else:
            delete = draw(st.booleans())
            venue = MMID_BASE + draw(st.integers(0, 2)) if what == "mm" else 0
            parts.append(
                _event(
                    t,
                    sym,
                    KIND_DEPTH,
                    side=side,
                    price=price,
                    size=0 if delete else size,
                    venue=venue,
                    action=ACTION_DELETE if delete else ACTION_MODIFY,
                    flags=FLAG_LAST,
                )
            )
    return np.concatenate(parts)


@settings(max_examples=150, deadline=None)
@given(event_streams())
def test_events_to_lines_to_events_round_trip(evs):
    syms = NameTable(["AAA", "BBB"])
    mmids = NameTable(["NSDQ", "ARCX", "EDGX"], base=MMID_BASE)
    lines, problems = LineWriter(syms, mmids, "6.2", RICH_FIELDSET).lines(evs)
    assert problems == []
    msgs, recv = [], []
    wanted = evs[(evs["kind"] != KIND_QUOTE) | ((evs["flags"] & FLAG_LAST) != 0)]  # one Q per quote pair
    assert len(lines) == len(wanted)
    for line, e in zip(lines, wanted, strict=True):
        port = "level1" if line[0] in "QR" else "level2"
        msgs.append(parsed(line, port, fieldset=RICH_FIELDSET))
        recv.append(int(e["ts_recv"]))
    ctx = EventContext(
        NameTable(["AAA", "BBB"]), NameTable(["NSDQ", "ARCX", "EDGX"], base=MMID_BASE), date=20210301
    )
    back, problems = to_events(msgs, ctx, ts_recv=recv)
    assert problems == []
    cols = ["ts_event", "ts_recv", "kind", "symbol", "side", "price", "size", "venue", "action", "level"]
    orig = evs.copy()
    orig["flags"] = 0
    mm_delete = (orig["venue"] >= MMID_BASE) & (orig["action"] == ACTION_DELETE)
    orig["price"][mm_delete] = 0  # a market maker's delete row (5) carries no price on the wire
    back_cmp = back.copy()
    back_cmp["flags"] = 0
    for c in cols:
        assert list(back_cmp[c]) == list(orig[c]), c
    trades = evs["kind"] == KIND_TRADE
    assert list(back["seq"][trades]) == list(evs["seq"][trades])
    implied = np.where(np.isin(evs["venue"][trades], [15, 19, 24]), COND_OFF_EXCHANGE, 0)
    assert list(back["conditions"][trades]) == list(evs["conditions"][trades] | implied)
