"""The feedback plugin through the real bot (echo backend, SQLite): buttons under the
model's answers, ratings stored once per reply and person, what the customer is told,
the metrics, and ``botkit feedback``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from core_helpers import RecordingConnector, closed_on_saturday, message, recorder
from prometheus_client.parser import text_string_to_metric_families

from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.cli import main
from botkit.config import Settings
from botkit.errors import BackendBusyError, ConfigError
from botkit.events import Button, FeedbackGiven, SystemEvent
from botkit.feedback import texts
from botkit.handoff.texts import HANDOFF_REPLIES
from botkit.plugins import available_plugins
from botkit.store import ConversationStatus
from botkit.testing.backends import ScriptBackend
from botkit.testing.translator import MarkingTranslator

GOOD, BAD = "👍", "👎"


def buttons(answering: int) -> tuple[Button, Button]:
    """The rating buttons of the answer to customer message ``answering``."""
    return (Button(GOOD, f"{GOOD} #{answering}"), Button(BAD, f"{BAD} #{answering}"))


SPANISH = "Hola, necesito ayuda con mi pedido, por favor. ¿Dónde está mi paquete?"

FeedbackBot = Callable[..., Any]


@pytest.fixture
def feedback_bot(make_settings: Callable[..., Settings]) -> FeedbackBot:
    """``async with feedback_bot(**plugin_config) as (bot, events)``."""

    @asynccontextmanager
    async def started(
        handoff: dict[str, Any] | None = None, **config: Any
    ) -> AsyncIterator[tuple[Bot, list[SystemEvent]]]:
        plugins = {"feedback": config, "handoff": handoff or {}}
        events: list[SystemEvent] = []

        async def record(event: SystemEvent) -> None:
            events.append(event)

        async with Bot(make_settings(plugins=plugins)) as bot:
            bot.attach_connector(RecordingConnector(bot))
            bot.events.subscribe(record)
            yield bot, events

    return started


async def _say(bot: Bot, text: str, key: str, conversation: str = "c1", user: str = "u1") -> Any:
    await bot.submit(message(text, key, conversation=conversation, user=user))
    assert await bot.drain(30)
    return recorder(bot).replies[-1]


def _feedback_samples(bot: Bot) -> dict[str, float]:
    return {
        sample.labels["rating"]: sample.value
        for family in text_string_to_metric_families(bot.metrics.render().decode())
        for sample in family.samples
        if sample.name == "botkit_feedback_total" and sample.labels["channel"] == "test"
    }


def test_found_without_installed_entry_point() -> None:
    assert available_plugins()["feedback"] == "botkit.feedback:FeedbackPlugin"


async def test_answers_offer_ratings_and_a_click_is_stored_once(feedback_bot: FeedbackBot) -> None:
    async with feedback_bot() as (bot, events):
        answer = await _say(bot, "Where is my parcel?", "k1")
        assert answer.text == "echo: Where is my parcel?" and answer.buttons == buttons(1)
        thanks = await _say(bot, f"{GOOD} #1", "k2")  # what a click sends
        assert thanks.text == texts.THANKS["en"] and thanks.buttons == ()
        # Changing one's mind replaces the rating; it is still one rating of one reply.
        sorry = await _say(bot, f"{BAD} #1", "k3")
        assert sorry.text == texts.SORRY["en"]
        await _say(bot, f"{BAD} #1", "k4")  # an impatient second tap is no new rating
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
        assert _feedback_samples(bot) == {"good": 1.0, "bad": 1.0}
    assert report.counts == {"test": {"good": 0, "bad": 1}}
    [bad] = report.latest_bad
    assert (bad.conversation_key, bad.reply_seq, bad.text) == ("c1", 2, answer.text)
    given = [e for e in events if isinstance(e, FeedbackGiven)]
    assert [(e.rating, e.reply_seq) for e in given] == [("good", 2), ("bad", 2)]


async def test_a_click_on_an_older_answer_rates_that_answer(feedback_bot: FeedbackBot) -> None:
    # Telegram and Slack keep every answer's buttons.
    async with feedback_bot() as (bot, _):
        first = await _say(bot, "Where is my parcel?", "k1")
        await _say(bot, "And my invoice?", "k2")
        await _say(bot, first.buttons[1].value, "k3")
        report = await bot.store.feedback_report(first.created_at.replace(year=2000))
    assert [(r.reply_seq, r.text) for r in report.latest_bad] == [(2, first.text)]


async def test_many_people_can_rate_one_answer_in_a_shared_thread(
    feedback_bot: FeedbackBot,
) -> None:
    async with feedback_bot() as (bot, _):
        answer = await _say(bot, "Where is my parcel?", "k1")
        for n in range(8):  # each thanked: the confirmations never hide the answer
            assert (await _say(bot, f"{GOOD} #1", f"r{n}", user=f"u{n}")).text == (
                texts.THANKS["en"]
            )
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
    assert report.counts == {"test": {"good": 8, "bad": 0}}


async def test_notices_in_place_of_an_answer_offer_no_rating(
    make_settings: Callable[..., Settings],
) -> None:
    class Busy(ScriptBackend):
        name = "busy"

        async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
            raise BackendBusyError("every slot is taken")
            yield ""  # a generator

    async with Bot(make_settings(plugins={"feedback": {}}), backend=Busy()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        notice = await _say(bot, "Where is my parcel?", "k1")
    assert notice.text == bot.settings.bot.busy_reply and notice.buttons == ()


async def test_fixed_texts_are_not_offered_and_a_label_without_a_reply_is_a_message(
    feedback_bot: FeedbackBot,
) -> None:
    async with feedback_bot() as (bot, _):
        first = await _say(bot, GOOD, "k1")  # nothing to rate yet: the model answers it
        assert first.text == f"echo: {GOOD}" and first.buttons == buttons(1)
        handoff = await _say(bot, "/human", "k2", conversation="c2")
        assert handoff.buttons == ()  # the hand-off confirmation is not the model's
        # With a human, a thumbs-up is a message for the agent: stored, not answered.
        before = len(recorder(bot).replies)
        await _say(bot, GOOD, "k3", conversation="c2")
        assert len(recorder(bot).replies) == before
        conversation = await bot.store.get_conversation("test", "c2")
        assert conversation is not None
        assert conversation.status == ConversationStatus.WAITING_HUMAN
        assert (await bot.store.feedback_report(conversation.created_at)).counts == {}


async def test_typed_thumbs_with_a_skin_tone_count(feedback_bot: FeedbackBot) -> None:
    async with feedback_bot() as (bot, _):
        await _say(bot, "Where is my parcel?", "k1")
        assert (await _say(bot, " 👍🏽\ufe0f ", "k2")).text == texts.THANKS["en"]
        assert (await _say(bot, "👍 thanks, but where exactly?", "k3")).text.startswith("echo:")


async def test_a_typed_thumb_after_a_colleagues_help_is_a_message(
    feedback_bot: FeedbackBot,
) -> None:
    async with feedback_bot() as (bot, events):
        answer = await _say(bot, "How long does delivery to Canada take?", "k1")
        assert (await _say(bot, BAD, "k2")).text == texts.SORRY["en"]
        await _say(bot, "/human", "k3")
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None
        await bot.agent_replies.send(conversation.id, "Ana: 5-7 days.", agent="Ana")
        await _say(bot, "/bot", "k4")
        # Thanks for Ana's help, not a change of mind about the model's answer.
        assert (await _say(bot, GOOD, "k5")).text == f"echo: {GOOD}"
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
        assert report.counts == {"test": {"good": 0, "bad": 1}}
        # A click names its answer: it still rates the old one.
        assert (await _say(bot, f"{GOOD} #1", "k6")).text == texts.THANKS["en"]
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
    assert report.counts == {"test": {"good": 1, "bad": 0}}
    given = [e for e in events if isinstance(e, FeedbackGiven)]
    assert [(e.rating, e.reply_seq) for e in given] == [("bad", 2), ("good", 2)]


async def test_a_typed_thumb_after_an_intent_or_a_close_is_a_message(
    make_settings: Callable[..., Settings],
) -> None:
    intents = {"intent": [
        {"name": "hours", "action": "reply", "keywords": ["opening hours"],
         "reply": {"en": "9-5"}},
        {"name": "bye", "action": "close", "keywords": ["goodbye"]},
    ]}  # fmt: skip
    settings = make_settings(plugins={"feedback": {}, "intents": intents})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        answer = await _say(bot, "Where is my parcel?", "k1")
        assert (await _say(bot, "opening hours?", "k2")).text == "9-5"
        assert (await _say(bot, GOOD, "k3")).text == f"echo: {GOOD}"  # for "9-5"
        # Closed without a word, then reopened by the thumb: who handles it changed.
        await _say(bot, "Where is my parcel?", "k4", conversation="c2")
        await _say(bot, "goodbye", "k5", conversation="c2")
        # "goodbye" got no reply: it and the thumb are one user turn (merge_turns).
        assert (await _say(bot, GOOD, "k6", conversation="c2")).text == f"echo: goodbye\n\n{GOOD}"
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
    assert report.counts == {}


async def test_typed_thumbs_of_many_people_pass_over_each_others_thanks(
    feedback_bot: FeedbackBot,
) -> None:
    async with feedback_bot() as (bot, _):
        answer = await _say(bot, "Where is my parcel?", "k1", user="alice")
        assert (await _say(bot, GOOD, "k2", user="alice")).text == texts.THANKS["en"]
        assert (await _say(bot, BAD, "k3", user="bob")).text == texts.SORRY["en"]
        assert (await _say(bot, f"{GOOD} #1", "k4", user="carol")).text == texts.THANKS["en"]
        assert (await _say(bot, GOOD, "k5", user="bob")).text == texts.THANKS["en"]
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
    assert report.counts == {"test": {"good": 3, "bad": 0}}


async def test_a_bad_rating_can_hand_the_conversation_over(feedback_bot: FeedbackBot) -> None:
    async with feedback_bot(on_bad="handoff") as (bot, _):
        await _say(bot, SPANISH, "k1")
        handed = await _say(bot, BAD, "k2")
        conversation = await bot.store.get_conversation("test", "c1")
    # In the customer's language, with the hand-off plugin's hint.
    assert handed.text == f"{texts.HANDED_OFF['es']} Envía /bot para volver a hablar con el bot."
    assert conversation is not None and conversation.status == ConversationStatus.WAITING_HUMAN


async def test_a_bad_rating_follows_the_office_hours(
    feedback_bot: FeedbackBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    hours = closed_on_saturday(monkeypatch)
    async with feedback_bot(on_bad="handoff", handoff={"hours": hours}) as (bot, _):
        await _say(bot, "Where is my parcel?", "k1")
        kept = await _say(bot, f"{BAD} #1", "k2")
        conversation = await bot.store.get_conversation("test", "c1")
    assert kept.text.startswith("Our team is away right now and back from Monday 09:00 (UTC).")
    assert conversation is not None and conversation.status == ConversationStatus.BOT


async def test_custom_labels_and_texts(feedback_bot: FeedbackBot) -> None:
    config = {"good_label": "Helpful", "bad_label": "Not helpful",
              "thanks_replies": {"en": "Noted, thank you."}}  # fmt: skip
    async with feedback_bot(**config) as (bot, _):
        answer = await _say(bot, "Where is my parcel?", "k1")
        assert [b.label for b in answer.buttons] == ["Helpful", "Not helpful"]
        assert answer.buttons[0].value == "Helpful #1"
        assert (await _say(bot, "Helpful #1", "k2")).text == "Noted, thank you."


async def test_ratings_in_a_shared_thread_are_per_person(feedback_bot: FeedbackBot) -> None:
    async with feedback_bot() as (bot, _):
        answer = await _say(bot, "Where is my parcel?", "k1", user="alice")
        await _say(bot, f"{GOOD} #1", "k2", user="alice")
        await _say(bot, f"{BAD} #1", "k3", user="bob")
        report = await bot.store.feedback_report(answer.created_at.replace(year=2000))
        exported = await bot.store.export_contact("test", "bob")
        deleted = await bot.store.forget_contact("test", "bob")
        after = await bot.store.feedback_report(answer.created_at.replace(year=2000))
    assert report.counts == {"test": {"good": 1, "bad": 1}}
    assert exported is not None
    assert [(r["reply_seq"], r["rating"]) for r in exported["ratings"]] == [(2, "bad")]
    assert deleted.contacts == 1
    assert after.counts == {"test": {"good": 1, "bad": 0}}


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"good_label": "x", "bad_label": "x"}, "must differ"),
        ({"good_label": "👍", "bad_label": "👍🏿"}, "more than by skin tone"),
        ({"good_label": " "}, "plugins.feedback.good_label"),
        ({"bad_label": "a\nb"}, "one line of visible text"),
        ({"thanks_replies": {"not a tag!": "x"}}, "not a language tag"),
        ({"sorry_replies": {"en": ""}}, "1 to 1000 characters"),
        ({"on_bad": "ignore"}, "plugins.feedback.on_bad"),
    ],
)
def test_config_errors_name_the_key(
    make_settings: Callable[..., Settings], config: dict[str, Any], error: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        make_settings(plugins={"feedback": config})
    assert error in str(raised.value)


def test_the_report_command(
    feedback_bot: FeedbackBot, core_db_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = tmp_path / "bot.toml"
    config.write_text(f'[store]\nurl = "{core_db_url}"\n')
    assert main(["feedback", "-c", str(config)]) == 1  # no database yet: nothing is created
    assert "no database at" in capsys.readouterr().err

    async def rate() -> None:
        async with feedback_bot() as (bot, _):
            await _say(bot, "Where is my parcel?\nIt is late.", "k1")
            await _say(bot, BAD, "k2")
            await _say(bot, "And my invoice?", "k3", conversation="c2")
            await _say(bot, GOOD, "k4", conversation="c2")

    asyncio.run(rate())
    capsys.readouterr()
    assert main(["feedback", "-c", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["ratings in the last 30 days:", "  test: 1 good, 1 bad (50% good)"]
    assert out[2] == "latest rated bad:"
    assert re.fullmatch(
        r"  \d{4}-\d\d-\d\d \d\d:\d\d UTC test c1 seq=2: echo: Where is my parcel\? It is late\.",
        out[3],
    )
    with pytest.raises(SystemExit):
        main(["feedback", "-c", str(config), "--days", "0"])
    # A count past SQLite's integers is a usage error, not a "database read failed".
    with pytest.raises(SystemExit) as caught:
        main(["feedback", "-c", str(config), "--bad", "99999999999999999999999"])
    assert caught.value.code == 2 and "must be 1 to 1000000" in capsys.readouterr().err


async def test_pivot_mode_keeps_the_buttons_on_the_translated_answer(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(plugins={"feedback": {}})
    async with Bot(settings, translator=MarkingTranslator()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        answer = await _say(bot, SPANISH, "k1")
        assert answer.text.startswith("es(echo: en(") and answer.buttons == buttons(1)
        assert (await _say(bot, GOOD, "k2")).text == texts.THANKS["es"]


async def test_a_handoff_on_bad_without_the_handoff_plugin_is_warned_about(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    async with Bot(make_settings(plugins={"feedback": {"on_bad": "handoff"}})) as bot:
        assert bot.plugins.active == ["feedback"]
    assert "[plugins.handoff] is not enabled" in caplog.text


class NewestOnly(RecordingConnector):
    """A channel that shows quick replies under the newest message only (the widget)."""

    earlier_quick_replies_stay = False


async def test_channels_showing_only_the_newest_buttons_get_bare_labels(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(plugins={"feedback": {}})) as bot:
        bot.attach_connector(NewestOnly(bot))
        first = await _say(bot, "Where is my parcel?", "k1")
        assert first.buttons == (Button(GOOD, GOOD), Button(BAD, BAD))  # shown as sent
        second = await _say(bot, "And my invoice?", "k2")
        await _say(bot, BAD, "k3")  # under the newest answer: rates that one
        report = await bot.store.feedback_report(first.created_at.replace(year=2000))
    assert [r.text for r in report.latest_bad] == [second.text]


def test_the_widget_and_the_console_show_only_the_newest_buttons() -> None:
    from connectors.console import ConsoleConnector
    from connectors.web import WebConnector

    assert not WebConnector.earlier_quick_replies_stay
    assert not ConsoleConnector.earlier_quick_replies_stay


@pytest.mark.parametrize(
    "text",
    [
        "👍 #99999999999999",
        "👍 #0",
        "👍 #-1",
        "👍 #1x",
        "👍 # 1",
        "👍" * 100,
        "👍 #1 #2",  # (NUL and control characters are stripped before plugins see it)
        "\ud83d #1",
    ],
)
async def test_odd_ratings_are_ordinary_messages(feedback_bot: FeedbackBot, text: str) -> None:
    async with feedback_bot() as (bot, events):
        await _say(bot, "Where is my parcel?", "k1")
        reply = await _say(bot, text, "k2")
        report = await bot.store.feedback_report(reply.created_at.replace(year=2000))
    assert reply.text.startswith("echo:")  # the model's, not a thank-you
    assert report.counts == {} and not [e for e in events if isinstance(e, FeedbackGiven)]


async def test_a_language_the_texts_lack_gets_the_working_languages(
    make_settings: Callable[..., Settings],
) -> None:
    # native mode, working language German, a customer whose language the built-in
    # tables lack (Korean): the thank-you went out in English (README: the working
    # language), labelled English. The hand-off's texts follow the same rule.
    settings = make_settings(
        bot={"working_language": "de"},
        language={"mode": "native", "detector": {"kind": "none"}},
        plugins={"feedback": {}, "handoff": {}},
    )
    assert "ko" not in texts.THANKS
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("제 택배는 어디에 있나요?", "k1", language_hint="ko"))
        assert await bot.drain(30)
        thanks = await _say(bot, f"{GOOD} #1", "k2")
        assert (thanks.text, thanks.language) == (texts.THANKS["de"], "de")
        handed = await _say(bot, "/human", "k3")
        assert handed.language == "de" and handed.text.startswith(HANDOFF_REPLIES["de"])
