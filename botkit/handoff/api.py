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
    bot or from them); also 409 (``with_bot`` or ``closed``), nothing stored or sent,
    when the conversation is given back (or closed) between this request taking it over
    and storing its message: checked in the transaction that stores it. 422 bad text or
    agent name, 502 the
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

This module is the server: binding, and the middleware that checks the token
(``botkit.handoff._auth``) and makes every error JSON; the routes are
``botkit.handoff._routes``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from botkit.agent_replies import AgentReplies
from botkit.customer_files import CustomerFiles
from botkit.errors import StoreError
from botkit.handoff import inbox
from botkit.handoff._auth import CALLER, Tokens
from botkit.handoff._body import MAX_BODY
from botkit.handoff._routes import Routes, error
from botkit.handoff.webhook import HandoffReleased
from botkit.http_server import server_runner
from botkit.language.localized import FALLBACK
from botkit.store import ConversationStore

__all__ = ["AgentApi"]

_SHUTDOWN_S = 2.5
# Personal data: never kept in a browser's or a proxy's cache.
_PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


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
        self._tokens = Tokens(token, agents, logger)
        self._routes = Routes(
            store, replies, logger, files=files, return_replies=return_replies or {},
            working_language=working_language, on_release=on_release,
        )  # fmt: skip
        self._serve_inbox = serve_inbox
        self._log = logger
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (useful with port 0)

    def app(self) -> web.Application:
        """The aiohttp application (routes and the token check)."""
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_BODY)
        if self._serve_inbox:
            inbox.add_routes(app)
        self._routes.add_to(app)
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


    # -- middleware ------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._serve_inbox and inbox.is_public(request):
            return await handler(request)  # the page and its assets hold no data
        caller = self._tokens.identify(request)
        response: web.StreamResponse
        if caller is None:
            response = self._tokens.refuse()
            response.headers.update(_PRIVATE_HEADERS)
            return response
        request[CALLER] = caller
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # unknown routes, oversized bodies...: JSON too
            if exc.content_type == "application/json":
                exc.headers.update(_PRIVATE_HEADERS)
                raise
            response = error(exc.status, exc.reason)
        except StoreError as exc:  # the database, not the request
            self._log.error("agent API: %s %s: %s", request.method, request.path, exc)
            response = error(503, "the conversation store is unavailable; try again")
        response.headers.update(_PRIVATE_HEADERS)
        return response
