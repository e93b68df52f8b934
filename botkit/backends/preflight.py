"""What ``botkit check-config`` checks beyond the file itself: that the models it names
can be had, so that a typo in a model path is found before ``botkit run`` loads for a
minute and stops.

Nothing is loaded, converted or downloaded: a local path must hold a checkpoint (or a
GGUF file whose header is sound), the packaged model must be installed, and a hub id is
taken as it is (it is fetched at start, when the hub can be reached). The device must
exist here and the dtype must suit it (float16 is refused on the CPU). The engine is
imported only when the settings use it. For OpenAI itself (``api.openai.com``, its
regional hosts and Azure OpenAI: ``_openai_hosts``), what it is known to refuse is named
too: no key, and the ``top_k``/``repetition_penalty`` fields (``botkit run`` would stop
at its one-token check, a minute of deployment later).
"""

from __future__ import annotations

from collections.abc import Callable

from botkit.backends._openai_hosts import is_openai_service
from botkit.config import Settings
from botkit.errors import ConfigProblem

__all__ = ["model_problems"]


def model_problems(settings: Settings) -> list[ConfigProblem]:
    """A problem for each model the settings use that cannot be found (key path, why)."""
    problems: list[ConfigProblem] = []
    backend = settings.backend
    if backend.kind in ("engine", "auto"):
        try:
            from engine.loader.source import locate_source
        except Exception as exc:  # not installed, or torch failing to load its libraries
            if backend.kind == "engine":
                problems.append(ConfigProblem(
                    "backend.kind", f"the local engine is not available ({exc}); "
                    "install botkit[engine]",
                ))  # fmt: skip
        else:
            problems += _located("backend.engine.model", backend.engine.model, locate_source)
            problems += _placement("backend.engine", backend.engine.device, backend.engine.dtype)
    if backend.kind == "openai":
        problems += _openai_problems(settings)
    translator = settings.language.translator
    if translator.kind == "engine":
        try:
            from engine.translation.checkpoint import locate_translation_source
        except Exception as exc:
            problems.append(ConfigProblem(
                "language.translator.kind", f"the local engine is not available ({exc}); "
                "install botkit[engine]",
            ))  # fmt: skip
        else:
            problems += _placement("language.translator", translator.device, translator.dtype)
            for i, model in enumerate(translator.model):
                key = "language.translator.model" + (f"[{i}]" if len(translator.model) > 1 else "")
                problems += _located(key, model, locate_translation_source)
    return problems


def _placement(section: str, device: str, dtype: str) -> list[ConfigProblem]:
    """A problem when ``device`` is not on this machine (CUDA without a GPU, ``cuda:N``
    beyond the count) or ``dtype`` does not suit it."""
    from engine.errors import ModelLoadError
    from engine.loader import resolve_device, resolve_dtype

    try:
        dev = resolve_device(device)
    except ModelLoadError as exc:
        return [ConfigProblem(f"{section}.device", str(exc))]
    try:
        resolve_dtype(dtype, dev)
    except ModelLoadError as exc:
        return [ConfigProblem(f"{section}.dtype", str(exc))]
    return []


def _located(key: str, model: str, locate: Callable[[str], object]) -> list[ConfigProblem]:
    from engine.errors import ModelLoadError

    try:
        locate(model)
    except ModelLoadError as exc:
        return [ConfigProblem(key, str(exc))]
    return []


def _openai_problems(settings: Settings) -> list[ConfigProblem]:
    """What OpenAI's own API refuses in ``[backend.openai]`` (other servers vary)."""
    openai = settings.backend.openai
    if not is_openai_service(openai.base_url):
        return []
    problems: list[ConfigProblem] = []
    if openai.api_key is None:
        problems.append(ConfigProblem(
            "backend.openai.api_key", 'OpenAI needs a key: api_key = "${OPENAI_API_KEY}"',
        ))  # fmt: skip
    for key in ("top_k", "repetition_penalty"):
        if getattr(openai, key) is not None:
            problems.append(ConfigProblem(
                f"backend.openai.{key}", "OpenAI refuses this field (it is not in its API); "
                "leave it unset",
            ))  # fmt: skip
    return problems
