"""Language detection behind a small interface, with ``langdetect`` as the default.

A detector only guesses; whether a guess is trusted (message long enough, confident
enough) is decided by ``botkit.language.policy``. Measured on the 2-core dev machine:
langdetect loads its 55 profiles in ~0.3 s (once per process, on the bot's start) and
takes 0.5 to 5 ms per message (~2 ms on average), so the pipeline runs it off the event
loop: in a worker process (``[language.detector] processes``, ``_detect_pool``: pure
Python in a thread holds the bot's GIL) or, with ``processes = 0``, in a thread; the
text examined is capped at ``max_chars``. Its answers are remembered per text:
customers repeat themselves, and ``detect_async`` answers a remembered text on the event
loop, without a hop to a thread or a worker.

langdetect draws random samples; its own module-level ``detect`` relies on the global
``DetectorFactory.seed``. Here every detector instance carries its seed, so results are
deterministic without touching global state.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from botkit.errors import ConfigError, ConfigProblem
from botkit.language.tags import try_normalize

if TYPE_CHECKING:
    from botkit.language._detect_pool import DetectPool

__all__ = [
    "Answers",
    "AsyncDetector",
    "LangdetectDetector",
    "LanguageDetector",
    "LanguageGuess",
    "NullDetector",
    "create_detector",
    "langdetect_available",
]

_log = logging.getLogger("botkit.language")

_profiles_lock = threading.Lock()
_profiles: Any = None  # langdetect's DetectorFactory with profiles, shared (read-only)


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """One candidate language (normalized BCP-47 tag) and its probability (0 to 1)."""

    language: str
    probability: float


class Answers:
    """A bounded, thread-safe LRU of detection answers per text, with hit counts."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[LanguageGuess, ...]] = OrderedDict()
        self._lock = threading.Lock()  # detect runs in worker threads

    def get(self, text: str, *, count_miss: bool = True) -> tuple[LanguageGuess, ...] | None:
        """The answer for ``text``, or None; ``count_miss=False`` for a look that is
        followed by ``detect`` (which counts the miss itself)."""
        with self._lock:
            found = self._items.get(text)
            if found is None:
                self.misses += count_miss
            else:
                self.hits += 1
                self._items.move_to_end(text)
            return found

    def put(self, text: str, answer: tuple[LanguageGuess, ...]) -> None:
        with self._lock:
            self._items[text] = answer
            self._items.move_to_end(text)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer and reset the counts."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


@runtime_checkable
class AsyncDetector(Protocol):
    """A detector that detects off the event loop itself (a worker process or thread)."""

    async def detect_async(self, text: str) -> list[LanguageGuess]: ...


@runtime_checkable
class LanguageDetector(Protocol):
    """Guesses the language of a text.

    ``detect`` returns candidates best first (possibly none: no letters, unknown script).
    It must be deterministic: the same text gives the same answer.
    """

    name: str

    def detect(self, text: str) -> list[LanguageGuess]: ...


class NullDetector:
    """Never guesses: languages come only from channel hints and explicit switches."""

    name = "none"

    def detect(self, text: str) -> list[LanguageGuess]:
        return []


def langdetect_available() -> bool:
    """Whether the ``langdetect`` package is installed (without importing it)."""
    return importlib.util.find_spec("langdetect") is not None


def _factory() -> Any:
    global _profiles
    with _profiles_lock:
        if _profiles is None:
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            _profiles = factory
        return _profiles


def _has(text: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= ord(c) <= hi for c in text for lo, hi in ranges)


_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))
_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF))
_HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


def _script_allows(text: str) -> Callable[[str], bool] | None:
    """Which (normalized) tags the text's CJK script allows; None for non-CJK text."""
    hangul, kana = _has(text, _HANGUL), _has(text, _KANA)
    if not (hangul or kana or _has(text, _HAN)):
        return None

    def fits(tag: str) -> bool:
        if tag == "ko":
            return hangul
        if tag == "ja":
            return kana
        if tag.startswith("zh"):
            return not (hangul or kana)
        return True

    return fits


def _script_consistent(guesses: list[LanguageGuess], text: str) -> list[LanguageGuess]:
    """Drop CJK guesses the text's script rules out (langdetect is known to call short
    Chinese text Korean); the rest is renormalized."""
    fits = _script_allows(text)
    if fits is None:
        return guesses
    kept = [g for g in guesses if fits(g.language)]
    total = sum(g.probability for g in kept)
    if not kept or total <= 0:
        return []
    return [LanguageGuess(g.language, g.probability / total) for g in kept]


