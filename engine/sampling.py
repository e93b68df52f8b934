"""Sampling parameters of one request, validated on construction.

Values come from outside (bot config, a chat API), so every field is checked and a bad
value raises ``InvalidRequestError`` naming the field, instead of surfacing later as a NaN
or a device-side assert in the middle of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.request_errors import InvalidRequestError

__all__ = [
    "MAX_REPETITION_PENALTY",
    "MAX_STOP_STRINGS",
    "MAX_STOP_STRING_CHARS",
    "MAX_TEMPERATURE",
    "MIN_REPETITION_PENALTY",
    "MIN_TEMPERATURE",
    "SamplingParams",
]

MAX_STOP_STRINGS = 16
MAX_STOP_STRING_CHARS = 256
# Temperature is 0 (greedy) or in [MIN_TEMPERATURE, MAX_TEMPERATURE]. The sampler divides
# float32 logits by it: a positive temperature near 1e-38 turns them into inf and the
# softmax into NaN, and below 0.01 the result is already argmax for any logit gap that
# matters (a gap of 1 becomes e^100), so tiny values buy nothing but that risk. vLLM
# draws the line at 0.01 too, but raises smaller values to it with a warning; a request
# here gets a clear error instead of a silently different temperature. Above 100 the
# distribution is noise: more likely a unit mistake. botkit's EngineSettings repeats
# these bounds (a test checks they match).
MIN_TEMPERATURE = 0.01
MAX_TEMPERATURE = 100.0
# Seen logits are divided or multiplied by the penalty in float32: 1e-50 is 0 there (a
# division by zero) and 1e39 is inf (0 * inf = NaN). Real use sits near 1.0-1.5; 100x
# either way cannot overflow float32 for any logit a model produces.
MIN_REPETITION_PENALTY = 0.01
MAX_REPETITION_PENALTY = 100.0
_MAX_SEED = 2**63 - 1


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as max_new_tokens is a caller bug, not "1".
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float)) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None (wrong type, nan, inf, or an int too large
    for a float: ``math.isfinite(10**400)`` raises OverflowError)."""
    if not _is_number(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # _is_number checked int | float
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _short(value: object) -> str:
    """repr for error messages, cut short (a 10**400 int has 401 digits)."""
    try:
        text = repr(value)
    except ValueError:  # ints past sys.get_int_max_str_digits() cannot be printed
        return f"a {type(value).__name__} too large to print"
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to pick tokens for one request.

    Args:
        temperature: 0 means greedy (argmax); otherwise logits are divided by it, and it
            must lie in [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``] (0.01-100).
        top_p: nucleus sampling mass in (0, 1]; 1 disables it.
        top_k: keep the k most likely tokens; 0 (or any k >= the vocabulary) disables it.
        repetition_penalty: CTRL-style penalty on tokens already in the prompt or output:
            positive logits are divided by it, negative ones multiplied; 1 disables. In
            [``MIN_REPETITION_PENALTY``, ``MAX_REPETITION_PENALTY``] (0.01-100).
        max_new_tokens: upper bound on generated tokens (>= 1).
        stop: strings that end generation; the matched string is not returned.
        seed: makes sampling reproducible for this request, independent of batching.
        ignore_eos: keep generating past end-of-sequence tokens (benchmarks).
        stop_token_ids: extra token ids that end generation (the model's EOS ids always do
            unless ``ignore_eos``).
        sentence_end_after: once this many tokens are generated, the first sentence end
            (``.``, ``!``, ``?`` followed by white space, a line break, or a CJK full
            stop) ends generation with "stop", the punctuation kept: a reply near
            ``max_new_tokens`` ends on a whole sentence instead of being cut mid-way.
            None: only the other stops apply.

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
    sentence_end_after: int | None = None

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise InvalidRequestError("invalid sampling parameters: " + "; ".join(problems))
        # Normalise list inputs so the frozen object is hashable and immutable.
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))

    def _problems(self) -> list[str]:
        p: list[str] = []
        t = _finite(self.temperature)
        if t is None or not (t == 0.0 or MIN_TEMPERATURE <= t <= MAX_TEMPERATURE):
            p.append(
                f"temperature must be 0 (greedy) or a number in [{MIN_TEMPERATURE:g}, "
                f"{MAX_TEMPERATURE:g}], got {_short(self.temperature)}"
            )
        tp = _finite(self.top_p)
        if tp is None or not 0.0 < tp <= 1.0:
            p.append(f"top_p must be a number in (0, 1], got {_short(self.top_p)}")
        # No upper bound: any k >= the vocabulary keeps every token (the sampler clamps on
        # the host), so a client's "no limit" 2**64 means what it says.
        if not _is_int(self.top_k) or self.top_k < 0:
            p.append(f"top_k must be an integer >= 0 (0 disables), got {_short(self.top_k)}")
        rp = _finite(self.repetition_penalty)
        if rp is None or not MIN_REPETITION_PENALTY <= rp <= MAX_REPETITION_PENALTY:
            p.append(
                f"repetition_penalty must be a number in [{MIN_REPETITION_PENALTY:g}, "
                f"{MAX_REPETITION_PENALTY:g}] (1 disables), "
                f"got {_short(self.repetition_penalty)}"
            )
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            p.append(f"max_new_tokens must be an integer >= 1, got {_short(self.max_new_tokens)}")
        p.extend(self._stop_problems())
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed <= _MAX_SEED):
            p.append(f"seed must be an integer in [0, 2**63-1] or None, got {_short(self.seed)}")
        if not isinstance(self.ignore_eos, bool):
            p.append(f"ignore_eos must be a bool, got {_short(self.ignore_eos)}")
        ids = self.stop_token_ids
        if not isinstance(ids, tuple | list) or not all(_is_int(i) and i >= 0 for i in ids):
            p.append(f"stop_token_ids must be non-negative integers, got {_short(ids)}")
        after = self.sentence_end_after
        if after is not None and (not _is_int(after) or after < 0):
            p.append(f"sentence_end_after must be an integer >= 0 or None, got {_short(after)}")
        return p

    def _stop_problems(self) -> list[str]:
        stop = self.stop
        # A bare string is iterable too; catching it avoids stopping on every letter.
        if isinstance(stop, str) or not isinstance(stop, tuple | list):
            return [f"stop must be a sequence of strings, got {_short(stop)}"]
        if len(stop) > MAX_STOP_STRINGS:
            return [f"at most {MAX_STOP_STRINGS} stop strings, got {len(stop)}"]
        for s in stop:
            if not isinstance(s, str) or not s:
                return [f"stop strings must be non-empty strings, got {_short(s)}"]
            if len(s) > MAX_STOP_STRING_CHARS:
                return [f"stop strings must be at most {MAX_STOP_STRING_CHARS} characters"]
        return []

    @property
    def greedy(self) -> bool:
        """True when tokens are picked by argmax."""
        return self.temperature == 0.0
