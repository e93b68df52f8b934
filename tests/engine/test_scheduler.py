"""Scheduler behaviour without a model: the runner is simulated by handing back tokens."""

from __future__ import annotations

import random
import zlib

import pytest

from engine.block_manager import BlockManager
from engine.request import FinishReason, Sequence, SequenceStatus
from engine.request_errors import EngineBusyError, InvalidRequestError
from engine.sampling import SamplingParams
from engine.scheduler import Scheduler, SchedulerConfig, SchedulerOutput

BS = 4
EOS = 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(num_blocks: int = 64, clock: Clock | None = None, **cfg: object) -> Scheduler:
    config = SchedulerConfig(**{"max_model_len": 1024, **cfg})  # type: ignore[arg-type]
    return Scheduler(config, BlockManager(num_blocks, BS), clock or Clock())


def req(
    rid: str,
    n: int,
    max_new: int = 8,
    first: int | None = None,
    clock: Clock | None = None,
    **params: object,
) -> Sequence:
    if first is None:
        # Distinct prompts per request id: identical ones would share prefix blocks (even
        # within one step), which only the prefix-caching tests want.
        first = 1 + 1000 * (zlib.crc32(rid.encode()) % 1000)
    s = Sequence(
        request_id=rid,
        prompt_token_ids=[first + i for i in range(n)],
        params=SamplingParams(max_new_tokens=max_new, **params),  # type: ignore[arg-type]
        max_total_tokens=10**9,
        eos_token_ids=frozenset({EOS}),
    )
    if clock is not None:
        s.arrival_time = clock.now
    return s


def step(s: Scheduler, token: int = 7) -> SchedulerOutput:
    out = s.schedule()
    s.update(out, [token] * len(out.sampling))
    return out


def check_invariants(s: Scheduler) -> None:
    bm = s.block_manager
    live = s.running + list(s.waiting)
    held = sum(len(x.block_table) for x in live)
    refs = sum(bm.ref_count(b) for b in range(bm.num_blocks))
    assert refs >= 0
    in_use = sum(1 for b in range(bm.num_blocks) if bm.ref_count(b) > 0)
    assert in_use + bm.num_free_blocks == bm.num_blocks
    assert held >= in_use  # shared blocks are counted once per holder
    for x in s.waiting:
        assert x.block_table == [] and x.num_computed_tokens == 0
    for x in s.running:
        assert len(x.block_table) * BS >= x.num_computed_tokens


def test_admission_respects_max_num_seqs() -> None:
    s = make(max_num_seqs=2)
    for i in range(5):
        s.add(req(f"r{i}", 5))
    out = step(s)
    assert [x.seq.request_id for x in out.prefills] == ["r0", "r1"]
    assert len(s.running) == 2 and len(s.waiting) == 3


def test_token_budget_chunks_the_prompt_that_does_not_fit() -> None:
    s = make(max_num_batched_tokens=64)
    s.add(req("a", 40))
    s.add(req("b", 40))
    out = s.schedule()
    assert [(x.seq.request_id, x.num_tokens, x.sample) for x in out.prefills] == [
        ("a", 40, True),
        ("b", 24, False),
    ]
    assert out.num_batched_tokens == 64
    s.update(out, [7])
    out = s.schedule()  # a decodes, b finishes its prompt
    assert [(x.seq.request_id, x.start, x.num_tokens) for x in out.prefills] == [("b", 24, 16)]
    assert [x.seq.request_id for x in out.decodes] == ["a"]


def test_long_prompt_is_chunked_while_others_keep_decoding() -> None:
    s = make(max_num_batched_tokens=64, long_prefill_token_threshold=32)
    s.add(req("short", 3, max_new=50))
    step(s)
    s.add(req("long", 100))
    chunks = []
    for _ in range(4):
        out = step(s)
        assert [x.seq.request_id for x in out.decodes] == ["short"]  # never starved
        chunks += [(x.start, x.num_tokens, x.sample) for x in out.prefills]
    assert chunks == [(0, 32, False), (32, 32, False), (64, 32, False), (96, 4, True)]
    assert s.get("long") is not None and s.get("long").num_output_tokens == 1  # type: ignore[union-attr]


def test_running_sequences_are_served_before_new_admissions() -> None:
    s = make(max_num_batched_tokens=10)
    s.add(req("a", 9))
    step(s)
    s.add(req("b", 20))
    out = s.schedule()
    assert [x.seq.request_id for x in out.decodes] == ["a"]
    assert [(x.seq.request_id, x.num_tokens) for x in out.prefills] == [("b", 9)]


