"""Language benchmark: detection throughput and accuracy on the parallel customer-service set.

The messages are ``tests/data/customer_service_parallel.jsonl`` (64 messages x 10
languages; see ``tests/data/README.md``). Each message goes through what the language
middleware does: ``detection_text`` (protected spans out), ``count_letters``, the
detector, ``decide_language``.

Measured:
  * profile load: langdetect reading its 55 profiles (once per process);
  * throughput, messages/s: the detector alone without its cache (a fresh detector per
    pass, so every message is new to it), the detector answering from its cache (a
    customer repeating a message), and the whole middleware decision (no store);
    overall and per language (the cost grows with length and differs by script);
  * accuracy per language: top guess on messages of 20+ characters (issue 6's target:
    >= 97% overall) and on all messages; how many messages shorter than that flip an
    established conversation (the sticky rule should keep all of them); how many 20+
    character messages switch a conversation that was in another language, and how many
    switch it to a wrong one.

    python benchmarks/language.py              # writes results/language-cpu.json + table
    python benchmarks/language.py --repeat 1 --out -   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # run from a source checkout

from _output import write_result  # noqa: E402  (this script's folder)

from botkit.language import (  # noqa: E402
    DetectorSettings,
    LangdetectDetector,
    LanguageDecision,
    count_letters,
    decide_language,
    detection_text,
)

DATA = _ROOT / "tests" / "data" / "customer_service_parallel.jsonl"
RESULTS = Path(__file__).resolve().parent / "results" / "language-cpu.json"
LONG = 20  # characters
TARGET = 0.97
WORKING = "en"


def load(path: Path) -> dict[str, list[str]]:
    """Messages by language tag, in file order."""
    found: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        found[record["lang"]].append(record["text"])
    return dict(sorted(found.items()))


def timed(fn: Callable[[], None], repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decide(
    detector: LangdetectDetector, rules: DetectorSettings, text: str, current: str | None
) -> LanguageDecision:
    """The language middleware's decision for ``text`` (see LanguageDetectionMiddleware)."""
    seen = detection_text(text[: rules.max_chars * 2])
    letters = count_letters(seen)
    guesses = detector.detect(seen) if letters >= rules.min_letters else []
    return decide_language(
        guesses=guesses, letters=letters, current=current, seed=None, working=WORKING,
        settings=rules,
    )  # fmt: skip


def throughput(texts: list[str], rules: DetectorSettings, repeat: int) -> dict[str, float]:
    stripped = [detection_text(t) for t in texts]

    def uncached() -> None:
        detector = LangdetectDetector(seed=rules.seed, max_chars=rules.max_chars)
        for text in stripped:
            detector.detect(text)

    warm = LangdetectDetector(seed=rules.seed, max_chars=rules.max_chars)
    for text in stripped:
        warm.detect(text)

    def cached() -> None:
        for text in stripped:
            warm.detect(text)

    def middleware() -> None:
        detector = LangdetectDetector(seed=rules.seed, max_chars=rules.max_chars)
        for text in texts:
            decide(detector, rules, text, None)

    n = len(texts)
    return {
        "detect_msg_s": round(n / timed(uncached, repeat), 1),
        "detect_cached_msg_s": round(n / timed(cached, repeat), 1),
        "middleware_msg_s": round(n / timed(middleware, repeat), 1),
    }


