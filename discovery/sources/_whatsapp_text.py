"""The text rules of WhatsApp chat exports: header grammar, localized markers, day/month order.

Kept apart from the adapter because these are data (regexes and phrase lists per locale,
formats.md §6) that grow as new locales turn up, while the adapter's flow does not change.
Everything here works on lines with the invisible marks WhatsApp sprinkles in (U+200E,
U+202F, NBSP, bidi isolates) either kept, for the evidence, or removed by :func:`clean`.
"""

from __future__ import annotations

import re
from datetime import datetime

from discovery.model import Attachment, Mention

_DROP = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"))
_SPACES = {0x202F: " ", 0x00A0: " ", 0x2009: " "}
_CLEAN = {**_DROP, **_SPACES}

_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})"
_TIME = r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
_AMPM = r"(?P<ampm>[AaPp]\.? ?[Mm]\.?)"
_HEADERS = {
    # 12/24/19, 11:23 - John: … | 9/24/2019 11:30 p.m. - John: … | 13.6.2018 klo 21.25.15 - a: m
    "android": re.compile(rf"{_DATE},? (?:klo )?{_TIME}\.?(?: ?{_AMPM})? [-\u2013] (?P<rest>.*)", re.S),
    # [31/12/2022 11:40:26] John Doe: … | [14/10/2021, 3:34:09 PM] John: …
    "ios": re.compile(rf"\[{_DATE},? {_TIME}(?: ?{_AMPM})?\] (?P<rest>.*)", re.S),
}

CHAT_FILE_NAME = re.compile(
    r"^(?:WhatsApp Chat (?:with|mit|-)|WhatsApp-Chat mit|Chat de WhatsApp con|Discussion WhatsApp avec|"
    r"Conversa do WhatsApp com|WhatsApp-chat met) (?P<name>.+?)(?: ?\(\d+\))?$"
)
DELETED = re.compile(
    r"^(?:This message was deleted|You deleted this message|Diese Nachricht wurde gel\u00f6scht|"
    r"Du hast diese Nachricht gel\u00f6scht|Se elimin\u00f3 este mensaje|Eliminaste este mensaje)\.?$"
)
_EDITED = re.compile(
    r"\s*<(?:This message was edited|Diese Nachricht wurde bearbeitet|Se edit\u00f3 este mensaje\.?)>\s*$"
)
_OMITTED_ANDROID = re.compile(
    r"^<(?:Media omitted|Medien ausgeschlossen|Multimedia omitido|M\u00e9dias omis|M\u00eddia oculta)>$", re.I
)
_OMITTED_IOS = re.compile(
    r"^(?P<what>image|video|audio|sticker|GIF|document|Contact card|Bild|Video|Audio|Sticker|Dokument) "
    r"(?:omitted|weggelassen)$", re.I
)
_IOS_ATTACHED = re.compile(r"^(?:(?P<title>[^\n]+?) \u2022 [^\n]*?)?<(?:attached|Anhang|adjunto): (?P<name>[^>\n]+)>")
_ANDROID_ATTACHED = re.compile(
    r"^(?P<name>[^\n]+?) \((?:file attached|Datei angeh\u00e4ngt|archivo adjunto|fichier joint)\)$", re.M
)
_OLD_IOS_ATTACHED = re.compile(r"^(?P<name>\S+) <attached>$", re.M)
MEDIA_NAME = re.compile(
    r"<(?:attached|Anhang|adjunto): (?P<a>[^>\n]+)>"
    r"|(?:: |^)(?P<b>[^\n:<>]+?) \((?:file attached|Datei angeh\u00e4ngt|archivo adjunto|fichier joint)\)"
    r"|(?P<c>\S+) <attached>",
    re.M,
)
_KINDS = {"image": "image", "bild": "image", "gif": "video", "video": "video", "audio": "audio",
          "sticker": "sticker", "document": "file", "dokument": "file", "contact card": "contact"}

