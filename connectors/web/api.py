"""The plain HTTP API (``/api/...``) for servers, tests and non-WebSocket clients.

Every route but ``/api/session`` takes ``Authorization: Bearer <session token>``; the
conversation is the token's, never a parameter, so one visitor cannot name another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from botkit.channel import KeptFile
from botkit.errors import (
    BotkitError,
    DatabaseUnavailableError,
    FileLimitError,
    NotAcceptingError,
    UnknownConversationError,
)
from botkit.events import Attachment
from connectors.web._http import (
    CAP_RETRY_S,
    BadRequest,
    json_error,
    rate_limited,
    read_json,
    retry_later,
    shutting_down,
    unavailable,
)
from connectors.web._messages import message_payload
from connectors.web.files import FILE_TYPES, clean_file_name, read_file_body, sniff_media_type
from connectors.web.hub import Outgoing
from connectors.web.identity import IdentityError, Visitor
from connectors.web.intake import (
    InvalidMessage,
    check_client_id,
    clean_language,
    log_store_failure,
    parse_message,
    submit_message,
)
from connectors.web.service import CHANNEL, HISTORY_PAGE, SERVICE, WebService

__all__ = ["get_messages", "post_file", "post_message", "post_session"]

log = logging.getLogger(__name__)

MAX_WAIT_S = 30.0


def _unavailable(message: str) -> web.Response:
    return unavailable("unavailable", message)


def _unauthorized(svc: WebService, exc: IdentityError) -> web.Response:
    svc.refusals.identity(exc.code, exc.log_detail)
    return json_error(401, exc.code, str(exc), headers={"WWW-Authenticate": "Bearer"})


def _bearer(svc: WebService, request: web.Request) -> Visitor:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise IdentityError("missing_token", "send Authorization: Bearer <session token>")
    return svc.identity.from_token(token.strip())


async def post_session(request: web.Request) -> web.Response:
    """Exchange site credentials (or nothing, for anonymous) for a session token."""
    svc = request.app[SERVICE]
    if svc.shutting_down:  # before any budget is spent: the client goes elsewhere
        return shutting_down()
    ip = svc.client_ip(request)
    wait = svc.ip_connects.take(ip)
    if wait:
        svc.refusals.connect_rate(ip)
        return rate_limited(wait, "sessions")
    try:
        body = await read_json(request, svc.config.max_message_bytes)
        visitor = svc.identity.resolve(
            site_key=body.get("site_key"),
            token=body.get("token"),
            user_id=body.get("user_id"),
            user_hash=body.get("user_hash"),
            user_token=body.get("user_token"),
        )
    except BadRequest as exc:
        return exc.response()
    except IdentityError as exc:
        return _unauthorized(svc, exc)
    token, expires = svc.identity.issue(visitor)
    return web.json_response(
        {"token": token, "expires_at": expires, "identity": visitor.kind},
        headers={"Cache-Control": "no-store"},
    )


async def post_message(request: web.Request) -> web.Response:
    """Store a visitor message (idempotent on ``client_id``); the reply comes later."""
    svc = request.app[SERVICE]
    try:
        visitor = _bearer(svc, request)
    except IdentityError as exc:
        return _unauthorized(svc, exc)
    if svc.shutting_down:
        return shutting_down()
    wait = svc.ip_messages.take(svc.client_ip(request))
    if wait:
        return rate_limited(wait, "messages")
    try:
        body = await read_json(request, svc.config.max_message_bytes)
        client_id, text = parse_message(body)
    except BadRequest as exc:
        return exc.response()
    except InvalidMessage as exc:
        return json_error(400, exc.code, str(exc))
    return await _submit(svc, visitor, client_id, text, clean_language(body.get("lang")))


async def _submit(
    svc: WebService,
    visitor: Visitor,
    client_id: str,
    text: str,
    language: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> web.Response:
    try:
        receipt = await submit_message(svc, visitor, client_id, text, language, attachments)
    except NotAcceptingError:
        # Shutting down: retry later, elsewhere, with the same client_id.
        return shutting_down()
    except BotkitError as exc:
        log_store_failure(log, "submit failed", exc)
        return _unavailable("message not stored; retry")
    return web.json_response(
        {"client_id": client_id, "seq": receipt.seq, "duplicate": receipt.duplicate},
        status=200 if receipt.duplicate else 201,
    )


NO_AGENT = "Files go to a person: ask for one in the chat first."


async def post_file(request: web.Request) -> web.Response:
    """Store a file a visitor sends to the human agent of their conversation, as a
    message of its own (idempotent on ``client_id``, like ``POST /api/messages``).

    The body is the file itself; ``client_id`` and ``name`` are query parameters. The
    cheap refusals (identity, uploads at once, request rate, a retry's answer, no agent,
    file rate, declared size) come before the body is read.
    """
    svc = request.app[SERVICE]
    try:
        visitor = _bearer(svc, request)
    except IdentityError as exc:
        return _unauthorized(svc, exc)
    config = svc.config
    if not config.max_file_bytes:
        return json_error(403, "files_disabled", "this chat does not take files")
    if svc.shutting_down:  # before the body is read: it could not be taken
        return shutting_down()
    ip = svc.client_ip(request)
    if svc.open_uploads.total() >= config.uploads_at_once:
        return unavailable("busy", "the chat is receiving many files; retry shortly")
    if svc.open_uploads[ip] >= config.uploads_per_ip:
        return retry_later(
            "too_many_uploads", "too many files are being sent at once; retry later",
            CAP_RETRY_S,
        )  # fmt: skip
    # Every request costs the client IP's request budget, as a message does: refused
    # ones (no agent, a full conversation) and retries cost store reads too. Its
    # file_rate is spent below, only by a file that passes the cheap checks.
    wait = svc.ip_messages.take(ip)
    if wait:
        return rate_limited(wait)
    try:
        client_id = check_client_id(request.query.get("client_id"))
    except InvalidMessage as exc:
        return json_error(400, exc.code, str(exc))
    # Held while the body arrives: slow uploads are what ties a server up.
    svc.open_uploads[ip] += 1
    try:
        return await _take_file(svc, request, visitor, client_id, ip)
    finally:
        svc.open_uploads.release(ip)


async def _take_file(
    svc: WebService, request: web.Request, visitor: Visitor, client_id: str, ip: str
) -> web.Response:
    config = svc.config
    key = visitor.conversation_key
    try:
        held = await svc.core.kept_files(CHANNEL, key, client_id)
        if held.same is not None:  # a retry: answered from the file kept, body unread
            return await _submit(svc, visitor, client_id, "", None, (_attachment(held.same),))
        if held.count >= config.files_per_conversation:
            return _file_limit(config.files_per_conversation)
        await _check_agent(svc, key)
        wait = svc.ip_files.take(ip)
        if wait:  # a new file the conversation can take: only that costs file_rate
            return rate_limited(wait, "files")
        async with asyncio.timeout(config.file_read_timeout_s):
            data = await read_file_body(request, config.max_file_bytes, config.file_min_bytes_per_s)
    except TimeoutError:
        limit = config.file_read_timeout_s
        return json_error(408, "upload_timeout", f"the file did not arrive within {limit:g} s")
    except BadRequest as exc:
        return exc.response()
    except BotkitError as exc:
        log_store_failure(log, "reading the conversation's state failed", exc)
        return _unavailable("file not stored; retry")
    media_type = sniff_media_type(data)
    if media_type is None:
        return json_error(
            415, "unsupported_file", "send a picture (JPEG, PNG, GIF or WebP) or a PDF"
        )
    wait = svc.ip_file_bytes.take(ip, len(data))
    if wait:  # what one address may keep in the store per hour
        return rate_limited(wait, "file bytes")
    name = clean_file_name(request.query.get("name"), media_type)
    try:
        await _check_agent(svc, key)  # again: the agent may have left while it arrived
        kept = await svc.core.keep_file(
            CHANNEL, key, client_id=client_id, name=name, media_type=media_type, data=data,
            max_files=config.files_per_conversation,
        )  # fmt: skip
    except BadRequest as exc:
        refused = exc.response()
    except UnknownConversationError:
        refused = json_error(409, "no_agent", NO_AGENT)
    except FileLimitError:  # another upload took the last place while this one arrived
        refused = _file_limit(config.files_per_conversation)
    except BotkitError as exc:
        log_store_failure(log, "keeping a visitor's file failed", exc)
        refused = _unavailable("file not stored; retry")
    else:
        return await _submit(svc, visitor, client_id, "", None, (_attachment(kept),))
    svc.ip_file_bytes.refund(ip, len(data))  # the budget counts what the store keeps
    return refused


def _attachment(kept: KeptFile) -> Attachment:
    kind = FILE_TYPES.get(kept.media_type, ("file",))[0]
    return Attachment(
        kind=kind, name=kept.name, mime_type=kept.media_type, size=kept.size, ref=kept.ref
    )


def _file_limit(most: int) -> web.Response:
    return json_error(409, "file_limit", f"this chat has its {most} files; no more can be sent")


async def _check_agent(svc: WebService, key: str) -> None:
    """Refuse (409) unless a person has the conversation or it waits for one: files are
    for them, the bot cannot read one."""
    if not await svc.core.with_human(CHANNEL, key):
        raise BadRequest(409, "no_agent", NO_AGENT)


def _query_number(request: web.Request, name: str, default: float, lo: float, hi: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw) if name == "wait" else int(raw)
    except ValueError:
        raise BadRequest(400, "bad_query", f"{name} must be a number") from None
    if not lo <= value <= hi:
        raise BadRequest(400, "bad_query", f"{name} must be between {lo:g} and {hi:g}")
    return value


class _Waiter:
    """A long poll: wakes up when a message after ``after`` is stored for the
    conversation (here, or by another bot process: ``Outgoing.fill_to``)."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.event = asyncio.Event()

    def push(self, item: Outgoing) -> None:
        newest = item.seq if item.seq is not None else item.fill_to
        if newest is not None and newest > self.after:
            self.event.set()


