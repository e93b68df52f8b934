"""The web channel in the bot's metrics: its open sockets, and its messages and replies
(real bot, web app and sockets; the metrics parsed with prometheus_client's parser)."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families
from web_helpers import WebHarness, reply_to

from botkit.bot import Bot


def _samples(bot: Bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(bot.metrics.render().decode())
        for s in family.samples
    }


async def test_open_sockets_and_the_channels_replies_are_in_the_metrics(web: WebHarness) -> None:
    sockets = ("botkit_channel_connections", (("channel", "web"),))
    assert _samples(web.bot).get(sockets, 0) == 0
    first, second = await web.visitor(), await web.visitor()
    await first.send("hello there", "m1")
    await first.until(reply_to(1))
    samples = _samples(web.bot)
    assert samples[sockets] == 2
    assert samples[("botkit_replies_total", (("channel", "web"), ("outcome", "sent")))] == 1
    await second.close()
    async with asyncio.timeout(30):
        while _samples(web.bot)[sockets] != 1:  # noqa: ASYNC110 - the server sees the close
            await asyncio.sleep(0.02)