class LangdetectDetector:
    """The ``langdetect`` package (a port of Google's language-detection; 55 languages).

    Args:
        seed: seed of langdetect's sampling (same seed, same text → same answer).
        max_chars: the first this many characters are examined.
        processes: worker processes ``detect_async`` uses (0: a thread of this
            process); see ``botkit.language._detect_pool``.
    """

    name = "langdetect"

    def __init__(self, *, seed: int = 0, max_chars: int = 1000, processes: int = 0) -> None:
        self.seed = seed
        self.max_chars = max_chars
        # langdetect is pure Python (~2 ms a message). Customers repeat themselves ("I
        # want a refund", "where is my order?") and the answer for a text and seed never
        # changes, so recent answers are kept (here, also when a worker process detects).
        self.answers = Answers(4096)
        self.pool: DetectPool | None = None
        if processes > 0:
            from botkit.language._detect_pool import DetectPool

            self.pool = DetectPool(processes, seed)

    def load(self) -> None:
        """Load the profiles now (else on the first ``detect``)."""
        _factory()

    def detect(self, text: str) -> list[LanguageGuess]:
        sample = text[: self.max_chars]
        found = self.answers.get(sample)
        if found is None:
            found = _detect_sample(sample, self.seed)
            self.answers.put(sample, found)
        return list(found)

    async def detect_async(self, text: str) -> list[LanguageGuess]:
        """``detect`` off the event loop: in a worker process when the pool is up, else
        in a thread (same answer either way)."""
        sample = text[: self.max_chars]
        found = self.answers.get(sample)
        if found is None:
            raw = None if self.pool is None else await self.pool.detect(sample)
            if raw is None:
                found = await asyncio.to_thread(_detect_sample, sample, self.seed)
            else:
                found = tuple(LanguageGuess(tag, p) for tag, p in raw)
            self.answers.put(sample, found)
        return list(found)

    def cached(self, text: str) -> list[LanguageGuess] | None:
        """The remembered answer for ``text``, or None (then ``detect`` must run)."""
        found = self.answers.get(text[: self.max_chars], count_miss=False)
        return None if found is None else list(found)

    async def close(self) -> None:
        """Stop the worker processes, if any ran (``detect`` keeps working)."""
        if self.pool is not None:
            await self.pool.close()


# langdetect skips every word written in capitals (its n-grams leave out an upper-case
# letter after another one, to ignore acronyms), so a shouted message kept no features
# but a few initials and came out English at p=1.0: the French and Spanish lines of
# tests/data in capitals were 0/56 and 0/54 right (305/511 in all). Such words are
# lower-cased; other words are left as written, since langdetect's profiles count
# capitalized ones ("Wo ist denn mein Paket jetzt?" is de at p=1.0, lower-cased nl at
# 5/7). Measured over the 511 lines of 20+ characters: as written 507 (unchanged), in
# capitals 501, every other word in capitals 505 (before: 482). Lower-casing all text
# does about as well on these but loses German cases like the one above.
_WORD = re.compile(r"[^\W\d_]{2,}")


def _lower_shouted(word: re.Match[str]) -> str:
    text = word.group()
    return text.lower() if text.isupper() else text


def _detect_sample(sample: str, seed: int) -> tuple[LanguageGuess, ...]:
    """The guesses for ``sample``: the one detection both the thread and the worker
    process paths run (``_detect_pool``), so both answer the same."""
    from langdetect.lang_detect_exception import LangDetectException

    sample = _WORD.sub(_lower_shouted, sample)
    try:
        guesses = _run(sample, seed, None)
        kept = _script_consistent(guesses, sample)
        fits = _script_allows(sample)
        if guesses and not kept and fits is not None:
            # langdetect's Korean and Japanese profiles share Han n-grams with
            # Chinese: on Han-only text it can put all its weight on a language the
            # script rules out (measured: a 23-character Chinese sentence -> ko at
            # p=0.99999, which left no guess at all). Ask again with only the
            # languages the script allows (a zero prior stays zero); that also
            # decides zh-cn against zh-tw.
            codes = _factory().langlist
            allowed = {code for code in codes if fits(try_normalize(code) or "")}
            kept = _script_consistent(_run(sample, seed, allowed), sample)
    except LangDetectException:  # "No features in text": digits, emoji, symbols
        return ()
    return tuple(kept)


def _run(sample: str, seed: int, languages: set[str] | None) -> list[LanguageGuess]:
    """One langdetect pass, optionally limited to ``languages`` (langdetect codes)."""
    detector = _factory().create()
    detector.seed = seed  # per detector: the factory (and its global) stay untouched
    if languages:
        detector.set_prior_map(dict.fromkeys(languages, 1.0))
    detector.append(sample)
    guesses = []
    for item in detector.get_probabilities():
        tag = try_normalize(str(item.lang))
        if tag is not None:
            guesses.append(LanguageGuess(tag, float(item.prob)))
    return guesses


def create_detector(
    kind: str, *, seed: int = 0, max_chars: int = 1000, processes: int = 0
) -> LanguageDetector:
    """The detector the ``[language.detector]`` settings name.

    ``"auto"`` is langdetect when installed, else no detection (with a log line).

    Raises:
        ConfigError: ``"langdetect"`` is asked for but not installed.
    """
    if kind == "none":
        return NullDetector()
    if not langdetect_available():
        if kind == "auto":
            _log.warning(
                "language: langdetect is not installed, so languages are not detected "
                "(install botkit[multilingual])"
            )
            return NullDetector()
        raise ConfigError(
            [
                ConfigProblem(
                    "language.detector.kind",
                    "langdetect is not installed: pip install 'botkit[multilingual]'",
                )
            ]
        )
    return LangdetectDetector(seed=seed, max_chars=max_chars, processes=processes)
