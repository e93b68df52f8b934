"""Overlapped decode steps: the engine queues the next decode step on the device before
it reads the current step's tokens (``LLMEngine.step``, ``Scheduler.schedule_ahead``,
``ModelRunner.launch_fed``). On the CPU the graphed decode path runs eagerly on the same
static inputs, so these tests drive the code CUDA runs, and check that every request gets
exactly the tokens, text and ending it gets without overlapping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from hf_tiny import build_pair, build_tokenizer

from engine import EngineConfig, LLMEngine, SamplingParams
from engine.block_manager import BlockManager
from engine.request import FinishReason, Sequence
from engine.runner import ModelRunner, SampledTokens
from engine.sampler import SAMPLING_FAILED
from engine.scheduler import Scheduler, SchedulerConfig

PROMPTS = [[9, 8, 7], list(range(50, 61)), [4, 5, 6, 7, 8], [200, 201, 7, 3]]


def greedy(n: int) -> SamplingParams:
    return SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)


@dataclass
class Run:
    """What each request streamed: text, tokens, and its final output(s)."""

    text: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    endings: dict[str, list[FinishReason | None]] = field(default_factory=dict)
    fed_steps: int = 0

    def same_as(self, other: Run) -> bool:
        return (self.text, self.tokens, self.endings) == (other.text, other.tokens,
                                                          other.endings)  # fmt: skip


def make_engine(*, overlap: bool, num_kv_blocks: int = 64, device: str = "cpu",
                **cfg: Any) -> LLMEngine:  # fmt: skip
    _, model = build_pair("llama-gqa-llama3-rope")
    engine = LLMEngine(model.to(device), build_tokenizer(), model.config,
                       EngineConfig(block_size=4, num_kv_blocks=num_kv_blocks,
                                    overlap_steps=overlap, **cfg))  # fmt: skip
    if device == "cpu":
        engine.runner.cpu_decoder = None  # decode on the graphed path, as CUDA does
        engine.runner.use_graphs(capture=False)
    return engine


def drive(engine: LLMEngine, requests: dict[str, tuple[list[int], SamplingParams]], *,
          events: dict[int, Callable[[LLMEngine], None]] | None = None) -> Run:
    """Add ``requests``, step to the end (running ``events[i]`` before step ``i``), and
    check nothing is left behind: no queued step, every KV block back in the pool."""
    run = Run()
    fed = engine.runner.launch_fed

    def counted(*args: Any) -> Any:
        run.fed_steps += 1
        return fed(*args)

    engine.runner.launch_fed = counted  # type: ignore[method-assign]
    for rid, (prompt, params) in requests.items():
        engine.add_request(rid, prompt, params)
        run.text[rid], run.tokens[rid], run.endings[rid] = "", [], []
    step = 0
    while engine.has_unfinished():
        if events and step in events:
            events[step](engine)
        for o in engine.step():
            run.text.setdefault(o.request_id, "")
            run.text[o.request_id] += o.text
            run.tokens.setdefault(o.request_id, []).extend(o.token_ids)
            if o.finished:
                run.endings.setdefault(o.request_id, []).append(o.finish_reason)
        step += 1
        assert step < 500, "the engine never finished"
    assert engine._ahead is None
    bm = engine.block_manager
    assert bm.num_free_blocks == bm.num_blocks
    return run


DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")])]


@pytest.mark.parametrize("device", DEVICES)
def test_overlapped_steps_stream_what_plain_steps_stream(device: str) -> None:
    """Greedy, seeded sampling with top-k/top-p and a repetition penalty, replies cut by
    max_new_tokens at different steps, a stop token and a stop string found only after
    the next step was queued: the same tokens, text and endings either way. On CUDA the
    decode steps replay captured graphs and the tokens reach the host asynchronously."""
    reference = drive(make_engine(overlap=False, device=device), {
        f"r{i}": (p, greedy(12)) for i, p in enumerate(PROMPTS)})  # fmt: skip
    stop_token = reference.tokens["r1"][5]
    text = reference.text["r2"]
    stop_text = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop_text.strip(), f"no usable stop string in {text!r}"
    sampled = SamplingParams(temperature=0.8, top_k=40, top_p=0.9, repetition_penalty=1.3,
                             seed=7, max_new_tokens=9, ignore_eos=True)  # fmt: skip
    requests = {
        "short": (PROMPTS[0], greedy(3)),
        "stop-token": (PROMPTS[1], SamplingParams(temperature=0, max_new_tokens=12,
                                                  stop_token_ids=[stop_token])),
        "stop-text": (PROMPTS[2], SamplingParams(temperature=0, max_new_tokens=12,
                                                 stop=[stop_text], ignore_eos=True)),
        "sampled": (PROMPTS[3], sampled),
        "long": (PROMPTS[1], greedy(15)),
    }
    plain = drive(make_engine(overlap=False, device=device), requests)
    overlapped = drive(make_engine(overlap=True, device=device), requests)
    assert plain.fed_steps == 0
    assert overlapped.fed_steps >= 10
    assert overlapped.same_as(plain), (overlapped, plain)
    assert plain.endings["stop-token"] == [FinishReason.STOP]
    assert plain.endings["stop-text"] == [FinishReason.STOP]
    assert stop_text not in plain.text["stop-text"]
    assert plain.endings["short"] == plain.endings["long"] == [FinishReason.LENGTH]
    assert len(plain.tokens["long"]) == 15


def test_the_next_step_is_queued_before_the_host_waits_for_tokens() -> None:
    """The point of overlapping: in a steady decode, each step's fed successor is
    launched before that step's tokens are read."""
    engine = make_engine(overlap=True)
    order: list[str] = []
    fed = engine.runner.launch_fed
    real_result = SampledTokens.result

    def launch_fed(*args: Any) -> SampledTokens:
        order.append("launch next")
        return fed(*args)

    def result(self: SampledTokens) -> list[int]:
        order.append("read tokens")
        return real_result(self)

    engine.runner.launch_fed = launch_fed  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SampledTokens, "result", result)
        engine.add_request("r", PROMPTS[0], greedy(6))
        while engine.has_unfinished():
            engine.step()
    # The prefill step and the first decode are planned plainly; decodes 2-5 are fed,
    # each launched before its predecessor's tokens are read. Nothing is planned after
    # the 5th decode: its token is the 6th, the last max_new_tokens allows.
    assert order == ["read tokens", "launch next", "read tokens", "launch next",
                     "read tokens", "launch next", "read tokens", "launch next",
                     "read tokens", "read tokens"]


def test_an_abort_while_a_step_is_queued_ends_that_reply_once() -> None:
    requests = {f"r{i}": (p, greedy(14)) for i, p in enumerate(PROMPTS)}

    def abort(engine: LLMEngine) -> None:
        assert engine._ahead is not None  # r1 is in the queued step
        assert engine.abort_request("r1")

    plain = drive(make_engine(overlap=False), requests, events={6: abort_plain})
    overlapped = drive(make_engine(overlap=True), requests, events={6: abort})
    assert overlapped.endings["r1"] == [FinishReason.ABORT]
    assert overlapped.fed_steps >= 8
    for rid in ("r0", "r2", "r3"):
        assert overlapped.tokens[rid] == plain.tokens[rid]
        assert len(overlapped.tokens[rid]) == 14
    # An abort takes effect at once: r1 got no token after it in either engine.
    assert overlapped.tokens["r1"] == plain.tokens["r1"]


def abort_plain(engine: LLMEngine) -> None:
    assert engine.abort_request("r1")


def test_a_request_arriving_mid_reply_is_admitted_and_gets_its_own_tokens() -> None:
    alone = drive(make_engine(overlap=True), {"late": (PROMPTS[2], greedy(8))})

    def arrive(engine: LLMEngine) -> None:
        engine.add_request("late", PROMPTS[2], greedy(8))

    run = drive(make_engine(overlap=True),
                {"r0": (PROMPTS[0], greedy(16)), "r1": (PROMPTS[3], greedy(16))},
                events={5: arrive})  # fmt: skip
    assert run.tokens["late"] == alone.tokens["late"]
    assert run.endings["late"] == [FinishReason.LENGTH]
    assert run.fed_steps >= 10


