"""Text between botkit and Slack: escaping, reading mrkdwn, splitting, Block Kit buttons.

Slack reads ``<...>`` in message text as mentions and links (``<!channel>`` pings a whole
channel), so model output is always escaped before it is posted, and Block Kit text is
sent ``verbatim`` (otherwise Slack parses plain ``@channel`` there too). ``verbatim`` also
stops Slack turning URLs into links, so the URLs of that text are made explicit
``<https://…>`` links (``link_urls``). Inbound text is turned back into plain text for the
model, with special mentions defused so that a model repeating them cannot ping anyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from botkit.events import Button
from botkit.textsplit import CODE_POINTS, Break, Rules
from botkit.textsplit import split_text as _split

__all__ = [
    "BUTTON_ACTION_PREFIX",
    "SECTION_LIMIT",
    "SPLIT_RULES",
    "button_blocks",
    "escape",
    "from_slack",
    "link_urls",
    "markdown_text",
    "split_text",
]

# Block Kit limits: section text 3,000 chars, button label 75, value 2,000, 25 elements.
SECTION_LIMIT = 3000
_LABEL_LIMIT = 75
_VALUE_LIMIT = 2000
_MAX_BUTTONS = 25
BUTTON_ACTION_PREFIX = "botkit_button_"

_ANGLE = re.compile(r"<([^<>\n]{1,1000})>")
# ASCII punctuation ends a sentence only before whitespace ("3.5", "e.g."); the full-width
# stop, exclamation and question marks (U+3002, U+FF01, U+FF1F) of Chinese and Japanese
# are followed by no space, so they end one by themselves (with the closing brackets or
# quotes that belong to the sentence).
_SENTENCE_END = re.compile(
    "[.!?;:](?=\\s)|[\u3002\uff01\uff1f][\u300d\u300f\uff09\u3011\u201d\u2019]*"
)
# Where ``split_text`` cuts, best first: paragraph and line breaks and sentence ends in
# the second half of the piece, whitespace (cut before it) in all but its first quarter.
SPLIT_RULES = Rules(
    measure=CODE_POINTS,
    breaks=(
        Break(re.compile("\n\n")),
        Break(re.compile("\n")),
        Break(_SENTENCE_END),
        Break(re.compile(r"\s"), floor=4, before=True),
    ),
    entities=True,
    code_blocks=True,
)
# Slack's special mentions. U+2060 WORD JOINER after the "@" keeps them readable for the
# model while a repeated "@channel" in a reply is no longer the word Slack would parse.
_SPECIAL_MENTIONS = frozenset({"channel", "here", "everyone"})
_WORD_JOINER = "\u2060"
# A URL in *escaped* text, with the stop characters of the core's URL rule
# (botkit/language/protect.py: whitespace, quotes, angle brackets, CJK and Arabic
# punctuation), plus what would break a Slack link: "|" (it starts the link's label) and
# the entities &lt; / &gt; (a "<" or ">" in the reply). Only http(s): Slack links need a
# scheme, and adding one would make a link out of text that was not a URL. Not right
# after a Latin letter, a digit or "/" ("xhttps://" is not a URL of the reply), but after
# CJK text, which has no space before a URL.
_URL = re.compile(
    r"(?<![A-Za-z0-9_/])https?://"
    r"(?:(?!&lt;|&gt;)[^\s<>|\"'`\u3000-\u303f\uff00-\uffef\u060c\u061b\u061f\u06d4])+"
)
_URL_TRAILING = ".,;:!?'\"*_"  # as in botkit/language/protect.py
_CLOSING = {")": "(", "]": "[", "}": "{"}


# "@channel" / "@here" / "@everyone" as plain words, whatever follows them ("@here你好"
# has no word boundary after "here", and Slack's parsing need not look for one), but not
# inside an e-mail address ("help@herehq.example" stays one, and Slack links it; the
# local part of an address never ends with ".", so "end.@here" is defused). Only a
# letter, digit or "_" before the "@" marks an address: "-@here", "+@here" and "%@here"
# are defused (an address whose local part ends so, rare, loses its link instead).
_MENTION_AT = r"(?<![A-Za-z0-9_])@(?=(?:channel|here|everyone))"
_PLAIN_MENTION = re.compile(_MENTION_AT, re.IGNORECASE)


def escape(text: str) -> str:
    """Escape the three characters Slack gives meaning to (``&``, ``<``, ``>``), and
    defuse plain ``@channel`` / ``@here`` / ``@everyone`` with U+2060 after the ``@``
    as on the native-stream path (the messages are also sent ``parse: "none"``, but
    ``chat.update`` defaults to ``client`` parsing, which may read the plain words)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _PLAIN_MENTION.sub("@" + _WORD_JOINER, text)


# Native streaming takes standard Markdown (``markdown_text``), which is what the model
# writes, so its formatting is kept. Five things are defused by putting U+2060 WORD
# JOINER (invisible) in them, the same trick as for inbound special mentions:
# * "<", so that no Slack token (``<!channel>``, ``<@U1>``, ``<https://evil|bank.com>``)
#   can form;
# * "](" (inline links and images) and "]:" (the definition of a reference-style link,
#   ``[label][1]`` or ``[label]`` with ``[1]: url`` on a line of its own), so that a
#   Markdown link cannot show a label instead of where it leads: the inline URL stays
#   visible (Slack links it), and without its definition a reference is plain text;
# * "&" before an entity name or number ("&lt;", "&#60;", "&#x3c;"), which CommonMark
#   would show as the character: a "<" must not come back that way, and the text reads as
#   on the edit path, where "&" is escaped;
# * "@channel" / "@here" / "@everyone", whatever follows them ("@here你好", "@here_x"),
#   outside e-mail addresses (``_MENTION_AT``).
# Each rule looks at a few ASCII characters only, so the result for a text cut after
# whitespace or after a non-ASCII character is a prefix of the result for the longer text:
# appends never need to take back what was sent (see ``_stream.py``).
_MARKDOWN_DEFUSE = re.compile(rf"<|\](?=[(:])|&(?=#?[A-Za-z0-9]+;)|{_MENTION_AT}", re.IGNORECASE)


