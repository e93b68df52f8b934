"""The local engine's sampling defaults are the ones measured on the default model.

SmolLM2-135M answering from knowledge pages (4 questions x 3 seeds, the fixed prompt
frame): a repetition penalty of 1.1 let 1 of 12 replies state the page's fact at any
temperature (it penalizes the prompt's tokens, the facts to repeat); 1.0 gave 8 of 12 at
temperature 0.2 and 0.3, 7 at 0.7.
"""

from __future__ import annotations

from botkit.config.settings import EngineSettings


def test_defaults_do_not_penalize_repeating_the_prompt() -> None:
    settings = EngineSettings()
    assert settings.model == "smollm2"
    assert settings.repetition_penalty == 1.0
    assert settings.temperature == 0.3
    assert (settings.top_p, settings.top_k, settings.max_new_tokens) == (0.9, 50, 256)
