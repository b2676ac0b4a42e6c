"""Reading JSON and JSONL export files for the Slack, Teams, Discord, Google Chat and Mattermost adapters.

Evidence files are often large, sometimes truncated, and occasionally not JSON at all. These
helpers never raise for bad data: a file that cannot be decoded becomes one SourceError that says
where it broke, records before the break are still yielded, and every record comes with a JSON
pointer locator and its compact re-serialization as ``raw``.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

import ijson

from discovery.model import SourceError
from discovery.sources.files import SourceFile

BOM = b"\xef\xbb\xbf"
# Errors opening or reading a file (a zip member can fail with the zip's own exceptions).
READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)
# Loaded whole (json.loads) only below this size; larger files are streamed with ijson.
WHOLE_FILE_LIMIT = 32 * 1024 * 1024


def raw_json(obj: Any) -> str:
    """The record as compact JSON, the form every adapter stores in ``Message.raw``."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer: ``pointer("messages", 3) == "/messages/3"``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def head_text(file: SourceFile) -> str:
    """The file's first 64 KiB as text (BOM dropped, bad bytes replaced), "" if unreadable."""
    try:
        head = file.head()
    except READ_ERRORS:
        return ""
    global _LAST_HEAD  # noqa: PLW0603 - one entry: every sniffer of a file asks for the same head
    last = _LAST_HEAD  # (read once: another thread may replace it)
    if last[0] is head:
        return last[1]
    text = head.removeprefix(BOM).decode("utf-8", "replace")
    _LAST_HEAD = (head, text)
    return text


_LAST_HEAD: tuple[bytes, str] = (b"", "")
_KEY = re.compile(r'"([@A-Za-z_][\w.@]{0,60})"\s*:')


def head_keys(text: str) -> frozenset[str]:
    """The JSON object keys that appear in TEXT: what sniffers compare against a format's vocabulary.

    Several sniffers ask this of the same head text (the very same str object, from head_text):
    the last answer is kept for that object.
    """
    global _LAST_KEYS  # noqa: PLW0603 - a one-entry cache
    last = _LAST_KEYS  # (read once: another thread may replace it)
    if last[0] is text:
        return last[1]
    keys = frozenset(_KEY.findall(text))
    _LAST_KEYS = (text, keys)
    return keys


_LAST_KEYS: tuple[str, frozenset[str]] = ("", frozenset())


def sniff_loads(line: str) -> Any:
    """``json.loads(LINE)`` for sniffers (never mutate the result): several sniffers parse the same
    first line of a file, so the last answer (value or ValueError) is kept for an equal LINE."""
    global _LAST_LOADS  # noqa: PLW0603 - a one-entry cache
    last = _LAST_LOADS
    if last[0] == line and last[0] is not None:
        if last[2] is not None:
            raise last[2].with_traceback(None)
        return last[1]
    try:
        value = json.loads(line)
    except ValueError as error:
        _LAST_LOADS = (line, None, error)
        raise
    _LAST_LOADS = (line, value, None)
    return value


_LAST_LOADS: tuple[str | None, Any, ValueError | None] = (None, None, None)


def load_json(file: SourceFile) -> tuple[Any, SourceError | None]:
    """Read a whole (small) JSON file: (document, None), or (None, an error naming line and column)."""
    try:
        with file.open() as stream:
            data = stream.read(WHOLE_FILE_LIMIT + 1)
    except READ_ERRORS as error:
        return None, SourceError(f"cannot read this file ({type(error).__name__}: {error})")
    if len(data) > WHOLE_FILE_LIMIT:
        return None, SourceError(f"file is larger than {WHOLE_FILE_LIMIT} bytes; this part of the export is "
                                 "expected to be small")
    try:
        text = data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        return None, SourceError(f"not UTF-8 text (bad byte at offset {error.start})", f"byte {error.start}")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno} (char {error.pos})"
        return None, SourceError(f"invalid or truncated JSON: {error.msg} ({where})", where)
    except RecursionError:
        return None, SourceError("JSON nested too deeply to read")


