"""The agent API (hand-off plugin): agents answer handed-off conversations over HTTP.

A real bot (echo backend, SQLite), the plugin enabled from its config section, the API
on a loopback port, driven with a real aiohttp client; the channel is a recording
connector (the web and Telegram connectors' delivery is tested in their own suites).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from core_helpers import TOKEN, Api, ApiBot, RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import ConfigError, ConnectorError
from botkit.events import OutboundReply
from botkit.handoff.api import AgentApi
from botkit.store import ConversationStatus
from connectors.base import Connector
from connectors.web._messages import message_payload, reply_item

JSON = {"Content-Type": "application/json"}


async def _say(bot: Bot, text: str, key: str, conversation: str = "c1") -> list[str]:
    await bot.submit(message(text, key, conversation=conversation))
    assert await bot.drain(30)
    return [r.text for r in recorder(bot).replies]


async def _status(bot: Bot, key: str = "c1") -> str:
    conversation = await bot.store.get_conversation("test", key)
    assert conversation is not None
    return conversation.status


async def test_an_agent_answers_a_handed_off_conversation_and_gives_it_back(
    api_bot: ApiBot,
) -> None:
    async with api_bot() as api:
        bot = api.bot
        await _say(bot, "Where is my parcel? It was due on Monday.", "k1")
        await _say(bot, "/human", "k2")
        status, listed = await api.call("GET", "/v1/handoffs")
        assert status == 200
        (waiting,) = listed["conversations"]
        assert (waiting["channel"], waiting["key"], waiting["status"]) == (
            "test", "c1", "waiting_human",
        )  # fmt: skip
        conversation_id = await api.conversation_id()
        assert conversation_id == waiting["id"]

        status, body = await api.send(conversation_id, text="Hi, I'm Ana. Let me check.",
                                      agent="Ana")  # fmt: skip
        assert status == 201, body
        assert body["message"]["agent"] == "Ana" and body["message"]["status"] == "sent"
        sent = recorder(bot).replies[-1]
        assert isinstance(sent, OutboundReply)
        assert (sent.text, sent.conversation_key, sent.metadata["agent"]) == (
            "Hi, I'm Ana. Let me check.", "c1", "Ana",
        )  # fmt: skip
        assert sent.seq == body["message"]["seq"]
        assert await _status(bot) == ConversationStatus.WITH_HUMAN

        # With a human: the customer's message is stored for the agent, not answered.
        before = len(recorder(bot).replies)
        await _say(bot, "Thank you, Ana!", "k3")
        assert len(recorder(bot).replies) == before
        status, page = await api.call("GET", f"/v1/conversations/{conversation_id}/messages")
        assert status == 200
        texts = [(m["direction"], m["text"], m["agent"]) for m in page["messages"]]
        assert texts[-2:] == [
            ("out", "Hi, I'm Ana. Let me check.", "Ana"), ("in", "Thank you, Ana!", None),
        ]  # fmt: skip
        status, tail = await api.call(
            "GET", f"/v1/conversations/{conversation_id}/messages",
            params={"after_seq": str(page["messages"][-2]["seq"]), "limit": "5"},
        )  # fmt: skip
        assert [m["text"] for m in tail["messages"]] == ["Thank you, Ana!"]

        status, body = await api.call("POST", f"/v1/conversations/{conversation_id}/release")
        assert status == 200 and body["conversation"]["status"] == "bot"
        # What the customer wrote to Ana and the new message: one user turn for the model.
        assert (await _say(bot, "One more question", "k4"))[-1] == (
            "echo: Thank you, Ana!\n\nOne more question"
        )
        status, body = await api.call("POST", f"/v1/conversations/{conversation_id}/release")
        assert status == 409 and "no human has" in body["error"]
        assert (await api.call("GET", "/v1/handoffs"))[1]["conversations"] == []


async def test_an_agent_takes_a_conversation_from_the_bot_only_when_asked(
    api_bot: ApiBot,
) -> None:
    async with api_bot() as api:
        await _say(api.bot, "hello", "k1")
        cid = await api.conversation_id()
        status, body = await api.send(cid, text="An agent here.")
        assert status == 409 and "take it over" in body["error"]
        assert await _status(api.bot) == ConversationStatus.BOT
        status, body = await api.send(cid, text="An agent here.", take_over="yes")
        assert status == 400 and "take_over" in body["error"]
        status, _ = await api.send(cid, text="An agent here.", take_over=True)
        assert status == 201
        assert await _status(api.bot) == ConversationStatus.WITH_HUMAN
        before = len(recorder(api.bot).replies)
        await _say(api.bot, "oh, hi", "k2")
        assert len(recorder(api.bot).replies) == before  # the bot is quiet now


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer \u00e9\u00e9\u00e9"},
    ],
)
async def test_requests_without_the_token_are_refused(
    api_bot: ApiBot, headers: dict[str, str]
) -> None:
    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        routes = [
            ("GET", "/v1/handoffs"),
            ("POST", "/v1/conversations/1/messages"),
            ("POST", "/v1/conversations/1/release"),
            ("GET", "/nowhere"),
        ]
        for method, path in routes:
            async with api.session.request(
                method, api.base + path, headers=headers, json={"text": "x"}
            ) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # Nothing happened: no message sent, the conversation still waits.
        assert await _status(api.bot) == ConversationStatus.WAITING_HUMAN
        assert recorder(api.bot).replies[-1].metadata.get("agent") is None


async def test_hostile_requests_get_clear_errors_and_change_nothing(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        cid = await api.conversation_id()
        path = f"/v1/conversations/{cid}/messages"
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"data": b"not json", "headers": JSON}, 400, "must be JSON"),
            ({"data": b"\xff\xfe{", "headers": JSON}, 400, "must be JSON"),
            # nesting past recursion
            ({"data": b"[" * 100_000, "headers": JSON}, 400, "must be JSON"),
            # Bodies are taken as sent, never inflated (test_agent_api_bodies.py).
            (
                {
                    "data": gzip.compress(b'{"text": "hi"}'),
                    "headers": {**JSON, "Content-Encoding": "gzip"},
                },
                415,
                "compressed",
            ),
            ({"json": ["a list"]}, 400, "JSON object"),
            ({"json": {"text": 42}}, 400, "must be strings"),
            ({"json": {"text": "hi", "agent": ["x"]}}, 400, "must be strings"),
            ({"json": {}}, 400, "must be strings"),
            ({"json": {"text": "  \n\t ", "agent": "Ana"}}, 422, "empty"),
            ({"json": {"text": "\x00\x01", "agent": "Ana"}}, 422, "empty"),
            ({"json": {"text": "x" * 4097, "agent": "Ana"}}, 422, "at most 4096"),
            ({"json": {"text": "hi", "agent": "A" * 101}}, 422, "agent name"),
            # Names as [plugins.handoff.agents] has them: nothing invisible, nothing
            # that turns the name around ("\u202eevil" shows as "live").
            ({"json": {"text": "hi", "agent": "\u202eevil"}}, 422, "no control or format"),
            ({"json": {"text": "hi", "agent": "An\u200ba"}}, 422, "no control or format"),
            ({"json": {"text": "hi", "agent": "Ana\x00"}}, 422, "no control or format"),
            ({"data": b"{" + b" " * (300 * 1024) + b"}", "headers": JSON}, 413, ""),
        ]
        for kw, want, words in cases:
            status, body = await api.call("POST", path, **kw)
            assert status == want, (kw, body)
            assert words in body["error"]
        for bad_path, want in [
            ("/v1/conversations/999999/messages", 404),
            ("/v1/conversations/99999999999999999999/messages", 404),
            ("/v1/conversations/9223372036854775807/messages", 404),
            ("/v1/conversations/-1/messages", 404),
            ("/v1/conversations/abc/release", 404),
        ]:
            status, body = await api.call("POST", bad_path, json={"text": "hi"})
            assert status == want and body["error"], (bad_path, body)
        for params in [{"channel": "test"}, {"channel": "test", "key": "nope"},
                       {"channel": "test\x00", "key": "c1"}]:  # fmt: skip
            status, _ = await api.call("GET", "/v1/conversations", params=params)
            assert status in (400, 404)
        bad_numbers = [{"after_seq": "x"}, {"limit": "1e9"}, {"after_seq": "9" * 30},
                       {"limit": "--5"}, {"after_seq": "-"}, {"limit": "٣"}]  # fmt: skip
        for params in bad_numbers:
            status, body = await api.call("GET", path, params=params)
            assert status == 400 and "integer" in body["error"]
        # Nothing was sent or stored, and the conversation still waits for a human.
        assert await _status(api.bot) == ConversationStatus.WAITING_HUMAN
        _, page = await api.call("GET", path)
        assert all(m["agent"] is None for m in page["messages"])
        # Control characters are dropped from a message that has text, as for customers.
        status, body = await api.send(cid, text="Hello\x00 there\x1b", agent=" Ana\n ")
        assert status == 201 and body["message"]["text"] == "Hello there"
        assert body["message"]["agent"] == "Ana"


async def test_closed_and_unreachable_conversations(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        bot = api.bot
        await _say(bot, "hello", "k1")
        await _say(bot, "hello elsewhere", "k2", conversation="c2")
        cid = await api.conversation_id()
        await bot.store.set_conversation_status(cid, ConversationStatus.CLOSED)
        status, body = await api.send(cid, text="Are you still there?")
        assert status == 409 and "closed" in body["error"]
        # A conversation of a channel this process does not run.
        other = await bot.store.intake(message("hi", "k9", channel="telegram"), text="hi")
        status, body = await api.send(other.conversation.id, text="Hello")
        assert status == 503 and "'telegram'" in body["error"]


class RefusingConnector(RecordingConnector):
    async def send(self, reply: OutboundReply) -> None:
        raise ConnectorError("chat not found")


async def test_a_refused_delivery_is_stored_as_failed(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        bot = api.bot
        await _say(bot, "/human", "k1")
        bot.attach_connector(RefusingConnector(bot))
        cid = await api.conversation_id()
        status, body = await api.send(cid, text="Hello from Ana", agent="Ana")
        assert status == 502 and "chat not found" in body["error"]
        _, page = await api.call("GET", f"/v1/conversations/{cid}/messages")
        last = page["messages"][-1]
        assert (last["text"], last["status"], last["agent"]) == ("Hello from Ana", "failed", "Ana")


async def test_giving_a_conversation_back_tells_the_customer_as_bot_does(
    api_bot: ApiBot,
) -> None:
    async with api_bot(return_replies={"en": "The bot is back."}) as api:
        bot = api.bot
        # What the customer's /bot says is what an agent's release says.
        await _say(bot, "/human", "k1", conversation="c2")
        assert (await _say(bot, "/bot", "k2", conversation="c2"))[-1] == "The bot is back."
        await _say(bot, "/human", "k3")
        cid = await api.conversation_id()
        await _say(bot, "Where is my parcel?", "k4")  # while waiting: stored, not answered
        status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
        assert status == 200, body
        sent = recorder(bot).replies[-1]
        assert (sent.text, sent.conversation_key, sent.metadata.get("agent")) == (
            "The bot is back.", "c1", None,
        )  # fmt: skip
        notice = body["message"]
        assert (notice["text"], notice["agent"], notice["status"]) == (
            "The bot is back.", None, "sent",
        )  # fmt: skip
        _, page = await api.call("GET", f"/v1/conversations/{cid}/messages")
        assert page["messages"][-1] == notice  # in the history, as the bot's
        # The notice is left out of the model's history: the message written while the
        # conversation waited and this one are one user turn (generation.merge_turns).
        assert (await _say(bot, "Hello again", "k5"))[-1] == (
            "echo: Where is my parcel?\n\nHello again"
        )

        # In the customer's language where the texts have it, with the working text kept.
        await _say(bot, "/human", "k6")
        await bot.store.set_conversation_language(cid, "fr-CA")
        status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
        assert status == 200
        assert (body["message"]["text"], body["message"]["working_text"]) == (
            "Vous parlez de nouveau au bot. Comment puis-je vous aider ?", "The bot is back.",
        )  # fmt: skip
        assert recorder(bot).replies[-1].text == body["message"]["text"]


async def test_a_release_whose_confirmation_cannot_be_sent_still_releases(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        cid = await api.conversation_id()
        api.bot.attach_connector(RefusingConnector(api.bot))
        status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
        assert status == 200 and body["message"] is None, body
        assert body["conversation"]["status"] == "bot"
        assert "not sent" in caplog.text and "chat not found" in caplog.text
        _, page = await api.call("GET", f"/v1/conversations/{cid}/messages")
        assert page["messages"][-1]["status"] == "failed"


async def test_a_name_a_channel_gives_an_agent_is_kept_without_invisible_characters(
    api_bot: ApiBot,
) -> None:
    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        replies = api.bot.agent_replies
        assert replies is not None
        # Already on the channel (a Slack thread): stored, not refused, and shown plainly.
        stored = await replies.record(
            "test", "c1", "On it.", agent="\u202eAna\u200b  Li", agent_id="U9", delivery_key="d1"
        )
        assert stored is not None and stored.agent == "Ana Li"


async def test_two_agents_releasing_at_once_release_once(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        cid = await api.conversation_id()
        results = await asyncio.gather(
            *(api.call("POST", f"/v1/conversations/{cid}/release") for _ in range(5))
        )
        assert sorted(status for status, _ in results) == [200, 409, 409, 409, 409]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"api_listen": "127.0.0.1:8090"}, "needs api_token"),
        ({"api_listen": "127.0.0.1:8090", "api_token": "short"}, "at least 24"),
        ({"api_listen": "localhost", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "127.0.0.1:70000", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": ":8090", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "http://127.0.0.1:8090", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "127.0.0.1 8090:8090", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "[not-an-ip]:8090", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "127.0.0..1:8090", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "a" * 64 + ".example:8090", "api_token": TOKEN}, "not host:port"),
        ({"api_listen": "127.0.0.1:8090", "api_token": TOKEN + "\n"}, "RFC 6750"),
        ({"api_listen": "127.0.0.1:8090", "api_token": TOKEN + " x"}, "RFC 6750"),
        ({"api_listen": "127.0.0.1:8090", "api_token": TOKEN + "é"}, "RFC 6750"),
    ],
)
def test_bad_api_config_is_refused_with_the_key_path(
    make_settings: Callable[..., Settings], config: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_settings(plugins={"handoff": config})
    assert "plugins.handoff" in str(err.value) and words in str(err.value)
    assert "short" not in str(err.value)  # the token is never echoed


async def test_an_agent_reply_after_the_customer_went_back_to_the_bot_is_refused(
    api_bot: ApiBot,
) -> None:
    """The customer's /bot wins over an agent's message typed before it was seen: the
    bot, which has just said it is back, must not fall silent."""
    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        cid = await api.conversation_id()
        assert (await api.send(cid, text="Ana here."))[0] == 201
        await _say(api.bot, "/bot", "k2")
        status, body = await api.send(cid, text="Sorry, I was away. Still there?")
        assert status == 409 and "return command" in body["error"]
        assert await _status(api.bot) == ConversationStatus.BOT


async def test_an_address_in_use_keeps_the_hand_off_and_says_why(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot_at(make_settings, "127.0.0.1:0") as first:
        port = first.base.rsplit(":", 1)[1]
        settings = make_settings(
            plugins={"handoff": {"api_listen": f"127.0.0.1:{port}", "api_token": TOKEN}}
        )
        async with Bot(settings) as second:
            second.attach_connector(RecordingConnector(second))
            assert second.plugins.active == ["handoff"]
            plugin = second.plugins.get("handoff")
            assert plugin is not None and getattr(plugin, "api", "?") is None
            assert "cannot listen" in caplog.text and "running without it" in caplog.text
            # Customers can still ask for a human and come back.
            await _say(second, "/human", "k1")
            assert await _status(second) == ConversationStatus.WAITING_HUMAN
            await _say(second, "/bot", "k2")
            assert await _status(second) == ConversationStatus.BOT


async def test_any_failure_to_start_the_api_keeps_the_hand_off(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def refuse(self: AgentApi, host: str, port: int) -> None:
        raise UnicodeError("label too long")  # what a name DNS refuses raises

    monkeypatch.setattr(AgentApi, "start", refuse)
    settings = make_settings(plugins={"handoff": {"api_listen": "h:1", "api_token": TOKEN}})
    async with Bot(settings) as bot:
        assert bot.plugins.active == ["handoff"]
        assert "running without it: label too long" in caplog.text


async def test_a_cancelled_delivery_is_not_left_looking_sent(api_bot: ApiBot) -> None:
    delivering = asyncio.Event()

    class StallingConnector(RecordingConnector):
        async def send(self, reply: OutboundReply) -> None:
            delivering.set()
            await asyncio.sleep(3600)

    async with api_bot() as api:
        bot = api.bot
        await _say(bot, "/human", "k1")
        bot.attach_connector(StallingConnector(bot))
        cid = await api.conversation_id()
        sending = asyncio.create_task(bot.agent_replies.send(cid, "Hello?", agent="Ana"))
        await asyncio.wait_for(delivering.wait(), 30)  # cancelled mid-delivery
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        _, page = await api.call("GET", f"/v1/conversations/{cid}/messages")
        last = page["messages"][-1]
        assert (last["text"], last["status"]) == ("Hello?", "failed")


async def test_refused_requests_log_a_constant_throttled_warning(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot() as api:
        for _ in range(5):
            status, _ = await api.call(
                "GET", "/x%0A2026-11-27 16:00:00 INFO botkit forged", token="nope"
            )
            assert status == 401
        refusals = [r for r in caplog.records if "refused requests" in r.getMessage()]
        assert len(refusals) == 1 and "forged" not in caplog.text


@asynccontextmanager
async def api_bot_at(make_settings: Callable[..., Settings], listen: str) -> AsyncIterator[Api]:
    plugin = {"api_listen": listen, "api_token": TOKEN}
    async with Bot(make_settings(plugins={"handoff": plugin})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            yield Api(bot, session)


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:8090", ("127.0.0.1", 8090)),
        ("[::1]:8090", ("::1", 8090)),
        ("localhost:0", ("localhost", 0)),
        ("agents.internal.example:443", ("agents.internal.example", 443)),
    ],
)
def test_listen_addresses_that_bind(listen: str, address: tuple[str, int]) -> None:
    from botkit.handoff.config import split_listen

    assert split_listen(listen) == address


async def test_taking_over_ends_the_reply_the_bot_is_writing(
    make_settings: Callable[..., Settings],
) -> None:
    """The bot's reply stops after the words already out; the customer's question counts
    as answered (the agent has it), so no later start answers it again."""
    plugin = {"api_listen": "127.0.0.1:0", "api_token": TOKEN}
    # Twenty seconds of reply (cut by the takeover: not waited for), so that no load
    # can let it end before the agent's message.
    slow = {"kind": "echo", "echo": {"word_delay_seconds": 0.5}}
    question = " ".join(f"word{i}" for i in range(40))
    async with Bot(make_settings(plugins={"handoff": plugin}, backend=slow)) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            await bot.submit(message(question, "k1"))
            await asyncio.sleep(0.5)  # some words are out
            cid = await api.conversation_id()
            status, _ = await api.send(cid, text="Ana here, I'll take it.", take_over=True)
            assert status == 201
            assert await bot.drain(30)
        _, page = await api_page(bot, cid)
        bot_reply = next(m for m in page if m.direction == "out" and m.agent is None)
        # Stored failed with the reason, like a reply cut off by shutdown.
        assert bot_reply.status == "failed" and bot_reply.error is not None
        assert "agent took the conversation over" in bot_reply.error
        assert 0 < len(bot_reply.text) < len(f"echo: {question}")
        inbound = page[0]
        assert inbound.status == "answered"  # never answered again
        assert "Ana here, I'll take it." in [r.text for r in recorder(bot).replies]


async def api_page(bot: Bot, cid: int) -> tuple[int, list[Any]]:
    conversation = await bot.store.conversation_by_id(cid)
    messages = await bot.store.messages_after(conversation.channel, conversation.key, 0)
    return cid, messages


async def test_a_reply_prepared_while_an_agent_took_over_is_not_sent(
    api_bot: ApiBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_bot() as api:
        bot = api.bot
        await _say(bot, "hello", "k1")
        cid = await api.conversation_id()
        run = bot.pipeline.run

        async def run_then_agent_takes_over(ctx: Any) -> None:
            await run(ctx)  # the reply is ready; an agent writes before it is delivered
            status, _ = await api.send(cid, text="Ana here.", take_over=True)
            assert status == 201

        monkeypatch.setattr(bot.pipeline, "run", run_then_agent_takes_over)
        before = len(recorder(bot).replies)
        await _say(bot, "are you there?", "k2")
        assert [r.text for r in recorder(bot).replies[before:]] == ["Ana here."]
        _, page = await api_page(bot, cid)
        assert [(m.direction, m.text) for m in page[-2:]] == [
            ("in", "are you there?"), ("out", "Ana here."),
        ]  # fmt: skip
        assert page[-2].status == "answered"


_LONG_QUESTION = " ".join(f"word{i}" for i in range(40))


class BufferingConnector(RecordingConnector):
    """A channel without progress display: the base class's send_stream (waits for the
    whole text, then one send), as ``Connector`` documents for such channels."""

    send_stream = Connector.send_stream


async def test_a_channel_that_sends_whole_replies_sends_nothing_of_a_cut_one(
    make_settings: Callable[..., Settings],
) -> None:
    plugin = {"api_listen": "127.0.0.1:0", "api_token": TOKEN}
    slow = {"kind": "echo", "echo": {"word_delay_seconds": 0.5}}  # 20 s: see above
    async with Bot(make_settings(plugins={"handoff": plugin}, backend=slow)) as bot:
        conn = BufferingConnector(bot)
        bot.attach_connector(conn)
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            await bot.submit(message(_LONG_QUESTION, "k1"))
            await asyncio.sleep(0.5)  # the reply is being generated; nothing is out yet
            cid = await api.conversation_id()
            status, _ = await api.send(cid, text="Ana here.", take_over=True)
            assert status == 201
            assert await bot.drain(30)
            _, page = await api.call("GET", f"/v1/conversations/{cid}/messages")
        bot_reply = next(
            m for m in page["messages"] if m["direction"] == "out" and m["agent"] is None
        )
        assert bot_reply["status"] == "failed"  # what agents' tools see: not delivered
        texts = [r.text for r in conn.replies]
        # Nothing of the bot's reply had reached the customer: nothing should follow Ana.
        assert texts == ["Ana here."], texts


async def test_a_cut_reply_looks_the_same_live_and_replayed(
    make_settings: Callable[..., Settings],
) -> None:
    plugin = {"api_listen": "127.0.0.1:0", "api_token": TOKEN}
    slow = {"kind": "echo", "echo": {"word_delay_seconds": 0.5}}  # 20 s: see above
    async with Bot(make_settings(plugins={"handoff": plugin}, backend=slow)) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            await bot.submit(message(_LONG_QUESTION, "k1"))
            await asyncio.sleep(0.5)
            cid = await api.conversation_id()
            await api.send(cid, text="Ana here.", take_over=True)
            assert await bot.drain(30)
        final = next(r for r in recorder(bot).replies if r.metadata.get("agent") is None)
        live = message_payload(reply_item(final))  # what WebConnector pushes live
        history = await bot.history("test", "c1")
        replay = message_payload(next(h for h in history if h.seq == final.seq))
        assert live["status"] == replay["status"], (live["status"], replay["status"])


async def test_the_hand_off_queue_by_status_and_oldest_first(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        for n in (1, 2, 3):
            await _say(api.bot, "/human", f"k{n}", conversation=f"q{n}")
        first = await api.conversation_id("q1")
        assert (await api.send(first, text="Ana here."))[0] == 201  # q1: with a human
        status, body = await api.call(
            "GET", "/v1/handoffs", params={"status": "waiting_human", "order": "oldest"}
        )
        assert status == 200
        assert [c["key"] for c in body["conversations"]] == ["q2", "q3"]
        _, newest = await api.call("GET", "/v1/handoffs", params={"limit": "2"})
        assert [c["key"] for c in newest["conversations"]] == ["q1", "q3"]
        for params in ({"status": "bot"}, {"order": "sideways"}, {"status": ""}):
            status, body = await api.call("GET", "/v1/handoffs", params=params)
            assert status == 400 and "waiting_human" in body["error"]


async def test_the_hand_off_queue_pages_with_a_cursor(api_bot: ApiBot) -> None:
    """Every conversation once, in order, however the queue is paged; one that moves while
    paging (an agent answers it) shifts no other across a page boundary."""
    async with api_bot() as api:
        keys = [f"q{n}" for n in range(7)]
        for n, key in enumerate(keys):
            await _say(api.bot, "/human", f"k{n}", conversation=key)

        async def pages(order: str, limit: int) -> list[list[str]]:
            out: list[list[str]] = []
            params = {"order": order, "limit": str(limit)}
            while True:
                status, body = await api.call("GET", "/v1/handoffs", params=params)
                assert status == 200, body
                out.append([c["key"] for c in body["conversations"]])
                if body["next_cursor"] is None:
                    return out
                params = {**params, "cursor": body["next_cursor"]}

        assert await pages("oldest", 3) == [keys[0:3], keys[3:6], keys[6:]]
        assert await pages("newest", 2) == [
            keys[::-1][0:2],
            keys[::-1][2:4],
            keys[::-1][4:6],
            keys[::-1][6:],
        ]
        assert await pages("oldest", 7) == [keys, []]  # a full last page, then an empty one

        params = {"order": "oldest", "limit": "3"}
        _, first = await api.call("GET", "/v1/handoffs", params=params)
        moved = await api.conversation_id("q1")  # on the first page, now active again
        assert (await api.send(moved, text="Ana here."))[0] == 201
        _, rest = await api.call(
            "GET", "/v1/handoffs", params={**params, "cursor": first["next_cursor"]}
        )
        assert [c["key"] for c in rest["conversations"]] == ["q3", "q4", "q5"]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        "////",
        "bmV3ZXN0fDIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDB8MQ",  # newest|...|1: another order
        "b2xkZXN0fDIwMjYtMDEtMDFUMDA6MDA6MDB8MQ",  # oldest|naive time|1
        "b2xkZXN0fDIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDB8LTE",  # id -1
        "b2xkZXN0fDIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDB8OTk5OTk5OTk5OTk5OTk5OTk5OTk",  # id 2**66
        "b2xkZXN0fHllc3RlcmRheXwx",  # oldest|yesterday|1
        "b2xkZXN0fA",  # oldest|
        "//79",  # not UTF-8
        "A" * 201,
        "b2xkZXN0fDAwMDEtMDEtMDFUMDA6MDA6MDArMDE6MDB8MQ",  # year 1, +01:00: before UTC's
        "b2xkZXN0fDk5OTktMTItMzFUMjM6NTk6NTktMDE6MDB8MQ",  # year 9999, -01:00: after
    ],
)
async def test_hostile_cursors_are_refused(api_bot: ApiBot, cursor: str) -> None:
    async with api_bot() as api:
        status, body = await api.call(
            "GET", "/v1/handoffs", params={"order": "oldest", "cursor": cursor}
        )
        assert status == 400 and "cursor" in body["error"]


async def test_a_customer_who_writes_again_keeps_their_place_in_the_queue(
    api_bot: ApiBot,
) -> None:
    """The queue is by time waiting, not activity, so paging it lists everyone once."""
    async with api_bot() as api:
        for n in range(4):
            await _say(api.bot, "/human", f"k{n}", conversation=f"q{n}")
        params = {"status": "waiting_human", "order": "oldest", "limit": "2"}
        _, page = await api.call("GET", "/v1/handoffs", params=params)
        seen = [c["key"] for c in page["conversations"]]
        await _say(api.bot, "Hello? Is anyone there?", "k9", conversation="q0")
        while page["next_cursor"]:
            cursor = {**params, "cursor": page["next_cursor"]}
            _, page = await api.call("GET", "/v1/handoffs", params=cursor)
            seen += [c["key"] for c in page["conversations"]]
        assert seen == ["q0", "q1", "q2", "q3"]
        _, head = await api.call("GET", "/v1/handoffs", params={**params, "limit": "1"})
        (first,) = head["conversations"]
        assert first["key"] == "q0" and first["status_since"] < first["updated_at"]


async def test_a_store_outage_is_503_on_every_route_not_an_unknown_conversation(
    api_bot: ApiBot,
) -> None:
    """With the conversations table gone (what a real database failure looks like to the
    store), no route says "no such conversation" (an agent's tool would drop it) or
    answers a text 500: all say 503, in JSON."""
    import sqlite3

    async with api_bot() as api:
        await _say(api.bot, "/human", "k1")
        conversation_id = await api.conversation_id()
        path = api.bot.settings.store.url.split("///", 1)[1]
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE conversations RENAME TO conversations_gone")
        routes = [
            ("GET", "/v1/handoffs", {}),
            ("GET", "/v1/conversations", {"params": {"channel": "test", "key": "c1"}}),
            ("GET", f"/v1/conversations/{conversation_id}/messages", {}),
            ("POST", f"/v1/conversations/{conversation_id}/messages", {"json": {"text": "hi"}}),
            ("POST", f"/v1/conversations/{conversation_id}/release", {}),
        ]
        for method, route, kw in routes:
            status, body = await api.call(method, route, **kw)
            assert (status, body.get("error")) == (
                503, "the conversation store is unavailable; try again"
            ), (method, route, body)  # fmt: skip
