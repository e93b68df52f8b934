"""Incremental detokenization with stop strings.

Byte-level BPE (and SentencePiece byte fallback) can split one character across tokens;
decoding a partial character yields U+FFFD. We decode a short window of tokens and only
emit text once the window no longer ends in a replacement character, so a delta never
contains half a character. A sequence that ends mid-character (cut at ``max_new_tokens``)
drops the incomplete bytes: the rest of the character can never arrive, and a U+FFFD
helps no reader. A few prompt tokens seed the window so that tokenizers which
drop a leading space at the start of a decode (SentencePiece) render the first generated
word correctly.

Stop strings may arrive split across deltas: text that could be the start of a stop
string is held back until it either completes the stop (generation ends and the stop
string is never emitted) or diverges (the held text is released).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["IncrementalDetokenizer"]

# Prompt tokens used as left context for the first decode (vLLM uses the same number).
_PROMPT_CONTEXT_TOKENS = 5
_REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    """Turns a growing list of generated token ids into safe text deltas.

    Args:
        tokenizer: a transformers tokenizer (anything with ``decode(ids, ...)``).
        prompt_token_ids: the prompt; its last tokens give the decode left context.
        stop: stop strings; generation ends at the first occurrence, which is cut.
        skip_special_tokens: passed to ``decode``.
    """

    def __init__(self, tokenizer: Any, prompt_token_ids: Sequence[int],
                 stop: Sequence[str] = (), *, skip_special_tokens: bool = True) -> None:
        self._tok = tokenizer
        self._skip = skip_special_tokens
        ctx = list(prompt_token_ids[-_PROMPT_CONTEXT_TOKENS:])
        self._ids: list[int] = ctx
        self._prefix_offset = 0
        self._read_offset = len(ctx)
        self._stop = tuple(stop)
        self._max_stop = max((len(s) for s in self._stop), default=0)
        self.text = ""  # all decoded output text so far (after a stop: cut at the stop)
        self._emitted = 0  # chars of ``text`` already returned
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=self._skip))

    def add_tokens(self, token_ids: Sequence[int]) -> str:
        """Append generated tokens; return the text that is now safe to show."""
        if self.stopped:
            return ""
        self._ids.extend(token_ids)
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith(_REPLACEMENT):
            new = full[len(prefix) :]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            self._append(new)
        return self._release(final=False)

    def _append(self, new: str) -> None:
        start = max(0, len(self.text) - self._max_stop + 1)
        self.text += new
        if not self._stop:
            return
        hits = [i for s in self._stop if (i := self.text.find(s, start)) >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True

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
            prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
            full = self._decode(self._ids[self._prefix_offset :])
            # Only the pending tail is trimmed: complete characters in it are kept.
            new = full[len(prefix) :].rstrip(_REPLACEMENT)
            self._prefix_offset = self._read_offset = len(self._ids)
            self._append(new)
        return self._release(final=True)