class _CountingReader:
    """Counts bytes handed to ijson (so an error can say how far it got) and drops a leading BOM."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._pending = stream.read(len(BOM))
        self.count = len(self._pending)
        self._pending = self._pending.removeprefix(BOM)

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to learn bytes vs str: consume nothing
            return b""
        chunk = self._stream.read(size)
        self.count += len(chunk)
        if self._pending:
            chunk, self._pending = self._pending + chunk, b""
        return chunk


_START = ("start_map", "start_array")
_END = ("end_map", "end_array")


def stream_json(
    file: SourceFile, arrays: dict[str, str], headers: tuple[str, ...] = ()
) -> Iterator[tuple[str, Any] | SourceError]:
    """Stream one JSON document, yielding ("header:<prefix>", obj) and (locator, item) pairs.

    ARRAYS maps an ijson prefix of an array (``"messages"``, ``""`` for a top-level array) to the
    JSON pointer its items are reported under (``"/messages"``, ``""``). HEADERS are prefixes of
    objects wanted whole (``"guild"``); they come out as soon as they are complete. Only one item is
    held in memory at a time. A broken document ends with one SourceError giving the byte reached.
    """
    items = {(prefix + ".item" if prefix else "item"): base for prefix, base in arrays.items()}
    counts = dict.fromkeys(items, 0)
    last = None
    try:
        with file.open() as raw_stream:
            stream = _CountingReader(raw_stream)
            try:
                for tag, obj in _objects(ijson.parse(stream, use_float=True), items, headers):
                    if tag in items:
                        locator = f"{items[tag]}/{counts[tag]}"
                        counts[tag] += 1
                        last = locator
                        yield locator, obj
                    else:
                        yield "header:" + tag, obj
            except (ijson.JSONError, ValueError, RecursionError) as error:
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                kept = f"records up to {last} were read" if last else "no record could be read"
                yield SourceError(
                    f"invalid or truncated JSON ({reason}) at or before byte {stream.count} of {file.size}; {kept}",
                    f"byte {stream.count}",
                )
    except READ_ERRORS as error:
        yield SourceError(f"cannot read this file ({type(error).__name__}: {error})")


def _objects(events: Iterator[tuple[str, str, Any]], items: dict[str, str],
             headers: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """Assemble whole values at the wanted prefixes from ijson's event stream."""
    builder: ijson.ObjectBuilder | None = None
    tag = ""
    depth = 0
    for prefix, event, value in events:
        if builder is not None:
            builder.event(event, value)
            depth += 1 if event in _START else -1 if event in _END else 0
            if depth == 0:
                yield tag, builder.value
                builder = None
            continue
        if prefix in items or prefix in headers:
            if event in _START:
                builder, tag, depth = ijson.ObjectBuilder(), prefix, 1
                builder.event(event, value)
            elif event not in _END and event != "map_key":
                yield prefix, value


def iter_jsonl(file: SourceFile) -> Iterator[tuple[int, str, Any] | SourceError]:
    """Yield (line number, exact line, parsed object) per non-blank line; a bad line is a SourceError."""
    try:
        with file.open() as stream:
            for number, raw_line in enumerate(stream, 1):
                locator = f"line {number}"
                if number == 1:
                    raw_line = raw_line.removeprefix(BOM)
                try:
                    line = raw_line.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as error:
                    text = raw_line.decode("utf-8", "replace").rstrip("\r\n")
                    yield SourceError(f"not UTF-8 text (bad byte at column {error.start + 1})", locator, text)
                    continue
                if not line.strip():
                    continue
                try:
                    yield number, line, json.loads(line)
                except json.JSONDecodeError as error:
                    yield SourceError(f"invalid JSON: {error.msg} (column {error.colno})", locator, line)
                except RecursionError:
                    yield SourceError("JSON nested too deeply to read", locator, line)
    except READ_ERRORS as error:
        yield SourceError(f"cannot read this file ({type(error).__name__}: {error})")


def text_of(value: Any) -> str:
    """VALUE if it is a string, else "": exports put null, numbers or objects where text is expected."""
    return value if isinstance(value, str) else ""


def obj_of(value: Any) -> dict[str, Any]:
    """VALUE if it is a JSON object, else an empty dict (so ``.get`` chains never fail)."""
    return value if isinstance(value, dict) else {}


def list_of(value: Any) -> list[Any]:
    """VALUE if it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []
