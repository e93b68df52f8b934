"""Web channel benchmark: concurrent widget WebSocket clients against a real bot on loopback.

The server is the real thing: ``Bot`` (echo backend, SQLite/WAL in a temp dir) with the
web connector bound to 127.0.0.1 on a free port. The load generator
(``benchmarks/_web_bench.py``) runs in a separate, spawned process: on this 2-core box
the clients would otherwise share one event loop and one GIL with the server and the
numbers would measure the client as much as the server. Each process gets roughly a
core; both CPU times are reported, so a saturated client is visible.

Per scenario (``--connections``, default 100 and 1,000 open sockets): every socket does
the widget's hello/welcome handshake, sends one warm-up message (the first message of a
conversation also creates its rows), then the clients send ``--rate`` messages/s in
total for ``--duration`` s, open loop (message i goes at start + i/rate on socket
i % connections, so each socket sends at a steady rate/connections per second whether or
not its earlier replies came back). Round trip = from just before the frame is written
to the arrival of the stored reply frame. "Sustained" = replies received while sending,
per second of sending. Every scenario runs on a fresh bot, once with language detection
as configured by default (``language.detector.kind = "auto"``: langdetect) and once with
``"none"``, so the cost of detection is visible.

All clients come from 127.0.0.1, so the per-IP limits (``ip_rate``, ``connect_rate``,
``max_connections_per_ip``) and the per-socket ``connection_rate`` are raised in the
bench config; everything else is the connector's default.

Targets (issue 5): >= 1,000 open connections and >= 800 messages/s with p99 <= 50 ms.

    python benchmarks/web.py                 # full run (~2-3 min), writes results/web-cpu.json
    python benchmarks/web.py --smoke         # < 30 s, prints only
    python benchmarks/web.py --connections 1000 --rate 400 --duration 10 --out -
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import aiohttp
from _web_bench import LoadSpec, raise_fd_limit, run_in_process

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from connectors.web import WebConnector

RESULTS = Path(__file__).resolve().parent / "results" / "web-cpu.json"
SITE_KEY = "bench"
TARGETS = {"open_connections": 1000, "messages_per_s": 800, "p99_ms": 50}
_UNLIMITED = {"rate": 1_000_000, "burst": 1_000_000}
# Only what loopback load needs differs from the defaults (see the module docstring).
WEB_CONFIG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "site_key": SITE_KEY,
    "serve_demo_page": False,
    "connection_rate": _UNLIMITED,
    "ip_rate": _UNLIMITED,
    "connect_rate": _UNLIMITED,
    "max_connections_per_ip": 1_000_000,
}


def settings_for(db: Path, detector: str) -> Settings:
    return settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{db}"},
            "backend": {"kind": "echo"},
            # The per-contact limit stays on (its cost is real) but never triggers.
            "bot": {"rate_limit": {"messages": 1_000_000}},
            "language": {"detector": {"kind": detector}},
            "logging": {"level": "WARNING"},
            "connectors": {"web": WEB_CONFIG},
        },
        environ={},
    )


async def _watch_sockets(connector: WebConnector, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], sum(connector.service.open_sockets.values()))
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def scenario(args: argparse.Namespace, detector: str, connections: int) -> dict[str, Any]:
    """One fresh bot + web server, one load-generator process."""
    load_average = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        async with Bot(settings_for(Path(tmp) / "bench.db", detector)) as bot:
            connector = bot.connectors["web"]
            if not isinstance(connector, WebConnector):
                raise RuntimeError("the web connector did not load")
            await connector.connect()
            peak, stop = [0], asyncio.Event()
            watcher = asyncio.create_task(_watch_sockets(connector, peak, stop))
            cpu0, wall0 = time.process_time(), time.perf_counter()
            try:
                spec = LoadSpec(url=connector.url, site_key=SITE_KEY, connections=connections,
                                rate=args.rate, duration=args.duration, grace=args.grace)  # fmt: skip
                result = await run_in_process(spec)
            finally:
                stop.set()
                await watcher
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                await connector.disconnect()
    lat, client = result["latency_ms"], result["client"]
    result.update(
        detector=detector,
        load_average_at_start=[round(x, 2) for x in load_average],
        server={
            "open_sockets_peak": peak[0],
            "cpu_s": round(cpu, 2),
            "cpu_util": round(cpu / wall, 2),  # 1.0 = one core busy all the time
            "wall_s": round(wall, 2),
        },
    )
    client["cpu_util_measured_phase"] = round(
        client["cpu_s_measured_phase"] / max(client["wall_s_measured_phase"], 1e-9), 2
    )
    result["meets_targets"] = {
        "open_connections": peak[0] >= TARGETS["open_connections"]
        and result["connections_open_at_end"] >= TARGETS["open_connections"],
        "messages_per_s": (result["sustained_msg_s"] or 0) >= TARGETS["messages_per_s"]
        and result["offered_rate_msg_s"] >= TARGETS["messages_per_s"],
        "p99_ms": lat["p99"] is not None
        and lat["p99"] <= TARGETS["p99_ms"]
        and result["unanswered_after_grace"] == 0,
    }
    return result


def machine() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        facts["cpu_model"] = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
            None,
        )
        meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").split()
        facts["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError, StopIteration):
        pass
    return facts


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    load_average = os.getloadavg()
    fds = raise_fd_limit(max(args.connections) + 256)
    runs = []
    for detector in args.detectors:
        for n in args.connections:
            print(f"... detector={detector} connections={n} rate={args.rate:g}/s "
                  f"duration={args.duration:g}s", flush=True)  # fmt: skip
            runs.append(await scenario(args, detector, n))
    n_max = max(args.connections)
    top = [r for r in runs if r["connections"] == n_max]
    return {
        "benchmark": "web",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "load_average_at_start": [round(x, 2) for x in load_average],
        "note": "the box is shared with other work; see load averages before comparing runs",
        "server_fd_limit": fds,
        "config": {
            "backend": "echo (no word delay)",
            "store": "sqlite (WAL, file in a temp dir)",
            "detectors": args.detectors,
            "web": WEB_CONFIG,
            "clients_from": "127.0.0.1 (all of them: per-IP limits raised above)",
            "load_generator": "separate spawned process, one aiohttp ClientSession",
            "connections": args.connections,
            "rate_msg_s": args.rate,
            "duration_s": args.duration,
            "grace_s": args.grace,
            "smoke": args.smoke,
        },
        "targets": TARGETS,
        "targets_met": {
            r["detector"]: all(r["meets_targets"].values()) for r in top
        } if n_max >= TARGETS["open_connections"] else "not measured (fewer connections)",
        "runs": runs,
    }


def print_table(result: dict[str, Any]) -> None:
    head = ("detector", "conns", "offered/s", "sustained/s", "p50 ms", "p90 ms", "p99 ms",
            "max ms", "unanswered", "errors", "srv cpu", "cli cpu", "load")  # fmt: skip
    rows = [head]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for r in result["runs"]:
        lat = r["latency_ms"]
        rows.append((
            r["detector"], str(r["connections_opened"]), f"{r['offered_rate_msg_s']:g}",
            fmt(r["sustained_msg_s"]), fmt(lat["p50"]), fmt(lat["p90"]), fmt(lat["p99"]),
            fmt(lat["max"]), str(r["unanswered_after_grace"]), str(sum(r["errors"].values())),
            f"{r['server']['cpu_util']:.2f}", f"{r['client']['cpu_util_measured_phase']:.2f}",
            f"{r['load_average_at_start'][0]:.1f}",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print("clients: all from 127.0.0.1 (per-IP limits raised in the bench config); load "
          "generator in a separate process; cpu = core-seconds per second (1.0 = one core)")  # fmt: skip
    print(f"load average at start: {result['load_average_at_start']} on "
          f"{result['machine']['cpus']} CPUs (shared box: do not over-interpret)")  # fmt: skip
    for r in result["runs"]:
        met = r["meets_targets"]
        print(f"{r['detector']:>8} {r['connections']:>5} conns: "
              + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))  # fmt: skip
    print(f"targets (>= {TARGETS['open_connections']} connections, >= "
          f"{TARGETS['messages_per_s']} msg/s, p99 <= {TARGETS['p99_ms']} ms): "
          f"{result['targets_met']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", default="100,1000", help="comma-separated scenarios")
    parser.add_argument("--rate", type=float, default=800.0, help="messages/s, all clients")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of sending")
    parser.add_argument("--grace", type=float, default=15.0, help="wait for late replies, s")
    parser.add_argument("--detectors", default="auto,none", help="language.detector.kind list")
    parser.add_argument("--smoke", action="store_true", help="tiny run (< 30 s), prints only")
    parser.add_argument("--out", default=None, help=f"JSON file, or - (default {RESULTS})")
    args = parser.parse_args()
    if args.smoke:
        args.connections, args.rate, args.duration, args.grace = "20", 40.0, 3.0, 5.0
    args.connections = [int(n) for n in str(args.connections).split(",")]
    args.detectors = [d.strip() for d in args.detectors.split(",")]
    if min(args.connections) < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--connections, --rate and --duration must be positive")
    out = args.out or ("-" if args.smoke else str(RESULTS))
    result = asyncio.run(main_async(args))
    print_table(result)
    if out != "-":
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
