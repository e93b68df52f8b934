"""Support agents writing in a customer's Slack thread: their words are stored as theirs
and take the conversation over (real bot and connector, fake Slack Web API)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from slack_helpers import MakeSlack, SlackHarness, mention, message, new_ts

from botkit.agent_replies import TRANSLATION_MARK
from botkit.store import ConversationStatus
from botkit.testing.translator import MarkingTranslator

AGENT = "UAGENT1"


async def _thread(slack: SlackHarness) -> tuple[str, str]:
    """A customer's question in C1 and the bot's answer in its thread: (key, root ts)."""
    root = new_ts()
    await slack.post_event(mention("my order is late", ts=root))
    await slack.reply_in("C1", root, "echo: my order is late")
    return f"C1:{root}", root


async def _messages(slack: SlackHarness, key: str) -> list[tuple[str, str, str | None]]:
    conversation = await slack.bot.store.get_conversation("slack", key)
    assert conversation is not None
    stored = await slack.bot.store.messages_after("slack", key, 0)
    return [(str(m.direction), m.text, m.agent) for m in stored]


async def test_an_agents_thread_reply_is_theirs_and_takes_the_conversation(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    slack.fake.users[AGENT] = {"name": "ana", "real_name": "Ana Support"}
    key, root = await _thread(slack)
    before = len(slack.fake.messages)

    reply = message("Hi, Ana here - checking it now", user=AGENT, channel="C1",
                    channel_type="channel", thread_ts=root)  # fmt: skip
    await slack.post_event(reply, event_id="EvAGENT1")
    # Slack delivers the same event again (a retry): stored once.
    await slack.post_event(reply, event_id="EvAGENT1", retry_num=1)
    await asyncio.sleep(0.3)
    assert await slack.bot.drain(30)
    stored = await _messages(slack, key)
    assert stored[-1][0:2] == ("out", "Hi, Ana here - checking it now")
    assert stored[-1][2] in ("Ana Support", "ana")
    assert [m[1] for m in stored].count("Hi, Ana here - checking it now") == 1
    conversation = await slack.bot.store.get_conversation("slack", key)
    assert conversation is not None and conversation.status == ConversationStatus.WITH_HUMAN

    # The customer answers the agent: stored, and the bot stays quiet.
    await slack.post_event(
        message("thanks!", user="U1", channel="C1", channel_type="channel", thread_ts=root)
    )
    await asyncio.sleep(0.3)
    assert await slack.bot.drain(30)
    assert len(slack.fake.messages) == before  # the bot posted nothing more
    assert (await _messages(slack, key))[-1] == ("in", "thanks!", None)


async def test_without_the_setting_a_colleague_in_the_thread_is_read_as_a_customer(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack()
    key, root = await _thread(slack)
    await slack.post_event(
        message("me too", user="U2", channel="C1", channel_type="channel", thread_ts=root)
    )
    await slack.reply_in("C1", root, "echo: me too")
    assert (await _messages(slack, key))[-2] == ("in", "me too", None)


async def test_an_agents_own_dm_is_an_ordinary_conversation(make_slack: MakeSlack) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    await slack.post_event(message("what is our refund policy?", user=AGENT, channel="D9"))
    await slack.reply_in("D9", None, "echo: what is our refund policy?")


async def test_agent_ids_are_checked(make_slack: MakeSlack) -> None:
    import pytest

    from botkit.errors import ConfigError

    with pytest.raises(ConfigError, match="not a Slack user id"):
        await make_slack(agent_user_ids=["ana@example.com"])


async def test_an_agent_mentioning_the_bot_in_a_customers_thread_is_an_agent(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    slack.fake.users[AGENT] = {"name": "ana", "real_name": "Ana Support"}
    key, root = await _thread(slack)
    # Slack sends the message event and the app_mention, with the message's one ts, at
    # once: the agent's message is stored once, as theirs.
    text = "<@UBOT> I'll take this one, thanks"
    ts = new_ts()
    await asyncio.gather(
        slack.post_event(
            message(text, user=AGENT, channel="C1", channel_type="channel", thread_ts=root, ts=ts)
        ),
        slack.post_event(mention("I'll take this one, thanks", user=AGENT, thread_ts=root, ts=ts)),
    )
    await asyncio.sleep(0.5)
    assert await slack.bot.drain(30)
    stored = await slack.bot.store.messages_after("slack", key, 0)
    last = stored[-1]
    conversation = await slack.bot.store.get_conversation("slack", key)
    assert (str(last.direction), last.agent) == ("out", "Ana Support"), (
        f"stored as {last.direction} agent={last.agent!r}: {last.text!r}; "
        f"status={conversation.status}"
    )
    assert [m.text for m in stored].count("I'll take this one, thanks") == 1


async def test_an_agent_asking_the_bot_in_their_own_thread_is_answered(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    root = new_ts()
    await slack.post_event(mention("what is our refund policy?", user=AGENT, ts=root))
    await slack.reply_in("C1", root, "echo: what is our refund policy?")
    # The agent follows up in the thread the bot made for them (no mention, as usual).
    await slack.post_event(
        message(
            "and for damaged goods?",
            user=AGENT,
            channel="C1",
            channel_type="channel",
            thread_ts=root,
        )
    )
    await asyncio.sleep(0.5)
    assert await slack.bot.drain(30)
    conversation = await slack.bot.store.get_conversation("slack", f"C1:{root}")
    texts = [m.text for m in slack.fake.thread("C1", root)]
    assert "echo: and for damaged goods?" in texts, (
        f"bot silent; status={conversation.status}; thread={texts}"
    )


async def test_a_redelivered_agent_event_does_not_take_the_conversation_again(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    key, root = await _thread(slack)
    event = message("Ana here", user=AGENT, channel="C1", channel_type="channel", thread_ts=root)
    await slack.post_event(event, event_id="EvAGENTX")
    conversation = await slack.bot.store.get_conversation("slack", key)
    assert conversation.status == ConversationStatus.WITH_HUMAN
    # The customer sends /bot (or an operator runs `botkit handoff release`).
    await slack.bot.store.set_conversation_status(conversation.id, ConversationStatus.BOT)
    # Slack's retry of the agent's event (same event_id) arrives later.
    await slack.post_event(event, event_id="EvAGENTX", retry_num=2)
    await asyncio.sleep(0.2)
    conversation = await slack.bot.store.get_conversation("slack", key)
    assert conversation.status == ConversationStatus.BOT, (
        f"a duplicate delivery took the conversation over again: {conversation.status}"
    )


async def test_an_agents_files_only_reply_takes_the_conversation(make_slack: MakeSlack) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    key, root = await _thread(slack)
    await slack.post_event(
        message(
            "",
            user=AGENT,
            channel="C1",
            channel_type="channel",
            thread_ts=root,
            subtype="file_share",
            files=[
                {
                    "name": "label.pdf",
                    "mimetype": "application/pdf",
                    "size": 10,
                    "permalink": "https://x.slack.com/files/label.pdf",
                }
            ],
        )
    )
    await asyncio.sleep(0.2)
    conversation = await slack.bot.store.get_conversation("slack", key)
    stored = await slack.bot.store.messages_after("slack", key, 0)
    assert conversation.status == ConversationStatus.WITH_HUMAN, (
        f"status={conversation.status}; stored={[(str(m.direction), m.text) for m in stored]}"
    )


SPANISH = "Hola, mi pedido todavía no ha llegado y necesito saber dónde está."


class _Gated(MarkingTranslator):
    """Translates only once ``gate`` is open (a slow model, held by the test)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        await self.gate.wait()
        return await super().translate(texts, source, target)


