"""``botkit chat`` on the local engine, as an operator runs it: a reply from a real
(tiny, random) checkpoint, and a clean stop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

REPO = Path(__file__).resolve().parents[2]


def test_chat_on_the_engine_stops_without_native_teardown_noise(tmp_path: Path) -> None:
    # Triton's native bindings printed ~20 lines of "nanobind: leaked instance ..." as
    # the interpreter tore down after the engine had run: on every stop, like a crash.
    model = save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), build_tokenizer(), tmp_path / "model"
    )
    config = tmp_path / "bot.toml"
    config.write_text(
        '[store]\nurl = "sqlite:///chat.db"\n'
        f'[backend]\nkind = "engine"\n[backend.engine]\nmodel = "{model}"\nmax_new_tokens = 4\n'
        '[connectors.console]\nuser = "alice"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    child = pexpect.spawn(
        sys.executable, ["-m", "botkit", "chat", "-c", str(config)],
        cwd=str(tmp_path), env=env, encoding="utf-8", timeout=120,
    )  # fmt: skip
    try:
        child.expect_exact("you> ")
        child.sendline("hello")
        child.expect_exact("bot> ")
        child.expect_exact("you> ")
        child.sendeof()
        child.expect(pexpect.EOF)
        after_last_prompt = child.before
    finally:
        child.close()
    assert child.exitstatus == 0 and child.signalstatus is None, after_last_prompt
    assert "leaked" not in after_last_prompt, after_last_prompt[-2000:]
