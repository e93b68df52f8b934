"""The load generator of ``benchmarks/web.py``: widget-like WebSocket clients (aiohttp).

Runs in its own process (``run_in_process`` starts ``python _web_bench.py SPEC_JSON``
and reads the result as JSON from its stdout) so the clients share neither an event loop
nor the GIL with the server they measure; on a 2-core box each side gets about a core.
Imports only aiohttp and the standard library, so the child starts quickly.

Every client does what the widget does: opens ``/ws``, sends ``hello`` (site key,
``after_seq`` 0, ``lang``), waits for ``welcome`` and then sends ``message`` frames. The
round trip of a message is timed from just before its frame is written to the arrival of
the stored reply (``message`` with ``direction: out`` and ``in_reply_to_seq`` = the
message's ``seq``, learnt from the ack or the echoed inbound frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from _texts import load_texts  # benchmarks/ is on sys.path: this file runs as a script

__all__ = ["LoadSpec", "raise_fd_limit", "run_in_process"]

# Stream frames carry nothing the timing needs; skipping their JSON parse keeps the
# client's cost per frame low (the server writes "type" first, compact separators;
# "stream" also matches "stream_end").
_SKIP = ('{"type":"delta"', '{"type":"stream"')


@dataclass(frozen=True)
class LoadSpec:
    """One scenario: ``connections`` sockets sending ``rate`` messages/s in total."""

    url: str
    site_key: str
    connections: int
    rate: float
    duration: float
    grace: float = 15.0
    connect_concurrency: int = 50


def raise_fd_limit(needed: int) -> dict[str, int]:
    """Raise the soft open-files limit towards ``needed`` (capped by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return {"soft": soft, "hard": hard}


@dataclass
class _Stats:
    sent_at: dict[str, float] = field(default_factory=dict)  # client_id -> send time
    seq_sent: dict[tuple[int, int], float] = field(default_factory=dict)  # (conn, seq)
    early: dict[tuple[int, int], float] = field(default_factory=dict)  # reply before ack
    latencies: list[float] = field(default_factory=list)
    reply_times: list[float] = field(default_factory=list)
    send_times: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    closed: int = 0
    drained: asyncio.Event | None = None  # set by _drain: fires when nothing is due

    def link(self, conn: int, client_id: str | None, seq: int | None) -> None:
        t0 = self.sent_at.pop(client_id, None) if client_id else None
        if t0 is None or not isinstance(seq, int):
            return
        done = self.early.pop((conn, seq), None)
        if done is not None:
            self._record(t0, done)
        else:
            self.seq_sent[(conn, seq)] = t0

    def reply(self, conn: int, seq: Any, now: float) -> None:
        t0 = self.seq_sent.pop((conn, seq), None)
        if t0 is None:
            self.early[(conn, seq)] = now
        else:
            self._record(t0, now)

    def _record(self, t0: float, now: float) -> None:
        self.latencies.append(now - t0)
        self.reply_times.append(now)
        self.send_times.append(t0)
        if self.drained is not None and not self.outstanding:
            self.drained.set()

    @property
    def outstanding(self) -> int:
        return len(self.sent_at) + len(self.seq_sent)


async def _reader(conn: int, ws: aiohttp.ClientWebSocketResponse, box: list[_Stats]) -> None:
    """Reads one socket; ``box[0]`` is the current phase's stats (swapped between phases)."""
    async for msg in ws:
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        stats = box[0]
        stats.frames += 1
        data: str = msg.data
        if data.startswith(_SKIP):
            continue
        frame = json.loads(data)
        kind = frame.get("type")
        if kind == "ack":
            stats.link(conn, frame.get("client_id"), frame.get("seq"))
        elif kind == "message":
            if frame.get("direction") == "out":
                stats.reply(conn, frame.get("in_reply_to_seq"), time.perf_counter())
            else:
                stats.link(conn, frame.get("client_id"), frame.get("seq"))
        elif kind == "error":
            code = str(frame.get("code"))
            stats.errors[code] = stats.errors.get(code, 0) + 1
    box[0].closed += 1


async def _open(
    session: aiohttp.ClientSession, spec: LoadSpec, gate: asyncio.Semaphore
) -> aiohttp.ClientWebSocketResponse:
    async with gate:
        ws = await session.ws_connect(f"{spec.url}/ws", autoclose=False, max_msg_size=0)
        await ws.send_str(json.dumps({"type": "hello", "site_key": spec.site_key,
                                      "after_seq": 0, "lang": "en"}))  # fmt: skip
        welcome = json.loads((await ws.receive(timeout=30)).data)
        if welcome.get("type") != "welcome":
            raise ConnectionError(f"no welcome: {welcome}")
        return ws


async def _send_phase(
    sockets: list[aiohttp.ClientWebSocketResponse],
    stats: _Stats,
    *,
    rate: float,
    count: int,
    tag: str,
) -> dict[str, float]:
    """Open loop: message i is due at start + i/rate on socket i % n (steady per socket)."""
    n, lags = len(sockets), []
    # Socket j writes language j mod 10, its sentences in turn (varied, and repeated as
    # customers do), so language detection really runs.
    texts = load_texts()
    start, cpu0 = time.perf_counter(), time.process_time()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client_id = f"{tag}{i}"
        now = time.perf_counter()
        lags.append(now - due)
        stats.sent_at[client_id] = now
        socket_no, turn = i % n, i // n
        pool = texts[socket_no % len(texts)]
        text = pool[(turn + socket_no // len(texts)) % len(pool)]
        payload = {"type": "message", "client_id": client_id, "text": text}
        await sockets[i % n].send_str(json.dumps(payload))
    lags.sort()
    return {
        "start": start,
        "end": time.perf_counter(),
        "cpu_s": time.process_time() - cpu0,
        "send_lag_p99_ms": lags[int(0.99 * (len(lags) - 1))] * 1000 if lags else 0.0,
    }


async def _drain(stats: _Stats, grace: float) -> None:
    """Wait up to ``grace`` s for the replies still due (sending has finished)."""
    stats.drained = asyncio.Event()
    if stats.outstanding:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stats.drained.wait(), grace)


def _quantiles(values: list[float]) -> dict[str, float | None]:
    xs = sorted(v * 1000 for v in values)
    if not xs:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def pick(q: float) -> float:  # nearest rank
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2)

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": round(xs[-1], 2)}


def _by_second(stats: _Stats, start: float, duration: float) -> list[float]:
    worst = [0.0] * max(1, int(duration + 0.999))
    for t0, lat in zip(stats.send_times, stats.latencies, strict=True):
        i = min(len(worst) - 1, max(0, int(t0 - start)))
        worst[i] = max(worst[i], lat)
    return [round(w * 1000, 1) for w in worst]


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Connect, warm up (one message per socket), measure, drain; returns the numbers."""
    fds = raise_fd_limit(spec.connections + 256)
    cpu0 = time.process_time()
    connector = aiohttp.TCPConnector(limit=0)  # default 100 would cap open sockets
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(spec.connect_concurrency)
        t0 = time.perf_counter()
        opened = await asyncio.gather(
            *(_open(session, spec, gate) for _ in range(spec.connections)), return_exceptions=True
        )
        connect_s = time.perf_counter() - t0
        sockets = [ws for ws in opened if isinstance(ws, aiohttp.ClientWebSocketResponse)]
        failures = sorted(
            {f"{type(e).__name__}: {e}" for e in opened if isinstance(e, BaseException)}
        )
        if not sockets:
            raise ConnectionError(f"no socket opened: {failures[:3]}")
        box = [_Stats()]
        readers = [asyncio.create_task(_reader(i, ws, box)) for i, ws in enumerate(sockets)]
        # Warm-up: the first message of a conversation also creates its rows.
        await _send_phase(sockets, box[0], rate=spec.rate, count=len(sockets), tag="w")
        await _drain(box[0], spec.grace)
        warm_unanswered, warm_errors = box[0].outstanding, box[0].errors
        stats = box[0] = _Stats(closed=box[0].closed)
        count = int(spec.rate * spec.duration)
        phase = await _send_phase(sockets, stats, rate=spec.rate, count=count, tag="m")
        await _drain(stats, spec.grace)
        end = time.perf_counter()
        cpu_total = time.process_time() - cpu0
        open_at_end = sum(not ws.closed for ws in sockets)
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    window = phase["end"] - phase["start"]
    in_window = sum(phase["start"] <= t <= phase["end"] for t in stats.reply_times)
    last = max(stats.reply_times, default=phase["start"])
    return {
        "connections": spec.connections,
        "connections_opened": len(sockets),
        "connect_failures": failures[:5],
        "connections_open_at_end": open_at_end,
        "closed_by_server": stats.closed,
        "connect_all_s": round(connect_s, 3),
        "offered_rate_msg_s": spec.rate,
        "duration_s": spec.duration,
        "window_perf_counter": [phase["start"], phase["end"]],  # CLOCK_MONOTONIC, shared
        "sent": count,
        "replied": len(stats.latencies),
        "unanswered_after_grace": stats.outstanding,
        "warmup_unanswered": warm_unanswered,
        "warmup_errors": warm_errors,
        "errors": stats.errors,
        "sustained_msg_s": round(in_window / window, 1) if window > 0 else None,
        "completed_msg_s": round(len(stats.latencies) / max(last - phase["start"], 1e-9), 1),
        "latency_ms": _quantiles(stats.latencies),
        # Worst round trip of the messages sent in each second: stalls show up here (a
        # shared box's scheduler, GC, SQLite checkpoints) apart from a steady overload;
        # 0.0 where no message of that second was answered.
        "max_ms_by_send_second": _by_second(stats, phase["start"], spec.duration),
        "client": {
            "frames_per_s": round(stats.frames / max(end - phase["start"], 1e-9), 1),
            "send_lag_p99_ms": round(phase["send_lag_p99_ms"], 2),
            # 1.0 = one core busy: near it, the client (not the server) limits the numbers.
            "cpu_util_sending": round(phase["cpu_s"] / window, 2) if window > 0 else 0.0,
            "cpu_s_total": round(cpu_total, 2),
            "fd_limit": fds,
        },
    }


async def run_in_process(spec: LoadSpec) -> dict[str, Any]:
    """Run ``run_load(spec)`` in a child Python process; the caller's loop keeps serving.

    A plain subprocess of this file (not multiprocessing): a spawned multiprocessing
    child re-imports the parent's main module, i.e. the whole bot, for nothing.

    Raises:
        RuntimeError: the load generator failed (its stderr tail is in the message).
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        json.dumps(asdict(spec)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        tail = err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"load generator exited with code {proc.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(out)
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run_load(LoadSpec(**json.loads(sys.argv[1]))))))
