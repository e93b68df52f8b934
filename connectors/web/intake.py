"""From a visitor's message (WebSocket or HTTP) to ``core.submit`` and the fan-out."""

from __future__ import annotations

import logging
import re
from typing import Any

from botkit.channel import IntakeReceipt
from botkit.errors import BotkitError, DatabaseUnavailableError
from botkit.events import Attachment, Contact, InboundMessage
from connectors.web._messages import inbound_item, message_payload
from connectors.web.hub import Outgoing
from connectors.web.identity import Visitor
from connectors.web.service import CHANNEL, WebService

__all__ = [
    "InvalidMessage",
    "check_client_id",
    "clean_language",
    "log_store_failure",
    "parse_message",
    "submit_message",
]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}$")


class InvalidMessage(ValueError):
    """A client frame or body that is not a valid message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def log_store_failure(log: logging.Logger, what: str, exc: BotkitError) -> None:
    """Log why a request was refused as ``unavailable``: a database outage in one debug
    line (the store warns once for all the requests it refuses meanwhile, and the client
    retries), anything else with its traceback (a bug, or a failure of one call)."""
    if isinstance(exc, DatabaseUnavailableError):
        log.debug("web: %s, the database is unavailable: %s", what, exc)
    else:
        log.error("web: %s", what, exc_info=exc)


def clean_language(value: object) -> str | None:
    """A BCP 47-looking language tag from the widget, or None."""
    if isinstance(value, str) and _LANG.fullmatch(value):
        return value
    return None


def check_client_id(value: object) -> str:
    """A client's message id (its idempotency key); raise ``InvalidMessage``."""
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise InvalidMessage("bad_client_id", "client_id must be 1-64 of A-Z a-z 0-9 _ -")
    return value


def parse_message(data: dict[str, Any]) -> tuple[str, str]:
    """Return ``(client_id, text)`` from a client message; raise ``InvalidMessage``."""
    client_id, text = check_client_id(data.get("client_id")), data.get("text")
    if not isinstance(text, str):
        raise InvalidMessage("bad_text", "text must be a string")
    return client_id, text


async def submit_message(
    service: WebService,
    visitor: Visitor,
    client_id: str,
    text: str,
    language: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> IntakeReceipt:
    """Hand the message to the core; on first delivery show it on the visitor's sockets.

    What the sockets are shown is the message as stored (sanitized), never the raw
    ``text``: a lone surrogate in it could not be encoded by any socket's writer.
    The idempotency key is scoped to the conversation: client ids are chosen by the
    client, so a global key would let one visitor's id shadow another's message; a
    file's message has keys of its own, so a text message sent under the same client id
    cannot take its place (and leave the kept file in no message).
    Raises whatever ``core.submit`` raises (``MessageRejectedError``, ``StoreError``).
    """
    key = visitor.conversation_key
    # "file:" cannot begin a conversation key ("u:..." / "s:..."), so no key/client id
    # pair of a text message spells a file's ("u:a/file" + "/x" would be "u:a" + "/file/x").
    delivery = f"file:{key}/{client_id}" if attachments else f"{key}/{client_id}"
    receipt = await service.core.submit(
        InboundMessage(
            channel=CHANNEL,
            conversation_key=key,
            contact=Contact(
                channel=CHANNEL,
                external_id=key,
                language_hint=language,
            ),
            text=text,
            idempotency_key=delivery,
            channel_ids={"client_id": client_id},
            attachments=attachments,
        )
    )
    if not receipt.duplicate:
        item = inbound_item(receipt, delivery, text, attachments)
        service.hub.publish(key, Outgoing(message_payload(item), seq=receipt.seq))
    return receipt
