"""Office hours for hand-offs: the schedule's arithmetic (time zones, daylight saving,
days off) and what customers are told outside the hours, through the real bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from core_helpers import RecordingConnector, message, recorder
from pydantic import ValidationError

from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import ConfigError
from botkit.handoff import texts
from botkit.handoff.desk import HandoffDesk
from botkit.handoff.hours import OfficeHours, parse_ranges
from botkit.store import ConversationStatus

AMSTERDAM = {"timezone": "Europe/Amsterdam", "mon": "09:00-17:00", "tue": "09:00-17:00",
             "wed": "09:00-17:00", "thu": "09:00-17:00",
             "fri": "09:00-12:00, 13:00-17:00"}  # fmt: skip


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_ranges_are_parsed_sorted_and_checked() -> None:
    assert parse_ranges("13:00-17:00, 09:00 - 12:30") == ((540, 750), (780, 1020))
    assert parse_ranges("00:00-24:00") == ((0, 1440),)
    assert parse_ranges("") == ()
    for bad, error in [
        ("9-17", "is not a range"),
        ("09:00-25:00", "is not a range"),
        ("22:00-06:00", "split a night shift at midnight"),
        ("09:00-09:00", "ends before it starts"),
        ("09:00-13:00,12:00-17:00", "ranges overlap"),
        ("09:00-17:00" + ",x" * 5, "is not a range"),
    ]:
        with pytest.raises(ValueError, match=error):
            parse_ranges(bad)


def test_open_and_next_opening_in_the_office_zone() -> None:
    hours = OfficeHours(**AMSTERDAM, closed_dates=["2026-11-30"])  # type: ignore[arg-type]
    lunch = _utc(2026, 11, 27, 11, 30)  # Friday 12:30 in Amsterdam (UTC+1)
    assert not hours.is_open(lunch)
    assert hours.next_opening(lunch) == datetime(2026, 11, 27, 13, 0, tzinfo=hours.zone)
    assert hours.is_open(_utc(2026, 11, 27, 12, 0))  # 13:00: the afternoon began
    assert not hours.is_open(_utc(2026, 11, 27, 16, 0))  # 17:00: closed (end excluded)
    # Friday evening: Monday the 30th is a day off, so Tuesday.
    evening = _utc(2026, 11, 27, 19, 0)
    assert hours.next_opening(evening) == datetime(2026, 12, 1, 9, 0, tzinfo=hours.zone)
    assert not hours.is_open(_utc(2026, 11, 30, 10, 0))


def test_wall_clock_hours_follow_daylight_saving_time() -> None:
    hours = OfficeHours(**AMSTERDAM)  # type: ignore[arg-type]
    # 09:00 in Amsterdam is 07:00 UTC in summer and 08:00 UTC in winter.
    assert hours.is_open(_utc(2026, 7, 1, 7, 0)) and not hours.is_open(_utc(2026, 7, 1, 6, 59))
    assert hours.is_open(_utc(2026, 1, 7, 8, 0)) and not hours.is_open(_utc(2026, 1, 7, 7, 59))
    # Friday 27 March 2026 after closing -> Monday 30 March, the first summer-time Monday.
    opening = hours.next_opening(_utc(2026, 3, 27, 18, 0))
    assert opening is not None and opening.astimezone(UTC) == _utc(2026, 3, 30, 7, 0)


def test_a_year_of_days_off_has_no_next_opening() -> None:
    first_monday = date(2026, 12, 28)
    every_monday = [first_monday + timedelta(weeks=n) for n in range(60)]  # > 400 days
    closed = OfficeHours(timezone="UTC", mon="09:00-10:00", closed_dates=every_monday)
    assert closed.next_opening(_utc(2026, 12, 28)) is None
    open_later = OfficeHours(timezone="UTC", mon="09:00-10:00", closed_dates=every_monday[:10])
    expected = datetime(2027, 3, 8, 9, 0, tzinfo=open_later.zone)  # the 11th Monday
    assert open_later.next_opening(_utc(2026, 12, 28)) == expected


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"timezone": "Mars/Olympus"}, "not a known time zone"),
        ({"timezone": "../../etc/passwd"}, "not a known time zone"),
        ({"timezone": "UTC"}, "no day has hours"),
        ({"timezone": "UTC", "mon": "9 to 5"}, "is not a range"),
        ({"timezone": "UTC", "mon": "09:00-17:00", "closed_dates": ["2026-02-30"]}, "date"),
        ({"timezone": "UTC", "mon": "09:00-17:00", "outside": "ignore"}, "handoff"),
        ({"timezone": "UTC", "mon": "09:00-17:00", "monday": "x"}, "Extra inputs"),
    ],
)
def test_bad_hours_are_refused(config: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        OfficeHours(**config)


HoursBot = Callable[..., Any]


@pytest.fixture
def hours_bot(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> HoursBot:
    """``async with hours_bot(now, **handoff_config) as bot``: the clock stands at ``now``."""

    @asynccontextmanager
    async def started(now: datetime, **config: Any) -> AsyncIterator[Bot]:
        monkeypatch.setattr(HandoffDesk, "clock", staticmethod(lambda: now))
        async with Bot(make_settings(plugins={"handoff": config})) as bot:
            bot.attach_connector(RecordingConnector(bot))
            yield bot

    return started


async def _say(bot: Bot, text: str, key: str) -> str:
    await bot.submit(message(text, key))
    assert await bot.drain(30)
    return recorder(bot).replies[-1].text


async def _say_in(bot: Bot, text: str, key: str, language: str, *, conversation: str) -> str:
    """``text`` from a customer whose channel says they speak ``language``."""
    await bot.submit(message(text, key, conversation=conversation, user=conversation,
                             language_hint=language))  # fmt: skip
    assert await bot.drain(30)
    return recorder(bot).replies[-1].text


async def _status(bot: Bot) -> str:
    conversation = await bot.store.get_conversation("test", "c1")
    assert conversation is not None
    return conversation.status


async def test_inside_the_hours_nothing_changes(hours_bot: HoursBot) -> None:
    async with hours_bot(_utc(2026, 11, 27, 9, 0), hours=AMSTERDAM) as bot:
        assert await _say(bot, "/human", "k1") == (
            f"{texts.HANDOFF_REPLIES['en']} {texts.RETURN_HINTS['en'].format(command='/bot')}"
        )
        assert await _status(bot) == ConversationStatus.WAITING_HUMAN


async def test_outside_the_hours_the_customer_is_told_when(hours_bot: HoursBot) -> None:
    async with hours_bot(_utc(2026, 11, 27, 19, 0), hours=AMSTERDAM) as bot:
        reply = await _say(bot, "/human", "k1")
        assert reply.startswith("Thanks! Our team is away right now. A colleague will reply "
                                "here from Monday 09:00 (Europe/Amsterdam).")  # fmt: skip
        assert reply.endswith("Send /bot to talk to the bot again.")
        assert await _status(bot) == ConversationStatus.WAITING_HUMAN


async def test_outside_the_hours_in_the_customers_language(hours_bot: HoursBot) -> None:
    holiday = {**AMSTERDAM, "closed_dates": [f"2026-12-0{d}" for d in range(1, 5)] + ["2026-11-30"]}
    async with hours_bot(_utc(2026, 11, 27, 19, 0), hours=holiday) as bot:
        await _say(bot, "Hola, necesito ayuda con mi pedido, por favor. ¿Dónde está?", "k1")
        reply = await _say(bot, "/human", "k2")
    # Over six days away: the date too, so "lunes" cannot mean the wrong Monday.
    assert "a partir del lunes 2026-12-07 09:00 (Europe/Amsterdam)." in reply


async def test_outside_bot_keeps_the_conversation(hours_bot: HoursBot) -> None:
    config = {"hours": {**AMSTERDAM, "outside": "bot"},
              "offline_replies": {"en": "Back {opens}. Ask me meanwhile!"}}  # fmt: skip
    async with hours_bot(_utc(2026, 11, 28, 10, 0), **config) as bot:  # a Saturday
        assert (
            await _say(bot, "/human", "k1")
            == "Back Monday 09:00 (Europe/Amsterdam). Ask me meanwhile!"
        )
        assert await _status(bot) == ConversationStatus.BOT
        assert await _say(bot, "where is my parcel?", "k2") == "echo: where is my parcel?"


def test_offline_replies_may_only_use_opens(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.handoff\.offline_replies"):
        make_settings(plugins={"handoff": {"offline_replies": {"en": "Back {when}"}}})
    with pytest.raises(ConfigError, match=r"plugins\.handoff\.hours\.timezone"):
        make_settings(
            plugins={"handoff": {"hours": {"timezone": "Nowhere/City", "mon": "09:00-10:00"}}}
        )


def test_an_opening_in_a_daylight_saving_gap_is_when_the_gap_ends() -> None:
    # 29 March 2026 in Amsterdam jumps from 02:00 to 03:00: "02:30" never happens.
    hours = OfficeHours(timezone="Europe/Amsterdam", sun="02:30-05:00")
    opening = hours.next_opening(_utc(2026, 3, 28, 12, 0))
    assert opening is not None and opening.astimezone(UTC) == _utc(2026, 3, 29, 1, 0)
    assert f"{opening:%H:%M}" == "03:00"


async def test_own_languages_get_their_day_names_or_the_date(hours_bot: HoursBot) -> None:
    hours = {**AMSTERDAM, "weekdays": {"nl": ["maandag", "dinsdag", "woensdag", "donderdag",
                                              "vrijdag", "zaterdag", "zondag"]}}  # fmt: skip
    replies = {"nl": "Bedankt! Een collega antwoordt hier vanaf {opens}.",
               "sv": "Tack! En kollega svarar här från {opens}."}  # fmt: skip
    async with hours_bot(_utc(2026, 11, 27, 19, 0), hours=hours, offline_replies=replies) as bot:
        dutch = await _say_in(bot, "/human", "k1", "nl", conversation="nl")
        swedish = await _say_in(bot, "/human", "k2", "sv", conversation="sv")
    assert "vanaf maandag 09:00 (Europe/Amsterdam)." in dutch
    assert "från 2026-11-30 09:00 (Europe/Amsterdam)." in swedish  # no day names: the date


def test_offline_texts_may_use_opens_only_as_it_is(
    make_settings: Callable[..., Settings],
) -> None:
    for text in ("Back {opens.date}", "Back {opens!r}", "Back {opens:>20}", "Back {", "{0}"):
        with pytest.raises(ConfigError, match=r"plugins\.handoff\.offline_replies"):
            make_settings(plugins={"handoff": {"offline_replies": {"en": text}}})
    make_settings(plugins={"handoff": {"offline_replies": {"en": "Back {opens} {{ok}}"}}})


async def test_own_languages_can_have_their_return_hint(hours_bot: HoursBot) -> None:
    config = {
        "replies": {"nl": "Bedankt! Een collega neemt het over."},
        "return_hints": {"nl": "Stuur {command} om weer met de bot te praten."},
    }
    async with hours_bot(_utc(2026, 11, 27, 9, 0), **config) as bot:
        dutch = await _say_in(bot, "/human", "k1", "nl", conversation="nl")
    assert dutch == "Bedankt! Een collega neemt het over. Stuur /bot om weer met de bot te praten."


def test_return_hints_need_the_command(make_settings: Callable[..., Settings]) -> None:
    for text in ("Send it to return.", "Send {cmd}", "Send {command!r}"):
        with pytest.raises(ConfigError, match=r"plugins\.handoff\.return_hints"):
            make_settings(plugins={"handoff": {"return_hints": {"nl": text}}})