PIVOT = {"detector": {"kind": "langdetect", "processes": 0}}


async def _agent_says(
    slack: SlackHarness,
    root: str,
    text: str,
    event_id: str,
    retry_num: int | None = None,
    ts: str | None = None,
) -> None:
    """The agent writes ``text`` (message ``ts``) in the customer's channel thread ``root``."""
    await slack.post_event(
        message(text, user=AGENT, channel="C1", channel_type="channel", thread_ts=root, ts=ts),
        event_id=event_id,
        retry_num=retry_num,
    )


async def test_in_pivot_mode_the_bot_posts_a_translation_under_an_agents_thread_reply(
    make_slack: MakeSlack,
) -> None:
    translator = _Gated()
    slack = await make_slack(agent_user_ids=[AGENT], translator=translator, language=PIVOT)
    root = new_ts()
    translator.gate.set()
    await slack.post_event(mention(SPANISH, ts=root))
    await slack.reply_in("C1", root, f"es(echo: en({SPANISH}))")
    key = f"C1:{root}"

    # Slack gets its answer before the translation is made (it redelivers an event not
    # answered within 3 s); the redelivery changes nothing.
    translator.gate.clear()
    ts = new_ts()
    for retry in (None, 1):
        await _agent_says(
            slack, root, "Hi, Ana here - checking it now", "EvAGENT1", retry_num=retry, ts=ts
        )
    stored = (await slack.bot.store.messages_after("slack", key, 0))[-1]
    assert (stored.text, stored.working_text) == ("Hi, Ana here - checking it now", None)
    translator.gate.set()
    translation = f"{TRANSLATION_MARK}es(Hi, Ana here - checking it now)"
    await slack.reply_in("C1", root, translation)
    async with asyncio.timeout(30):
        while stored.working_text is None:
            await asyncio.sleep(0.02)
            stored = (await slack.bot.store.messages_after("slack", key, 0))[-1]
    assert (stored.text, stored.working_text, stored.language) == (
        "es(Hi, Ana here - checking it now)",
        "Hi, Ana here - checking it now",
        "es",
    )
    assert stored.agent is not None
    await asyncio.sleep(0.2)
    assert [m.text for m in slack.fake.thread("C1", root)].count(translation) == 1

    # A translator that fails: stored as written, nothing posted, the agent still has it.
    translator.fail_with = RuntimeError("model crashed")
    before = len(slack.fake.messages)
    await _agent_says(slack, root, "Found it: it ships today.", "EvAGENT2")
    await asyncio.sleep(0.3)
    assert await slack.bot.drain(30)
    last = (await slack.bot.store.messages_after("slack", key, 0))[-1]
    assert (last.text, last.working_text) == ("Found it: it ships today.", None)
    assert len(slack.fake.messages) == before
    conversation = await slack.bot.store.get_conversation("slack", key)
    assert conversation is not None and conversation.status == ConversationStatus.WITH_HUMAN


