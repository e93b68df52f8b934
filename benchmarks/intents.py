"""Intents benchmark: what recognizing an intent costs, and how often it is right.

Speed: a shop's intents are generated (an action and a product or account object each,
"cancel my subscription", "track my parcel"...; ``--examples`` phrasings and two
keywords per intent) for 10, 100 and 1,000 intents. Measured:

  * setup: building the matcher (what the plugin does at startup), median of
    ``--repeat`` builds, and the memory it holds (``tracemalloc``, a separate build);
  * per-message latency of ``IntentMatcher.match``, p50/p99/max, over realistic short
    messages: paraphrases of the intents with typos (most match), and the 640 messages
    of ``tests/data/customer_service_parallel.jsonl`` (10 languages, most match
    nothing); "one text" is native mode, "two texts" pivot mode (the customer's text
    and a working-language version: a different paraphrase, or the parallel set's
    English sentence);
  * the worst message found: 200 characters of the words most examples share.

Accuracy: the labelled sets in ``_intents_data.py`` (a shop's 12 intents, 51 messages
that express one of them, 60 that express none; and the docs' 4 intents, 18 and 20):
matches and false matches at several thresholds, the plugin's default among them.

    python benchmarks/intents.py               # writes results/intents-cpu.json + table
    python benchmarks/intents.py --repeat 1 --out -   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # run from a source checkout

from _intents_data import (  # noqa: E402  (this script's folder)
    INTENTS,
    NEGATIVES,
    POSITIVES,
    SMALL_INTENTS,
    SMALL_NEGATIVES,
    SMALL_POSITIVES,
)
from _output import write_result  # noqa: E402

from botkit.intents import IntentsConfig  # noqa: E402
from botkit.intents.matching import IntentMatcher, IntentPattern  # noqa: E402
from botkit.language.words import search_terms  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "intents-cpu.json"
PARALLEL = _ROOT / "tests" / "data" / "customer_service_parallel.jsonl"
SIZES = (10, 100, 1000)
THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
DEFAULTS = IntentsConfig()

ACTIONS = (
    "track cancel return exchange change update reset activate renew upgrade downgrade "
    "pause transfer book reschedule confirm repair replace refund pay delete register "
    "download install report check find redeem share verify unlock close reopen extend "
    "split merge print scan ship insure"
).split()
OBJECTS = (
    "order,subscription,password,account,address,payment,invoice,delivery,appointment,"
    "warranty,gift card,voucher,membership,phone number,email address,booking,reservation,"
    "ticket,parcel,loyalty points,insurance,contract,plan,device,router,sim card,app,"
    "newsletter,profile,credit card,bank details,receipt,return label,coupon,wishlist,cart,"
    "package,laptop,phone,tablet,printer,headphones,tv,camera,watch,bike,sofa,mattress,"
    "fridge,oven"
).split(",")
EXAMPLES = (
    "I want to {a} my {o}", "how do I {a} my {o}?", "can you help me {a} my {o}",
    "{a} {o}", "I need to {a} the {o}", "is it possible to {a} my {o}?",
    "where can I {a} my {o}", "please {a} my {o}", "I'd like to {a} my {o}",
    "help with {a} {o}", "{a} my {o} online", "what do I need to {a} a {o}",
)  # fmt: skip
MESSAGES = (
    "hi, could you {a} my {o} please", "{a} my {o} asap", "hw do i {a} my {o}",
    "i would like to {a} {o}", "{o} - {a}?", "Hello! I need help to {a} my {o}.",
)  # fmt: skip


def shop(size: int, examples: int) -> list[IntentPattern]:
    """``size`` intents of ``examples`` phrasings and two keywords each."""
    pairs = [(a, o) for o in OBJECTS for a in ACTIONS]
    random.Random(7).shuffle(pairs)
    return [
        IntentPattern(
            f"{a}_{o}".replace(" ", "_"),
            tuple(t.format(a=a, o=o) for t in EXAMPLES[:examples]),
            (f"{a}-{o}", f"{o} {a}ing"),
        )
        for a, o in pairs[:size]
    ]


def parallel() -> tuple[list[str], dict[str, str]]:
    """The parallel set's messages, and each one's English version."""
    records = [json.loads(line) for line in PARALLEL.read_text("utf-8").splitlines() if line]
    english = {r["id"]: r["text"] for r in records if r["lang"] == "en"}
    return [r["text"] for r in records], {r["text"]: english[r["id"]] for r in records}


Message = tuple[str, str, str | None]  # customer's text, working-language text, intent


def messages(patterns: list[IntentPattern], count: int) -> list[Message]:
    """``count`` paraphrases of the intents with a typo, then the parallel set (no
    intent of the generated shop)."""
    rng = random.Random(1)
    found: list[Message] = []
    for _ in range(count):
        name = rng.choice(patterns).name
        a, o = name.split("_", 1)
        text, other = (t.format(a=a, o=o.replace("_", " ")) for t in rng.sample(MESSAGES, 2))
        cut = rng.randrange(len(text))  # one typo: a character dropped
        found.append((text[:cut] + text[cut + 1 :], other, name))
    texts, english = parallel()
    return found + [(t, english[t], None) for t in texts]


def worst_message(patterns: list[IntentPattern], chars: int) -> str:
    """The words most examples share, up to ``chars`` characters."""
    counts = Counter(w for p in patterns for e in p.examples for w in set(search_terms(e)))
    words: list[str] = []
    for word, _ in counts.most_common():
        if len(" ".join([*words, word])) > chars:
            break
        words.append(word)
    return " ".join(words)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latencies(matcher: IntentMatcher, pairs: list[Message], both: bool) -> dict[str, Any]:
    for text, other, _ in pairs:  # warm up
        matcher.match(text, other) if both else matcher.match(text)
    samples = []
    outcome: Counter[str] = Counter()
    for text, other, want in pairs:
        start = time.perf_counter_ns()
        found = matcher.match(text, other) if both else matcher.match(text)
        samples.append((time.perf_counter_ns() - start) / 1000)
        if want is None:
            outcome["other_matched" if found else "other_unmatched"] += 1
        else:
            got = "none" if found is None else "right" if found.name == want else "wrong"
            outcome[f"paraphrase_{got}"] += 1
    samples.sort()
    return {
        "p50_us": round(percentile(samples, 0.5), 1),
        "p99_us": round(percentile(samples, 0.99), 1),
        "max_us": round(samples[-1], 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "messages": len(pairs),
        **{
            k: outcome[k]
            for k in (
                "paraphrase_right",
                "paraphrase_wrong",
                "paraphrase_none",
                "other_matched",
                "other_unmatched",
            )
        },
    }


def speed(size: int, examples: int, repeat: int) -> dict[str, Any]:
    patterns = shop(size, examples)

    def build() -> IntentMatcher:
        return IntentMatcher(
            patterns, min_similarity=DEFAULTS.min_similarity, max_chars=DEFAULTS.max_chars
        )

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        matcher = build()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    held = build()
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    pairs = messages(patterns, 300)
    # Without keywords: one in the commonest words would end the search early.
    plain = IntentMatcher(
        [IntentPattern(p.name, p.examples) for p in patterns],
        min_similarity=DEFAULTS.min_similarity,
        max_chars=DEFAULTS.max_chars,
    )
    worst = worst_message(patterns, DEFAULTS.max_chars)
    worst_us = []
    for _ in range(20):
        start = time.perf_counter_ns()
        plain.match(worst)
        worst_us.append((time.perf_counter_ns() - start) / 1000)
    return {
        "intents": size,
        "examples": size * examples,
        "keywords": size * 2,
        "setup_s": round(statistics.median(times), 4),
        "memory_mb": round(memory / 1e6, 1),
        "one_text": latencies(matcher, pairs, both=False),
        "two_texts": latencies(matcher, pairs, both=True),
        "worst_message_chars": len(worst),
        "worst_message_us": round(statistics.median(worst_us), 1),
    }


def accuracy(
    intents: dict[str, list[str]], positives_set: list[tuple[str, str]], negatives_set: list[str]
) -> dict[str, Any]:
    patterns = [IntentPattern(name, tuple(examples)) for name, examples in intents.items()]
    matcher = IntentMatcher(patterns, min_similarity=0.01, max_chars=DEFAULTS.max_chars)
    positives = [(matcher.match(text), want) for text, want in positives_set]
    negatives = [matcher.match(text) for text in negatives_set]
    rows = []
    for threshold in THRESHOLDS:
        right = sum(1 for m, want in positives if m and m.score >= threshold and m.name == want)
        wrong = sum(1 for m, want in positives if m and m.score >= threshold and m.name != want)
        false = sum(1 for m in negatives if m and m.score >= threshold)
        rows.append({"threshold": threshold, "right": right, "wrong_intent": wrong,
                     "false_matches": false})  # fmt: skip
    return {
        "intents": len(patterns),
        "examples": sum(len(e) for e in intents.values()),
        "positives": len(positives_set),
        "negatives": len(negatives_set),
        "default_threshold": DEFAULTS.min_similarity,
        "by_threshold": rows,
        "missed_at_default": [
            {
                "text": t,
                "want": w,
                "score": round(m.score, 3) if m else 0.0,
                "got": m.name if m else None,
            }
            for (t, w), (m, _) in zip(positives_set, positives, strict=True)
            if not m or m.score < DEFAULTS.min_similarity or m.name != w
        ],
        "false_at_default": [
            {"text": t, "score": round(m.score, 3), "got": m.name}
            for t, m in zip(negatives_set, negatives, strict=True)
            if m and m.score >= DEFAULTS.min_similarity
        ],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": "intents",
        "defaults": {"min_similarity": DEFAULTS.min_similarity, "max_chars": DEFAULTS.max_chars},
        "examples_per_intent": args.examples,
        "repeat": args.repeat,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "speed": [speed(size, args.examples, args.repeat) for size in SIZES],
        "accuracy": accuracy(INTENTS, POSITIVES, NEGATIVES),
        "accuracy_small": accuracy(SMALL_INTENTS, SMALL_POSITIVES, SMALL_NEGATIVES),
    }


def print_table(result: dict[str, Any]) -> None:
    header = ("intents", "examples", "setup s", "MB", "1 text p50 us", "p99 us",
              "2 texts p50 us", "p99 us", "worst us", "paraphrases right/wrong",
              "others matched")  # fmt: skip
    rows = [header]
    for r in result["speed"]:
        one, two = r["one_text"], r["two_texts"]
        paraphrases = one["paraphrase_right"] + one["paraphrase_wrong"] + one["paraphrase_none"]
        others = one["other_matched"] + one["other_unmatched"]
        cells = (
            r["intents"], r["examples"], f"{r['setup_s']:.3f}", f"{r['memory_mb']:.1f}",
            f"{one['p50_us']:.0f}", f"{one['p99_us']:.0f}", f"{two['p50_us']:.0f}",
            f"{two['p99_us']:.0f}", f"{r['worst_message_us']:.0f}",
            f"{one['paraphrase_right']}/{one['paraphrase_wrong']} of {paraphrases}",
            f"{one['other_matched']}/{others}",
        )  # fmt: skip
        rows.append(tuple(map(str, cells)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for key in ("accuracy", "accuracy_small"):
        acc = result[key]
        print(f"\n{key}: {acc['intents']} intents, {acc['positives']} messages with an "
              f"intent, {acc['negatives']} without")  # fmt: skip
        for row in acc["by_threshold"]:
            mark = "  (default)" if row["threshold"] == acc["default_threshold"] else ""
            print(f"  min_similarity {row['threshold']:.2f}: right {row['right']}/"
                  f"{acc['positives']}, wrong intent {row['wrong_intent']}, false matches "
                  f"{row['false_matches']}/{acc['negatives']}{mark}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=10, help="examples per intent")
    parser.add_argument("--repeat", type=int, default=3, help="setup builds timed (median)")
    parser.add_argument("--out", default=str(RESULTS), help="JSON file, or - for none")
    args = parser.parse_args()
    write_result(args, run(args), print_table)


if __name__ == "__main__":
    main()
