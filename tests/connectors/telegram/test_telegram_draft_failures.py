"""Drafts when things go wrong: a server without the method, a chat that refuses them,
flood control, errors mid-stream, an empty reply, shutdown and an agent's takeover.
The reply always ends as the edit path would leave it: never lost, never twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from tg_helpers import MakeTg, gaps

from botkit.backends.protocol import GenerationRequest
from botkit.testing.backends import ScriptBackend

FALLBACK = "Sorry, something went wrong on our side. Please try again in a moment."


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


@pytest.mark.parametrize("streaming", ["auto", "draft"])
async def test_a_server_without_drafts_gets_edits(
    make_tg: MakeTg, caplog: pytest.LogCaptureFixture, streaming: str
) -> None:
    # "auto" learns it on the first refusal and says so once; "draft" tries every reply.
    caplog.set_level(logging.WARNING, "connectors.telegram")
    tg = await make_tg({"edit_interval_s": 0.2, "streaming": streaming}, word_delay=0.02)
    fake, text = tg.fake, words(40)
    fake.drafts_supported = False  # an older self-hosted Bot API server: 404 Not Found
    for chat in (611, 612):
        fake.push(fake.updates.message(chat, text))
        await fake.wait_until(lambda c=chat: tg.answers(c) == [f"echo: {text}"], within=30)
        await tg.settle()
        [message] = fake.messages(chat)
        assert len(message.versions) >= 2  # sent, then edited as it grew
    tried = [611] if streaming == "auto" else [611, 612]
    assert [c.params["chat_id"] for c in fake.calls_to("sendMessageDraft", ok=False)] == tried
    said = [r.getMessage() for r in caplog.records if "sendMessageDraft" in r.getMessage()]
    assert len(said) == len(tried) and all("Not Found" in line for line in said)


async def test_a_chat_refusing_drafts_mid_stream_continues_by_edits(
    make_tg: MakeTg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "connectors.telegram")
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.03)
    fake, text = tg.fake, words(60)
    fake.push(fake.updates.message(613, text))
    await fake.wait_until(lambda: len(fake.drafts_in(613)) >= 2, within=30)
    fake.fail("sendMessageDraft", status=400, description="Bad Request: TEXTDRAFT_PEER_INVALID")
    await fake.wait_until(lambda: tg.answers(613) == [f"echo: {text}"], within=30)
    await tg.settle()
    [message] = fake.messages(613)  # one message: nothing lost, nothing twice
    first_text = message.versions[0][1]
    assert fake.drafts_in(613)[-1].text in first_text  # what the draft showed, at once
    assert len(message.versions) >= 2
    # Remembered for that chat only.
    fake.push(fake.updates.message(613, "again " + text), fake.updates.message(614, text))
    await fake.wait_until(lambda: len(tg.answers(613)) == 2 and len(tg.answers(614)) == 1, 8)
    await tg.settle()
    assert len(fake.calls_to("sendMessageDraft", 613, ok=False)) == 3  # 2 shown, 1 refused
    assert fake.drafts_in(614)
    said = [r.getMessage() for r in caplog.records if "drafts refused" in r.getMessage()]
    assert len(said) == 1 and "613" in said[0] and "textdraft_peer_invalid" in said[0].lower()


async def test_a_draft_lost_to_a_server_error_is_replaced_by_the_next(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.03)
    fake, text = tg.fake, words(60)
    fake.push(fake.updates.message(615, text))
    await fake.wait_until(lambda: len(fake.drafts_in(615)) >= 1, within=30)
    fake.fail("sendMessageDraft", status=502, times=2)
    await fake.wait_until(lambda: tg.answers(615) == [f"echo: {text}"], within=30)
    await tg.settle()
    failed = [c for c in fake.calls_to("sendMessageDraft", 615, ok=False) if c.status == 502]
    assert len(failed) == 2 and gaps([c.at for c in failed])[0] >= 0.19  # a frame each
    assert len(fake.drafts_in(615)) >= 2  # drafting went on after them
    assert not fake.calls_to("editMessageText")


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_on_a_draft_pauses_every_send(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.04)
    fake, text = tg.fake, words(60)  # ~2.4 s
    fake.push(fake.updates.message(616, text))
    await fake.wait_until(lambda: len(fake.drafts_in(616)) >= 1, within=30)
    fake.fail("sendMessageDraft", retry_after=1)
    await fake.wait_until(lambda: tg.answers(616) == [f"echo: {text}"], within=30)
    await tg.settle()
    [refused] = [c for c in fake.calls_to("sendMessageDraft", ok=False) if c.status == 429]
    sends = ("sendMessage", "sendMessageDraft", "editMessageText", "sendChatAction")
    early = [c for c in fake.calls if c.method in sends and refused.at < c.at < refused.at + 0.99]
    assert early == []
    assert [d for d in fake.drafts_in(616) if d.at > refused.at]  # drafting resumed
    assert len(fake.messages(616)) == 1


class BreaksMidway(ScriptBackend):
    """Writes a few words, then fails (the core appends its fallback text)."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        for i in range(10):
            await asyncio.sleep(0.05)
            yield f"part{i} "
        raise RuntimeError("model server went away")