# System lines, matched against the whole cleaned text (English and German; add locales here).
_SYSTEM = re.compile("|".join((
    r"^Messages and calls are end-to-end encrypted",
    r"^Messages to this (?:group|chat) are now secured with end-to-end encryption",
    r"^Your security code with .+ changed", r"^.+'s security code changed",
    r"^.+ created (?:group|this group)", r"^.+ added .+", r"^.+ removed .+", r"^.+ left$",
    r"^.+ joined using this group's invite link", r"^You joined", r"^You were added",
    r"^.+ changed (?:the subject|this group's icon|the group description|the group name|their phone number"
    r"|the group settings)",
    r"^.+ deleted this group's icon", r"^.+ turned (?:on|off) disappearing messages", r"^.+ pinned a message",
    r"^Nachrichten und Anrufe sind Ende-zu-Ende-verschl\u00fcsselt",
    r"^Deine Sicherheitsnummer f\u00fcr .+ hat sich ge\u00e4ndert",
    r"^.+ hat die Gruppe .+ erstellt", r"^.+ hat .+ hinzugef\u00fcgt", r"^.+ hat .+ entfernt",
    r"^.+ hat die Gruppe verlassen", r"^.+ ist .*\u00fcber den Einladungslink .*beigetreten",
    r"^.+ hat den Betreff .*ge\u00e4ndert", r"^.+ hat das Gruppenbild ge\u00e4ndert",
)))
# iOS prefixes system lines with an author-like name; these are system whatever the marks say.
_ALWAYS_SYSTEM = re.compile(
    r"^(?:Messages and calls are end-to-end encrypted|Messages to this (?:group|chat) are now secured|"
    r"Your security code with|Nachrichten und Anrufe sind Ende-zu-Ende|Deine Sicherheitsnummer)"
)
_GROUP = re.compile(
    r" created (?:group|this group)| added | removed | left$|invite link| changed (?:the subject|this group's)|"
    r"hat die Gruppe| hinzugef\u00fcgt| entfernt$|Einladungslink|Betreff|Gruppenbild"
)
_CALL = re.compile(r"^(?:Missed (?:voice|video|group voice|group video) call|Verpasster (?:Sprach|Video)anruf)")


def clean(text: str) -> str:
    """TEXT without WhatsApp's invisible marks, odd spaces made plain (for matching and indexing)."""
    return text.translate(_CLEAN)


def display_name(author: str) -> str:
    """Unsaved contacts show as "~ Name"; the tilde is decoration, not part of the name."""
    return re.sub(r"^~\s*", "", author).strip()


def match_header(line: str) -> bool:
    if len(line) > _PEEK:
        # Both header shapes start with a digit or "[". Cleaning maps characters one by one, so the
        # cleaned start of the line is the start of the cleaned line: look there first (a long JSON
        # line is rejected without cleaning all of it).
        start = clean(line[:_PEEK]).lstrip()
        if start and not _HEADER_START.match(start):
            return False
    line = clean(line).lstrip()
    return any(pattern.match(line) for pattern in _HEADERS.values())


_PEEK = 256
_HEADER_START = re.compile(r"[\d\[]")  # what the date of "android" and the "[" of "ios" start with


def first_header_style(text: str, lines: int = 200) -> str | None:
    """"android" or "ios", whichever header shape most of the first LINES lines have."""
    counts = dict.fromkeys(_HEADERS, 0)
    for line in text.split("\n", lines)[:lines]:
        line = clean(line).lstrip()
        for style, pattern in _HEADERS.items():
            counts[style] += bool(pattern.match(line))
    best = max(counts, key=lambda style: counts[style])
    return best if counts[best] else None


def parse_header(line: str, style: str) -> dict[str, object] | None:
    """The header's parts if LINE starts a message in STYLE; `stamp` and `rest` are cut from the exact line."""
    normal = line.translate(_CLEAN)
    stripped = len(normal) - len(normal.lstrip())
    found = _HEADERS[style].match(normal, stripped)
    if not found:
        return None
    kept = [i for i, ch in enumerate(line) if ord(ch) not in _DROP]  # normal[k] is line[kept[k]]
    end = found.end("ampm") if found.group("ampm") else found.end("time")
    rest_at = found.start("rest")
    return {
        "date": found.group("date"),
        "time": found.group("time"),
        "ampm": found.group("ampm"),
        "stamp": line[kept[found.start("date")]: kept[end - 1] + 1],
        "rest": line[kept[rest_at]:] if rest_at < len(kept) else "",
    }


