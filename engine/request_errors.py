"""Errors that end one request (not the engine).

``engine`` never imports botkit; the botkit backend maps these onto ``BackendError`` /
``BackendBusyError``. Both request errors derive from ``EngineRequestError`` so a caller can
catch "this request failed" in one clause and keep serving the others.
"""

from __future__ import annotations

from engine.errors import EngineError

__all__ = [
    "EngineBusyError",
    "EngineDeadError",
    "EngineRequestError",
    "InvalidRequestError",
    "StepFailedError",
]


class EngineRequestError(EngineError):
    """Base class: one request failed; the engine and the other requests carry on."""


class InvalidRequestError(EngineRequestError, ValueError):
    """The request can never be served as given (bad sampling value, prompt too long...)."""


class EngineBusyError(EngineRequestError):
    """The request waited longer than the queue timeout (or the queue is full)."""


class StepFailedError(EngineRequestError):
    """The model step this request was in failed (a transient out-of-memory, a kernel
    fault); the engine ended it and serves the others."""


class EngineDeadError(EngineError):
    """The engine's step loop crashed or was closed; no request can be served."""
