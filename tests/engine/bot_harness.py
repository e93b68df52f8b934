"""The real ``Bot`` on the local engine, watched: helpers for tests with many customers.

``WatchedEngine`` is the engine backend keeping every call (its deltas and how it ended),
the engine's finish reason and tokens per call, and the thread of every model step.
``Customers`` is a streaming channel whose conversations each follow a ``Plan`` (read the
reply, lose the connection, have an agent take over, give up at a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

from botkit.backends.local_engine import LocalEngineBackend
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings, settings_from_mapping
from botkit.errors import BackendBusyError, BackendError, ConnectorError
from botkit.events import Contact, InboundMessage, OutboundReply
from botkit.sanitize import sanitize_text
from connectors.base import Connector, ConnectorConfig
from engine import AsyncEngine, LLMEngine, RequestOutput

SYSTEM = "You help the customers of a shop."


# ------------------------------------------------------------------ the backend, watched
@dataclass
class Call:
    """One ``generate`` as the bot (or a hostile caller) made it, and how it ended."""

    request: GenerationRequest
    tag: str  # the request id the engine got (it adds a suffix)
    deltas: list[str] = field(default_factory=list)
    # "running", "complete", "closed" (consumer went away), "cancelled", "busy", "error"
    outcome: str = "running"
    closed_at_step: int | None = None  # the engine's step count when it was closed

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def question(self) -> str:
        return self.request.messages[-1].content if self.request.messages else ""


class WatchedEngine(LocalEngineBackend):
    """The engine backend, keeping every call and the thread of every model step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[Call] = []
        self.step_threads: set[str] = set()
        # Call tag -> (finish reason, the engine's step count when it was reported).
        self.finished: dict[str, tuple[str, int]] = {}
        self.tokens: dict[str, list[int]] = defaultdict(list)  # call tag -> tokens made
        self.llm: LLMEngine | None = None
        self.async_engine: AsyncEngine | None = None
        self._tag = ""

    async def start(self) -> None:
        await super().start()
        aeng = self.async_engine = self.engine
        assert aeng is not None
        llm = self.llm = aeng.engine
        step, submit = llm.step, aeng.submit

        def watched_step() -> list[RequestOutput]:
            self.step_threads.add(threading.current_thread().name)
            outputs = step()
            for o in outputs:
                self.tokens[o.request_id.rsplit("-", 1)[0]].extend(o.token_ids)
                if o.finished:
                    reason = "?" if o.finish_reason is None else o.finish_reason.value
                    self.finished[o.request_id.rsplit("-", 1)[0]] = (reason, llm.stats.steps)
            return outputs

        def tagged_submit(prompt: Any, params: Any = None, **_kw: Any) -> Any:
            # Called as the backend's stream starts, with no await since ``generate``
            # set the tag: the tag is that call's.
            return submit(prompt, params, request_id=self._tag)

        llm.step = watched_step  # type: ignore[method-assign]
        aeng.submit = tagged_submit  # type: ignore[method-assign]

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        call = Call(request, tag=f"call{len(self.calls)}")
        self.calls.append(call)
        self._tag = call.tag
        try:
            # aclosing, as the bot's own wrappers do: a closed wrapper closes the stream.
            source = cast(AsyncGenerator[str, None], super().generate(request))
            async with contextlib.aclosing(source) as stream:
                async for delta in stream:
                    call.deltas.append(delta)
                    yield delta
        except GeneratorExit:
            call.outcome = "closed"
            call.closed_at_step = self.steps()
            raise
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            call.closed_at_step = self.steps()
            raise
        except BackendBusyError:
            call.outcome = "busy"
            raise
        except BackendError:
            call.outcome = "error"
            raise
        call.outcome = "complete"

    def stopped_in_time(self, call: Call) -> bool:
        """Whether the engine ended a call its consumer closed (or cancelled) without
        computing on: aborted by the step after the one in flight when the consumer went
        away, or finished by that step on its own (its last token was on its way to the
        loop). The step count read on the loop may trail the engine thread by a step."""
        if call.closed_at_step is None or call.tag not in self.finished:
            return False
        reason, at_step = self.finished[call.tag]
        if reason == "abort":
            return at_step <= call.closed_at_step + 2
        return reason in ("stop", "length") and at_step <= call.closed_at_step + 1

    def steps(self) -> int:
        return -1 if self.llm is None else self.llm.stats.steps

    async def alone(self, request: GenerationRequest) -> str:
        """The reply ``request`` gets with nothing else running (not recorded)."""
        self._tag = "alone"
        return "".join([d async for d in LocalEngineBackend.generate(self, request)])


