"""The send queue: per-chat and per-group pacing, RetryAfter, retries, failures."""

from __future__ import annotations

import pytest
from tg_helpers import MakeTg, gaps

from botkit.events import Direction

BOT = "@botkit_test_bot"


async def test_per_chat_interval_is_kept_and_chats_do_not_wait_for_each_other(
    make_tg: MakeTg,
) -> None:
    tg = await make_tg({"flood": {"per_chat_interval_s": 0.25}})
    fake = tg.fake
    fake.push(*(fake.updates.message(301, f"q{i}") for i in range(4)))
    fake.push(fake.updates.message(302, "other chat"))
    await tg.wait_answers(5)
    times = [c.at for c in fake.calls_to("sendMessage", 301)]
    assert len(times) == 4
    assert min(gaps(times)) >= 0.24
    other = fake.calls_to("sendMessage", 302)[0].at
    assert other < times[-1]  # not queued behind chat 301
    assert tg.answers(301) == [f"echo: q{i}" for i in range(4)]  # in order


async def test_group_window_limit_is_kept(make_tg: MakeTg) -> None:
    tg = await make_tg({"flood": {"group_max_messages": 2, "group_window_s": 0.6}})
    fake = tg.fake
    fake.push(*(fake.updates.message(-401, f"{BOT} g{i}") for i in range(5)))
    await tg.wait_answers(5, within=30)
    times = [c.at for c in fake.calls_to("sendMessage", -401)]
    # At most 2 messages in any 0.6 s window: the third after the first is >= 0.6 s later.
    assert min(b - a for a, b in zip(times, times[2:], strict=False)) >= 0.59
    assert len(tg.answers(-401)) == 5


# PTB itself reads its deprecated int ``retry_after`` when building the exception.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_is_waited_out_and_the_reply_sent_once(make_tg: MakeTg) -> None:
    tg = await make_tg()
    fake = tg.fake
    fake.fail("sendMessage", retry_after=1)
    fake.push(fake.updates.message(303, "flooded"))
    await tg.wait_answers(1, within=30)
    refused = fake.calls_to("sendMessage", ok=False)
    assert [c.status for c in refused] == [429, 200]
    assert refused[1].at - refused[0].at >= 0.99
    assert tg.answers(303) == ["echo: flooded"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_retry_after_too_long_to_wait_still_pauses_every_send(make_tg: MakeTg) -> None:
    tg = await make_tg({"flood": {"max_retry_after_s": 0.5}})
    fake = tg.fake
    fake.fail("sendMessage", retry_after=1)  # longer than a reply may wait: given up
    fake.push(fake.updates.message(306, "first"))
    await fake.wait_until(lambda: bool(fake.calls_to("sendMessage", ok=False)), 30)
    refused_at = fake.calls_to("sendMessage", ok=False)[0].at
    fake.push(fake.updates.message(307, "second chat"))
    await tg.wait_answers(1, chat_id=307)
    await tg.settle()
    # Nothing reaches Telegram during the wait it asked for, not even a chat action.
    sends = ("sendMessage", "editMessageText", "sendChatAction")
    early = [c for c in fake.calls if c.method in sends and refused_at < c.at < refused_at + 0.99]
    assert early == []
    assert tg.answers(307) == ["echo: second chat"]
    items = await tg.history(306)  # the reply that met the long wait was given up
    assert items[1].status == "failed" and not tg.answers(306)
    assert len(fake.calls_to("sendMessage", 306, ok=False)) == 1


async def test_transient_errors_are_retried_with_growing_backoff(make_tg: MakeTg) -> None:
    tg = await make_tg({"retry": {"attempts": 4, "initial_backoff_s": 0.1, "max_backoff_s": 1}})
    fake = tg.fake
    fake.fail("sendMessage", status=502, times=2)
    fake.push(fake.updates.message(304, "shaky network"))
    await tg.wait_answers(1)
    calls = fake.calls_to("sendMessage", ok=False)
    assert [c.status for c in calls] == [502, 502, 200]
    first, second = gaps([c.at for c in calls])
    assert first >= 0.05 and second >= 0.1  # 0.1 then 0.2, each with up to 50 % jitter off
    assert tg.answers(304) == ["echo: shaky network"]


@pytest.mark.parametrize(
    ("status", "times", "description"),
    [
        (403, 1, "Forbidden: bot was blocked by the user"),
        (400, 1, "Bad Request: chat not found"),
        (502, 10, "Bad Gateway"),
    ],
)
async def test_undeliverable_replies_are_recorded_as_failed(
    make_tg: MakeTg, status: int, times: int, description: str
) -> None:
    tg = await make_tg()
    fake = tg.fake
    fake.fail("sendMessage", status=status, times=times, description=description)
    fake.push(fake.updates.message(305, "anyone there?"))
    await fake.wait_until(lambda: len(fake.calls_to("sendMessage", ok=False)) >= min(times, 3))
    await tg.settle()
    items = await tg.history(305)
    assert [i.direction for i in items] == [Direction.INBOUND, Direction.OUTBOUND]
    assert items[1].status == "failed"
    assert not tg.answers(305)
    if status == 502:
        assert len(fake.calls_to("sendMessage", ok=False)) == 3  # retry.attempts
    else:
        assert len(fake.calls_to("sendMessage", ok=False)) == 1  # permanent: no retry


async def test_overall_rate_is_kept_across_chats(make_tg: MakeTg) -> None:
    tg = await make_tg({"flood": {"global_per_second": 2}})
    fake, flood = tg.fake, tg.connector.flood
    # The overall limit counts from the start of each call, so the arrival times jitter
    # by each call's network delay, which a loaded machine makes as long as it likes:
    # the starts are what is checked (without the limit they would be ~1 ms apart).
    starts: list[float] = []
    wait_global = flood.wait_global

    async def recorded() -> None:
        await wait_global()
        starts.append(flood.now())

    flood.wait_global = recorded  # type: ignore[method-assign]
    fake.push(*(fake.updates.message(310 + i, f"c{i}") for i in range(4)))
    await tg.wait_answers(4, within=30)
    assert len(starts) >= 4  # every message took a slot
    assert min(b - a for a, b in zip(starts, starts[2:], strict=False)) >= 0.999
