"""Sampling parameters of one request, validated on construction.

Values come from outside (bot config, a chat API), so every field is checked and a bad
value raises ``InvalidRequestError`` naming the field, instead of surfacing later as a NaN
or a device-side assert in the middle of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.request_errors import InvalidRequestError

__all__ = ["MAX_STOP_STRINGS", "MAX_STOP_STRING_CHARS", "SamplingParams"]

MAX_STOP_STRINGS = 16
MAX_STOP_STRING_CHARS = 256
# Temperatures above this turn the distribution into noise; more likely a unit mistake.
_MAX_TEMPERATURE = 100.0
_MAX_SEED = 2**63 - 1


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as max_new_tokens is a caller bug, not "1".
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float)) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to pick tokens for one request.

    Args:
        temperature: 0 means greedy (argmax); otherwise logits are divided by it.
        top_p: nucleus sampling mass in (0, 1]; 1 disables it.
        top_k: keep the k most likely tokens; 0 disables it.
        repetition_penalty: CTRL-style penalty (> 0) on tokens already in the prompt or
            output: positive logits are divided by it, negative ones multiplied; 1 disables.
        max_new_tokens: upper bound on generated tokens (>= 1).
        stop: strings that end generation; the matched string is not returned.
        seed: makes sampling reproducible for this request, independent of batching.
        ignore_eos: keep generating past end-of-sequence tokens (benchmarks).
        stop_token_ids: extra token ids that end generation (the model's EOS ids always do
            unless ``ignore_eos``).

    Raises:
        InvalidRequestError: a value is of the wrong type or out of range.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False
    stop_token_ids: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise InvalidRequestError("invalid sampling parameters: " + "; ".join(problems))
        # Normalise list inputs so the frozen object is hashable and immutable.
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))

    def _problems(self) -> list[str]:
        p: list[str] = []
        t = self.temperature
        if not _is_number(t) or not math.isfinite(t) or not 0.0 <= t <= _MAX_TEMPERATURE:
            p.append(f"temperature must be a number in [0, {_MAX_TEMPERATURE:g}], got {t!r}")
        tp = self.top_p
        if not _is_number(tp) or not math.isfinite(tp) or not 0.0 < tp <= 1.0:
            p.append(f"top_p must be a number in (0, 1], got {tp!r}")
        if not _is_int(self.top_k) or self.top_k < 0:
            p.append(f"top_k must be an integer >= 0 (0 disables), got {self.top_k!r}")
        rp = self.repetition_penalty
        if not _is_number(rp) or not math.isfinite(rp) or rp <= 0.0:
            p.append(f"repetition_penalty must be a finite number > 0, got {rp!r}")
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            p.append(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        p.extend(self._stop_problems())
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed <= _MAX_SEED):
            p.append(f"seed must be an integer in [0, 2**63-1] or None, got {self.seed!r}")
        if not isinstance(self.ignore_eos, bool):
            p.append(f"ignore_eos must be a bool, got {self.ignore_eos!r}")
        ids = self.stop_token_ids
        if not isinstance(ids, tuple | list) or not all(_is_int(i) and i >= 0 for i in ids):
            p.append(f"stop_token_ids must be non-negative integers, got {ids!r}")
        return p

    def _stop_problems(self) -> list[str]:
        stop = self.stop
        # A bare string is iterable too; catching it avoids stopping on every letter.
        if isinstance(stop, str) or not isinstance(stop, tuple | list):
            return [f"stop must be a sequence of strings, got {stop!r}"]
        if len(stop) > MAX_STOP_STRINGS:
            return [f"at most {MAX_STOP_STRINGS} stop strings, got {len(stop)}"]
        for s in stop:
            if not isinstance(s, str) or not s:
                return [f"stop strings must be non-empty strings, got {s!r}"]
            if len(s) > MAX_STOP_STRING_CHARS:
                return [f"stop strings must be at most {MAX_STOP_STRING_CHARS} characters"]
        return []

    @property
    def greedy(self) -> bool:
        """True when tokens are picked by argmax."""
        return self.temperature == 0.0
