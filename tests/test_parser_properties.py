"""Properties of the parsers over any input: they answer or refuse, and never raise.

Money (request decimals and upstream amounts), dates, CPF/CNPJ, ids, limits and cursors,
each fed arbitrary text (Unicode digits, control characters, huge exponents included)
and checked both ways: what is accepted is exactly what the rule says, and a refusal is
a field error, never another exception.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from gateway.api.fields import (
    CANONICAL_ID_RE,
    ascii_int,
    bounded_decimal,
    canonical_id,
)
from gateway.api.params import document_digits, parse_list_request
from gateway.config.settings import Secret
from gateway.errors import InvalidRequestError
from gateway.invoices.cursor import CursorCodec, Position
from gateway.state.ratelimit import parse_remaining, parse_reset
from gateway.upstream.kit.parse import MappingError, day, money

DOC = "12345678909"
# No per-example time limit: the machine is shared, and a slow example is not a bug.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
numberish = st.one_of(
    st.text(),
    st.from_regex(
        r"-?[0-9]{1,25}(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,12})?", fullmatch=True
    ),
)


def cpf(body: list[int]) -> str:
    """A CPF with valid check digits for nine body digits."""
    digits = list(body)
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(size + 1, 1, -1), strict=True))
        digits.append(0 if total % 11 < 2 else 11 - total % 11)
    return "".join(map(str, digits))


@given(numberish)
def test_bounded_decimal_never_raises_and_respects_its_bounds(raw):
    """Any text: None, or a finite decimal with <= 2 places and < 10^15."""
    value = bounded_decimal(raw, scale=2)
    if value is not None:
        assert value.is_finite()
        assert abs(value) < Decimal(10) ** 15
        assert value == value.quantize(Decimal("0.01"))


@given(json_scalars)
def test_bounded_decimal_takes_any_json_value(raw):
    """Any JSON scalar (booleans refused) is judged without an exception."""
    value = bounded_decimal(raw, scale=2)
    if isinstance(raw, bool):
        assert value is None


@given(st.integers(min_value=-(10**14), max_value=10**14), st.integers(0, 99))
def test_bounded_decimal_accepts_every_plain_amount(units, cents):
    """Every amount within bounds, written plainly, is read back exactly."""
    text = f"{units}.{cents:02d}"
    assert bounded_decimal(text, scale=2) == Decimal(text)


@given(numberish)
def test_upstream_money_parser_raises_only_mapping_errors(raw):
    """The kit's amount parser returns a finite Decimal or a MappingError naming the field."""
    try:
        value = money(raw, "valor")
    except MappingError as err:
        assert err.field == "valor"
        return
    assert value is None or (isinstance(value, Decimal) and value.is_finite())


@given(json_scalars)
def test_upstream_money_parser_takes_any_json_value(raw):
    """Any JSON scalar: a finite Decimal, None, or a MappingError; never another error."""
    try:
        value = money(raw, "amount")
    except MappingError:
        return
    assert value is None or (isinstance(value, Decimal) and value.is_finite())


@given(st.text(max_size=40), st.booleans())
def test_upstream_date_parser_raises_only_mapping_errors(raw, day_first):
    """The kit's date parser: a date, None, or a MappingError; never another error."""
    try:
        value = day(raw, "data_vencimento", day_first=day_first)
    except MappingError as err:
        assert err.field == "data_vencimento"
        return
    assert value is None or isinstance(value, date)


def list_request(**params: str):
    """Parse list parameters as the route does."""
    return parse_list_request(
        MultiDict(params), providers=["hubsoft"], connections=["acme-isp"]
    )


@given(st.text())
def test_any_limit_is_parsed_or_refused_by_name(raw):
    """`limit`: ASCII 1..200 accepted as that number; anything else a 400 naming it."""
    try:
        parsed = list_request(customer_document=DOC, limit=raw)
    except InvalidRequestError as err:
        assert {e.field for e in err.errors} == {"limit"}
        return
    assert re.fullmatch(r" *[0-9]{1,3} *", raw)
    assert parsed.limit == int(raw)