def test_a_full_pool_falls_back_to_preemption_with_the_same_tokens() -> None:
    """12 blocks of 4 tokens for three replies growing to 23-27 tokens: the queued step
    cannot always get its block, so planning falls back to the normal schedule, which
    preempts; every reply still gets the tokens it gets alone."""
    requests = {f"r{i}": (p, greedy(16)) for i, p in enumerate(PROMPTS[:3])}
    alone = {rid: drive(make_engine(overlap=False), {rid: r}).tokens[rid]
             for rid, r in requests.items()}
    engine = make_engine(overlap=True, num_kv_blocks=12)
    run = drive(engine, requests)
    assert engine.scheduler.num_preemptions > 0
    assert run.fed_steps > 0
    assert run.tokens == alone


def test_a_row_that_failed_to_sample_ends_only_its_request() -> None:
    """A failed row's token (SAMPLING_FAILED, -1) is already fed to the queued step when
    the engine sees it: that step reads token 0 instead of an out-of-range id, and only
    the failed request ends (with an error), once."""
    engine = make_engine(overlap=True)
    sampler = engine.runner.sampler
    real = sampler.__call__
    calls = {"n": 0}

    def failing_once(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        tokens = real(logits, seqs)
        calls["n"] += 1
        if calls["n"] == 4:
            row = next(i for i, s in enumerate(seqs) if s.request_id == "r2")
            seqs[row].extra["sampling_error"] = ValueError("bad row")
            tokens = tokens.clone()
            tokens[row] = SAMPLING_FAILED
        return tokens

    engine.runner.sampler = failing_once  # type: ignore[assignment]
    requests = {f"r{i}": (p, greedy(10)) for i, p in enumerate(PROMPTS)}
    run = drive(engine, requests)
    plain = drive(make_engine(overlap=False), requests)
    assert run.endings["r2"] == [FinishReason.ERROR]
    # The prefill's token and two decodes' (the second from a queued step), then none.
    assert run.tokens["r2"] == plain.tokens["r2"][:3]
    for rid in ("r0", "r1", "r3"):
        assert run.tokens[rid] == plain.tokens[rid]


def test_overlap_needs_the_graphed_decode_path() -> None:
    """On the CPU's lean decoder (the default there) nothing is fed: overlapping gains
    nothing without a device running ahead of the host."""
    _, model = build_pair("llama-gqa-llama3-rope")
    engine = LLMEngine(model, build_tokenizer(), model.config,
                       EngineConfig(block_size=4, num_kv_blocks=64))  # fmt: skip
    assert engine.config.overlap_steps
    assert not engine.runner.can_feed(1)
    run = drive(engine, {"r0": (PROMPTS[0], greedy(6))})
    assert run.fed_steps == 0 and len(run.tokens["r0"]) == 6
    graphed = make_engine(overlap=True)
    runner: ModelRunner = graphed.runner
    assert runner.graphs is not None
    assert runner.can_feed(1) and runner.can_feed(runner.graphs.buckets[-1])
    assert not runner.can_feed(0) and not runner.can_feed(runner.graphs.buckets[-1] + 1)


# ------------------------------------------------------------------ the scheduler alone
def _scheduler(num_blocks: int = 32) -> Scheduler:
    return Scheduler(SchedulerConfig(max_model_len=64, max_num_seqs=8,
                                     max_num_batched_tokens=64),
                     BlockManager(num_blocks, 4))  # fmt: skip


def _decoding(s: Scheduler, *lengths: int, max_new: int = 10) -> list[Sequence]:
    """Sequences with prompts of ``lengths`` tokens, prefilled and one token in."""
    seqs = []
    for i, n in enumerate(lengths):
        seq = Sequence(request_id=f"s{i}", prompt_token_ids=list(range(1, n + 1)),
                       params=SamplingParams(temperature=0, max_new_tokens=max_new),
                       max_total_tokens=64, eos_token_ids=frozenset())  # fmt: skip
        s.add(seq)
        seqs.append(seq)
    first = s.schedule()
    s.update(first, [7] * len(first.sampling))
    return seqs


def test_schedule_ahead_plans_the_next_position_of_each_decoding_sequence() -> None:
    s = _scheduler()
    a, b = _decoding(s, 3, 4)
    out = s.schedule()  # a computes position 3, the end of its block; b position 4
    assert [e.start for e in out.decodes] == [3, 4]
    planned = s.schedule_ahead(out)
    assert planned is not None
    ahead, rows = planned
    assert rows == [0, 1]
    assert [(e.seq, e.start, e.num_tokens, e.sample) for e in ahead.decodes] == [
        (a, 4, 1, True), (b, 5, 1, True)]
    assert len(a.block_table) == 2 and len(b.block_table) == 2  # a's second is new
    assert a.num_computed_tokens == 3  # nothing applied yet
    s.update(out, [8, 9])
    s.update(ahead, [10, 11])
    assert a.output_token_ids == [7, 8, 10] and a.num_computed_tokens == 5


def test_schedule_ahead_leaves_out_what_ends_and_refuses_what_it_cannot_decide() -> None:
    s = _scheduler()
    a, b = _decoding(s, 3, 3, max_new=2)  # out's token is the last one both may have
    out = s.schedule()
    assert s.schedule_ahead(out) is None  # nothing left to plan
    s.update(out, [1, 2])
    assert a.is_finished and b.is_finished

    s = _scheduler()
    a, b = _decoding(s, 3, 4)
    out = s.schedule()
    s.finish(a, FinishReason.STOP)  # e.g. a stop string, seen after ``out`` was planned
    planned = s.schedule_ahead(out)
    assert planned is not None and [e.seq for e in planned[0].decodes] == [b]

    waiting = Sequence(request_id="w", prompt_token_ids=[1, 2], params=SamplingParams(),
                       max_total_tokens=64, eos_token_ids=frozenset())  # fmt: skip
    s.add(waiting)
    assert s.schedule_ahead(out) is None  # a waiting request is admitted first

    s = _scheduler()
    _decoding(s, 3, 4)
    out = s.schedule()
    s.abort("s0")
    assert s.schedule_ahead(out) is None  # the abort is reported by a normal step


@pytest.mark.parametrize("free_after", [0, 1])
def test_schedule_ahead_gives_way_to_preemption_when_blocks_run_out(free_after: int) -> None:
    s = _scheduler(num_blocks=3)
    a, b = _decoding(s, 3, 7)  # 1 and 2 blocks, each full after ``out``'s position
    out = s.schedule()
    assert s.block_manager.num_free_blocks == 0
    if free_after:
        s.finish(b, FinishReason.STOP)  # its two blocks return: a can grow
        planned = s.schedule_ahead(out)
        assert planned is not None and [e.seq for e in planned[0].decodes] == [a]
    else:
        assert s.schedule_ahead(out) is None
        assert not s.waiting and s.num_preemptions == 0  # nothing decided here


# ------------------------------------------------------------- what the review found
LONG = list(range(100, 112))  # a 12-token prompt


def test_a_one_token_prompt_chunk_is_not_taken_for_a_decode() -> None:
    """With one-token prompt chunks, a prefilling sequence sits among the decodes
    without sampling: nothing may be planned ahead of it (it would be fed another
    request's token, and the wrong K/V would be published to the prefix cache)."""
    requests = {"P": (LONG, greedy(6)), "D": ([42], greedy(1))}
    plain = drive(make_engine(overlap=False, long_prefill_token_threshold=1), requests)
    engine = make_engine(overlap=True, long_prefill_token_threshold=1)
    assert drive(engine, requests).tokens == plain.tokens
    # The prompt's blocks were published: a later request on them gets the same reply.
    later = drive(engine, {"later": (LONG, greedy(6))})
    assert engine.block_manager.prefix_hit_tokens > 0
    assert later.tokens["later"] == plain.tokens["P"]
    budget = {"max_num_seqs": 3, "max_num_batched_tokens": 3}  # a 1-token leftover chunk

    def arrive(e: LLMEngine) -> None:
        e.add_request("late", LONG, greedy(6))

    two = {"r0": (PROMPTS[0], greedy(12)), "r1": (PROMPTS[3], greedy(12))}
    assert (drive(make_engine(overlap=True, **budget), two, events={4: arrive}).tokens
            == drive(make_engine(overlap=False, **budget), two, events={4: arrive}).tokens)


def test_an_interrupted_step_is_recomputed_and_the_engine_goes_on() -> None:
    """Ctrl-C (or a device error) while the host waits for a step's tokens, with the
    next step queued: that step is forgotten, the next one recomputes, and the reply
    is what it is without the interruption; a new request then runs normally."""
    def run(overlap: bool) -> list[int]:
        engine = make_engine(overlap=overlap)
        engine.add_request("r", PROMPTS[0], greedy(8))
        real, calls, tokens = SampledTokens.result, {"n": 0}, []

        def interrupted_once(self: SampledTokens) -> list[int]:
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt
            return real(self)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(SampledTokens, "result", interrupted_once)
            while engine.has_unfinished():
                try:
                    tokens += [t for o in engine.step() for t in o.token_ids]
                except KeyboardInterrupt:
                    assert engine._ahead is None
        assert calls["n"] > 4
        late = drive(engine, {"late": (PROMPTS[1], greedy(4))})
        assert len(late.tokens["late"]) == 4
        return tokens

    plain = run(overlap=False)
    assert len(plain) == 8
    assert run(overlap=True) == plain


def test_a_full_batch_with_a_queue_still_overlaps_and_the_queue_times_out() -> None:
    """Every sequence slot busy and requests queued behind: the queue cannot move, so
    steps are still planned ahead, and a queued request that waits too long is still
    told at once that the engine is busy."""
    requests = {f"r{i}": (p, greedy(10)) for i, p in enumerate(PROMPTS)}
    plain = drive(make_engine(overlap=False, max_num_seqs=2), requests)
    overlapped = drive(make_engine(overlap=True, max_num_seqs=2), requests)
    assert overlapped.same_as(plain)
    pair = drive(make_engine(overlap=True, max_num_seqs=2),
                 {rid: requests[rid] for rid in ("r0", "r1")})  # fmt: skip
    assert overlapped.fed_steps >= 2 * pair.fed_steps  # the first pair fed with a queue too

    engine = make_engine(overlap=True, max_num_seqs=1, queue_timeout_s=5.0)
    now = [100.0]
    engine.scheduler.clock = lambda: now[0]
    engine.add_request("running", PROMPTS[0], greedy(20), arrival_time=now[0])
    engine.step()  # the prompt
    engine.add_request("queued", PROMPTS[1], greedy(4), arrival_time=now[0])
    for _ in range(3):
        engine.step()
    assert engine._ahead is not None  # planning ahead with the queue waiting
    now[0] += 6.0
    ended = [o for _ in range(2) for o in engine.step() if o.request_id == "queued"]
    assert [(o.finished, type(o.error).__name__) for o in ended] == [(True, "EngineBusyError")]
    rest = drive(engine, {})  # "running" goes on to its end; nothing left behind
    assert rest.endings["running"] == [FinishReason.LENGTH]


@pytest.mark.parametrize("overlap", [False, True])
def test_generate_after_a_generate_that_failed(overlap: bool) -> None:
    """Both modes: the first call's aborted requests end in the second call's steps,
    which must not take them for its own."""
    engine = make_engine(overlap=overlap)
    real = engine.runner.sampler.__call__
    calls = {"n": 0}

    def failing_once(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        tokens = real(logits, seqs)
        calls["n"] += 1
        if calls["n"] == 3:
            seqs[0].extra["sampling_error"] = ValueError("bad row")
            tokens = tokens.clone()
            tokens[0] = SAMPLING_FAILED
        return tokens

    engine.runner.sampler = failing_once  # type: ignore[assignment]
    with pytest.raises(Exception, match="sampling failed"):
        engine.generate(PROMPTS[:3], greedy(8))
    assert [len(t) for _, t in engine.generate(PROMPTS[:2], greedy(4))] == [4, 4]


@pytest.mark.parametrize("overlap", [False, True])
def test_an_aborted_request_id_can_be_used_again_at_once(overlap: bool) -> None:
    """Both modes: the aborted request's ending, reported a step later, must not take
    the detokenizer of the new request with the same id."""
    engine = make_engine(overlap=overlap)
    engine.add_request("chat-1", PROMPTS[0], greedy(8))
    for _ in range(3):
        engine.step()
    assert engine.abort_request("chat-1")
    engine.add_request("chat-1", PROMPTS[1], greedy(4))  # the customer retries
    got = []
    while engine.has_unfinished():
        got += [o for o in engine.step() if o.request_id == "chat-1"]
    assert [o.finish_reason for o in got if o.finished] == [FinishReason.ABORT,
                                                           FinishReason.LENGTH]
    assert sum(len(o.token_ids) for o in got) == 4
