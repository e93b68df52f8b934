"""The built-in ``feedback`` plugin: customers rate the bot's answers (👍 / 👎).

Enable it with a ``[plugins.feedback]`` table (see ``FeedbackConfig``).
"""

from __future__ import annotations

from botkit.feedback.config import FeedbackConfig
from botkit.feedback.plugin import FEEDBACK_GROUP, FeedbackPlugin, OfferRating, RatingHandler

__all__ = ["FEEDBACK_GROUP", "FeedbackConfig", "FeedbackPlugin", "OfferRating", "RatingHandler"]
