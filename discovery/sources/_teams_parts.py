"""The parts of a Teams chatMessage besides its HTML body: events, cards, mentions, reactions, casing.

System events carry no body text (``<systemEventMessage/>``); what happened is only in
``eventDetail``, so it is rendered as an English sentence with names, or a search for
"added Priya" finds nothing. Adaptive/hero/thumbnail cards keep their words in a JSON string.
The Teams data export tool writes the same objects as Graph with PascalCase keys, so records are
normalised to Graph's camelCase first and one code path reads both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from discovery.model import Mention, Reaction
from discovery.sources._jsonio import list_of, obj_of, text_of


def camel(value: Any) -> Any:
    """Recursively rename PascalCase keys to camelCase (``CreatedDateTime`` -> ``createdDateTime``)."""
    if isinstance(value, dict):
        return {_camel_key(key): camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def _camel_key(key: str) -> str:
    if not key or not key[0].isupper():
        return key
    if key.isupper():
        return key.lower()  # "ID" -> "id"
    return key[0].lower() + key[1:]


def is_pascal(record: dict[str, Any]) -> bool:
    """True for the export tool's PascalCase records, False for Graph's camelCase."""
    return any(key in record for key in ("Id", "CreatedDateTime", "MessageType", "Body"))


# ----------------------------------------------------------------------------- system events

NameOf = Callable[[str], str]


def identity_name(identity: Any, name_of: NameOf) -> tuple[str, str]:
    """(id, name) of an identitySet ``{user|application|device: {id, displayName}}`` or a bare identity."""
    identity = obj_of(identity)
    for kind in ("user", "application", "device", "conversation", "tag"):
        if isinstance(identity.get(kind), dict):
            identity = identity[kind]
            break
    some_id = text_of(identity.get("id"))
    return some_id, text_of(identity.get("displayName")) or name_of(some_id) or some_id


def render_event(detail: Any, name_of: NameOf) -> tuple[str, list[tuple[str, str]]]:
    """An English sentence for an eventDetail, and the (id, name) of the people it names."""
    detail = obj_of(detail)
    kind = text_of(detail.get("@odata.type")).rsplit(".", 1)[-1].removesuffix("EventMessageDetail")
    actor_id, actor = identity_name(detail.get("initiator"), name_of)
    people = [identity_name(member, name_of) for member in list_of(detail.get("members"))]
    names = ", ".join(name for _, name in people)
    named = [(actor_id, actor)] if actor_id else []
    named += [person for person in people if person[0]]
    calls = list_of(detail.get("callParticipants"))
    participants = [identity_name(obj_of(p).get("participant"), name_of) for p in calls]
    named += [person for person in participants if person[0] and person not in named]
    actor = actor or "Someone"
    sentences = {
        "membersAdded": f"{actor} added {names} to the conversation.",
        "membersDeleted": f"{actor} removed {names} from the conversation.",
        "membersJoined": f"{names} joined the conversation.",
        "membersLeft": f"{names} left the conversation.",
        "chatRenamed": f'{actor} renamed the chat to "{text_of(detail.get("chatDisplayName"))}".',
        "channelRenamed": f'{actor} renamed the channel to "{text_of(detail.get("channelDisplayName"))}".',
        "channelAdded": f'{actor} added the channel "{text_of(detail.get("channelDisplayName"))}".',
        "teamRenamed": f'{actor} renamed the team to "{text_of(detail.get("teamDisplayName"))}".',
        "messagePinned": f"{actor} pinned a message.",
        "messageUnpinned": f"{actor} unpinned a message.",
        "callStarted": f"{actor} started a call.",
        "callEnded": _call_ended(detail, [name for _, name in participants]),
    }
    if kind in sentences:
        return sentences[kind], named
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", kind).lower() or "system event"
    return f"{actor}: {words}." + (f" {names}" if names else ""), named


def _call_ended(detail: dict[str, Any], participants: list[str]) -> str:
    duration = text_of(detail.get("callDuration"))
    text = "Call ended" + (f" after {_duration(duration)}" if duration else "") + "."
    return text + (f" Participants: {', '.join(participants)}." if participants else "")


def _duration(iso: str) -> str:
    """ISO 8601 ``PT12M4S`` -> ``12m 4s`` (kept as given when it is not that shape)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", iso)
    if not match or not any(match.groups()):
        return iso
    units = zip(match.groups(), ("h", "m", "s"), strict=True)
    return " ".join(f"{value}{unit}" for value, unit in units if value)


# ----------------------------------------------------------------------------- cards

_CARD_KEYS = ("title", "subtitle", "text", "value", "altText", "fallbackText", "label", "placeholder")


def card_text(content: Any) -> str:
    """Every human-readable string of a card (``content`` may be the card or a JSON string of it)."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return content.strip()
    found: list[str] = []
    _walk(content, found)
    return "\n".join(dict.fromkeys(found))


def _walk(node: Any, found: list[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _walk(child, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                if key in _CARD_KEYS and value.strip() and not value.startswith(("http://", "https://")):
                    found.append(value.strip())
            else:
                _walk(value, found)


# ----------------------------------------------------------------------------- mentions, reactions


def json_object(content: Any) -> dict[str, Any]:
    """Teams puts JSON objects inside strings (messageReference content): decode, tolerate junk."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return {}
    return obj_of(content)


def mentions_of(record: dict[str, Any], shown: dict[str, str]) -> list[Mention]:
    result = []
    for item in list_of(record.get("mentions")):
        item = obj_of(item)
        at_id = str(item.get("id", ""))
        some_id, name = identity_name(item.get("mentioned"), lambda _: "")
        name = text_of(item.get("mentionText")) or shown.get(at_id) or name
        result.append(Mention(id=some_id or None, name=name or None, key=f'<at id="{at_id}">'))
    return result


def reactions_of(record: dict[str, Any]) -> list[Reaction]:
    by_emoji: dict[str, Reaction] = {}
    for item in list_of(record.get("reactions")):
        item = obj_of(item)
        emoji = text_of(item.get("reactionType")) or text_of(item.get("displayName"))
        reaction = by_emoji.setdefault(emoji, Reaction(emoji=emoji, count=0))
        reaction.count += 1
        user_id, _ = identity_name(item.get("user"), lambda _: "")
        if user_id:
            reaction.users.append(user_id)
    return list(by_emoji.values())
