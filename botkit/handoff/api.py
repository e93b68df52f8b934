"""The agent API: how a human agent's tool answers the conversations handed to humans.

JSON over HTTP, on ``[plugins.handoff] api_listen``, every request with
``Authorization: Bearer <token>``: the shared ``api_token`` of a tool, which names the
agent in each message, or an agent's own token (``agents``), whose messages are theirs:

``GET  /v1/me``
    ``{"agent": "Ana"}`` for an agent's token, ``{"agent": null}`` for ``api_token``.
``GET  /v1/handoffs?status=S&order=O&limit=N&cursor=C``
    Conversations waiting for (``status=waiting_human``) or handled by
    (``with_human``) a human, or both; most recently active first, or the longest in
    that status first with ``order=oldest`` (a queue's head; ``status_since``). A full
    page also gives ``next_cursor``: pass it as ``cursor`` (same order) for the next page.
    Each conversation also has ``customer_name``, ``last_customer_text`` and
    ``last_customer_seq``.
``GET  /v1/conversations?channel=C&key=K``
    One conversation by its channel and key (what the hand-off webhook names).
``GET  /v1/conversations/{id}/messages?after_seq=S&limit=N``
    The conversation and its messages after ``S``, oldest first.
``POST /v1/conversations/{id}/messages``  ``{"text": "...", "agent": "Ana"}``
    Send an agent's message to the customer (see ``botkit.agent_replies``): 201 with the
    stored message; 404 unknown conversation, 409 closed, with the bot or, for an
    agent's own token, another agent's (add ``"take_over": true`` to take it from the
    bot or from them), 422 bad text or agent name, 502 the
    channel refused it (stored as failed) or it could not be translated (nothing
    stored), 503 its channel does not run in this bot. In ``pivot`` mode the text is
    translated into the customer's language unless ``"translate": false``. With an
    agent's token the message is theirs: another ``agent`` is refused with 403; with
    the shared token ``agent`` is required (422 without it). With an
    ``Idempotency-Key`` header, a repeat of the request (a retry after a timeout) stores
    and delivers nothing again: 200 with the first request's message and
    ``"duplicate": true``. A key is its caller's (an agent's token is that agent, the
    shared token one caller): another's request under it is a new message.
``GET  /v1/conversations/{id}/messages/{seq}/attachments/{n}``
    The ``n``-th file of a customer's message, fetched from its channel (an attachment
    with ``"fetchable": true``): 404 when it cannot be, 502 when the platform did not
    give it. Images come inline; anything else as a download, never as a page.
``POST /v1/conversations/{id}/release``  (optional body ``{"take_over": true}``)
    Give the conversation back to the bot: 200, with the bot's confirmation sent to the
    customer (what ``/bot`` answers), or 409 when no human has it, or (an agent's own
    token) when another agent has it (kind ``taken``, naming them) and ``take_over`` is
    not given, checked in the transaction that changes the status.

Any token reads every conversation, also one the bot answered alone: an agent reads
it to take it over. A deployment whose agents must see less keeps the shared token in a
tool of its own that enforces that (docs/agents.md, "What a token can read").

Every conversation in an answer names in ``agent`` the agent who has it (the newest
agent's name on a message of the current hand-off; ``botkit.store._handoffs``).

Errors are ``{"error": "..."}`` with the status above, 400 for malformed requests (a
body that is not a standard JSON object in UTF-8: ``NaN`` is not JSON), 413 for a body
over 256 KiB, 415 for a body that is compressed or not ``application/json``
(``botkit.handoff._body``, which reads with ``botkit.http_json``), and 401 without a
valid token (compared in constant time); a refused message also says which refusal in ``"kind"``
(``botkit.agent_replies.AgentReplyError``'s kinds, or ``forbidden``).

The agents' inbox (``botkit.handoff.inbox``), a page using this API, is served without a
token at ``/inbox/``: it holds no data until an agent signs in with theirs.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from botkit.agent_replies import AgentReplies, AgentReplyError, AgentText
from botkit.customer_files import CustomerFiles, FileUnavailableError
from botkit.errors import StoreError, UnknownConversationError
from botkit.events import Attachment
from botkit.handoff import inbox
from botkit.handoff._body import MAX_BODY, BodyError, read_object
from botkit.handoff._views import (
    INTEGER,
    MAX_ID,
    conversation_json,
    file_response,
    make_cursor,
    message_json,
    queued_json,
    read_cursor,
)
from botkit.handoff.webhook import HandoffReleased
from botkit.http_server import server_runner
from botkit.language.localized import FALLBACK, fallback_key, pick, working_key
from botkit.language.tags import same_language
from botkit.store import ConversationStatus, ConversationStore, ConversationTakenError
from botkit.store.records import ConversationRecord
from botkit.throttled_warning import ThrottledWarning

__all__ = ["AgentApi"]

_HUMAN = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)
_STATUS_OF_KIND = {"invalid": 422, "not_found": 404, "closed": 409, "with_bot": 409,
                   "taken": 409, "unavailable": 503, "untranslated": 502,
                   "failed": 502}  # fmt: skip
_PAGE = 100
_SHUTDOWN_S = 2.5


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who sent a request: ``agent`` is the name of an agent's own token, None for the
    shared one (a tool, which names the agent itself)."""

    agent: str | None