def accuracy(lang: str, texts: list[str], rules: DetectorSettings) -> dict[str, Any]:
    detector = LangdetectDetector(seed=rules.seed, max_chars=rules.max_chars)

    def top(text: str) -> str | None:
        guesses = detector.detect(detection_text(text))
        return guesses[0].language if guesses else None

    long = [t for t in texts if len(t) >= LONG]
    short = [t for t in texts if len(t) < LONG]
    other = "fr" if lang == "en" else "en"
    switches = [decide(detector, rules, t, other) for t in long]
    misses = [{"text": t, "detected": top(t)} for t in long if top(t) != lang]
    return {
        "messages": len(texts),
        "long_messages": len(long),
        "long_correct": len(long) - len(misses),
        "long_accuracy": round((len(long) - len(misses)) / len(long), 4) if long else None,
        "all_accuracy": round(sum(top(t) == lang for t in texts) / len(texts), 4),
        "short_messages": len(short),
        "short_flipped": sum(decide(detector, rules, t, lang).language != lang for t in short),
        "long_switched": sum(d.language == lang for d in switches),
        "long_switched_wrongly": sum(
            d.detected is not None and d.language != lang for d in switches
        ),
        "long_misses": misses,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    rules = DetectorSettings()
    data = load(Path(args.data))
    start = time.perf_counter()
    LangdetectDetector().load()
    load_s = time.perf_counter() - start
    every = [t for texts in data.values() for t in texts]
    per_language = {}
    for lang, texts in data.items():
        per_language[lang] = {
            **throughput(texts, rules, args.repeat),
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
            **accuracy(lang, texts, rules),
        }
    long_total = sum(r["long_messages"] for r in per_language.values())
    long_correct = sum(r["long_correct"] for r in per_language.values())
    overall = {
        **throughput(every, rules, args.repeat),
        "mean_chars": round(sum(map(len, every)) / len(every), 1),
        "messages": len(every),
        "long_messages": long_total,
        "long_correct": long_correct,
        "long_accuracy": round(long_correct / long_total, 4),
        "all_accuracy": round(
            sum(r["all_accuracy"] * r["messages"] for r in per_language.values()) / len(every), 4
        ),
        "short_messages": sum(r["short_messages"] for r in per_language.values()),
        "short_flipped": sum(r["short_flipped"] for r in per_language.values()),
        "long_switched": sum(r["long_switched"] for r in per_language.values()),
        "long_switched_wrongly": sum(r["long_switched_wrongly"] for r in per_language.values()),
    }
    return {
        "benchmark": "language",
        "detector": {"kind": "langdetect", **rules.model_dump(exclude={"kind"})},
        "data": {"file": Path(args.data).name, "languages": list(data)},
        "long_chars": LONG,
        "target_long_accuracy": TARGET,
        "meets_target": overall["long_accuracy"] >= TARGET,
        "repeat": args.repeat,
        "profile_load_s": round(load_s, 3),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "overall": overall,
        "languages": per_language,
    }


def print_table(result: dict[str, Any]) -> None:
    long = f"{LONG}+"
    header = (
        "language", "msgs", "chars", "detect/s", "cached/s", "mw/s",
        f"{long} msgs", f"{long} acc", "all acc", "short flips", "switched", "wrong",
    )  # fmt: skip
    rows = [header]
    entries = [*result["languages"].items(), ("all", result["overall"])]
    for lang, r in entries:
        rows.append(
            (
                lang,
                str(r["messages"]),
                f"{r['mean_chars']:.0f}",
                f"{r['detect_msg_s']:.0f}",
                f"{r['detect_cached_msg_s']:.0f}",
                f"{r['middleware_msg_s']:.0f}",
                str(r["long_messages"]),
                f"{r['long_accuracy']:.1%}",
                f"{r['all_accuracy']:.1%}",
                f"{r['short_flipped']}/{r['short_messages']}",
                f"{r['long_switched']}/{r['long_messages']}",
                str(r["long_switched_wrongly"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n in (0, len(rows) - 2):
            print("  ".join("-" * w for w in widths))
    print(f"profile load {result['profile_load_s']:.2f} s; {LONG}+ character accuracy "
          f"{result['overall']['long_accuracy']:.1%} (target {TARGET:.0%}: "
          f"{'met' if result['meets_target'] else 'NOT met'})")  # fmt: skip
    for lang, r in result["languages"].items():
        for miss in r["long_misses"]:
            print(f"  miss {lang}: {miss['text']!r} -> {miss['detected']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA), help="JSONL: id, lang, text per line")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes (median)")
    parser.add_argument("--out", default=str(RESULTS), help="JSON file, or - for none")
    args = parser.parse_args()
    write_result(args, run(args), print_table)


if __name__ == "__main__":
    main()
