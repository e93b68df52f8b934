"""Whether a ``base_url`` is OpenAI's own service, where its API's rules are known.

OpenAI's reasoning models (o-series, GPT-5) refuse ``max_tokens`` and take
``max_completion_tokens``, which older local servers do not know; its API refuses
fields outside it (``top_k``, ``repetition_penalty``) and needs a key. The same models
are served at OpenAI's regional hosts (data residency: ``eu.api.openai.com``,
``us.api.openai.com``) and by Azure OpenAI (``RESOURCE.openai.azure.com``, and
``RESOURCE.cognitiveservices.azure.com`` for resources made in AI Foundry), with the
same rules. Anything else (a local server, a gateway) may follow other rules.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["is_openai_service"]

_OPENAI_HOST = "api.openai.com"
_OPENAI_SUFFIXES = (".api.openai.com", ".openai.azure.com", ".cognitiveservices.azure.com")


def is_openai_service(base_url: str) -> bool:
    """Whether ``base_url`` is OpenAI's API or Azure OpenAI (host names, any case)."""
    try:
        host = (urlsplit(base_url).hostname or "").rstrip(".")
    except ValueError:  # an unparsable URL is nobody's service
        return False
    return host == _OPENAI_HOST or host.endswith(_OPENAI_SUFFIXES)
