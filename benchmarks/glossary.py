"""Glossary benchmark: the CPU cost of protected-span matching per message.

Every message pays for ``detection_text`` (the language middleware, on the first 2,000
characters at the default settings) and, in pivot mode, ``split_sentences`` and
``protect`` (the translation of the message and of the reply). All three look for the
``[language] glossary`` terms in the text, on the event loop, so their cost is a stall
every customer on every channel waits for.

Measured: compiling the glossary (once per process) and the median milliseconds of one
call, for glossaries of 0 / 20 / 200 / 1,000 terms (product names sharing prefixes, as
real catalogues do: "Acme Router X100", "Acme Router X200"...) and texts of 500 and
4,096 characters (the customer-service sentences with a few of the terms in them), plus
a hostile case: 1,000 terms of 200 characters sharing a 190-character prefix, against a
text that repeats that prefix; and, without a glossary, the texts that once made the
number and URL scans quadratic ("a-a-a-...", a URL followed by 4,000 ")").

    python benchmarks/glossary.py              # writes results/language-glossary-cpu.json
    python benchmarks/glossary.py --repeat 3 --out -   # quick look
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # run from a source checkout

from _output import machine_facts, print_rows, write_result  # noqa: E402
from _texts import load_texts  # noqa: E402

from botkit.language import Glossary, detection_text, protect, split_sentences  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "language-glossary-cpu.json"
SIZES = (0, 20, 200, 1000)
LENGTHS = (500, 4096)
BRANDS = ("Acme", "Botkit", "Café", "Nordlicht", "Sakura", "Zenit", "Óptima", "Photon")
LINES = ("Router", "Router Pro", "Cloud", "Cloud Plus", "Phone", "Watch", "Hub", "Desk")


def glossary_terms(count: int) -> list[str]:
    """``count`` product names sharing brand and line prefixes."""
    terms = [
        f"{brand} {line} {letter}{number}"
        for number in range(100, 10_000, 100)
        for letter in "XS"
        for brand in BRANDS
        for line in LINES
    ]
    return random.Random(count).sample(terms, count)


def message(length: int, terms: list[str]) -> str:
    """Customer-service sentences of all languages, with a glossary term every few."""
    rng = random.Random(length)
    sentences = [s for language in load_texts() for s in language]
    parts: list[str] = []
    while sum(map(len, parts)) < length:
        parts.append(rng.choice(sentences))
        if terms and rng.random() < 0.3:
            parts.append(f"{rng.choice(terms)} works.")
    return " ".join(parts)[:length]


def hostile() -> tuple[list[str], str]:
    """1,000 terms of 200 characters sharing a 190-character prefix; the prefix over and
    over (every position starts a near-match that fails late)."""
    prefix = ("botkit enterprise " * 11)[:190]
    terms = [f"{prefix}{i:010d}" for i in range(1000)]
    return terms, (prefix + " ") * (4096 // 191) + prefix[: 4096 % 191]


# Texts that made the number and URL scans quadratic (botkit/language/protect.py).
HOSTILE_TEXTS = {"hostile ids": "a-" * 2048, "hostile url": "http://x" + ")" * 4088}


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(terms: list[str], text: str, repeat: int) -> dict[str, float]:
    re.purge()  # compile_ms is a compile, not a look-up in re's cache
    start = time.perf_counter()
    glossary = Glossary(terms)
    compile_ms = (time.perf_counter() - start) * 1000
    return {
        "compile_ms": compile_ms,
        "detection_text_ms": median_ms(lambda: detection_text(text[:2000], glossary), repeat),
        "protect_ms": median_ms(lambda: protect(text, glossary), repeat),
        "split_sentences_ms": median_ms(lambda: split_sentences(text, glossary=glossary), repeat),
    }


def run(repeat: int) -> dict[str, Any]:
    rows = []
    for size in SIZES:
        terms = glossary_terms(size)
        for length in LENGTHS:
            rows.append(
                {"terms": size, "chars": length, **measure(terms, message(length, terms), repeat)}
            )
    for case, text in HOSTILE_TEXTS.items():  # the other scans, without a glossary
        rows.append({"terms": 0, "chars": len(text), "case": case, **measure([], text, repeat)})
    terms, text = hostile()
    rows.append(
        {"terms": len(terms), "chars": len(text), "case": "hostile", **measure(terms, text, repeat)}
    )
    return {
        "benchmark": "language-glossary",
        **machine_facts(),
        "repeat": repeat,
        "note": "detection_text runs on text[:2000] (the middleware's default cut)",
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    header = ["terms", "chars", "case", "compile ms", "detection_text ms", "protect ms", "split ms"]
    body = [
        [
            str(r["terms"]),
            str(r["chars"]),
            r.get("case", "catalogue"),
            f"{r['compile_ms']:.1f}",
            f"{r['detection_text_ms']:.2f}",
            f"{r['protect_ms']:.2f}",
            f"{r['split_sentences_ms']:.2f}",
        ]
        for r in result["rows"]
    ]
    print_rows([header, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="calls per cell (median)")
    parser.add_argument("--out", default=str(RESULTS), help="JSON path, or - for none")
    args = parser.parse_args()
    write_result(args, run(args.repeat), print_table)


if __name__ == "__main__":
    main()