class Blank(ScriptBackend):
    """Writes only whitespace, for longer than an interval."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        for _ in range(6):
            await asyncio.sleep(0.05)
            yield "  \n"


class Stalls(ScriptBackend):
    """Writes a few words at once, then nothing for a while (a slow tool call)."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        yield "Let me look that up"
        await asyncio.sleep(6.0)
        yield " for you."


async def test_no_draft_follows_a_takeover_while_the_model_stalls(make_tg: MakeTg) -> None:
    # The text is in before the takeover, its draft due after the agent's message: the
    # reply sees the takeover only at its next words, 6 s later; the draft must not show
    # below the agent's message meanwhile. (The draft is due 3 s in: far from the
    # takeover below, however slow the machine.)
    tg = await make_tg({"edit_interval_s": 3.0}, backend=Stalls())
    fake = tg.fake
    fake.push(fake.updates.message(621, "where is my order?"))
    await fake.wait_until(lambda: bool(fake.calls_to("sendChatAction", 621)), within=30)
    await asyncio.sleep(0.3)
    conversation = await tg.bot.store.get_conversation("telegram", "621")
    assert conversation is not None
    await tg.bot.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)
    await tg.settle()
    assert tg.answers(621) == ["Ana here."]
    assert fake.drafts_in(621) == []


async def test_a_generation_error_mid_stream_ends_in_one_message(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.15}, backend=BreaksMidway())
    tg.fake.push(tg.fake.updates.message(617, "hello"))
    await tg.wait_answers(1, chat_id=617)
    await tg.settle()
    expected = "".join(f"part{i} " for i in range(10)) + "\n\n" + FALLBACK
    assert tg.answers(617) == [expected]
    assert tg.fake.drafts_in(617)  # it was drafted before it broke


async def test_a_blank_reply_sends_no_empty_draft(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.1}, backend=Blank())
    tg.fake.push(tg.fake.updates.message(618, "hello"))
    await tg.wait_answers(1, chat_id=618)
    await tg.settle()
    assert tg.answers(618) == [FALLBACK]
    assert not tg.fake.calls_to("sendMessageDraft", ok=False)  # no empty (refused) draft


