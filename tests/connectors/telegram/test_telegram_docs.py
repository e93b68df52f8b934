"""docs/telegram.md's "Every key" lists every key of ``[connectors.telegram]`` with the
code's default and the values it takes. poll_limit, typing_interval_s,
request_timeout_s, shutdown_grace_s and webhook.max_body_bytes / max_connections were
documented nowhere."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel

from botkit.config import settings_from_mapping
from connectors.telegram import TelegramConfig

ROOT = Path(__file__).parents[3]
TOKEN = "123456789:" + "A" * 35
# Set only in webhook mode: commented out in the block, like the other snippets.
COMMENTED = {"webhook.url", "webhook.secret_token"}
SECTIONS = {"webhook", "flood", "retry"}


def _block() -> str:
    docs = (ROOT / "docs/telegram.md").read_text(encoding="utf-8")
    return docs.split("\n## Every key\n", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]


def _fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every key path of ``model`` with its field info; sections recursed into."""
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= _fields(kind, f"{prefix}{name}.")
        else:
            found[f"{prefix}{name}"] = info
    return found


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if key in SECTIONS and not prefix:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _line_of(block: str, path: str) -> str:
    section, _, key = path.rpartition(".")
    table = "[connectors.telegram" + (f".{section}]" if section else "]")
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split("#")[0].strip() == table)
    part = lines[start + 1 :]
    part = part[: next((i for i, line in enumerate(part) if line.startswith("[")), len(part))]
    return next(line for line in part if re.match(rf"(# )?{key} = ", line))


def _range(info: Any) -> str | None:
    """The values a number takes, as the block writes them ("1-100", "above 0, at most 60")."""
    low = next((m for m in info.metadata if isinstance(m, Ge | Gt)), None)
    high = next((m.le for m in info.metadata if isinstance(m, Le)), None)
    if high is None:
        return None
    if isinstance(low, Gt):
        return f"above {low.gt}, at most {high}"
    return f"{1 if low is None else low.ge}-{high}"  # poll_timeout_s: its validator says 1


def test_every_key_is_listed_at_its_default() -> None:
    block = _block()
    listed = _flatten(tomllib.loads(block)["connectors"]["telegram"])
    fields = _fields(TelegramConfig)
    assert set(listed) | COMMENTED == set(fields)
    for path in COMMENTED:
        assert _line_of(block, path).startswith("# ")
    defaults = TelegramConfig(token=TOKEN)
    for path, value in listed.items():
        if path == "token":
            assert value == "${BOTKIT_TELEGRAM_TOKEN}"
            continue
        default: Any = defaults
        for part in path.split("."):
            default = getattr(default, part)
        assert value == (list(default) if isinstance(default, tuple) else default), path


def test_every_number_says_the_values_it_takes() -> None:
    block = _block()
    ranges = {p: _range(info) for p, info in _fields(TelegramConfig).items()}
    assert ranges["webhook.max_connections"] == "1-100"  # (the bounds are read)
    assert ranges["typing_interval_s"] == "above 0, at most 60"
    for path, expected in ranges.items():
        if expected is not None:
            assert f"# {expected}" in _line_of(block, path), path


def test_the_block_is_a_valid_config() -> None:
    section = tomllib.loads(_block())["connectors"]["telegram"]
    settings = settings_from_mapping(
        {"connectors": {"telegram": section}}, environ={"BOTKIT_TELEGRAM_TOKEN": TOKEN}
    )
    assert TelegramConfig.model_validate(settings.connectors["telegram"]) == TelegramConfig(
        token=TOKEN
    )
