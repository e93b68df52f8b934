"""Shutdown while a reply is under way (``shutdown_grace_seconds = 0`` in these tests):
what was posted is marked as cut off within a short bound, and the next start answers
the message again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from slack_helpers import MakeSlack, SlackHarness, SlowBackend, message, new_ts

from botkit.testing.fake_slack import FakeSlack

WORDS = " ".join(f"w{i}" for i in range(150))  # about 15 s of streaming at 0.1 s a word
# Marking a reply takes at most 2 s (connectors/slack/_outbound.py); the rest is slack
# for a loaded machine, still well below the HUNG_S the hung calls below would take.
SHUTDOWN_LIMIT_S = 15.0
HUNG_S = 60.0  # a call Slack does not answer (the fake answers it at shutdown's end)


class LateSlack(FakeSlack):
    """``FakeSlack`` whose answers to the methods in ``late`` come that many seconds after
    it has done what they ask (a slow network on the way back)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.late: dict[str, float] = {}

    async def _api(self, request: web.Request) -> web.StreamResponse:
        response = await super()._api(request)
        await asyncio.sleep(self.late.get(request.match_info["method"], 0.0))
        return response


@pytest.fixture
async def fake_slack() -> AsyncIterator[LateSlack]:
    fake = LateSlack(users={"U1": {"name": "ann", "locale": "fr-FR"}})
    async with fake:
        yield fake


async def streaming(slack: SlackHarness) -> None:
    """Send a DM and wait until its reply is visibly streaming (placeholder edited)."""
    await slack.post_event(message(WORDS))
    await slack.fake.wait_until(
        lambda: any(len(m.versions) >= 3 for m in slack.fake.thread("D1", None)), 30
    )


async def timed_close(slack: SlackHarness) -> float:
    begin = time.monotonic()
    await slack.bot.close()
    return time.monotonic() - begin


async def test_reply_cut_off_is_marked_and_answered_again(
    make_slack: MakeSlack, tmp_path: Path
) -> None:
    db = tmp_path / "restart.db"
    slack = await make_slack(word_delay=0.1, db=db)
    await streaming(slack)
    assert await timed_close(slack) < SHUTDOWN_LIMIT_S
    [cut] = slack.fake.thread("D1", None)
    # The partial text, marked as cut off: it must not read as the complete answer.
    assert cut.text.endswith(" …"), cut.text
    partial = cut.text.removesuffix(" …")
    assert len(partial) > len("echo: ") and f"echo: {WORDS}".startswith(partial)

    # The next start answers the message again, below the marked one.
    again = await make_slack(db=db, connect=False)
    run = asyncio.create_task(again.bot.run())
    await again.reply_in("D1", None, f"echo: {WORDS}")
    again.bot.stop()
    await asyncio.wait_for(run, 30)
    assert [m.text for m in again.fake.thread("D1", None)] == [cut.text, f"echo: {WORDS}"]


async def test_placeholder_of_a_cut_off_reply_is_deleted(make_slack: MakeSlack) -> None:
    slack = await make_slack(backend=SlowBackend())
    await slack.post_event(message("are you there?"))
    await slack.fake.wait_until(lambda: bool(slack.fake.thread("D1", None)), 30)
    assert await timed_close(slack) < SHUTDOWN_LIMIT_S
    assert slack.fake.thread("D1", None) == []
    assert [m.versions for m in slack.fake.deleted] == [["_Thinking…_"]]


async def test_thinking_status_of_a_cut_off_reply_is_cleared(make_slack: MakeSlack) -> None:
    slack = await make_slack(backend=SlowBackend())
    slack.fake.status_supported = True
    root = new_ts()
    await slack.post_event(message("are you there?", thread_ts=root))
    await slack.fake.wait_until(
        lambda: bool(slack.fake.calls_to("assistant.threads.setStatus")), 30
    )
    assert await timed_close(slack) < SHUTDOWN_LIMIT_S
    statuses = [c.args["status"] for c in slack.fake.calls_to("assistant.threads.setStatus")]
    assert statuses == ["is thinking…", ""]
    assert slack.fake.messages == []


async def test_a_hung_edit_does_not_hold_up_shutdown(make_slack: MakeSlack) -> None:
    slack = await make_slack(word_delay=0.1)
    await streaming(slack)
    # Slack stops answering chat.update: the marking edit is given up after its bound.
    slack.fake.fail("chat.update", 100, status=500, error="internal_error", delay=HUNG_S)
    assert await timed_close(slack) < SHUTDOWN_LIMIT_S
    [cut] = slack.fake.thread("D1", None)
    assert not cut.text.endswith(" …")  # not marked, but shutdown was not held up


async def test_a_hung_placeholder_does_not_hold_up_shutdown(make_slack: MakeSlack) -> None:
    slack = await make_slack(backend=SlowBackend())
    slack.fake.fail("chat.postMessage", 1, status=500, error="internal_error", delay=HUNG_S)
    await slack.post_event(message("are you there?"))
    await slack.fake.wait_until(lambda: bool(slack.fake.calls_to("chat.postMessage")), 30)
    assert await timed_close(slack) < SHUTDOWN_LIMIT_S
    assert slack.fake.messages == []


async def test_a_placeholder_edit_cut_off_in_flight_is_marked_not_deleted(
    make_slack: MakeSlack, fake_slack: LateSlack
) -> None:
    # The first edit turned the placeholder into text on Slack's side, but its answer
    # had not come back when shutdown cut the reply: the message shows text, so it is
    # marked as cut off like any other, never deleted as if it were still the placeholder.
    fake_slack.late["chat.update"] = HUNG_S
    slack = await make_slack(word_delay=0.1)
    await slack.post_event(message(WORDS))
    await slack.fake.wait_until(
        lambda: any(len(m.versions) >= 2 for m in slack.fake.thread("D1", None)), 30
    )
    assert await timed_close(slack) < SHUTDOWN_LIMIT_S
    assert slack.fake.deleted == []
    [cut] = slack.fake.thread("D1", None)
    assert cut.text.endswith(" …") and cut.text.startswith("echo: "), cut.text
