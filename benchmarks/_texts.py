"""The sentences the core and web benchmarks send (standard library only: the web load
generator's child process imports it and must start quickly)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["PARALLEL_SET", "load_texts"]

# The shipped customer-service sentences in 10 languages (tests/data/README.md).
PARALLEL_SET = Path(__file__).resolve().parents[1] / "tests/data/customer_service_parallel.jsonl"


def load_texts() -> list[list[str]]:
    """The sentences, one list per language (10 languages), in file order."""
    by_language: dict[str, list[str]] = {}
    for line in PARALLEL_SET.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            by_language.setdefault(item["lang"], []).append(item["text"])
    return list(by_language.values())
