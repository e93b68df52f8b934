"""The agent API's routes (``botkit.handoff.api`` documents them): the conversations
handed to humans, their messages and files, an agent's message to the customer, and
giving a conversation back to the bot. The token check runs before every one of them
(``botkit.handoff._auth``); each reads ``CALLER`` for who asked."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from botkit.agent_replies import AgentReplies, AgentReplyError, AgentText
from botkit.customer_files import CustomerFiles, FileUnavailableError
from botkit.errors import StoreError, UnknownConversationError
from botkit.events import Attachment
from botkit.handoff._auth import CALLER
from botkit.handoff._body import BodyError, read_object
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
from botkit.language.localized import fallback_key, pick, working_key
from botkit.language.tags import same_language
from botkit.store import ConversationStatus, ConversationStore, ConversationTakenError
from botkit.store.records import ConversationRecord

__all__ = ["Routes", "error"]

_HUMAN = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)
_STATUS_OF_KIND = {"invalid": 422, "not_found": 404, "closed": 409, "with_bot": 409,
                   "taken": 409, "unavailable": 503, "untranslated": 502,
                   "failed": 502}  # fmt: skip
_PAGE = 100


def error(
    status: int, message: str, kind: str | None = None, agent: str | None = None
) -> web.Response:
    """The API's error: ``{"error": message}``, with the refusal's ``kind`` and the
    ``agent`` who has the conversation when given."""
    body = {"error": message} if kind is None else {"error": message, "kind": kind}
    if agent is not None:  # who has the conversation (kind ``taken``)
        body["agent"] = agent
    return web.json_response(body, status=status)


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


class Routes:
    """The route handlers, and what they answer with (``AgentApi``'s arguments of the
    same names)."""

    def __init__(
        self,
        store: ConversationStore,
        replies: AgentReplies,
        logger: logging.Logger,
        *,
        files: CustomerFiles | None,
        return_replies: Mapping[str, str],
        working_language: str,
        on_release: Callable[[HandoffReleased], Awaitable[None]] | None,
    ) -> None:
        self._store = store
        self._replies = replies
        self._log = logger
        self._files = files
        self._return_replies = dict(return_replies)
        self._working = working_language
        self._on_release = on_release

    def add_to(self, app: web.Application) -> None:
        """Add the API's routes to ``app``."""
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

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"agent": request[CALLER].agent})

    async def _handoffs(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", _PAGE, 1, _PAGE)
        wanted = request.query.get("status")
        statuses = _HUMAN if wanted is None else tuple(s for s in _HUMAN if s == wanted)
        order = request.query.get("order", "newest")
        if not statuses or order not in ("newest", "oldest"):
            return error(400, "status is waiting_human or with_human; order newest or oldest")
        cursor = request.query.get("cursor")
        after = None if cursor is None else read_cursor(cursor, order)
        if cursor is not None and after is None:
            return error(400, "cursor is not a next_cursor of this list and order")
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
            return error(400, "give channel and key")
        # Text no conversation can have (NUL, lone surrogates) is no conversation; the
        # store would refuse it like a failure.
        unstorable = any("\x00" in v or _has_surrogate(v) for v in (channel, key))
        found = None if unstorable else await self._store.get_conversation(channel, key)
        if found is None:
            return error(404, "no such conversation")
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
            return error(404, f"message {seq} has no file {index}")
        attachment = message.attachments[index]
        if self._files is None or not self._files.can_fetch(conversation.channel, attachment):
            return error(404, "this file cannot be opened here", "unavailable")
        try:
            content = await self._files.fetch(
                conversation.channel, attachment, conversation_id=conversation.id
            )
        except FileUnavailableError as exc:
            return error(502, str(exc), "unavailable")
        return file_response(content, attachment, f"{attachment.kind}-{seq}-{index}")

    async def _send(self, request: web.Request) -> web.Response:
        conversation = await self._conversation_or_404(request)
        try:
            body = await read_object(request)
        except BodyError as exc:
            return error(exc.status, str(exc))
        text, agent = body.get("text"), body.get("agent", "")
        take_over, translate = body.get("take_over", False), body.get("translate", True)
        if not isinstance(text, str) or not isinstance(agent, str):
            return error(400, "text (and agent, if given) must be strings")
        if not isinstance(take_over, bool) or not isinstance(translate, bool):
            return error(400, "take_over and translate must be true or false")
        owner = request[CALLER].agent
        if owner is not None:
            if agent.strip() and " ".join(agent.split()) != owner:
                return error(
                    403, f"this token is {owner}'s: leave agent out or give {owner}", "forbidden"
                )
            agent = owner
        elif not agent.strip():
            # The shared token is nobody's: who writes (and so who has the conversation,
            # whom a takeover is from) is the name the tool gives.
            return error(
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
            return error(_STATUS_OF_KIND[exc.kind], str(exc), exc.kind, exc.agent)
        except StoreError as exc:  # the database, not the request
            self._log.error("agent API: storing an agent message failed: %s", exc)
            return error(503, "the conversation store is unavailable; try again")
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
            return error(exc.status, str(exc))
        take_over = body.get("take_over", False)
        if not isinstance(take_over, bool):
            return error(400, "take_over must be true or false")
        owner = request[CALLER].agent
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
            return error(
                409,
                f"{exc.agent} has conversation {conversation.id}; take it over explicitly "
                "to give it back",
                "taken", exc.agent,
            )  # fmt: skip
        if released is None:
            current = await self._store.conversation_by_id(conversation.id)
            return error(409, f"no human has conversation {conversation.id} ({current.status})")
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
