"""Leaving a conversation's language takes two trusted detections in a row.

Even past ``min_letters_to_switch`` langdetect is sometimes confidently wrong on an
ordinary follow-up, with p ≈ 1.0 under every seed, so the confidence and margin rules
cannot catch it: "Wann kommt mein Paket an?" (20 letters) → ``no``, "J'ai reçu la mauvaise
taille" (23) → ``fi``, "Quero cancelar a assinatura" (24) → ``it`` (4 of 102 natural
follow-ups in es/de/fr/it/pt/zh/ar, review 3). A wrong flip is expensive (the reply in
Norwegian, the message translated *from* Norwegian); a missed genuine switch costs one
reply in the old language. So a conversation that has a language leaves it only when

- two consecutive trusted detections name the same other language (messages with no
  trusted detection in between, "ok", an order number, do not break the sequence; a
  detection of the current language or of a third language does), or
- the message is long (``LONG_MESSAGE_LETTERS``), where the detector is reliable, or
- the customer asks with the switch command (that bypasses detection altogether).

Where the pending detection lives: in this process's memory, per conversation, at most
``MAX_PENDING`` conversations (least recently touched dropped first). The conversation
record has no column for it, and a schema change is out of scope for this fix. The
trade-off is benign by construction: losing a pending entry (restart, eviction, a second
bot process serving the same conversation) only means a genuine switch needs one more
message; it can never cause a flip. A configured ``language.languages`` list rules most
of these flips out anyway (the detector may then only name those languages).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from botkit.language.policy import LanguageDecision
from botkit.language.tags import same_language

__all__ = ["LONG_MESSAGE_LETTERS", "MAX_PENDING", "SwitchConfirmation"]

# Weighted letters (a CJK character counts 3) from which one detection is enough. The
# confidently wrong detections measured so far had 12 to 25 letters (policy.py, review
# 3); 40 is about two short sentences, past which langdetect's errors fall off, with a
# margin over the worst case seen. A real switch in a long message is answered at once.
LONG_MESSAGE_LETTERS = 40
# One entry is a conversation id and a tag (~200 bytes): 4096 of them is under 1 MiB,
# and only conversations with a detection waiting for confirmation hold one.
MAX_PENDING = 4096


class SwitchConfirmation:
    """Holds, per conversation, the other language a trusted detection named last.

    Args:
        max_pending: how many conversations may have a pending switch at once.
    """

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max(1, max_pending)
        self._pending: OrderedDict[int, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self, conversation_id: int) -> str | None:
        """The unconfirmed language of ``conversation_id``, if any."""
        return self._pending.get(conversation_id)

    def forget(self, conversation_id: int) -> None:
        """Drop the pending switch (the customer chose a language explicitly)."""
        self._pending.pop(conversation_id, None)

    def confirm(
        self, conversation_id: int, current: str | None, decision: LanguageDecision
    ) -> LanguageDecision:
        """``decision``, or the conversation's ``current`` language kept (reason
        ``unconfirmed``) when it is the first trusted detection of another language."""
        if current is None or decision.detected is None:
            return decision  # nothing to leave, or nothing trusted to count
        if same_language(decision.language, current):
            self.forget(conversation_id)
            return decision
        previous = self._pending.pop(conversation_id, None)
        if decision.letters >= LONG_MESSAGE_LETTERS or (
            previous is not None and same_language(previous, decision.language)
        ):
            return decision
        self._pending[conversation_id] = decision.language
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        return replace(decision, language=current, reason="unconfirmed")
