"""Decode an export's bytes into text, saying which encoding was used and whether it was a guess.

Chat exports are nearly always UTF-8, but real collections also hold files re-saved by Excel
(UTF-16 with or without a byte-order mark, CP-1252) and files with a UTF-8 BOM. Decoding must
never fail (one odd byte must not lose a whole file), and a guess must never be silent: the
CP-1252 fallback is reported so the adapter can record it on every message it reads.
"""

from __future__ import annotations

import codecs

# Longest first: the UTF-32 LE mark starts with the UTF-16 LE mark.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_NUL_SAMPLE = 4096  # bytes inspected for the UTF-16 NUL pattern
_NUL_SHARE = 0.3  # share of code units whose high byte is NUL before we call it UTF-16


def _cp1252_table() -> dict[int, str]:
    # Five bytes are undefined in CP-1252; map them as Latin-1 does (as browsers do), so the
    # fallback can never raise and never drops a byte.
    table = {}
    for byte in range(256):
        try:
            table[byte] = bytes([byte]).decode("cp1252")
        except UnicodeDecodeError:
            table[byte] = chr(byte)
    return table


_CP1252 = _cp1252_table()


def detect(head: bytes) -> tuple[str, int]:
    """The encoding FILE's first bytes announce or show, and the length of its BOM (0 if none).

    Returns "utf-8" when nothing else is evident; whether the bytes really are UTF-8 is
    decided by :func:`decode`, which sees them all.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    guess = _utf16_by_nuls(head[:_NUL_SAMPLE])
    return (guess, 0) if guess else ("utf-8", 0)


def _utf16_by_nuls(sample: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte."""
    units = len(sample) // 2
    if units < 2:
        return None
    even = sample[0 : units * 2 : 2].count(0)  # NUL bytes at even offsets (counted in C)
    odd = sample[1 : units * 2 : 2].count(0)
    if odd >= units * _NUL_SHARE and even <= units * 0.05:
        return "utf-16-le"
    if even >= units * _NUL_SHARE and odd <= units * 0.05:
        return "utf-16-be"
    return None


def decode(data: bytes) -> tuple[str, str, bool]:
    """(text, encoding name, was_fallback) for DATA; never raises. A BOM is never part of the text.

    Order: a byte-order mark wins; then UTF-16 recognised by its NUL pattern; then strict
    UTF-8; then CP-1252, which always succeeds and is reported as a fallback. "utf-8-sig"
    names UTF-8 that carried a BOM (Excel's "CSV UTF-8").
    """
    name, bom = detect(data)
    if bom or name != "utf-8":
        try:
            text = data[bom:].decode(name)
            return text, "utf-8-sig" if name == "utf-8" else name, False
        except UnicodeDecodeError:
            pass  # a damaged file, or a wrong guess from the NUL pattern: try the rest
    if name == "utf-8":
        data = data[bom:]
    try:
        return data.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        return data.decode("latin-1").translate(_CP1252), "cp1252", True


def head_text(head: bytes) -> str:
    """Best-effort text of a file's first bytes, for sniffing only (a cut multi-byte tail is fine).

    Every sniffer of a file asks for the same head: the last answer is kept (for that very bytes
    object, held here so its identity cannot be reused).
    """
    global _LAST_HEAD  # noqa: PLW0603 - a one-entry cache
    last = _LAST_HEAD
    if last[0] is head:
        return last[1]
    text = _head_text(head)
    _LAST_HEAD = (head, text)
    return text


_LAST_HEAD: tuple[bytes, str] = (b"", "")


def _head_text(head: bytes) -> str:
    name, bom = detect(head)
    body = head[bom:]
    if name.startswith("utf-16"):
        body = body[: len(body) // 2 * 2]
    elif name.startswith("utf-32"):
        body = body[: len(body) // 4 * 4]
    return body.decode(name, errors="replace")


def fallback_note(encoding: str, was_fallback: bool) -> str | None:
    """The note adapters add to each message when the text encoding was a guess."""
    if not was_fallback:
        return None
    return f"text decoded as {encoding} (the file is not valid UTF-8 or UTF-16)"