def markdown_text(text: str) -> str:
    """Model output (Markdown) for ``markdown_text`` of the streaming methods: kept as
    Markdown, with Slack tokens, hidden-target links and special mentions defused."""
    return _MARKDOWN_DEFUSE.sub(lambda m: m.group() + _WORD_JOINER, text)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@") or target.startswith("#"):
        return f"{target[0]}{label}" if label else target
    if target.startswith("!"):
        return _special(target[1:], label)
    return f"{label} ({target})" if label and label != target else target


def _special(command: str, label: str) -> str:
    """``<!...>`` tokens: special mentions, user groups and dates."""
    name = command.split("^")[0]
    if name in _SPECIAL_MENTIONS:
        return f"@{_WORD_JOINER}{name}"
    if name == "date":
        return label  # <!date^1392734382^{date_short}|Feb 18, 2014>: the fallback text
    if name == "subteam":
        return "@" + (label.lstrip("@") or "group")  # <!subteam^S1|@ops>, <!subteam^S1>
    return "@" + (label or name).lstrip("@")


def from_slack(text: str, *, bot_user_id: str | None = None) -> str:
    """Plain text of an inbound Slack message for the model.

    Removes mentions of the bot itself, renders ``<@U1|ann>`` as ``@ann``, ``<#C1|x>`` as
    ``#x``, ``<https://a|b>`` as ``b (https://a)``, ``<!date^...|Feb 18>`` as its fallback
    text, ``<!subteam^S1>`` as ``@group``, and ``<!channel>`` / ``<!here>`` /
    ``<!everyone>`` as ``@channel`` with U+2060 WORD JOINER after the ``@`` (so the
    words cannot ping when repeated in a reply), then unescapes ``&amp; &lt; &gt;``.
    """
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    return _unescape(_ANGLE.sub(_plain, text)).strip()


def _trim_url(url: str) -> str:
    """Drop what ends the sentence rather than the URL (the core's rule, on escaped text)."""
    while url:
        if url.endswith("&amp;"):
            url = url[: -len("&amp;")]  # "a raw &" at the end: punctuation, too
        elif url[-1] in _URL_TRAILING:
            url = url[:-1]
        elif url[-1] in _CLOSING and url.count(url[-1]) > url.count(_CLOSING[url[-1]]):
            url = url[:-1]  # "(see https://x.example/a)": the ")" is the sentence's
        else:
            break
    return url


def link_urls(text: str, limit: int | None = None) -> str:
    """Make each http(s) URL of escaped ``text`` an explicit Slack link: ``<https://…>``.

    For Block Kit text sent ``verbatim``, where Slack does not link URLs by itself. The
    URL keeps its escaping (``&amp;``), as Slack expects inside ``<…>``. Only URLs are
    touched: nothing else becomes a link, and the shown text does not change.

    Args:
        text: text already passed through ``escape``.
        limit: the longest result allowed; URLs that would take it past this (two
            characters each) are left as they are, later ones first.
    """
    out: list[str] = []
    at = 0
    room = 2 * len(text) if limit is None else limit - len(text)  # None: room for all
    for m in _URL.finditer(text):
        url = _trim_url(m.group())
        if not url.partition("://")[2] or room < 2:
            continue
        out.append(text[at : m.start()])
        out.append(f"<{url}>")
        at = m.start() + len(url)
        room -= 2
    out.append(text[at:])
    return "".join(out)


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters.

    Prefers paragraph breaks, then line breaks, then sentence ends, then spaces; a run
    without any is cut hard, between two characters as shown (never between a letter
    and its marks, inside a joined emoji or a flag, nor inside an entity such as
    ``&amp;``). A cut inside a code block moves to the line its fence opens on, when
    that leaves the piece at least a quarter full. Whitespace at the cut is dropped.
    Always returns at least one piece (possibly empty when ``text`` is blank).

    A cut looks only at ``text[: limit + 1]``, so the pieces of a growing text never
    change once the text has grown past them (streamed messages stay put).
    """
    return _split(text, limit, SPLIT_RULES)


def button_blocks(text: str, buttons: Sequence[Button]) -> list[dict[str, Any]]:
    """Block Kit for escaped ``text`` (at most ``SECTION_LIMIT`` chars with its URLs
    linked, see ``link_urls``) with buttons."""
    elements = [
        {
            "type": "button",
            "action_id": f"{BUTTON_ACTION_PREFIX}{i}",
            "text": {"type": "plain_text", "text": b.label[:_LABEL_LIMIT] or "…", "emoji": True},
            "value": b.value[:_VALUE_LIMIT],
        }
        for i, b in enumerate(buttons[:_MAX_BUTTONS])
    ]
    return [
        # verbatim: without it Slack parses Block Kit mrkdwn for plain "@channel" / "@here"
        # and conversation names, which escaping "& < >" does not prevent. It also stops
        # Slack linking URLs, so they are linked here.
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _section_text(text), "verbatim": True},
        },
        {"type": "actions", "block_id": "botkit_buttons", "elements": elements},
    ]


def _section_text(text: str) -> str:
    if len(text) > SECTION_LIMIT:
        # Only a safety net (the writer splits first): a cut could shorten a URL, and a
        # link to the shortened one would lead somewhere else, so nothing is linked.
        return text[:SECTION_LIMIT]
    return link_urls(text, SECTION_LIMIT)
