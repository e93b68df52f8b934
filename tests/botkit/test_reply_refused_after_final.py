"""A reply the channel refuses after it was stored (``final()``, then the platform's
error) ends ``failed`` everywhere: in the database, in ``ReplyDelivery.outcome`` and in
the metrics, which count it but leave it out of the latency histograms."""

from __future__ import annotations

from collections.abc import Callable

from core_helpers import RecordingConnector, message
from prometheus_client.parser import text_string_to_metric_families

from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.errors import ConnectorError
from botkit.events import Direction
from botkit.store.records import MessageStatus


class _RefusesAfterFinal(RecordingConnector):
    """Stores each reply (``final()``), then fails like Slack answering invalid_auth."""

    async def send_stream(self, stream: ReplyStream) -> None:
        async for _ in stream:
            pass
        self.replies.append(await stream.final())
        raise ConnectorError("slack: chat.postMessage failed: invalid_auth")


def _samples(bot: Bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(bot.metrics.render().decode())
        for s in family.samples
    }


async def test_a_reply_refused_after_final_is_failed_in_the_database_and_the_metrics(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(_RefusesAfterFinal(bot))
        for i in range(3):
            await bot.submit(message(f"hello {i}", f"k{i}", conversation=f"c{i}"))
        assert await bot.drain(10)
        samples = _samples(bot)
        stored = [
            m
            for i in range(3)
            for m in await bot.store.messages_after("test", f"c{i}", 0, 10)
            if m.direction is Direction.OUTBOUND
        ]

    assert [m.status for m in stored] == [MessageStatus.FAILED] * 3
    assert all("invalid_auth" in (m.error or "") for m in stored)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    replies = "botkit_replies_total"
    assert value(replies, channel="test", outcome="failed") == 3
    assert value(replies, channel="test", outcome="sent") == 0
    # Refused replies are not answers: the latency histograms leave them out.
    assert value("botkit_reply_seconds_count", channel="test") == 0
    assert value("botkit_reply_first_text_seconds_count", channel="test") == 0
