"""``FakeSlack`` with Slack's native streaming methods, checking their arguments as Slack
does: ``chat.startStream`` needs a thread and, outside DMs, the recipient's user and team;
``chat.appendStream`` / ``chat.stopStream`` need a message that is still streaming;
``markdown_text`` takes 12,000 characters a call, and one message about as much in all.
The recipient's team must be the user's own (``user_teams``, else the workspace's): a
Slack Connect or Grid user's team is not the workspace the event came through."""

from __future__ import annotations

import re
from typing import Any

from botkit.testing.fake_slack import FakeMessage, FakeSlack

MARKDOWN_LIMIT = 12_000
_TS = re.compile(r"^\d{1,12}\.\d{1,8}$")
WORD_JOINER = "\u2060"


class StreamingSlack(FakeSlack):
    """``streaming_supported = False`` answers the three methods ``unknown_method``, as a
    Slack without native streaming does; ``refuse_start`` gives ``chat.startStream`` an
    answer of the test's in one channel. ``streaming`` holds the ts of open streams;
    ``stopped`` those stopped. A streamed message's ``text`` is its Markdown so far."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.streaming_supported = True
        self.refuse_start: dict[str, dict[str, Any]] = {}  # channel -> the answer instead
        self.streaming: set[str] = set()
        self.stopped: set[str] = set()
        # user id -> their team, for users from another team (Slack Connect, Grid).
        self.user_teams: dict[str, str] = {}

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handlers = {
            "chat.startStream": self._start,
            "chat.appendStream": self._append,
            "chat.stopStream": self._stop,
        }
        if method not in handlers:
            return super()._answer(method, args)
        if not self.streaming_supported:
            return {"ok": False, "error": "unknown_method"}
        if method == "chat.startStream" and args.get("channel") in self.refuse_start:
            return self.refuse_start[args["channel"]]
        return handlers[method](args)

    def _markdown(self, args: dict[str, Any], *, required: bool) -> str | dict[str, Any]:
        text = args.get("markdown_text")
        if text is None and not required:
            return ""
        if not isinstance(text, str) or (required and not text):
            return {"ok": False, "error": "invalid_arguments"}
        if len(text) > MARKDOWN_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        return text

    def _start(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, thread = args.get("channel"), args.get("thread_ts")
        if not isinstance(channel, str) or not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not isinstance(thread, str) or not _TS.match(thread):
            return {"ok": False, "error": "invalid_thread_ts"}
        if not channel.startswith("D"):
            if not args.get("recipient_user_id"):
                return {"ok": False, "error": "missing_recipient_user_id"}
            if not args.get("recipient_team_id"):
                return {"ok": False, "error": "missing_recipient_team_id"}
        user, team = args.get("recipient_user_id"), args.get("recipient_team_id")
        if user and team and team != self.user_teams.get(str(user), self.team_id):
            # The fake's own code: what Slack answers for a wrong team is not documented.
            return {"ok": False, "error": "invalid_recipient_team_id"}
        text = self._markdown(args, required=False)
        if isinstance(text, dict):
            return text
        answer = self._post({"channel": channel, "text": text or " ", "thread_ts": thread})
        msg = self.messages[-1]
        msg.text, msg.versions[-1] = text, text
        self.streaming.add(msg.ts)
        return {"ok": True, "channel": channel, "ts": answer["ts"]}

    def _streamed(self, args: dict[str, Any]) -> FakeMessage | dict[str, Any]:
        ts = args.get("ts")
        msg = next(
            (m for m in self.messages if m.channel == args.get("channel") and m.ts == ts), None
        )
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if msg.ts not in self.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        return msg

    def _grow(self, msg: FakeMessage, text: str) -> dict[str, Any] | None:
        if len(msg.text) + len(text) > MARKDOWN_LIMIT:  # one message holds about as much
            return {"ok": False, "error": "msg_too_long"}
        msg.text += text
        msg.versions.append(msg.text)
        return None

    def _append(self, args: dict[str, Any]) -> dict[str, Any]:
        msg, text = self._streamed(args), self._markdown(args, required=True)
        for answer in (msg, text):
            if isinstance(answer, dict):
                return answer
        assert isinstance(msg, FakeMessage) and isinstance(text, str)
        refused = self._grow(msg, text)
        return refused or {"ok": True, "channel": msg.channel, "ts": msg.ts}

    def _stop(self, args: dict[str, Any]) -> dict[str, Any]:
        msg, text = self._streamed(args), self._markdown(args, required=False)
        for answer in (msg, text):
            if isinstance(answer, dict):
                return answer
        assert isinstance(msg, FakeMessage) and isinstance(text, str)
        blocks = args.get("blocks")
        if blocks is not None and (not isinstance(blocks, list) or len(blocks) > 50):
            return {"ok": False, "error": "invalid_blocks"}
        refused = self._grow(msg, text) if text else None
        if refused:
            return refused
        msg.blocks = blocks
        self.streaming.discard(msg.ts)
        self.stopped.add(msg.ts)
        return {"ok": True, "channel": msg.channel, "ts": msg.ts}


def shown(msg: FakeMessage) -> str:
    """What a reader sees of a message (the invisible word joiners left out)."""
    return msg.text.replace(WORD_JOINER, "")