# ------------------------------------------------------------------ the customers' side
@dataclass
class Plan:
    """What the customer's side does with a reply: ``answer`` (read it all), ``gone``
    (connection lost after ``after`` deltas), ``takeover`` (an agent takes the
    conversation over after ``after`` deltas), ``deadline`` (the channel gives up after
    ``seconds``, maybe while the request still waits in the engine's queue)."""

    kind: str = "answer"
    after: int = 0
    seconds: float = 0.0


class Customers(Connector[ConnectorConfig]):
    """A channel that streams replies and acts on each conversation's ``Plan``."""

    name: ClassVar[str] = "test"

    def __init__(self, core: Any) -> None:
        super().__init__(ConnectorConfig(), core)
        self.bot: Bot = core
        self.plans: dict[str, Plan] = {}
        self.ids: dict[str, int] = {}  # conversation key -> conversation id
        self.shown: dict[str, list[str]] = defaultdict(list)
        self.finals: dict[str, OutboundReply] = {}
        self.agent_messages: list[OutboundReply] = []
        self.first_delta: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.ended: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.takeovers: list[asyncio.Task[Any]] = []

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        self.agent_messages.append(reply)  # the bot's replies come through send_stream

    async def send_stream(self, stream: ReplyStream) -> None:
        key = stream.conversation_key
        plan = self.plans.get(key, Plan())
        shown = self.shown[key]
        try:
            async with asyncio.timeout(plan.seconds if plan.kind == "deadline" else None):
                async for delta in stream:
                    shown.append(delta)
                    self.first_delta[key].set()
                    if plan.kind == "gone" and len(shown) >= plan.after:
                        raise ConnectorError("the customer's connection closed")
                    if plan.kind == "takeover" and len(shown) == plan.after:
                        self.takeovers.append(asyncio.create_task(self._take_over(key)))
            self.finals[key] = await stream.final()
        except TimeoutError:
            raise ConnectorError("the channel's deadline passed") from None
        finally:
            self.ended[key].set()

    async def _take_over(self, key: str) -> None:
        await self.bot.agent_replies.send(self.ids[key], "Ana here", agent="Ana", take_over=True)


def bot_settings(db: Path, **bot: Any) -> Settings:
    return settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{db}"},
            "backend": {"kind": "echo"},  # replaced by the engine backend given to Bot
            "bot": {"system_prompt": SYSTEM, **bot},
        },
        environ={},
    )


async def ask(bot: Bot, customers: Customers, key: str, text: str) -> None:
    receipt = await bot.submit(
        InboundMessage(
            channel="test",
            conversation_key=key,
            contact=Contact(channel="test", external_id=f"u-{key}"),
            text=text,
            idempotency_key=f"m-{key}",
        )
    )
    customers.ids[key] = receipt.conversation_id


def whole_text(tokenizer: Any, tokens: list[int]) -> str:
    """The reply's tokens decoded at once; a reply cut mid-character (at its token
    limit) drops the bytes of that character, as the engine does."""
    text: str = tokenizer.decode(tokens, skip_special_tokens=True)
    return text.rstrip("\ufffd")


def shown_text(deltas: list[str]) -> str:
    """What the bot shows of a backend's deltas (it cleans each one)."""
    return "".join(sanitize_text(d) for d in deltas)


# ------------------------------------------------------------------ diagnostics
class LoopLag:
    """How late the loop wakes a 5 ms sleeper: a blocked loop shows as lag."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - before - 0.005)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def engine_idle(llm: LLMEngine, aeng: AsyncEngine) -> None:
    """Wait (bounded) until the engine holds nothing, then check that it holds nothing."""
    for _ in range(1000):
        load = llm.load
        if not llm.has_unfinished() and load.kv_blocks_free == load.kv_blocks:
            break
        await asyncio.sleep(0.01)
    load = llm.load
    assert (load.running, load.waiting) == (0, 0)
    assert load.kv_blocks_free == load.kv_blocks  # no KV block leaked
    assert not llm.has_unfinished()
    assert not llm._detok  # no detokenizer left behind
    assert not aeng._streams  # no stream left behind
