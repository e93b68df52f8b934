"""Which agent has a conversation holds where it is acted on, not only where it is read:

- an ``Idempotency-Key`` is the caller's: another agent sending under a key one agent
  used is a new message, checked as any (409 ``taken``), never answered with the first
  agent's message as if theirs had been sent;
- giving a conversation back checks who has it in the same transaction as the change:
  another agent's first message landing between the release's look and its change
  makes it 409 ``taken``, not their customer handed back to the bot.

Both databases, real bot, real HTTP client; the race is held open by running the other
agent's message inside the store call, not by sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from core_helpers import Api, RecordingConnector, recorder
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Direction, utcnow
from botkit.store import ConversationStatus, ConversationTakenError
from botkit.store import _queries as q

ANA = "ana-own-token-0123456789abcdef"
BOB = "bob-own-token-0123456789abcdef"
AGENTS = {"Ana": ANA, "Bob": BOB}
HUMAN = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)


@asynccontextmanager
async def _handed_off(settings: Settings) -> AsyncIterator[tuple[Api, int]]:
    """A started bot with the agent API and conversation "c1" waiting for a human."""
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            yield api, await api.handed_off()


async def _post(
    api: Api, cid: int, token: str | None, key: str, text: str, **body: Any
) -> tuple[int, Any]:
    kw: dict[str, Any] = {} if token is None else {"token": token}
    return await api.call(
        "POST", f"/v1/conversations/{cid}/messages",
        json={"text": text, **body}, headers={"Idempotency-Key": key}, **kw,
    )  # fmt: skip


async def test_an_idempotency_key_is_the_callers(
    agent_settings: Callable[..., Settings],
) -> None:
    async with _handed_off(agent_settings(agents=AGENTS)) as (api, cid):
        sent = recorder(api.bot).replies
        status, ana = await _post(api, cid, ANA, "1", "Ana here.")
        assert status == 201, ana
        before = len(sent)

        # Bob, under Ana's key: his message, refused as any would be (Ana has it).
        status, body = await _post(api, cid, BOB, "1", "Bob butting in.")
        assert (status, body.get("kind"), body.get("agent")) == (409, "taken", "Ana"), body
        assert len(sent) == before
        # Ana's retry is still hers.
        status, body = await _post(api, cid, ANA, "1", "Ana here.")
        assert (status, body["duplicate"], body["message"]) == (200, True, ana["message"])

        # Bob taking it over under that key sends his; his retry gets his back.
        status, bob = await _post(api, cid, BOB, "1", "Bob now.", take_over=True)
        assert (status, bob["duplicate"], bob["message"]["agent"]) == (201, False, "Bob"), bob
        status, body = await _post(api, cid, BOB, "1", "Bob now.", take_over=True)
        assert (status, body["duplicate"], body["message"]) == (200, True, bob["message"])
        assert [r.text for r in sent[before:]] == ["Bob now."]

        # The shared token is one caller, whatever names it gives: not Ana's own key.
        status, tool = await _post(api, cid, None, "1", "From the tool.", agent="Ana")
        assert (status, tool["duplicate"]) == (201, False), tool
        status, body = await _post(api, cid, None, "1", "From the tool.", agent="Carla")
        assert (status, body["duplicate"], body["message"]) == (200, True, tool["message"])
        assert [r.text for r in sent[before:]] == ["Bob now.", "From the tool."]


async def test_a_release_racing_another_agents_first_message_is_refused(
    agent_settings: Callable[..., Settings],
) -> None:
    async with _handed_off(agent_settings(agents=AGENTS)) as (api, cid):
        store = api.bot.store
        assert await store.conversation_agent(cid) is None  # nobody has it yet
        real = store.change_conversation_status
        bob: list[tuple[int, Any]] = []

        async def bob_first(conversation_id: int, status: str, **kw: Any) -> Any:
            # Ana's release has looked (nobody had it) and is about to change it: Bob's
            # first message makes it his now.
            if status == ConversationStatus.BOT and not bob:
                path = f"/v1/conversations/{cid}/messages"
                bob.append(await api.call("POST", path, token=BOB, json={"text": "Bob, here."}))
            return await real(conversation_id, status, **kw)

        store.change_conversation_status = bob_first  # type: ignore[method-assign]
        before = len(recorder(api.bot).replies)
        release = f"/v1/conversations/{cid}/release"
        status, body = await api.call("POST", release, token=ANA)
        assert bob and bob[0][0] == 201, bob
        assert (status, body.get("kind"), body.get("agent")) == (409, "taken", "Bob"), body
        conversation = await store.conversation_by_id(cid)
        assert conversation.status == ConversationStatus.WITH_HUMAN
        assert await store.conversation_agent(cid) == "Bob"
        # Bob's message went out; no "you are back with the bot" did.
        assert [r.text for r in recorder(api.bot).replies[before:]] == ["Bob, here."]

        # On purpose it is given back.
        status, body = await api.call("POST", release, token=ANA, json={"take_over": True})
        assert (status, body["conversation"]["status"]) == (200, "bot"), body


async def test_the_store_changes_a_status_only_for_the_agent_who_has_it(
    agent_settings: Callable[..., Settings],
) -> None:
    async with _handed_off(agent_settings(agents=AGENTS)) as (api, cid):
        store = api.bot.store
        status, body = await api.call(
            "POST", f"/v1/conversations/{cid}/messages", token=BOB, json={"text": "Bob."}
        )
        assert status == 201, body
        human = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)
        with pytest.raises(ConversationTakenError) as taken:
            await store.change_conversation_status(
                cid, ConversationStatus.BOT, only_from=human, only_agent="Ana"
            )
        assert taken.value.agent == "Bob"
        assert (await store.conversation_by_id(cid)).status == ConversationStatus.WITH_HUMAN
        # Bob himself (names compared ignoring case) does.
        changed = await store.change_conversation_status(
            cid, ConversationStatus.BOT, only_from=human, only_agent="bob"
        )
        assert changed is not None and changed.status == ConversationStatus.BOT


def _bobs_message(conn: Connection, conversation_id: int) -> None:
    """What ``append_outbound`` writes for Bob's message: the conversation's row locked
    by claiming the next seq, then the message."""
    now = utcnow()
    conv = q.claim_seq_by_id(conn, conversation_id, now)
    q.insert_message(
        conn,
        {
            "conversation_id": conversation_id, "seq": conv.last_seq,
            "direction": Direction.OUTBOUND.value, "contact_id": None, "text": "Bob.",
            "working_text": None, "language": None, "status": "sent",
            "idempotency_key": None, "error": None, "in_reply_to_seq": None,
            "extra": q.outbound_extra((), "Bob"), "created_at": now,
        },
    )  # fmt: skip


async def _waiting_on_a_lock(conn: AsyncConnection) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with asyncio.timeout(30):
        while not (await conn.execute(query)).scalar():  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_release_waiting_for_a_message_being_stored_sees_it(
    agent_settings: Callable[..., Settings],
) -> None:
    """PostgreSQL, truly concurrent: Bob's message is being stored (the row locked, not
    committed) when Ana's release starts. The release waits for it and then sees it,
    though its transaction began before Bob's commit (READ COMMITTED: a statement
    made after the lock is granted reads what was committed meanwhile)."""
    settings = agent_settings(agents=AGENTS)
    async with _handed_off(settings) as (api, cid):
        store = api.bot.store
        # Bob's send: the conversation became with_human first, in its own transaction.
        assert await store.change_conversation_status(
            cid, ConversationStatus.WITH_HUMAN, only_from=HUMAN
        )
        engine = create_async_engine(settings.store.url)
        try:
            async with engine.connect() as bob, engine.connect() as watch:
                await bob.begin()
                await bob.run_sync(_bobs_message, cid)
                release = asyncio.create_task(
                    store.change_conversation_status(
                        cid, ConversationStatus.BOT, only_from=HUMAN, only_agent="Ana"
                    )
                )
                await _waiting_on_a_lock(watch)
                assert not release.done()
                await bob.commit()
                with pytest.raises(ConversationTakenError) as taken:
                    await release
        finally:
            await engine.dispose()
        assert taken.value.agent == "Bob"
        assert (await store.conversation_by_id(cid)).status == ConversationStatus.WITH_HUMAN