_CALLER = web.RequestKey("caller", _Caller)
# Personal data: never kept in a browser's or a proxy's cache.
_PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(
    status: int, message: str, kind: str | None = None, agent: str | None = None
) -> web.Response:
    body = {"error": message} if kind is None else {"error": message, "kind": kind}
    if agent is not None:  # who has the conversation (kind ``taken``)
        body["agent"] = agent
    return web.json_response(body, status=status)


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an integer"}),
            content_type="application/json",
        )
    return max(low, min(int(raw), high))


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class AgentApi:
    """The agent API server (see the module docstring).

    Args:
        store: the conversation store.
        replies: sends agents' messages through the bot's connectors.
        token: the shared bearer token of agents' tools (None: only agents' own).
        logger: the plugin's logger.
        agents: each agent's own token, by name.
        serve_inbox: also serve the agents' inbox page at ``/inbox/``.
        files: fetches the files customers sent (None: none can be opened).
        return_replies: what the customer is told, by language, when an agent gives
            the conversation back (the hand-off plugin's, as ``/bot`` answers); empty:
            nothing.
        working_language: the bot's working language (``return_replies`` for a
            customer language they lack is translated from it in ``pivot`` mode).
        on_release: told of each conversation given back to the bot (the plugin's
            webhook).
    """

    def __init__(
        self,
        store: ConversationStore,
        replies: AgentReplies,
        token: str | None,
        logger: logging.Logger,
        *,
        agents: Mapping[str, str] | None = None,
        serve_inbox: bool = False,
        files: CustomerFiles | None = None,
        return_replies: Mapping[str, str] | None = None,
        working_language: str = FALLBACK,
        on_release: Callable[[HandoffReleased], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._on_release = on_release
        self._return_replies = dict(return_replies or {})
        self._working = working_language
        self._replies = replies
        self._tokens: list[tuple[bytes, str | None]] = [
            (secret.encode("utf-8"), name) for name, secret in (agents or {}).items()
        ]
        if token is not None:
            self._tokens.append((token.encode("utf-8"), None))
        self._serve_inbox = serve_inbox
        self._files = files
        self._log = logger
        # Constant text, at most once a minute: anyone who reaches the port can trigger it.
        self._refused = ThrottledWarning(
            logger, "agent API: refused requests without a valid token"
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (useful with port 0)

    def app(self) -> web.Application:
        """The aiohttp application (routes and the token check)."""
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_BODY)
        if self._serve_inbox:
            inbox.add_routes(app)
        app.router.add_get("/v1/me", self._me)
        app.router.add_get("/v1/handoffs", self._handoffs)
        app.router.add_get("/v1/conversations", self._find)
        app.router.add_get(r"/v1/conversations/{id:\d{1,19}}/messages", self._messages)
        app.router.add_post(r"/v1/conversations/{id:\d{1,19}}/messages", self._send)
        app.router.add_post(r"/v1/conversations/{id:\d{1,19}}/release", self._release)
        app.router.add_get(
            r"/v1/conversations/{id:\d{1,19}}/messages/{seq:\d{1,9}}/attachments/{n:\d{1,3}}",
            self._attachment,
        )
        return app

    async def start(self, host: str, port: int) -> None:
        """Bind and serve. Raises ``OSError`` when the address cannot be bound."""
        # A short shutdown: a request still sending when the bot stops is cancelled (and
        # its message marked failed) after about twice this (aiohttp waits it twice),
        # instead of holding the stop for aiohttp's default of 60 s.
        runner = server_runner(self.app(), shutdown_timeout=_SHUTDOWN_S)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses  # the bound port, also when asked for port 0
        self.port = int(addresses[0][1]) if addresses else port
        self._log.info("agent API listening on %s:%s", host, self.port)
        if not _loopback(host):
            # Tokens and customers' conversations cross that network in clear text.
            self._log.warning(
                "the agent API listens on %s, beyond this machine, over plain HTTP: put "
                "TLS in front of it (docs/agents.md)", host,
            )  # fmt: skip
        if self._serve_inbox:
            self._log.info("agents' inbox at %s", inbox.url(host, self.port))

    async def stop(self) -> None:
        """Stop serving. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- middleware and routes -------------------------------------------------------

    def _identify(self, request: web.Request) -> tuple[bool, str | None]:
        """Whether the request carries a valid token, and whose (None: the shared one).
        Every token is compared, in constant time, whichever matches."""
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        presented = given.strip().encode("utf-8", "replace")
        valid, owner = False, None
        for secret, name in self._tokens:
            if hmac.compare_digest(presented, secret):
                valid, owner = True, name
        return scheme.lower() == "bearer" and valid, owner

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._serve_inbox and inbox.is_public(request):
            return await handler(request)  # the page and its assets hold no data
        valid, owner = self._identify(request)
        response: web.StreamResponse
        if not valid:
            self._refused.warn()
            response = _error(401, "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="botkit agents"'
            response.headers.update(_PRIVATE_HEADERS)
            return response
        request[_CALLER] = _Caller(owner)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # unknown routes, oversized bodies...: JSON too
            if exc.content_type == "application/json":
                exc.headers.update(_PRIVATE_HEADERS)
                raise
            response = _error(exc.status, exc.reason)
        except StoreError as exc:  # the database, not the request
            self._log.error("agent API: %s %s: %s", request.method, request.path, exc)
            response = _error(503, "the conversation store is unavailable; try again")
        response.headers.update(_PRIVATE_HEADERS)
        return response

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"agent": request[_CALLER].agent})

    async def _handoffs(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", _PAGE, 1, _PAGE)
        wanted = request.query.get("status")
        statuses = _HUMAN if wanted is None else tuple(s for s in _HUMAN if s == wanted)
        order = request.query.get("order", "newest")
        if not statuses or order not in ("newest", "oldest"):
            return _error(400, "status is waiting_human or with_human; order newest or oldest")
        cursor = request.query.get("cursor")
        after = None if cursor is None else read_cursor(cursor, order)
        if cursor is not None and after is None:
            return _error(400, "cursor is not a next_cursor of this list and order")
        found = await self._store.conversations_with_status(
            statuses, limit=limit, oldest_first=order == "oldest", after=after
        )
        more = make_cursor(found[-1], order) if len(found) == limit else None
        previews = await self._store.handoff_previews([c.id for c in found])
        return web.json_response(
            {
                "conversations": [queued_json(c, previews.get(c.id)) for c in found],
                "next_cursor": more,
            }
        )

    async def _find(self, request: web.Request) -> web.Response:
        channel, key = request.query.get("channel", ""), request.query.get("key", "")
        if not channel or not key:
            return _error(400, "give channel and key")
        # Text no conversation can have (NUL, lone surrogates) is no conversation; the
        # store would refuse it like a failure.
        unstorable = any("\x00" in v or _has_surrogate(v) for v in (channel, key))
        found = None if unstorable else await self._store.get_conversation(channel, key)
        if found is None:
            return _error(404, "no such conversation")
        agent = await self._store.conversation_agent(found.id)
        return web.json_response({"conversation": conversation_json(found, agent)})

    async def _conversation_or_404(self, request: web.Request) -> ConversationRecord:
        conversation_id = int(request.match_info["id"])
        try:
            if conversation_id > MAX_ID:
                raise UnknownConversationError("out of range")
            return await self._store.conversation_by_id(conversation_id)
        except UnknownConversationError:
            raise web.HTTPNotFound(
                text=json.dumps(
                    {"error": f"no conversation {conversation_id}", "kind": "not_found"}
                ),
                content_type="application/json",
            ) from None

    async def _messages(self, request: web.Request) -> web.Response:
        conversation = await self._conversation_or_404(request)
        after = _int_param(request, "after_seq", 0, 0, MAX_ID)
        limit = _int_param(request, "limit", _PAGE, 1, _PAGE)
        found = await self._store.messages_after(
            conversation.channel, conversation.key, after, limit
        )
        agent = await self._store.conversation_agent(conversation.id)
        files = self._files
        channel = conversation.channel

        def fetchable(attachment: Attachment) -> bool:
            return files is not None and files.can_fetch(channel, attachment)

        return web.json_response(
            {
                "conversation": conversation_json(conversation, agent),
                "messages": [message_json(m, fetchable) for m in found],
            }
        )

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        conversation = await self._conversation_or_404(request)
        seq, index = int(request.match_info["seq"]), int(request.match_info["n"])
        found = await self._store.messages_after(conversation.channel, conversation.key, seq - 1, 1)
        message = found[0] if found and found[0].seq == seq else None
        if message is None or index >= len(message.attachments):
            return _error(404, f"message {seq} has no file {index}")
        attachment = message.attachments[index]
        if self._files is None or not self._files.can_fetch(conversation.channel, attachment):
            return _error(404, "this file cannot be opened here", "unavailable")
        try:
            content = await self._files.fetch(
                conversation.channel, attachment, conversation_id=conversation.id
            )
        except FileUnavailableError as exc:
            return _error(502, str(exc), "unavailable")
        return file_response(content, attachment, f"{attachment.kind}-{seq}-{index}")

    async def _send(self, request: web.Request) -> web.Response:
        conversation = await self._conversation_or_404(request)
        try:
            body = await read_object(request)
        except BodyError as exc:
            return _error(exc.status, str(exc))
        text, agent = body.get("text"), body.get("agent", "")
        take_over, translate = body.get("take_over", False), body.get("translate", True)
        if not isinstance(text, str) or not isinstance(agent, str):
            return _error(400, "text (and agent, if given) must be strings")
        if not isinstance(take_over, bool) or not isinstance(translate, bool):
            return _error(400, "take_over and translate must be true or false")
        owner = request[_CALLER].agent
        if owner is not None:
            if agent.strip() and " ".join(agent.split()) != owner:
                return _error(
                    403, f"this token is {owner}'s: leave agent out or give {owner}", "forbidden"
                )
            agent = owner
        elif not agent.strip():
            # The shared token is nobody's: who writes (and so who has the conversation,
            # whom a takeover is from) is the name the tool gives.
            return _error(
                422, "agent: give the agent's name (1-100 characters) with the shared token",
                "invalid",
            )  # fmt: skip
        key = request.headers.get("Idempotency-Key")
        first = True
        try:
            if key is None:
                stored = await self._replies.send(
                    conversation.id, text, agent=agent, take_over=take_over,
                    translate=translate,
                    exclusive=owner is not None,  # a tool's shared token assigns on its own
                )  # fmt: skip
            else:
                stored, first = await self._replies.send_once(
                    conversation.id, text, key=key, agent=agent, take_over=take_over,
                    translate=translate, exclusive=owner is not None,
                )  # fmt: skip
        except AgentReplyError as exc:
            return _error(_STATUS_OF_KIND[exc.kind], str(exc), exc.kind, exc.agent)
        except StoreError as exc:  # the database, not the request
            self._log.error("agent API: storing an agent message failed: %s", exc)
            return _error(503, "the conversation store is unavailable; try again")
        # A repeat of a request with the same Idempotency-Key: the first one's message,
        # stored and delivered once (as the web API answers a duplicate).
        return web.json_response(
            {"message": message_json(stored), "duplicate": not first}, status=201 if first else 200
        )

    async def _release(self, request: web.Request) -> web.Response:
        conversation = await self._conversation_or_404(request)
        try:
            body = await read_object(request, optional=True)
        except BodyError as exc:
            return _error(exc.status, str(exc))
        take_over = body.get("take_over", False)
        if not isinstance(take_over, bool):
            return _error(400, "take_over must be true or false")
        owner = request[_CALLER].agent
        # For the log only (who a takeover gave it back from): the check is the store's.
        holder = (
            await self._store.conversation_agent(conversation.id)
            if owner is not None and take_over
            else None
        )
        taken_from = holder if holder and owner and holder.casefold() != owner.casefold() else None
        try:
            # As for writing: an agent gives another agent's customer back to the bot
            # only on purpose (the shared token is a tool's, which assigns on its own).
            # Checked where the status changes, not before: another agent's first
            # message may make the conversation theirs in between.
            released = await self._store.change_conversation_status(
                conversation.id, ConversationStatus.BOT, only_from=_HUMAN,
                only_agent=owner if not take_over else None,
            )  # fmt: skip
        except ConversationTakenError as exc:
            return _error(
                409,
                f"{exc.agent} has conversation {conversation.id}; take it over explicitly "
                "to give it back",
                "taken", exc.agent,
            )  # fmt: skip
        if released is None:
            current = await self._store.conversation_by_id(conversation.id)
            return _error(409, f"no human has conversation {conversation.id} ({current.status})")
        self._log.info(
            "conversation %s given back to the bot by %s%s",
            conversation.id, "an agent's tool" if owner is None else owner,
            "" if taken_from is None else f" (taken over from {taken_from})",
        )  # fmt: skip
        if self._on_release is not None:
            await self._on_release(
                HandoffReleased(released.channel, released.key, by="agent", agent=owner)
            )
        notice = None
        if self._return_replies:
            language = await self._store.customer_language(released)
            notice = await self._replies.notify(released.id, self._back_with_bot(language))
        return web.json_response(
            {
                "conversation": conversation_json(released, None),
                "message": None if notice is None else message_json(notice),
            }
        )

    def _back_with_bot(self, language: str | None) -> AgentText | str:
        """What ``/bot`` answers, for a customer writing ``language``: in it when
        ``return_replies`` has it, else the working language's text to translate (as
        ``set_localized_reply`` does), else the fallback as it is."""
        table = self._return_replies
        used, text = pick(table, language, fallback=fallback_key(table, self._working))
        working = working_key(table, self._working)
        if language is not None and same_language(used, language):
            in_working = None if working is None or working == used else table[working]
            return AgentText(text, in_working, used)
        return table[working] if working is not None else AgentText(text, language=used)