async def test_a_drafted_reply_cut_by_shutdown_is_sent_marked_and_answered_again(
    make_tg: MakeTg,
) -> None:
    first = await make_tg({"edit_interval_s": 0.2}, bot={"shutdown_grace_seconds": 0},
                          word_delay=0.2)  # fmt: skip
    fake, text = first.fake, words(40)
    fake.push(fake.updates.message(619, text))
    await fake.wait_until(lambda: len(fake.drafts_in(619)) >= 1, within=30)
    await first.stop()  # the reply is still a draft
    # What was in flight lands (waited for, however slow the machine: not slept for).
    await fake.wait_until(lambda: bool(first.answers(619)) and fake.live_drafts(619) == [], 30)
    shown = fake.drafts_in(619)[-1].text
    assert first.answers(619) == [f"{shown} …"]  # what the edit path would leave
    assert fake.live_drafts(619) == []  # no ghost draft
    # Review L7: the marked message went out past Sender, with link previews on.
    [marked] = fake.calls_to("sendMessage", 619)
    assert marked.params.get("link_preview_options") == {"is_disabled": True}
    assert [i.status for i in await first.history(619)] == ["received", "failed"]
    await first.bot.close()

    second = await make_tg(db="tg.db", bot={"shutdown_grace_seconds": 0})  # a restart
    await second.wait_answers(2, chat_id=619, within=30)
    assert second.answers(619)[1] == f"echo: {text}"


async def test_a_takeover_mid_draft_posts_nothing_after_the_agent(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.05)
    fake = tg.fake
    fake.push(fake.updates.message(620, words(60)))
    await fake.wait_until(lambda: len(fake.drafts_in(620)) >= 1, within=30)
    conversation = await tg.bot.store.get_conversation("telegram", "620")
    assert conversation is not None
    await tg.bot.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)
    await tg.settle()
    await asyncio.sleep(0.5)
    [agent] = fake.messages(620)
    assert agent.text == "Ana here."
    assert all(d.at < agent.versions[0][0] for d in fake.drafts_in(620))
    assert fake.live_drafts(620) == []  # the agent's message ended the draft
    [cut] = [i for i in await tg.history(620) if i.text.startswith("echo:")]
    assert cut.status == "failed"  # stored cut, as on the edit path


async def test_a_takeover_after_a_part_was_sent_marks_that_part(make_tg: MakeTg) -> None:
    tg = await make_tg(
        {"edit_interval_s": 0.15}, bot={"max_message_chars": 20_000}, word_delay=0.004
    )
    fake = tg.fake
    fake.push(fake.updates.message(622, " ".join(f"word{i:04d}" for i in range(1000))))
    [part] = await tg.wait_answers(1, chat_id=622, within=30)  # the first 4,096-character part
    conversation = await tg.bot.store.get_conversation("telegram", "622")
    assert conversation is not None
    await tg.bot.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)
    await tg.settle()
    await asyncio.sleep(0.3)
    first, agent = fake.messages(622)
    assert first is part and first.text.endswith(" …") and agent.text == "Ana here."
    # Review L7: the mark's edit went out past Sender, with link previews on.
    [*_, mark] = fake.calls_to("editMessageText", 622)
    assert mark.params["text"].endswith(" …")
    assert mark.params.get("link_preview_options") == {"is_disabled": True}
    assert all(d.at < agent.versions[0][0] for d in fake.drafts_in(622))
    assert fake.live_drafts(622) == []


async def test_a_blocked_bot_is_a_failed_delivery_not_a_chat_refusing_drafts(
    make_tg: MakeTg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "connectors.telegram")
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.02)
    fake, text = tg.fake, words(30)
    blocked = "Forbidden: bot was blocked by the user"
    fake.fail("sendMessageDraft", status=403, description=blocked)
    fake.fail("sendMessage", status=403, description=blocked)
    fake.push(fake.updates.message(701, text))
    await fake.wait_until(lambda: bool(fake.calls_to("sendMessage", ok=False)), 30)
    await tg.settle()
    assert not [r for r in caplog.records if "drafts refused" in r.getMessage()]
    # The customer unblocks the bot: the next reply is drafted again. (The message whose
    # reply never reached them goes to the model with this one, as one customer turn:
    # botkit.pipeline.turns.)
    fake.push(fake.updates.message(701, "again " + text))
    await fake.wait_until(
        lambda: [a.endswith(f"\n\nagain {text}") for a in tg.answers(701)] == [True], 30
    )
    await tg.settle()
    assert tg.connector.drafts.usable(701)
    assert [d for d in fake.drafts_in(701) if "again" in d.text]
