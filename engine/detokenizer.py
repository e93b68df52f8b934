"""Incremental detokenization with stop strings.

Byte-level BPE (and SentencePiece byte fallback) can split one character across tokens;
decoding a partial character yields U+FFFD. We decode a short window of tokens and only
emit text once the window no longer ends in a replacement character, so a delta never
contains half a character. For a transformers fast tokenizer the `tokenizers` library's
own streaming decoder (``DecodeStream``, the same rule in Rust) does this at a sixth of
the cost of two ``decode`` calls a token, which matters with 64 chats a step; a tokenizer
without one (or whose stream fails) takes the windows in Python. A sequence that ends
mid-character (cut at ``max_new_tokens``) drops the incomplete bytes: the rest of the
character can never arrive, and a U+FFFD helps no reader. A few prompt tokens seed the
window (and the stream) so that tokenizers which drop a leading space at the start of a
decode (SentencePiece) render the first generated word correctly.

Stop strings may arrive split across deltas: text that could be the start of a stop
string is held back until it either completes the stop (generation ends and the stop
string is never emitted) or diverges (the held text is released).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

__all__ = ["IncrementalDetokenizer"]

# A sentence end: ".", "!" or "?" before white space (not in "4.90", nor the "." of
# "e.g." or "..."), a CJK full stop (U+3002, U+FF01, U+FF1F), or the last character
# before a line break. The match starts at the last character kept.
_SENTENCE_END = re.compile(r"(?<!\.\w)(?<!\.)[.!?](?=\s)|[\u3002\uff01\uff1f]|[^\s](?=\n)")
# Prompt tokens used as left context for the first decode (vLLM uses the same number).
_PROMPT_CONTEXT_TOKENS = 5
_REPLACEMENT = "\ufffd"

# One streamed token in, the text it completes out (None: nothing complete yet).
StreamStep = Callable[[int], "str | None"]


def stream_step(
    tokenizer: Any, context: Sequence[int], skip_special_tokens: bool
) -> StreamStep | None:
    """The tokenizer's streaming decoder seeded with ``context``, or None if it has none.

    A tokenizer object may provide its own as ``botkit_decode_stream(context,
    skip_special_tokens)``; a transformers fast tokenizer gets the `tokenizers` library's.
    One that cleans up spaces after decoding (``clean_up_tokenization_spaces``) does not:
    the stream never applies that clean-up.
    """
    own = getattr(tokenizer, "botkit_decode_stream", None)
    if own is not None:
        step: StreamStep = own(list(context), skip_special_tokens)
        return step
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer) or getattr(
        tokenizer, "clean_up_tokenization_spaces", False
    ):
        return None
    stream = DecodeStream(ids=list(context), skip_special_tokens=skip_special_tokens)
    return functools.partial(stream.step, backend)


class IncrementalDetokenizer:
    """Turns a growing list of generated token ids into safe text deltas.

    Args:
        tokenizer: a transformers tokenizer (anything with ``decode(ids, ...)``).
        prompt_token_ids: the prompt; its last tokens give the decode left context.
        stop: stop strings; generation ends at the first occurrence, which is cut.
        skip_special_tokens: passed to ``decode``.
    """

    def __init__(
        self,
        tokenizer: Any,
        prompt_token_ids: Sequence[int],
        stop: Sequence[str] = (),
        *,
        skip_special_tokens: bool = True,
    ) -> None:
        self._tok = tokenizer
        self._skip = skip_special_tokens
        ctx = list(prompt_token_ids[-_PROMPT_CONTEXT_TOKENS:])
        self._ids: list[int] = ctx
        self._prefix_offset = 0
        self._read_offset = len(ctx)
        # None: decode windows here (no stream, or it failed).
        self._step = stream_step(tokenizer, ctx, skip_special_tokens)
        self._stop = tuple(stop)
        self._max_stop = max((len(s) for s in self._stop), default=0)
        self.text = ""  # all decoded output text so far (after a stop: cut at the stop)
        # Where ``stop_at_sentence_end`` began looking (None: not looking).
        self._sentence_from: int | None = None
        self._emitted = 0  # chars of ``text`` already returned
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=self._skip))

    def add_tokens(self, token_ids: Sequence[int]) -> str:
        """Append generated tokens; return the text that is now safe to show."""
        if self.stopped:
            return ""
        if self._step is not None:
            return self._add_streamed(token_ids)
        self._ids.extend(token_ids)
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith(_REPLACEMENT):
            new = full[len(prefix) :]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            self._append(new)
        return self._release(final=False)

    def _add_streamed(self, token_ids: Sequence[int]) -> str:
        step, ids = self._step, self._ids
        assert step is not None
        for i, token in enumerate(token_ids):
            ids.append(token)
            try:
                new = step(token)
            except Exception:
                # The windows need no stream state: they pick up from the last text
                # the stream gave, which the offsets mark.
                self._step = None
                ids.pop()
                return self._release(final=False) + self.add_tokens(token_ids[i:])
            if new:
                # The offsets move as the windows' would, for flush() and a fallback.
                self._prefix_offset, self._read_offset = self._read_offset, len(ids)
                self._append(new)
                if self.stopped:
                    break
        return self._release(final=False)

    def stop_at_sentence_end(self) -> None:
        """From the text added next on, stop after the first sentence end (see
        ``SamplingParams.sentence_end_after``); a full stop already at the end of the
        text counts when white space follows it."""
        if self._sentence_from is None:
            self._sentence_from = max(0, len(self.text) - 1)

    def _append(self, new: str) -> None:
        start = max(0, len(self.text) - self._max_stop + 1)
        self.text += new
        if self._stop:
            hits = [i for s in self._stop if (i := self.text.find(s, start)) >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                return
        if self._sentence_from is not None:
            end = _SENTENCE_END.search(self.text, self._sentence_from)
            if end is not None:
                self.text = self.text[: end.start() + 1]
                self.stopped = True
            else:  # the last character may end a sentence once white space follows
                self._sentence_from = max(self._sentence_from, len(self.text) - 1)

    def _release(self, *, final: bool) -> str:
        end = len(self.text)
        if not final and not self.stopped and self._stop:
            end -= self._held_back()
        end = max(end, self._emitted)
        delta = self.text[self._emitted : end]
        self._emitted = end
        return delta

    def _held_back(self) -> int:
        # Longest suffix of the text that is a proper prefix of some stop string.
        text = self.text
        for n in range(min(self._max_stop - 1, len(text)), 0, -1):
            tail = text[-n:]
            if any(s.startswith(tail) for s in self._stop):
                return n
        return 0

    def flush(self) -> str:
        """At the end of generation: decode whatever is pending and return the rest.

        A trailing partial character (generation stopped mid-character, e.g. at
        ``max_new_tokens``) is dropped: the tokenizer would render its bytes as U+FFFD,
        and no more bytes will come. (A U+FFFD the model generated as a whole character
        at the very end is dropped too, as it cannot be told apart; one inside the text
        stays.)
        """
        if not self.stopped and self._read_offset < len(self._ids):
            self._append(self._pending_text())
            self._prefix_offset = self._read_offset = len(self._ids)
        return self._release(final=True)

    def _pending_text(self) -> str:
        """The complete characters among the tokens not yet shown: the longest run of
        them whose decode does not end in U+FFFD. (Decoding all at once is not enough:
        SentencePiece's byte fallback turns a whole run of byte pieces into U+FFFDs when
        its last character is cut, complete characters before it included.)"""
        start, read = self._prefix_offset, self._read_offset
        prefix = self._decode(self._ids[start:read])
        for end in range(len(self._ids), read, -1):
            text = self._decode(self._ids[start:end])
            if len(text) > len(prefix) and not text.endswith(_REPLACEMENT):
                return text[len(prefix) :]
        return ""