@given(st.text())
def test_ascii_int_only_reads_ascii_digits(raw):
    """`ascii_int` never raises and accepts only ASCII digit strings."""
    value = ascii_int(raw, low=0, high=10**9)
    if value is not None:
        assert re.fullmatch(r"[0-9]+", raw)
        assert value == int(raw)


@given(st.dates())
def test_every_real_date_is_accepted(day):
    """Any date written YYYY-MM-DD is read back as itself."""
    assume(day.year >= 1000)
    parsed = list_request(customer_document=DOC, due_from=day.isoformat())
    assert parsed.query.due_from == day


@given(st.text())
def test_any_date_text_is_parsed_or_refused_by_name(raw):
    """`due_from`: a real date, or a 400 naming `due_from`; never an exception."""
    try:
        parsed = list_request(customer_document=DOC, due_from=raw)
    except InvalidRequestError as err:
        assert {e.field for e in err.errors} == {"due_from"}
        return
    assert parsed.query.due_from is not None
    assert parsed.query.due_from.isoformat() == raw.strip(" ")


@given(st.lists(st.integers(0, 9), min_size=9, max_size=9), st.sampled_from(["", "."]))
def test_every_valid_cpf_is_accepted_plain_or_punctuated(body, dot):
    """A CPF with valid check digits is accepted, with or without punctuation."""
    digits = cpf(body)
    assume(len(set(digits)) > 1)
    shown = f"{digits[:3]}{dot}{digits[3:6]}{dot}{digits[6:9]}-{digits[9:]}"
    assert document_digits(digits) == digits
    assert document_digits(shown) == digits


@given(st.text(max_size=60))
def test_document_digits_never_raises(raw):
    """Any text: the digits of a valid CPF/CNPJ (ASCII only), or None."""
    digits = document_digits(raw)
    if digits is not None:
        assert re.fullmatch(r"[0-9]{11}|[0-9]{14}", digits)


@given(st.text(max_size=300))
def test_canonical_ids_are_whole_string_matches(raw):
    """An id is accepted only when all of it matches; a trailing newline never passes."""
    try:
        assert canonical_id(raw) == raw
    except InvalidRequestError:
        assert not CANONICAL_ID_RE.fullmatch(raw)
        return
    assert "\n" not in raw
    assert raw.count(":") == 2


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " ", "\u2028"])
def test_an_id_with_a_trailing_control_is_refused(suffix):
    """`$` would match before a final newline; the id check does not."""
    with pytest.raises(InvalidRequestError):
        canonical_id("fintera:fin:37" + suffix)


codec = CursorCodec(Secret("c" * 40))


@given(
    st.tuples(st.booleans(), st.text(), st.text()).map(list),  # [flag, group, value]
    st.text(max_size=80),
    st.text(min_size=1, max_size=16),
)
def test_cursors_round_trip(key, ident, fp):
    """A cursor the gateway issued decodes to the same position for the same query."""
    cursor = codec.encode(Position(key, ident), fp)
    decoded = codec.decode(cursor, fp)
    assert decoded == Position(key, ident)


@given(st.text(max_size=600))
def test_any_cursor_text_is_refused_by_name(raw):
    """Arbitrary text: refused by the parser or by the codec, always naming `cursor`."""
    try:
        parsed = list_request(customer_document=DOC, cursor=raw)
        codec.decode(parsed.cursor or raw, "fp")
    except InvalidRequestError as err:
        assert {e.field for e in err.errors} == {"cursor"}
    else:
        pytest.fail("a forged cursor was accepted")


@given(st.one_of(st.none(), st.text(max_size=40)))
def test_upstream_rate_limit_headers_never_raise(raw):
    """`X-RateLimit-Remaining`/`-Reset` from an upstream: a number or None, never an error."""
    remaining = parse_remaining(raw)
    if remaining is not None:
        assert re.fullmatch(r"-?[0-9]+", raw.strip(" \t"))
    reset = parse_reset(raw, 1_000_000.0)
    assert reset is None or math.isfinite(reset)
