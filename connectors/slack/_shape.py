"""Whether a signed Slack payload is one slack-bolt can read without raising.

Bolt trusts what Slack sends: it indexes into payloads without type checks
(``body["event"]["type"]``, ``len(body["authorizations"])``,
``body["actions"][0]["action_id"]``...) while it builds a request's context, in its
middleware and in its listener matchers. A field of another type makes it raise: over
HTTP a 500 with an ERROR traceback, in Socket Mode an envelope that is never
acknowledged. Only Slack, or whoever holds the signing secret or the app token, can send
such a payload, so it is a bug or an attack, never a customer's message: ``problem``
names what is wrong, and the transports refuse it before Bolt sees it.

The rules follow slack-bolt 1.x: ``request/internals.py`` (``parse_body`` and
``build_context``), ``request/payload_utils.py`` (the ``to_*`` helpers it runs for every
listener) and ``listener_matcher/builtins.py`` for the two listeners this app has (every
event type; block actions by ``action_id``). They refuse only shapes Slack never sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_bolt.request.internals import build_normalized_headers, extract_content_type, parse_body

__all__ = ["bolt_body", "problem"]

# Objects Bolt's context extractors descend into (``event.message.user``...). Slack nests
# them three deep at most (``event.item.message`` of a pin); deeper is refused rather
# than checked without end (Bolt would recurse as deep, up to a RecursionError).
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread")
_MAX_DEPTH = 6
# Fields Bolt reads as an id (a string) or an object with an "id": ``"id" in value``,
# then ``value.get("id")`` (see ``_id_or_object``).
_ID_OR_OBJECT = ("team", "user", "channel", "enterprise")
# Payload types whose ``callback_id`` Bolt's action matcher searches with a regex.
_CALLBACK_TYPES = frozenset(
    {"interactive_message", "dialog_submission", "dialog_cancellation", "workflow_step_edit"}
)


def bolt_body(raw: str, headers: Mapping[str, str | Sequence[str]]) -> dict[str, Any] | None:
    """``raw`` parsed exactly as Bolt will parse it; None when that fails or is no object.

    Bolt reads a body that starts with ``{`` as JSON whatever its Content-Type, and of
    several ``payload`` fields in a form body the last one; its own parser, given the
    Content-Type as it reads it from the same headers, sees the same.
    """
    content_type = extract_content_type(build_normalized_headers(dict(headers)))
    try:
        body = parse_body(raw, content_type)
    except (ValueError, RecursionError):  # bad JSON (JSONDecodeError); too deeply nested
        return None
    return body if isinstance(body, dict) else None


def problem(body: dict[str, Any]) -> str | None:
    """What in ``body`` Bolt would fail on (a field's path, what it should be), or None.

    The text names fields only, never their values: it is safe to log.
    """
    return _context_problem(body, "", 0) or _listener_problem(body)


def _context_problem(data: dict[str, Any], path: str, depth: int) -> str | None:
    """``build_context``'s extractors, which also descend into nested objects."""
    if depth > _MAX_DEPTH:
        return f"{path.rstrip('.')} is nested too deep"
    for key in _ID_OR_OBJECT:
        if not _id_or_object(data.get(key)):
            return f"{path}{key} is neither a string nor an object"
    if "authorizations" in data and data["authorizations"] is not None:
        authorizations = data["authorizations"]
        if not isinstance(authorizations, list):
            return f"{path}authorizations is not a list"
        if authorizations:  # only the first is read, as a payload of its own
            if not isinstance(authorizations[0], dict):
                return f"{path}authorizations[0] is not an object"
            found = _context_problem(authorizations[0], f"{path}authorizations[0].", depth + 1)
            if found:
                return found
    for key in _NESTED:
        value = data.get(key)
        if isinstance(value, dict):  # Bolt checks these with isinstance before descending
            found = _context_problem(value, f"{path}{key}.", depth + 1)
            if found:
                return found
    return None


def _id_or_object(value: object) -> bool:
    if value is None or isinstance(value, str | dict):
        return True
    # A number raises at ``in``; a list only when it holds "id" (no ``get``). A list
    # without it is passed over by Bolt and ignored by the listeners (a 200).
    return isinstance(value, list) and "id" not in value


def _listener_problem(body: dict[str, Any]) -> str | None:
    """The top-level fields Bolt's middleware, ``to_*`` helpers and matchers index into."""
    kind = body["type"] if isinstance(body.get("type"), str) else None  # a list is unhashable
    if "event" in body:
        event = body["event"]
        # ``body.get("event", {}).get(...)`` in the self-events middleware: even None fails.
        if not isinstance(event, dict):
            return "event is not an object"
        if event.get("type") is not None and not isinstance(event["type"], str):
            return "event.type is not a string"  # the event listener's regex searches it
    if kind == "block_actions" and "actions" in body:
        actions = body["actions"]
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            return "actions is not a list of objects"
        if not isinstance(actions[0].get("action_id"), str):
            return "actions[0].action_id is not a string"
    if kind in _CALLBACK_TYPES and "callback_id" in body:
        callback_id = body["callback_id"]
        if callback_id is not None and not isinstance(callback_id, str):
            return "callback_id is not a string"
        if kind == "interactive_message":
            actions = body.get("actions")
            if not isinstance(actions, list) or not actions:
                return "actions is not a list"
        if kind == "workflow_step_edit" and "workflow_step" not in body:
            return "workflow_step is missing"
    if "view" in body:
        view = body["view"]
        if not isinstance(view, dict):
            if view is not None or kind in ("view_submission", "view_closed"):
                return "view is not an object"
        elif kind == "view_submission" and "callback_id" in view:
            if "type" not in view:
                return "view.type is missing"
            if view["type"] == "workflow_step" and "workflow_step" not in body:
                return "workflow_step is missing"
    if "response_urls" in body and "response_url" not in body:
        urls = body["response_urls"]
        if not isinstance(urls, list) or (urls and not isinstance(urls[0], dict)):
            return "response_urls is not a list of objects"
    return None
