"""docs/web.md's ``[connectors.web]`` example: real keys, with their defaults.

The example is where an operator looks up the channel's limits; a key missing there
(``max_tracked_ips`` and ``send_queue_size`` were) is a limit nobody knows to size.
"""

from __future__ import annotations

import re
from pathlib import Path

from connectors.web import WebConfig

DOCS = Path(__file__).resolve().parents[3] / "docs" / "web.md"


def _example() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```toml\n[connectors.web]\n")
    block = text[start : text.index("```\n", start + 8)]
    return dict(re.findall(r"^(\w+) = (.+?)\s*(?:#.*)?$", block, re.M))


def test_the_example_has_the_memory_limits_and_every_number_is_the_default() -> None:
    example = _example()
    assert set(example) <= set(WebConfig.model_fields), set(example) - set(WebConfig.model_fields)
    assert {"max_tracked_ips", "send_queue_size", "max_connections_per_ip"} <= set(example)
    numbers = {k: v for k, v in example.items() if re.fullmatch(r"\d+(\.\d+)?", v)}
    wrong = {
        k: (v, WebConfig.model_fields[k].default)
        for k, v in numbers.items()
        if float(v) != WebConfig.model_fields[k].default
    }
    assert wrong == {}
    # Each is explained beside the other limits, not only listed.
    text = DOCS.read_text(encoding="utf-8")
    for name in ("max_tracked_ips", "send_queue_size"):
        assert f"* `{name}` (default" in text, name
