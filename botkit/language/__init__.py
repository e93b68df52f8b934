"""Languages: tags, detection, the sticky-language rule, protected spans, segmentation.

The pieces the pipeline's language middleware is built from
(``botkit.pipeline.middleware.language``, ``.translation``, ``.native``) and the
``[language]`` settings. Importing this package is cheap: ``langdetect`` is imported
only when a detector first runs.
"""

from __future__ import annotations

from botkit.language.codes import (
    LANGUAGES,
    CodeScheme,
    LanguageInfo,
    english_name,
    find_language,
    language_info,
    marian_model_name,
    model_code,
)
from botkit.language.detect import (
    LangdetectDetector,
    LanguageDetector,
    LanguageGuess,
    NullDetector,
    create_detector,
)
from botkit.language.policy import LanguageDecision, count_letters, decide_language
from botkit.language.protect import Glossary, Protected, detection_text, protect, restore
from botkit.language.sentences import SentenceBuffer, split_sentences
from botkit.language.settings import DetectorSettings, LanguageSettings, TranslatorSettings
from botkit.language.tags import (
    InvalidLanguageTag,
    normalize_tag,
    primary_subtag,
    same_language,
    try_normalize,
)

__all__ = [
    "LANGUAGES",
    "CodeScheme",
    "DetectorSettings",
    "Glossary",
    "InvalidLanguageTag",
    "LangdetectDetector",
    "LanguageDecision",
    "LanguageDetector",
    "LanguageGuess",
    "LanguageInfo",
    "LanguageSettings",
    "NullDetector",
    "Protected",
    "SentenceBuffer",
    "TranslatorSettings",
    "count_letters",
    "create_detector",
    "decide_language",
    "detection_text",
    "english_name",
    "find_language",
    "language_info",
    "marian_model_name",
    "model_code",
    "normalize_tag",
    "primary_subtag",
    "protect",
    "restore",
    "same_language",
    "split_sentences",
    "try_normalize",
]