async def get_messages(request: web.Request) -> web.Response:
    """Stored messages after ``after_seq`` (ascending); ``wait`` long-polls when none."""
    svc = request.app[SERVICE]
    try:
        visitor = _bearer(svc, request)
    except IdentityError as exc:
        return _unauthorized(svc, exc)
    ip = svc.client_ip(request)
    wait_s = svc.ip_messages.take(ip, 0.1)  # reads are cheap
    if wait_s:
        return rate_limited(wait_s)
    try:
        after = int(_query_number(request, "after_seq", 0, 0, 2**62))
        limit = int(_query_number(request, "limit", HISTORY_PAGE, 1, HISTORY_PAGE))
        wait = _query_number(request, "wait", 0.0, 0.0, MAX_WAIT_S)
    except BadRequest as exc:
        return exc.response()
    key = visitor.conversation_key
    try:
        items = await svc.history(key, after, limit)
        if not items and after:
            # An after_seq past the end (a cursor kept from another identity's
            # conversation, a database restored from backup) would hide every message up
            # to it: resume from the end instead, as the socket's hello does. The reply's
            # last_seq, below the client's after_seq, tells it so.
            last = await svc.last_seq(key)
            if after > last:
                after = last
                # Anything stored since the conversation ended at `last` comes now.
                items = await svc.history(key, after, limit)
        if not items and wait > 0:
            if svc.shutting_down:  # a poll would wait for what this process no longer takes
                return shutting_down()
            # A waiting poll holds a connection as a socket does: it counts as one.
            if svc.open_sockets[ip] >= svc.config.max_connections_per_ip:
                svc.refusals.too_many_sockets(ip)
                return retry_later(
                    "too_many_connections",
                    "too many open sockets and polls from this IP",
                    CAP_RETRY_S,
                )
            svc.open_sockets[ip] += 1
            waiter = _Waiter(after)
            svc.hub.subscribe(key, waiter)
            try:
                # Re-read after subscribing: a message stored in between is not missed.
                items = await svc.history(key, after, limit)
                if not items:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waiter.event.wait(), wait)
                    items = await svc.history(key, after, limit)
            finally:
                svc.hub.unsubscribe(key, waiter)
                svc.open_sockets.release(ip)
    except DatabaseUnavailableError as exc:
        log_store_failure(log, "history read failed", exc)
        return _unavailable("history not available; retry")
    except BotkitError as exc:  # another StoreError
        log.warning("web: history read failed: %s", exc)
        return _unavailable("history not available; retry")
    messages: list[dict[str, Any]] = [message_payload(i) for i in items if i.seq > after]
    return web.json_response(
        {"messages": messages, "last_seq": messages[-1]["seq"] if messages else after},
        headers={"Cache-Control": "no-store"},
    )