def test_max_new_tokens_and_eos_finish_and_free_blocks() -> None:
    s = make(num_blocks=16)
    s.add(req("len", 5, max_new=3))
    s.add(req("eos", 5, max_new=10))
    step(s)
    out = s.schedule()
    s.update(out, [7, EOS])
    eos = out.sampling[1].seq
    assert eos.finish_reason is FinishReason.STOP and eos.block_table == []
    step(s)
    assert not s.has_unfinished()
    assert s.block_manager.num_free_blocks == 16


def test_ignore_eos_keeps_generating() -> None:
    s = make()
    s.add(req("a", 5, max_new=4, ignore_eos=True))
    while s.has_unfinished():
        out = step(s, token=EOS)
    assert out.sampling[0].seq.num_output_tokens == 4
    assert out.sampling[0].seq.finish_reason is FinishReason.LENGTH


def test_preemption_by_recompute_when_blocks_run_out() -> None:
    # 6 blocks of 4 = 24 token slots; two sequences of 8 + 12 new need 40: one must yield.
    s = make(num_blocks=6)
    s.add(req("old", 8, max_new=12))
    s.add(req("new", 8, max_new=12, first=100))
    preempted: list[str] = []
    outputs: dict[str, list[int]] = {"old": [], "new": []}
    tok = iter(range(1000, 10**6))
    steps = 0
    while s.has_unfinished():
        out = s.schedule()
        preempted += [x.request_id for x in out.preempted]
        toks = [next(tok) for _ in out.sampling]
        s.update(out, toks)
        for x, t in zip(out.sampling, toks, strict=True):
            outputs[x.seq.request_id].append(t)
        check_invariants(s)
        steps += 1
        assert steps < 200
    assert preempted and set(preempted) == {"new"}  # the newest yields, oldest progresses
    assert [len(v) for v in outputs.values()] == [12, 12]
    assert s.block_manager.num_free_blocks == 6


def test_preempted_sequence_keeps_its_tokens_and_resumes_via_prefix_cache() -> None:
    s = make(num_blocks=6)
    s.add(req("old", 8, max_new=12))
    s.add(req("new", 8, max_new=12, first=100))
    new = s.get("new")
    assert new is not None
    while not new.num_preemptions:
        step(s)
    kept = list(new.output_token_ids)
    assert new.status is SequenceStatus.WAITING and kept
    assert new.token_ids[-len(kept) :] == kept
    while s.has_unfinished():
        step(s)
    assert new.output_token_ids[: len(kept)] == kept


def test_prefix_hit_skips_cached_system_prompt() -> None:
    s = make()
    system = list(range(50, 66))  # 4 full blocks
    a = Sequence("a", [*system, 1, 2], SamplingParams(max_new_tokens=1), 10**9)
    s.add(a)
    step(s)
    b = Sequence("b", [*system, 3, 4, 5], SamplingParams(max_new_tokens=1), 10**9)
    s.add(b)
    out = s.schedule()
    assert [(x.start, x.num_tokens) for x in out.prefills] == [(16, 3)]
    assert b.num_cached_tokens == 16
    assert s.block_manager.prefix_hit_tokens == 16


def test_conversation_turn_reuses_previous_turn() -> None:
    s = make()
    turn1 = Sequence("t1", list(range(1, 11)), SamplingParams(max_new_tokens=6), 10**9)
    s.add(turn1)
    while s.has_unfinished():
        step(s, token=9)
    history = [*turn1.token_ids, 33, 34]  # earlier turn + reply + the new user message
    turn2 = Sequence("t2", history, SamplingParams(max_new_tokens=1), 10**9)
    s.add(turn2)
    s.schedule()
    # 15 computed tokens of turn 1 (the last sampled token was never computed) -> 3 blocks
    assert turn2.num_cached_tokens == 12


def test_abort_frees_blocks_immediately_and_is_reported_once() -> None:
    s = make(num_blocks=16, max_num_seqs=1)
    s.add(req("run", 10))
    s.add(req("wait", 10))
    step(s)
    assert s.block_manager.num_free_blocks < 16
    run = s.abort("run")
    assert run is not None and run.finish_reason is FinishReason.ABORT
    assert s.block_manager.num_free_blocks == 16
    assert s.abort("wait") is not None
    assert s.abort("run") is None and s.abort("nope") is None
    out = s.schedule()
    assert [x.request_id for x in out.finished] == ["run", "wait"] and out.is_empty
    assert s.schedule().finished == []
    assert not s.has_unfinished()