def is_system(text: str) -> bool:
    return bool(_SYSTEM.match(text.strip()))


def is_ios_system(body: str) -> bool:
    """iOS writes system events as "Group: ‎text"; the leading U+200E (or a fixed phrase) gives them away."""
    text = clean(body).strip()
    if _ALWAYS_SYSTEM.match(text):
        return True
    return body.lstrip(" ").startswith("\u200e") and is_system(text) and not DELETED.match(text)


def is_group_event(text: str) -> bool:
    return bool(_GROUP.search(text))


def is_call(text: str) -> bool:
    return bool(_CALL.match(text))


def strip_edited(text: str) -> tuple[str, bool]:
    found = _EDITED.search(text)
    return (text[: found.start()], True) if found else (text, False)


def media_type(name: str) -> str:
    upper = name.upper()
    if re.search(r"STICKER|STK-|\.WEBP$", upper):
        return "sticker"
    if re.search(r"PHOTO|IMG-|\.(?:JPE?G|PNG|HEIC|GIF)$", upper):
        return "image"
    if re.search(r"VIDEO|VID-|\.(?:MP4|MOV|3GP)$", upper):
        return "video"
    if re.search(r"AUDIO|PTT-|AUD-|\.(?:OPUS|M4A|MP3|AAC|OGG)$", upper):
        return "audio"
    return "file"


def attachment(text: str) -> tuple[Attachment | None, str]:
    """The media marker at the start of TEXT as an attachment, and whatever text (a caption) is left."""
    if _OMITTED_ANDROID.match(text):
        return Attachment(name=None, type=None), ""
    found = _OMITTED_IOS.match(text)
    if found:
        return Attachment(name=None, type=_KINDS.get(found.group("what").lower(), "file")), ""
    for pattern in (_IOS_ATTACHED, _ANDROID_ATTACHED, _OLD_IOS_ATTACHED):
        found = pattern.match(text)
        if found:
            name = found.group("name").strip()
            return Attachment(name=name, type=media_type(name), key=name), text[found.end():].strip()
    return None, text


def mentions(body: str, senders: set[str]) -> tuple[str, list[Mention]]:
    """Mentions as "@Name": WhatsApp wraps them in U+2068…U+2069; a bare "@Known Sender" counts too."""
    found: list[Mention] = []

    def isolate(match: re.Match[str]) -> str:
        name = display_name(clean(match.group(1)))
        found.append(Mention(id=f"whatsapp:{name}", name=name, key="@" + name))
        return "@" + name

    text = re.sub(r"@\u2068([^\u2069\n]*)\u2069", isolate, body)
    seen = {m.name for m in found}
    plain = clean(text)
    for sender in sorted(senders, key=len, reverse=True):
        if sender not in seen and re.search(r"@" + re.escape(sender) + r"(?!\w)", plain):
            found.append(Mention(id=f"whatsapp:{sender}", name=sender, key="@" + sender))
            seen.add(sender)
    return text, found


def to_datetime(date: str, time: str, ampm: str | None, order: str) -> datetime:
    """The naive local datetime of a header, read in ORDER; raises ValueError when impossible."""
    a, b, c = (int(p) for p in re.split(r"[./-]", date))
    if order == "YYYY/MM/DD":
        year, month, day = a, b, c
    elif order == "DD/MM":
        day, month, year = a, b, c
    else:
        month, day, year = a, b, c
    if year < 100:
        year += 2000
    clock = [int(p) for p in re.split(r"[:.]", time)]
    hour, minute, second = clock[0], clock[1], clock[2] if len(clock) > 2 else 0
    if ampm:
        half = re.sub(r"[^a-z]", "", ampm.lower())
        if not 1 <= hour <= 12:
            raise ValueError(f"hour {hour} with {ampm.strip()}")
        hour = hour % 12 + (12 if half == "pm" else 0)
    return datetime(year, month, day, hour, minute, second)
