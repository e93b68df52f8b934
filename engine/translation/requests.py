"""Requests to the translation engine and the validation of what callers pass in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.request_errors import InvalidRequestError

__all__ = ["MAX_BEAMS", "TranslationRequest", "check_options", "check_texts"]

MAX_BEAMS = 16


@dataclass(frozen=True, slots=True)
class TranslationRequest:
    """One text to translate from ``source`` to ``target`` (BCP-47 or model codes)."""

    text: str
    source: str
    target: str


def check_texts(texts: Any) -> list[str]:
    """``texts`` as a list of str.

    Raises:
        InvalidRequestError: not a sequence of strings.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidRequestError("texts must be a list of strings")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InvalidRequestError(f"text {i} is {type(t).__name__}, not str")
    return list(texts)


def check_options(beam_size: object, max_new_tokens: object) -> None:
    """Validate the decoding options of a request.

    Raises:
        InvalidRequestError: a value out of range or of the wrong type.
    """
    _check_int("beam_size", beam_size, 1, MAX_BEAMS)
    if max_new_tokens is not None:
        _check_int("max_new_tokens", max_new_tokens, 1, 1 << 20)


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequestError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
