"""Text decoding: BOMs, UTF-16 without a BOM, strict UTF-8, and a CP-1252 fallback that is reported."""

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.sources.encoding import decode, detect, fallback_note, head_text

TEXT = "Table whitewashed — 洗白 ✓ café"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
        (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "utf-32-le"),
        (codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"), "utf-32-be"),
    ],
)
def test_a_byte_order_mark_decides_and_is_dropped(data, name):
    assert decode(data) == (TEXT, name, False)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_recognised_by_its_nul_pattern(codec):
    text = "Date,From,Body\r\n2024-10-18,Wang Fang,whitewash 洗白\r\n"
    assert detect(text.encode(codec)) == (codec, 0)
    assert decode(text.encode(codec)) == (text, codec, False)


def test_plain_utf8_is_not_a_fallback():
    assert decode(TEXT.encode("utf-8")) == (TEXT, "utf-8", False)
    assert decode(b"") == ("", "utf-8", False)


def test_invalid_utf8_falls_back_to_cp1252_and_says_so():
    text, name, fallback = decode(b"caf\xe9 \x80 whitewash \x81")
    assert (text, name, fallback) == ("café € whitewash \x81", "cp1252", True)
    assert fallback_note(name, fallback) == "text decoded as cp1252 (the file is not valid UTF-8 or UTF-16)"
    assert fallback_note("utf-8", False) is None


def test_a_damaged_utf8_bom_file_still_drops_the_bom():
    text, name, fallback = decode(codecs.BOM_UTF8 + b"Stra\xdfe")
    assert (text, name, fallback) == ("Straße", "cp1252", True)


def test_head_text_tolerates_a_cut_multibyte_tail():
    data = ("whitewash 洗白" * 3).encode("utf-8")
    assert head_text(data[:-1]).startswith("whitewash 洗白")
    utf16 = codecs.BOM_UTF16_LE + "Date,Body".encode("utf-16-le")
    assert head_text(utf16[:-1]) == "Date,Bod"


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_decode_never_raises(data):
    text, name, fallback = decode(data)
    assert isinstance(text, str) and name
    assert fallback == (name == "cp1252")


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["utf-8", "utf-16-le", "utf-16-be"]))
def test_text_with_a_bom_round_trips(text, codec):
    bom = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[codec]
    decoded, _, fallback = decode(bom + text.encode(codec, errors="surrogatepass"))
    # (UTF-16 LE text starting with U+0000 is indistinguishable from a UTF-32 LE BOM: not round-trippable.)
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text) and not (codec == "utf-16-le" and text[:1] == "\x00"):
        assert decoded == text and not fallback
