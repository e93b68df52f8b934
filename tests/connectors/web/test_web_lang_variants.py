"""A widget's ``lang`` is the visitor's to choose: a made-up variant (``de-a0000001``;
valid BCP 47, and there are millions) must not become the conversation's language,
which caches are keyed by (the soak audit: ~13.5 KB of stopwords per distinct tag)."""

from __future__ import annotations

from web_helpers import WebHarness, reply_to

GERMAN = "Guten Tag, ich möchte gerne wissen, wo meine Bestellung gerade ist."


async def test_a_variant_lang_becomes_its_language(web: WebHarness) -> None:
    tab = await web.visitor(lang="de-a0000001")
    await tab.send(GERMAN, "c1")
    reply = await tab.until(reply_to(1))
    assert reply["language"] == "de"
    conversation = await web.bot.store.conversation_by_id(1)
    assert conversation is not None and conversation.language == "de"


async def test_a_short_first_message_answers_in_the_hint_without_its_variant(
    web: WebHarness,
) -> None:
    """Too short to detect: the hint alone chooses (not stored as the conversation's)."""
    tab = await web.visitor(lang="de-CH-a0000002")
    await tab.send("Hallo", "c1")
    reply = await tab.until(reply_to(1))
    assert reply["language"] == "de-CH"