async def test_an_agent_writing_the_customers_language_gets_no_translation_posted(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT], translator=MarkingTranslator(), language=PIVOT)
    root, english = new_ts(), "Hello, my order has not arrived yet and I need to know where it is."
    await slack.post_event(mention(english, ts=root))  # the working language
    await slack.reply_in("C1", root, f"echo: {english}")
    key = f"C1:{root}"
    before = len(slack.fake.messages)
    await _agent_says(slack, root, "Hi, Ana here - checking it now", "EvAGENT1")
    await asyncio.sleep(0.3)
    assert await slack.bot.drain(30)
    assert len(slack.fake.messages) == before
    assert (await _messages(slack, key))[-1][1] == "Hi, Ana here - checking it now"


async def test_a_translation_slack_refuses_leaves_the_agents_message_as_written(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT], translator=MarkingTranslator(), language=PIVOT)
    root = new_ts()
    await slack.post_event(mention(SPANISH, ts=root))
    await slack.reply_in("C1", root, f"es(echo: en({SPANISH}))")
    slack.fake.fail("chat.postMessage", times=10, status=200, error="channel_not_found")
    await _agent_says(slack, root, "Hi, Ana here - checking it now", "EvAGENT1")
    await slack.fake.wait_until(lambda: len(slack.fake.calls_to("chat.postMessage")) >= 2, 30)
    # The customer read only the original: that is what the store says they got, once
    # the failed post took the stored translation back (waited for, not slept for).
    original = ("Hi, Ana here - checking it now", None)
    async with asyncio.timeout(30):
        while True:
            stored = (await slack.bot.store.messages_after("slack", f"C1:{root}", 0))[-1]
            if (stored.text, stored.working_text) == original:
                break
            await asyncio.sleep(0.02)
