"""``botkit feedback``: how customers rated the bot's answers, and which answers they
found unhelpful (the feedback plugin's ratings)."""

from __future__ import annotations

from datetime import timedelta

from botkit._cli_store import current_store
from botkit.events import utcnow
from botkit.store import StoreSettings

__all__ = ["report"]

_SHOWN_CHARS = 100


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_CHARS else flat[: _SHOWN_CHARS - 1] + "…"


async def report(settings: StoreSettings, days: int, latest_bad: int) -> str:
    """The ratings of the last ``days`` days per channel, then the ``latest_bad``
    newest replies rated bad."""
    async with current_store(settings) as store:
        found = await store.feedback_report(utcnow() - timedelta(days=days),
                                            latest_bad=latest_bad)  # fmt: skip
    if not found.counts:
        return f"no ratings in the last {days} days"
    lines = [f"ratings in the last {days} days:"]
    for channel, counts in sorted(found.counts.items()):
        good, bad = counts["good"], counts["bad"]
        lines.append(f"  {channel}: {good} good, {bad} bad ({good / (good + bad):.0%} good)")
    if found.latest_bad:
        lines.append("latest rated bad:")
        for rated in found.latest_bad:
            lines.append(
                f"  {rated.rated_at:%Y-%m-%d %H:%M} UTC {rated.channel} {rated.conversation_key} "
                f"seq={rated.reply_seq}: {_one_line(rated.text)}"
            )
    return "\n".join(lines)
