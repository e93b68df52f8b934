"""Whether the fields of an update the connector reads have the Bot API's types (pure).

python-telegram-bot builds its objects from whatever JSON it gets: a ``chat.id`` sent as
a string stays a string, a callback query without ``from`` gets ``from_user=None``.
Telegram never sends such an update, but whatever stands between it and the bot (a
proxy, a relay, a test tool) might; read on, one would raise deep in the classification
(an ERROR with a traceback for every such update) or be stored under a conversation no
reply can reach. ``problem`` names the first such field so the update can be skipped
with a warning, like one the library cannot read at all.

Only the fields the connector reads are checked (see ``updates``); the spec keeps the Bot
API's names (``from``, not ``from_user``). A key ending in ``?`` is optional; ``float``
means any JSON number; ``[spec]`` a list of ``spec``.
"""

from __future__ import annotations

from typing import Any

from telegram import Update

__all__ = ["problem", "update_problem"]

Spec = type | dict[str, Any] | list[Any]

_USER: dict[str, Spec] = {
    "id": int,
    "is_bot": bool,
    "first_name": str,
    "last_name?": str,
    "language_code?": str,
}
_CHAT: dict[str, Spec] = {"id": int, "type": str}
_FILE: dict[str, Spec] = {
    "file_id": str,
    "file_name?": str,
    "mime_type?": str,
    "file_size?": int,
}
_ENTITY: dict[str, Spec] = {"type": str, "offset": int, "length": int}
_LOCATION: dict[str, Spec] = {"latitude": float, "longitude": float}
# Where a reply goes: all a callback query's message (maybe an inaccessible one) needs.
_PLACE: dict[str, Spec] = {
    "message_id": int,
    "chat": _CHAT,
    "message_thread_id?": int,
    "is_topic_message?": bool,
}
_MESSAGE: dict[str, Spec] = {
    **_PLACE,
    "from?": _USER,  # absent for messages sent on behalf of a chat
    "text?": str,
    "caption?": str,
    "entities?": [_ENTITY],
    "caption_entities?": [_ENTITY],
    "photo?": [_FILE],
    **{f"{kind}?": _FILE for kind in ("sticker", "voice", "audio", "video", "video_note")},
    "animation?": _FILE,
    "document?": _FILE,
    "location?": _LOCATION,
    "venue?": {"location": _LOCATION, "title": str, "address": str},
    "contact?": {"phone_number": str, "first_name": str, "last_name?": str},
    "poll?": {"question": str},
}
_UPDATE: dict[str, Spec] = {
    "update_id": int,
    "message?": _MESSAGE,
    "callback_query?": {"id": str, "from": _USER, "data?": str, "message?": _PLACE},
}
_JSON_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    tuple: "a list",
    dict: "an object",
}


def problem(data: object) -> str | None:
    """The first field of the update ``data`` (decoded JSON) that has the wrong type or
    is missing, e.g. ``"message.chat.id is a string, not an integer"``; None if none.

    The text names fields and JSON types only, never a value (customer data).
    """
    return _check(data, _UPDATE, "")


def update_problem(update: Update) -> str | None:
    """``problem`` for an update python-telegram-bot has read."""
    try:
        data = update.to_dict()
    except Exception as exc:  # a value the library cannot even write back
        return f"the library cannot convert it back ({type(exc).__name__})"
    return problem(data)


def _check(value: object, spec: Spec, at: str) -> str | None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return _wrong(at, value, dict)
        for key, inner in spec.items():
            name = key.removesuffix("?")
            where = f"{at}.{name}" if at else name
            item = value.get(name)
            if item is None:
                if key.endswith("?"):
                    continue
                return f"{where} is missing"
            found = _check(item, inner, where)
            if found is not None:
                return found
        return None
    if isinstance(spec, list):
        if not isinstance(value, (list, tuple)):
            return _wrong(at, value, list)
        for i, item in enumerate(value):
            found = _check(item, spec[0], f"{at}[{i}]")
            if found is not None:
                return found
        return None
    # bool is an int in Python, not in JSON; a JSON number may be written without a point.
    accepted: tuple[type, ...] = (int, float) if spec is float else (spec,)
    if isinstance(value, accepted) and (spec is bool or not isinstance(value, bool)):
        return None
    return _wrong(at, value, spec)


def _wrong(at: str, value: object, expected: type) -> str:
    kind = next((name for t, name in _JSON_NAMES.items() if isinstance(value, t)), None)
    return f"{at or 'the update'} is {kind or type(value).__name__}, not {_JSON_NAMES[expected]}"
