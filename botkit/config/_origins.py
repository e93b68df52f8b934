"""Saying which ``${VAR}`` a wrong value came from, without showing it.

"expected an integer, got string" leaves the operator guessing when the value came from
``${P}``. The value itself is never shown: every value expanded from the environment is
treated as a secret (``Settings.secret_values``, redacted from logs), because the loader
cannot know which variables hold tokens, and a token set in the wrong variable is exactly
when it would be shown. The problem names the variable instead,
``expected an integer, got string (from ${P})``, and ``echo $P`` shows the rest.
"""

from __future__ import annotations

from botkit.config.interpolate import Interpolation
from botkit.errors import ConfigProblem

__all__ = ["with_origins"]


def with_origins(problems: list[ConfigProblem], expanded: Interpolation) -> list[ConfigProblem]:
    """``problems`` (validation problems of ``expanded.value``), each at a value expanded
    from ``${VAR}`` references naming those variables."""
    result = []
    for problem in problems:
        names = expanded.references.get(problem.path)
        if names:
            origin = ", ".join(f"${{{name}}}" for name in names)
            problem = ConfigProblem(problem.path, f"{problem.message} (from {origin})")
        result.append(problem)
    return result
