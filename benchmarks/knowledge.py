"""Knowledge-base benchmark: what loading the files and searching them per message cost.

Builds a synthetic knowledge base of Markdown files (help-centre style sections made of
the shipped customer-service sentences plus invented product names, so the vocabulary
grows with the size as a real one does), then measures, for each size:

* load: finding, reading, cutting and indexing every file (``load_library``), the work
  done at startup and on each reload, in a worker thread off the event loop;
* search: one message's search and prompt text (``KnowledgeHandler`` does exactly this
  on the event loop for every message the model answers), over the shipped English
  customer questions.

Target (ours; the issues set none): a search costs under 5 ms at p99 for 10,000
passages, small against a generated reply's seconds.

    python benchmarks/knowledge.py          # results/knowledge-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _output import print_rows, write_result  # this script's folder
from _texts import PARALLEL_SET

from botkit.knowledge import KnowledgeConfig, load_library
from botkit.knowledge.plugin import format_passages
from botkit.language.stopwords import stopwords

RESULTS = Path(__file__).resolve().parent / "results" / "knowledge-cpu.json"
SIZES = (1_000, 10_000, 50_000)
SECTIONS_PER_FILE = 20


def english_texts() -> list[str]:
    texts = []
    for line in PARALLEL_SET.read_text(encoding="utf-8").splitlines():
        item = json.loads(line) if line.strip() else None
        if item is not None and item["lang"] == "en":
            texts.append(item["text"])
    return texts


def write_base(directory: Path, passages: int, texts: list[str], seed: int) -> None:
    """``passages`` sections of ~4 sentences in files of ``SECTIONS_PER_FILE``."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ra", "to", "ve", "su", "ne", "pi", "do", "zu", "fe"]
    for file_number in range(0, passages, SECTIONS_PER_FILE):
        lines = [f"# Product line {file_number // SECTIONS_PER_FILE}"]
        for section in range(file_number, min(passages, file_number + SECTIONS_PER_FILE)):
            product = "".join(rng.choices(syllables, k=4)).capitalize()
            lines.append(f"\n## {product} model {section}\n")
            body = [f"The {product} {rng.choice(texts).lower()}" for _ in range(4)]
            lines.append(" ".join(body))
        (directory / f"line-{file_number:06d}.md").write_text("\n".join(lines), encoding="utf-8")


def run_size(passages: int, questions: list[str], repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        write_base(Path(tmp), passages, questions, seed=passages)
        config = KnowledgeConfig(sources=(f"{tmp}/*.md",))
        start = time.perf_counter()
        library = load_library(config, "en")
        load_s = time.perf_counter() - start
    words = stopwords("en")
    samples = []
    found = 0
    for _ in range(repeats):
        for question in questions:
            start = time.perf_counter()
            index = library.index
            hits = index.search(index.query(question, leave_out=words),
                                limit=config.max_passages,
                                min_relevance=config.min_relevance)  # fmt: skip
            format_passages(hits, config.max_context_chars)
            samples.append((time.perf_counter() - start) * 1000)
            found += bool(hits)
    samples.sort()
    return {
        "passages": len(library.index),
        "files": len(library.files),
        "vocabulary": library.index.vocabulary,
        "load_s": load_s,
        "search_p50_ms": statistics.median(samples),
        "search_p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "search_max_ms": samples[-1],
        "questions_with_passages": found / len(samples),
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [("passages", "files", "terms", "load s", "p50 ms", "p99 ms", "max ms", "found")]
    for r in result["runs"]:
        rows.append((
            f"{r['passages']:,}", str(r["files"]), f"{r['vocabulary']:,}", f"{r['load_s']:.2f}",
            f"{r['search_p50_ms']:.3f}", f"{r['search_p99_ms']:.3f}",
            f"{r['search_max_ms']:.3f}", f"{r['questions_with_passages']:.0%}",
        ))  # fmt: skip
    print_rows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=5, help="passes over the questions")
    parser.add_argument("--out", default=str(RESULTS), help="JSON file, - for none")
    args = parser.parse_args()
    questions = english_texts()
    result = {
        "benchmark": "knowledge",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "questions": len(questions),
        "runs": [run_size(size, questions, args.repeats) for size in args.sizes],
    }
    write_result(args, result, print_table)


if __name__ == "__main__":
    main()