def test_queue_timeout_rejects_only_the_stuck_request() -> None:
    clock = Clock()
    s = make(clock=clock, max_num_seqs=1, queue_timeout_s=5.0)
    s.add(req("a", 5, max_new=100, clock=clock))
    step(s)
    s.add(req("b", 5, clock=clock))
    clock.now = 4.0
    assert step(s).finished == []
    clock.now = 6.0
    out = step(s)
    assert [x.request_id for x in out.finished] == ["b"]
    b = out.finished[0]
    assert b.finish_reason is FinishReason.ERROR and isinstance(b.error, EngineBusyError)
    assert [x.seq.request_id for x in out.decodes] == ["a"]


def test_preempted_requests_do_not_time_out() -> None:
    clock = Clock()
    s = make(num_blocks=6, clock=clock, queue_timeout_s=1.0)
    s.add(req("old", 8, max_new=12, clock=clock))
    s.add(req("new", 8, max_new=12, first=100, clock=clock))
    while s.has_unfinished():
        clock.now += 0.5
        out = step(s)
        assert out.finished == []


def test_bad_requests_fail_alone() -> None:
    s = make(max_model_len=32)
    s.add(req("ok", 5))
    with pytest.raises(InvalidRequestError, match="32"):
        s.add(req("long", 32))
    with pytest.raises(InvalidRequestError, match="empty"):
        s.add(req("empty", 0))
    with pytest.raises(InvalidRequestError, match="already in use"):
        s.add(req("ok", 3))
    while s.has_unfinished():
        step(s)
    assert s.get("ok") is None


def test_full_queue_is_busy() -> None:
    s = make(max_waiting=2)
    s.add(req("a", 3))
    s.add(req("b", 3))
    with pytest.raises(EngineBusyError):
        s.add(req("c", 3))


def test_sequence_longer_than_the_pool_stops_with_length_not_livelock() -> None:
    s = make(num_blocks=3)  # 12 token slots
    a = req("a", 6, max_new=100)
    s.add(a)
    steps = 0
    while s.has_unfinished():
        step(s)
        steps += 1
        assert steps < 50
    assert s.max_total_tokens == 12
    assert a.finish_reason is FinishReason.LENGTH and a.num_tokens == 12
    assert a.num_preemptions == 0


def test_update_checks_token_count() -> None:
    s = make()
    s.add(req("a", 3))
    out = s.schedule()
    with pytest.raises(ValueError):
        s.update(out, [])


def test_random_workload_keeps_pool_consistent() -> None:
    rng = random.Random(0)
    s = make(
        num_blocks=24, max_num_seqs=6, max_num_batched_tokens=32, long_prefill_token_threshold=12
    )
    system = list(range(200, 212))
    n = 0
    for _ in range(400):
        if rng.random() < 0.3:
            base = system if rng.random() < 0.5 else []
            prompt = base + [rng.randrange(1, 50) for _ in range(rng.randrange(1, 20))]
            s.add(
                Sequence(
                    f"r{n}", prompt, SamplingParams(max_new_tokens=rng.randrange(1, 15)), 10**9
                )
            )
            n += 1
        live = s.running + list(s.waiting)
        if live and rng.random() < 0.1:
            s.abort(rng.choice(live).request_id)
        out = s.schedule()
        s.update(out, [rng.randrange(1, 50) for _ in out.sampling])
        check_invariants(s)
    while s.has_unfinished():
        step(s)
    assert s.block_manager.num_free_blocks == 24
    assert all(s.block_manager.ref_count(b) == 0 for b in range(24))


def test_invalid_scheduler_limits() -> None:
    with pytest.raises(ValueError):
        SchedulerConfig(max_model_len=1)
    with pytest.raises(ValueError):
        SchedulerConfig(max_model_len=10, long_prefill_token_threshold=0)


def test_a_lone_prompt_is_not_split_below_the_budget() -> None:
    s = make(max_num_batched_tokens=64, long_prefill_token_threshold=16)
    s.add(req("alone", 40))
    out = s.schedule()
    assert [(x.num_tokens, x.sample) for x in out.prefills] == [(40, True)]
