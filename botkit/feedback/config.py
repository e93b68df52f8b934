"""The ``[plugins.feedback]`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from botkit.language.tags import normalize_tag
from botkit.plugins import PluginConfig

__all__ = ["FeedbackConfig", "bare_label"]


# What a phone keyboard adds to a typed 👍: skin tones and the emoji variation selector.
_MODIFIERS = dict.fromkeys([*range(0x1F3FB, 0x1F400), 0xFE0F])


def bare_label(text: str) -> str:
    """``text`` as a rating is recognized: trimmed, without skin tones or U+FE0F."""
    return text.strip().translate(_MODIFIERS)


class FeedbackConfig(PluginConfig):
    """Settings of the feedback plugin.

    Attributes:
        good_label: the button (and message) that rates a reply good.
        bad_label: the button (and message) that rates a reply bad.
        on_bad: after a bad rating, "reply" says sorry and asks for more; "handoff"
            hands the conversation to a colleague.
        thanks_replies: texts after a good rating, per language, over the built-in ones.
        sorry_replies: texts after a bad rating (the one ``on_bad`` uses), per language,
            over the built-in ones.
    """

    good_label: str = Field(default="👍", min_length=1, max_length=32)
    bad_label: str = Field(default="👎", min_length=1, max_length=32)
    on_bad: Literal["reply", "handoff"] = "reply"
    thanks_replies: dict[str, str] = Field(default_factory=dict, max_length=200)
    sorry_replies: dict[str, str] = Field(default_factory=dict, max_length=200)

    @field_validator("good_label", "bad_label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c in value for c in "\r\n\t\x00"):
            raise ValueError("a label must be one line of visible text, e.g. '👍'")
        return value

    @field_validator("thanks_replies", "sorry_replies")
    @classmethod
    def _replies(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            if not text.strip() or len(text) > 1000:
                raise ValueError("a reply must have 1 to 1000 characters")
        return {normalize_tag(k): v for k, v in value.items()}

    @model_validator(mode="after")
    def _distinct(self) -> FeedbackConfig:
        if bare_label(self.good_label) == bare_label(self.bad_label):
            raise ValueError("good_label and bad_label must differ (more than by skin tone)")
        return self
