"""Generation backends and the factory that picks one from the settings.

``kind = "echo"`` is the deterministic echo backend; ``"engine"`` is the local inference
engine (``botkit.backends.local_engine``, which imports torch, so it is imported only
here and only when asked for); ``"auto"`` tries the engine and falls back to echo, with a
log line saying why, when torch or the engine is not installed (a model that fails to
load is an error, as with ``"engine"``);
``"openai"`` is an OpenAI-compatible server (``botkit.backends.openai_compat``, which
imports the ``openai`` package, so it too is imported only when asked for).

The engine adapter module must provide ``create_backend(settings: EngineSettings) ->
GenerationBackend``; loading the model may happen in ``create_backend`` or in
``start()``, and a missing model is reported as ``BackendError``.
"""

from __future__ import annotations

import logging
from importlib import import_module

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import (
    ChatMessage,
    GenerationBackend,
    GenerationRequest,
    Role,
    Translator,
)
from botkit.config.settings import BackendSettings
from botkit.errors import BackendError

__all__ = [
    "ChatMessage",
    "EchoBackend",
    "GenerationBackend",
    "GenerationRequest",
    "Role",
    "Translator",
    "create_backend",
    "start_backend",
]

_log = logging.getLogger("botkit.backends")

ENGINE_MODULE = "botkit.backends.local_engine"
OPENAI_MODULE = "botkit.backends.openai_compat"


def _create_openai(settings: BackendSettings) -> GenerationBackend:
    try:
        module = import_module(OPENAI_MODULE)
    except ImportError as exc:
        raise BackendError(
            f"the openai backend needs the openai package ({exc}); install botkit[openai]"
        ) from exc
    backend: GenerationBackend = module.create_backend(settings.openai)
    return backend


def _create_engine(settings: BackendSettings) -> GenerationBackend:
    try:
        module = import_module(ENGINE_MODULE)
    except Exception as exc:  # ImportError, or torch failing to load its libraries
        raise BackendError(
            f"the local engine is not available ({type(exc).__name__}: {exc}); "
            "install botkit[engine]"
        ) from exc
    try:
        backend: GenerationBackend = module.create_backend(settings.engine)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(
            f"the local engine could not be created: {type(exc).__name__}: {exc}"
        ) from exc
    return backend


def create_backend(settings: BackendSettings) -> GenerationBackend:
    """Build (but do not start) the backend ``settings.kind`` names.

    ``"auto"`` falls back to echo when the engine cannot be imported or created.

    Raises:
        BackendError: ``kind = "engine"`` or ``"openai"`` and it cannot be imported or
            created.
    """
    if settings.kind == "echo":
        return EchoBackend(settings.echo)
    if settings.kind == "engine":
        return _create_engine(settings)
    if settings.kind == "openai":
        return _create_openai(settings)
    try:
        return _create_engine(settings)
    except BackendError as exc:
        _log.warning("backend: local engine unavailable, using the echo backend: %s", exc)
        return EchoBackend(settings.echo)


async def start_backend(settings: BackendSettings) -> GenerationBackend:
    """Build and start the configured backend.

    With ``kind = "auto"`` a machine without the engine (torch or the engine package not
    installed) gets the echo backend, with a warning naming the reason. An engine that is
    installed but cannot start its model (a wrong path, no memory, an unwritable cache)
    is an error as with ``kind = "engine"``: a deployment must not answer its customers
    with their own words because of a typo.

    Raises:
        BackendError: the backend cannot be started.
    """
    backend = create_backend(settings)
    try:
        await backend.start()
    except Exception as exc:
        await _close_quietly(backend)
        hint = (
            ' (set [backend] kind = "echo" to run without a model)'
            if settings.kind == "auto" and not isinstance(backend, EchoBackend)
            else ""
        )
        if isinstance(exc, BackendError):
            raise BackendError(f"{exc}{hint}") from exc
        raise BackendError(f"backend {backend.name!r} failed to start: {exc}{hint}") from exc
    _log.info("backend: %s ready", backend.name)
    return backend


async def _close_quietly(backend: GenerationBackend) -> None:
    try:
        await backend.close()
    except Exception:  # the backend already failed; its close error adds nothing
        _log.debug("backend: close after failed start raised", exc_info=True)
